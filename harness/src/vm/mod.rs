//! Boot: QEMU, the accelerator and measurement mode, saved boots, and what the console says
//! about the kernel.

pub mod accel;
pub mod console;
pub mod qemu;
pub mod snapshot;
