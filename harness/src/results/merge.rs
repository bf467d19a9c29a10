//! `harness merge`: joins the results of shards (runs of one scenario, each on some of its
//! variants, e.g. on different CI runners) into one run per scenario, as if one machine had
//! run every variant. Shards must have been measured the same way by the same harness commit;
//! otherwise their numbers could not stand side by side.

use crate::results::schema::RunResult;
use crate::results::store::StoredRun;

pub fn merge(shards: &[StoredRun]) -> anyhow::Result<Vec<RunResult>> {
    let mut merged: Vec<RunResult> = Vec::new();
    for shard in shards {
        let run = &shard.run;
        let Some(into) = merged.iter_mut().find(|m| m.scenario.name == run.scenario.name) else {
            merged.push(run.clone());
            continue;
        };
        let (a, b) = (&into.provenance, &run.provenance);
        anyhow::ensure!(
            (a.accel, a.mode, &a.unit) == (b.accel, b.mode, &b.unit),
            "{}: measured as {:?}/{:?} in {}, but earlier shards of {} as {:?}/{:?} in {}",
            shard.path.display(),
            b.accel,
            b.mode,
            b.unit,
            run.scenario.name,
            a.accel,
            a.mode,
            a.unit
        );
        anyhow::ensure!(
            a.harness_commit == b.harness_commit,
            "{}: harness commit {} differs from the other shards' {}",
            shard.path.display(),
            b.harness_commit,
            a.harness_commit
        );
        for v in &run.variants {
            anyhow::ensure!(
                !into.variants.iter().any(|x| x.name == v.name),
                "{}: variant {} of {} is in more than one shard",
                shard.path.display(),
                v.name,
                run.scenario.name
            );
            into.variants.push(v.clone());
        }
        into.provenance.harness_dirty |= b.harness_dirty;
        if b.date < into.provenance.date {
            into.provenance.date = b.date.clone();
        }
    }
    // The baseline first, the others by name: the order the table compares in.
    for run in &mut merged {
        run.variants.sort_by(|x, y| (x.name != "baseline", &x.name).cmp(&(y.name != "baseline", &y.name)));
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::stored;
    use crate::testing::two_variants;

    fn shards() -> (RunResult, StoredRun, StoredRun) {
        let full = two_variants();
        let mut a = full.clone();
        a.variants.truncate(1);
        let mut b = full.clone();
        b.variants.remove(0);
        b.provenance.date = "2026-11-21T20:00:00+00:00".into();
        // Shard order does not matter: the baseline comes first in the result.
        (full, stored(b, "b"), stored(a, "a"))
    }

    #[test]
    fn shards_become_one_run_with_the_baseline_first() {
        let (full, b, a) = shards();
        let merged = merge(&[b, a]).unwrap();
        assert_eq!(merged.len(), 1);
        let names: Vec<&str> = merged[0].variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["baseline", "exception-unwind"]);
        assert_eq!(merged[0].provenance.date, "2026-11-21T20:00:00+00:00");
        assert_eq!(merged[0].variants[1].programs.len(), full.variants[1].programs.len());
        assert_eq!(crate::results::store::stamp_of(&merged[0].provenance).unwrap(), "20261121T200000Z-b095d9df10fa");
    }

    #[test]
    fn mismatched_or_overlapping_shards_are_refused() {
        let (_, b, a) = shards();
        let mut other_mode = b.clone();
        other_mode.run.provenance.mode = crate::vm::qemu::Mode::Wallclock;
        assert!(format!("{:#}", merge(&[a.clone(), other_mode]).unwrap_err()).contains("measured as"));
        let mut other_commit = b.clone();
        other_commit.run.provenance.harness_commit = "0123456789ab".into();
        assert!(format!("{:#}", merge(&[a.clone(), other_commit]).unwrap_err()).contains("harness commit"));
        assert!(format!("{:#}", merge(&[a.clone(), a]).unwrap_err()).contains("more than one shard"));
    }
}
