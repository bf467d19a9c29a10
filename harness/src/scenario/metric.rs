//! The metrics a result is judged by, each under a stable key that a scenario's thresholds name:
//! the run cost, veristat's load-time columns and a variant's own `bpf_prog_info` fields. The
//! one catalogue the table, `compare` and `report` read names, labels and units from.

use bpfh_protocol::LoadInfo;

/// The median cost of one run (instructions under icount, nanoseconds under wallclock).
pub const RUN: &str = "run";
/// Prefix of the keys of a variant's own `bpf_prog_info` fields, e.g. `prog_info.exc_desc_bytes`.
pub const PROG_INFO_PREFIX: &str = "prog_info.";

/// A load-time metric: its key, its column label, its unit and how it is read from a load.
pub struct LoadMetric {
    pub key: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    read: fn(&LoadInfo) -> Option<f64>,
}

impl LoadMetric {
    pub fn value(&self, info: &LoadInfo) -> Option<f64> {
        (self.read)(info)
    }
}

/// Load-time metrics, veristat's columns, in display order.
pub const LOAD: [LoadMetric; 8] = [
    LoadMetric {
        key: "verified_insns",
        label: "insns processed",
        unit: "insns",
        read: |i| Some(f64::from(i.verified_insns)),
    },
    LoadMetric { key: "total_states", label: "total states", unit: "states", read: |i| i.total_states.map(f64::from) },
    LoadMetric { key: "peak_states", label: "peak states", unit: "states", read: |i| i.peak_states.map(f64::from) },
    LoadMetric {
        key: "max_states_per_insn",
        label: "max states/insn",
        unit: "states",
        read: |i| i.max_states_per_insn.map(f64::from),
    },
    LoadMetric {
        key: "verification_time_us",
        label: "verif time (us)",
        unit: "us",
        read: |i| i.verification_time_us.map(|t| t as f64),
    },
    // veristat's mem_peak (which it shows in MiB): the runner traces the verifier's slab and
    // vmalloc allocations in an extra load (guest/bpf/verifier_mem.bpf.c).
    LoadMetric {
        key: "verifier_peak_bytes",
        label: "verifier peak memory (B)",
        unit: "bytes",
        read: |i| i.verifier_peak_bytes.map(|b| b as f64),
    },
    LoadMetric { key: "xlated_len", label: "xlated B", unit: "bytes", read: |i| Some(f64::from(i.xlated_len)) },
    LoadMetric { key: "jited_len", label: "jited B", unit: "bytes", read: |i| Some(f64::from(i.jited_len)) },
];

fn load_metric(key: &str) -> Option<&'static LoadMetric> {
    LOAD.iter().find(|m| m.key == key)
}

/// Whether `key` names a metric (`prog_info.<field>` names any variant-declared field).
pub fn is_known(key: &str) -> bool {
    key == RUN || load_metric(key).is_some() || key.strip_prefix(PROG_INFO_PREFIX).is_some_and(|f| !f.is_empty())
}

/// Every key a threshold may name, for error messages.
pub fn known_keys() -> String {
    let mut keys: Vec<&str> = vec![RUN];
    keys.extend(LOAD.iter().map(|m| m.key));
    format!("{}, {PROG_INFO_PREFIX}<field>", keys.join(", "))
}

/// The column label of a metric (its key where it has none of its own).
pub fn label(key: &str) -> String {
    load_metric(key).map_or_else(|| key.to_string(), |m| m.label.to_string())
}

/// The unit of a metric; `run_unit` is the run's (`insns` or `ns`).
pub fn unit(key: &str, run_unit: &str) -> String {
    match (key, load_metric(key)) {
        (RUN, _) => run_unit.into(),
        (_, Some(m)) => m.unit.into(),
        _ => "count".into(),
    }
}

/// The load-time metrics of one load, in display order, the variant's own fields last.
pub fn load_values(info: &LoadInfo) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = LOAD.iter().filter_map(|m| Some((m.key.to_string(), m.value(info)?))).collect();
    out.extend(info.extra.iter().map(|(k, v)| (format!("{PROG_INFO_PREFIX}{k}"), *v as f64)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_load_metric_reads_its_own_field() {
        let info = LoadInfo {
            verified_insns: 1,
            total_states: Some(2),
            peak_states: Some(3),
            max_states_per_insn: Some(4),
            verification_time_us: Some(5),
            verifier_peak_bytes: Some(6),
            xlated_len: 7,
            jited_len: 8,
            extra: [("exc_desc_cnt".to_string(), 9)].into(),
        };
        let values = load_values(&info);
        let keys: Vec<&str> = values.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "verified_insns",
                "total_states",
                "peak_states",
                "max_states_per_insn",
                "verification_time_us",
                "verifier_peak_bytes",
                "xlated_len",
                "jited_len",
                "prog_info.exc_desc_cnt"
            ]
        );
        let numbers: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
        assert_eq!(numbers, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(unit("xlated_len", "insns"), "bytes");
        assert_eq!(unit("verifier_peak_bytes", "insns"), "bytes");
        assert!(is_known("verifier_peak_bytes"), "a threshold may name it");
        // Not measured (an older run, a kernel the tracer cannot attach to): no value at all.
        let unmeasured = LoadInfo { verifier_peak_bytes: None, ..info };
        assert!(load_values(&unmeasured).iter().all(|(k, _)| k != "verifier_peak_bytes"));
        assert_eq!(unit(RUN, "insns"), "insns");
        assert_eq!(unit("prog_info.exc_desc_cnt", "ns"), "count");
    }
}
