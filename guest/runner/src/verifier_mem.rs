//! The verifier's peak memory per program, as veristat's `mem_peak` reports it: traced by
//! guest/bpf/verifier_mem.bpf.c around one extra, untimed load of each program, before any
//! program is measured (Linux 6.12's verifier allocates with GFP_KERNEL, which no memory
//! cgroup sees, and the guest kernels have no CONFIG_MEMCG).
//!
//! The tracer is attached only for this pass: a program on the kmalloc tracepoint would add its
//! cost to every timed sample and to the verifier clock of the load the plan measures.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use bpfh_protocol::{ProgramPlan, BPF_DIR, VERIFIER_MEM_OBJECT};
use libbpf_rs::{Link, MapCore, MapFlags, Object, ObjectBuilder};

use crate::load::{self, Target};

/// What the tracer measured for one program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peak {
    pub bytes: u64,
    /// Allocations the tracer had no room to record: `bytes` is then a lower bound.
    pub dropped: u64,
}

/// The peaks of a plan's programs by id, or why a program has none.
pub type Peaks = BTreeMap<String, Result<Peak, String>>;

/// `struct verifier_mem_state` of verifier_mem.bpf.c, the value of its `.bss` map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    target_tgid: u64,
    active: u64,
    live: u64,
    peak: u64,
    dropped: u64,
    loads: u64,
}

/// Fields of [`State`], in the order of the C struct.
const STATE_WORDS: usize = 6;

impl State {
    fn parse(bytes: &[u8]) -> Result<State> {
        ensure!(
            bytes.len() >= STATE_WORDS * 8,
            ".bss of {VERIFIER_MEM_OBJECT} is {} bytes, expected at least {}",
            bytes.len(),
            STATE_WORDS * 8
        );
        let word = |i: usize| u64::from_ne_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        Ok(State {
            target_tgid: word(0),
            active: word(1),
            live: word(2),
            peak: word(3),
            dropped: word(4),
            loads: word(5),
        })
    }

    /// The `.bss` value with this state, `len` bytes long (the rest zero).
    fn encode(&self, len: usize) -> Vec<u8> {
        let words = [self.target_tgid, self.active, self.live, self.peak, self.dropped, self.loads];
        let mut out: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        out.resize(len.max(out.len()), 0);
        out
    }
}

/// The attached tracer; dropping it detaches it and closes its object.
struct Tracer {
    /// Detached before the object closes (fields drop in order).
    _links: Vec<Link>,
    object: Object,
}

impl Tracer {
    /// Loads the tracer, sets its target to this process and attaches every program.
    fn attach() -> Result<Tracer> {
        let path = Path::new(BPF_DIR).join(VERIFIER_MEM_OBJECT);
        let _ = load::take_libbpf_output();
        let open = ObjectBuilder::default().open_file(&path).with_context(|| format!("opening {}", path.display()))?;
        // libbpf's messages say why (the verifier log of a program the kernel refused).
        let object = open.load().with_context(|| {
            format!("loading {VERIFIER_MEM_OBJECT}: {}", load::keep_tail(load::take_libbpf_output().trim(), 2000))
        })?;
        let bss = load::map_ending(&object, VERIFIER_MEM_OBJECT, ".bss")?;
        let state = State { target_tgid: u64::from(std::process::id()), ..State::default() };
        bss.update(&0u32.to_ne_bytes(), &state.encode(bss.value_size() as usize), MapFlags::ANY)
            .context("setting target_tgid")?;
        let links = object
            .progs_mut()
            .map(|p| p.attach().with_context(|| format!("attaching {}", p.name().to_string_lossy())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tracer { _links: links, object })
    }

    fn state(&self) -> Result<State> {
        let value = load::map_ending(&self.object, VERIFIER_MEM_OBJECT, ".bss")?
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)?
            .ok_or_else(|| anyhow!("empty .bss map"))?;
        State::parse(&value)
    }

    /// Forgets what the last program left allocated (freed when it was closed, outside
    /// BPF_PROG_LOAD, so the tracer never saw it go): an address reused later must not count.
    fn forget_allocations(&self) -> Result<()> {
        let allocs = load::map_ending(&self.object, VERIFIER_MEM_OBJECT, "allocs")?;
        let keys: Vec<Vec<u8>> = allocs.keys().collect();
        for key in keys {
            allocs.delete(&key).context("emptying allocs")?;
        }
        Ok(())
    }

    /// Loads `target` once more, traced, and closes it again.
    fn measure(&self, target: Target<'_>) -> Result<Peak> {
        let before = self.state()?.loads;
        let (open, rc, output, _) = load::open_and_load(target, load::BPF_LOG_STATS)?;
        let after = self.state();
        drop(open);
        self.forget_allocations()?;
        let after = after?;
        if rc < 0 {
            let why = if output.contains(load::LOAD_FAILED) { "the verifier rejected it" } else { "libbpf failed" };
            bail!("its traced load failed ({why}: {})", std::io::Error::from_raw_os_error(-rc));
        }
        ensure!(after.loads > before, "the tracer saw no BPF_PROG_LOAD during its traced load");
        ensure!(after.active == 0, "the tracer saw BPF_PROG_LOAD enter but not return");
        Ok(Peak { bytes: after.peak, dropped: after.dropped })
    }
}

/// Measures every program of the plan, each alone (no auxiliary programs), with its own flags
/// and the statistics log level of the measured load. Never fails: a tracer that cannot attach
/// is said once and leaves every program without a figure.
pub fn measure(programs: &[ProgramPlan]) -> Peaks {
    let tracer = match Tracer::attach() {
        Ok(tracer) => tracer,
        Err(err) => {
            crate::io::say(&format!("verifier peak memory not measured: the tracer did not attach: {err:#}"));
            return Peaks::new();
        }
    };
    let mut peaks = Peaks::new();
    for plan in programs {
        let target = Target { auxiliary: &[], ..Target::from(plan) };
        peaks.insert(plan.id.clone(), tracer.measure(target).map_err(|e| format!("{e:#}")));
    }
    drop(tracer);
    peaks
}

/// The console line for an accepted program's figure: None when there is nothing to say.
pub fn remark(id: &str, peak: &Result<Peak, String>) -> Option<String> {
    match peak {
        Ok(Peak { dropped: 0, .. }) => None,
        Ok(Peak { bytes, dropped }) => Some(format!(
            "{id}: verifier peak memory {bytes} B is a lower bound: {dropped} allocations did not fit the tracer's map"
        )),
        Err(why) => Some(format!("{id}: verifier peak memory not measured: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_read_in_the_c_struct_order() {
        let words: Vec<u8> = [1u64, 0, 300, 4096, 2, 7].iter().flat_map(|w| w.to_ne_bytes()).collect();
        let state = State::parse(&words).unwrap();
        assert_eq!(state, State { target_tgid: 1, active: 0, live: 300, peak: 4096, dropped: 2, loads: 7 });
        assert_eq!(state.encode(48), words);
        assert_eq!(state.encode(64).len(), 64, "padded to the map's value size");
        assert!(State::parse(&words[..40]).is_err());
    }

    #[test]
    fn only_a_lower_bound_or_a_missing_figure_is_remarked() {
        assert_eq!(remark("p", &Ok(Peak { bytes: 9000, dropped: 0 })), None);
        let lower = remark("p", &Ok(Peak { bytes: 9000, dropped: 3 })).unwrap();
        assert!(lower.contains("9000 B is a lower bound") && lower.contains("3 allocations"), "{lower}");
        let missing = remark("p", &Err("its traced load failed".into())).unwrap();
        assert_eq!(missing, "p: verifier peak memory not measured: its traced load failed");
    }
}
