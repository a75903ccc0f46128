//! A medium that yields before every operation, so that a test can drop a
//! future of the async store between any two medium operations (as a `select`
//! with a timeout would), and the poll that drops it.

use monitor_events::{AsyncMedium, Geometry, Medium};
use monitor_events_flash::sim::{SimError, SimFlash};
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

/// A medium whose every operation first answers `Pending` once (and wakes its
/// task), as a driver waiting for its flash does: a future of the store can be
/// dropped between any two medium operations.
pub struct Yielding<'a>(pub &'a mut SimFlash);

/// Completes on the second poll.
struct YieldOnce(bool);
impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

impl AsyncMedium for Yielding<'_> {
    type Error = SimError;
    fn geometry(&self) -> Geometry {
        Medium::geometry(self.0)
    }
    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), SimError> {
        YieldOnce(false).await;
        Medium::read(self.0, offset, buf)
    }
    async fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), SimError> {
        YieldOnce(false).await;
        Medium::program(self.0, offset, data)
    }
    async fn erase(&mut self, sector: u32) -> Result<(), SimError> {
        YieldOnce(false).await;
        Medium::erase(self.0, sector)
    }
    async fn sync(&mut self) -> Result<(), SimError> {
        YieldOnce(false).await;
        Medium::sync(self.0)
    }
}

/// Polls `fut` at most `polls` times, then drops it: its output if it
/// completed.
pub fn poll_at_most<F: Future>(fut: F, polls: usize) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    (0..polls).find_map(|_| match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    })
}
