//! A program result's metrics, by the keys of the catalogue in [`crate::scenario::metric`].

use crate::results::schema::ProgramResult;
use crate::scenario::metric::{self, RUN};

/// The load-time metrics of a program, in display order; the run cost is `run_median`.
pub fn load_values(p: &ProgramResult) -> Vec<(String, f64)> {
    p.load_info.as_ref().map(metric::load_values).unwrap_or_default()
}

pub fn run_median(p: &ProgramResult) -> Option<f64> {
    p.summary.map(|s| s.median)
}

/// Every metric of a program: the run cost first, then the load-time metrics.
pub fn values(p: &ProgramResult) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = run_median(p).map(|m| (RUN.to_string(), m)).into_iter().collect();
    out.extend(load_values(p));
    out
}

pub fn value(p: &ProgramResult, key: &str) -> Option<f64> {
    values(p).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::metric::is_known;

    #[test]
    fn metrics_come_in_display_order_with_the_run_first() {
        let run = crate::testing::fixture();
        let p = run.variants[0].program("task_ref_tc").unwrap();
        let keys: Vec<String> = values(p).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys[0], RUN);
        assert_eq!(value(p, RUN), Some(312.0));
        assert_eq!(value(p, "verified_insns"), Some(10.0));
        assert_eq!(value(p, "verification_time_us"), Some(191.0));
        for key in &keys {
            assert!(is_known(key), "{key}");
        }
        assert!(is_known("prog_info.exc_desc_bytes"));
        assert!(!is_known("prog_info.") && !is_known("median"));
    }
}
