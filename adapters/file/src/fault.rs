//! Fault injection for the crate's own tests (feature `_test-faults`, not public
//! API): make the n-th `fdatasync` or `pwrite` fail as the kernel would, with
//! `EIO`, so that a test can watch the journal panic (invariant I7).

use crate::error::MediumOp;
use std::io;

/// Which operations of a [`FileMedium`](crate::FileMedium) fail. After `n`
/// successful calls of an armed operation, that call and every later one fail
/// with `EIO` (a real kernel may instead let a later fsync "succeed" after
/// dropping the dirty pages: the journal must never get that far).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    sync_ok: Option<u32>,
    program_ok: Option<u32>,
}

impl FaultPlan {
    /// No faults.
    pub const fn none() -> Self {
        FaultPlan {
            sync_ok: None,
            program_ok: None,
        }
    }

    /// `n` syncs succeed, then every sync fails.
    pub const fn fail_sync_after(n: u32) -> Self {
        FaultPlan {
            sync_ok: Some(n),
            program_ok: None,
        }
    }

    /// `n` programs succeed, then every program fails.
    pub const fn fail_program_after(n: u32) -> Self {
        FaultPlan {
            sync_ok: None,
            program_ok: Some(n),
        }
    }

    /// Counts one call of `op`; the error to report instead of doing it, if any.
    pub(crate) fn check(&mut self, op: MediumOp) -> Option<io::Error> {
        let left = match op {
            MediumOp::Sync => &mut self.sync_ok,
            MediumOp::Program => &mut self.program_ok,
            _ => return None,
        };
        match left {
            None => None,
            Some(0) => Some(io::Error::new(
                io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error()).kind(),
                "injected fault: Input/output error (EIO)",
            )),
            Some(n) => {
                *n -= 1;
                None
            }
        }
    }
}
