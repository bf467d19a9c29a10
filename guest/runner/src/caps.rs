//! Dropping effective capabilities around a load, as upstream's selftest drivers do: some
//! verifier checks depend on them (`allow_uninit_stack` on CAP_PERFMON).

use anyhow::{Context, Result};

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn get() -> Result<[Data; 2]> {
    let mut header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [Data::default(); 2];
    // SAFETY: header and two data structs, as _LINUX_CAPABILITY_VERSION_3 requires.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("capget");
    }
    Ok(data)
}

fn set(data: &[Data; 2]) -> Result<()> {
    let mut header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    // SAFETY: as in `get`; the kernel only reads `data`.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("capset");
    }
    Ok(())
}

/// Capabilities dropped from the effective set until this is dropped (then restored).
pub struct Dropped {
    saved: Option<[Data; 2]>,
}

impl Dropped {
    /// Drops the effective capabilities in `mask` (bit n: capability n); 0 drops nothing.
    pub fn drop(mask: u64) -> Result<Dropped> {
        if mask == 0 {
            return Ok(Dropped { saved: None });
        }
        let saved = get()?;
        let mut lowered = saved;
        lowered[0].effective &= !(mask as u32);
        lowered[1].effective &= !((mask >> 32) as u32);
        set(&lowered)?;
        Ok(Dropped { saved: Some(saved) })
    }
}

impl Drop for Dropped {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // Permitted capabilities can always be made effective again.
            set(saved).expect("restoring the effective capabilities");
        }
    }
}
