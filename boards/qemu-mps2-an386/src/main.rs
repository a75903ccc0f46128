//! monitor-events on QEMU's mps2-an386 (Cortex-M4).
//!
//! The journal runs on a RAM flash mirrored to a host file through semihosting
//! ([`mirror`]), so a SIGKILL of QEMU is a real power cut. The mode comes from the
//! semihosting command line (`-append "<mode> key=value ..."`):
//!
//! | mode | what | exit |
//! |---|---|---|
//! | `selftest` (default) | W1 with reboots, then typed events through the `EventStore` (gating, replay), then W1 with ack records and on the authenticated journal: checks I1–I5 | 0 pass, 1 fail |
//! | `run` | pushes and acks simulated monitor events forever, reporting each returned id and ack to a host log first | killed |
//! | `verify` | recovers the image and checks it against the log | 0 pass, 1 fail |
//! | `link` (feature `link`) | pushes simulated monitor events into the `EventStore` and serves them to a consumer over UART0 (the link protocol), reporting what it sends to a host log | killed |
//!
//! See the README for the arguments and the power-cut loop.

#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod args;
// Without the store only the command line and exit are used.
#[cfg_attr(not(feature = "store"), allow(dead_code))]
mod host;

#[cfg(feature = "store")]
mod events;
#[cfg(feature = "store")]
mod journal;
#[cfg(feature = "link")]
mod link;
#[cfg(feature = "store")]
mod mirror;
#[cfg(feature = "store")]
mod report;
#[cfg(feature = "store")]
mod run;
#[cfg(feature = "store")]
mod selftest;
#[cfg(feature = "store")]
mod stack;
#[cfg(feature = "link")]
mod uart;
#[cfg(feature = "store")]
mod verify;

use defmt_semihosting as _;

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut buf = [0u8; 256];
    let line = host::cmdline(&mut buf);
    let args = match args::Args::parse(line) {
        Ok(a) => a,
        Err(bad) => {
            defmt::error!("bad argument {=str} in command line {=str}", bad, line);
            host::exit(false)
        }
    };
    defmt::info!("monitor-events on mps2-an386: {}", args);
    host::exit(dispatch(&args))
}

#[cfg(feature = "store")]
fn dispatch(args: &args::Args) -> bool {
    use args::Mode;
    let ram = flash_ram();
    match args.mode {
        Mode::Selftest => selftest::selftest(ram, args),
        Mode::Run => run::run(ram, args),
        Mode::Verify => verify::verify(ram, args),
        #[cfg(feature = "link")]
        Mode::Link => link::link(ram, args),
        #[cfg(not(feature = "link"))]
        Mode::Link => {
            defmt::error!(
                "link: built without the `link` feature (cargo build --release --features link)"
            );
            false
        }
    }
}

/// Without the store the firmware only parses its arguments, logs and exits: the
/// baseline of the size report.
#[cfg(not(feature = "store"))]
fn dispatch(_args: &args::Args) -> bool {
    defmt::info!("built without the store (feature `store` off)");
    true
}

/// The RAM under the simulated flash; handed out once.
#[cfg(feature = "store")]
#[allow(unsafe_code)]
fn flash_ram() -> &'static mut [u8; mirror::SIZE] {
    use core::sync::atomic::{AtomicBool, Ordering};
    static TAKEN: AtomicBool = AtomicBool::new(false);
    // Zero-initialised so that it lives in .bss, not as a 64 KiB initialiser in .data.
    static mut RAM: [u8; mirror::SIZE] = [0; mirror::SIZE];
    if TAKEN.swap(true, Ordering::AcqRel) {
        defmt::panic!("flash RAM taken twice");
    }
    // SAFETY: the flag above hands the buffer out once, so this is the only
    // reference to it.
    unsafe { &mut *core::ptr::addr_of_mut!(RAM) }
}

/// After a `defmt::panic!` (the core's I7 panics) has logged its message.
#[defmt::panic_handler]
fn defmt_panic() -> ! {
    host::exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    host::exit(false)
}

#[cortex_m_rt::exception]
#[allow(unsafe_code)]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc {=u32:#x}", frame.pc());
    host::exit(false)
}
