//! I7: a medium error never reaches the caller as a value: it panics, naming the
//! operation, the offset and the error. I6: a full store says `Full` and loses
//! nothing.

mod support;

use monitor_events::journal::{AckMode, AppendError, Journal};
use monitor_events::{EventId, Geometry, Medium};
use monitor_events_flash::sim::{SimError, SimFlash};
use support::*;

/// A medium that fails its `k`-th operation of one kind with a given error.
struct Failing {
    inner: SimFlash,
    fail: &'static str,
    after: u32,
}

impl Medium for Failing {
    type Error = SimError;
    fn geometry(&self) -> Geometry {
        self.inner.geometry()
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), SimError> {
        self.tick("read", SimError::OutOfBounds)?;
        self.inner.read(offset, buf)
    }
    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), SimError> {
        self.tick("program", SimError::WriteCount)?;
        self.inner.program(offset, data)
    }
    fn erase(&mut self, sector: u32) -> Result<(), SimError> {
        self.tick("erase", SimError::OutOfBounds)?;
        self.inner.erase(sector)
    }
    fn sync(&mut self) -> Result<(), SimError> {
        self.tick("sync", SimError::PowerCut)?;
        self.inner.sync()
    }
}

impl Failing {
    fn tick(&mut self, op: &str, e: SimError) -> Result<(), SimError> {
        if op == self.fail {
            if self.after == 0 {
                return Err(e);
            }
            self.after -= 1;
        }
        Ok(())
    }
}

fn panic_message(f: impl FnOnce()) -> String {
    // The panics are expected: keep their messages out of the output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    let e = r.expect_err("the medium error must panic");
    e.downcast_ref::<String>().cloned().unwrap_or_default()
}

/// I7: each kind of medium failure panics with the operation, offset and error.
#[test]
fn i7_medium_errors_panic_with_operation_offset_and_error() {
    for (fail, after, word, error) in [
        ("program", 3, "program of", "WriteCount"),
        ("erase", 0, "erase of sector", "OutOfBounds"),
        ("sync", 2, "sync after offset", "PowerCut"),
        ("read", 40, "read of", "OutOfBounds"),
    ] {
        let msg = panic_message(|| {
            let flash = Failing {
                inner: SimFlash::new(geometry(AckMode::InPlace)),
                fail,
                after,
            };
            let mut j = Journal::open(flash, config(AckMode::InPlace)).unwrap();
            for i in 0..100u8 {
                let id = j.push(&[i; 50]).unwrap();
                j.ack(id).unwrap();
            }
        });
        assert!(
            msg.contains(word) && msg.contains("offset") && msg.contains(error),
            "{fail}: {msg}"
        );
    }
}

/// I6: `Full` before anything changes; nothing pending is dropped, also after a
/// restart.
#[test]
fn i6_full_store_says_full_and_loses_nothing() {
    for mode in [AckMode::InPlace, AckMode::Record] {
        let mut flash = SimFlash::new(geometry(mode));
        let mut model = Model::default();
        {
            let mut j = Journal::open(&mut flash, config(mode)).unwrap();
            for i in 0..N as u8 {
                let id = j.push(&[i; 100]).unwrap();
                model.pushed(id, vec![i; 100]);
            }
            let ops = j.medium().op_index();
            assert_eq!(j.push(&[0xEE; 10]), Err(AppendError::Full));
            assert_eq!(j.medium().op_index(), ops, "I6: Full wrote nothing");
            assert_eq!(
                j.push(&[0; MAX_BODY + 1]),
                Err(AppendError::TooLarge {
                    len: MAX_BODY + 1,
                    max: MAX_BODY
                })
            );
            assert_eq!(j.pending_count(), N);
        }
        let mut j = Journal::open(&mut flash, config(mode)).unwrap();
        let (c, _) = check(&model, &mut j, "after Full");
        assert!(c.clean());
        assert_eq!(j.push(&[1]), Err(AppendError::Full));
        j.ack(EventId(3)).unwrap();
        assert!(j.push(&[1]).is_ok());
    }
}
