//! A medium that yields before every operation, so that a test can drop a
//! future of the async store between any two medium operations (as a `select`
//! with a timeout would), and the poll that drops it.

use monitor_events::{AsyncMedium, Geometry, Medium};
use monitor_events_flash::sim::SimError;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

/// A medium (`M`: a `&mut SimFlash`, or one seen through `Grouped`) whose
/// every operation first answers `Pending` once (and wakes its task), as a
/// driver waiting for its flash does: a future of the store can be dropped
/// between any two medium operations.
pub struct Yielding<M>(pub M);

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

impl<M: Medium<Error = SimError>> AsyncMedium for Yielding<M> {
    type Error = SimError;
    fn geometry(&self) -> Geometry {
        self.0.geometry()
    }
    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), SimError> {
        YieldOnce(false).await;
        self.0.read(offset, buf)
    }
    async fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), SimError> {
        YieldOnce(false).await;
        self.0.program(offset, data)
    }
    async fn erase(&mut self, sector: u32) -> Result<(), SimError> {
        YieldOnce(false).await;
        self.0.erase(sector)
    }
    async fn sync(&mut self) -> Result<(), SimError> {
        YieldOnce(false).await;
        self.0.sync()
    }
    fn erase_block_size(&self) -> u32 {
        self.0.erase_block_size()
    }
    fn writes_in_order(&self) -> bool {
        self.0.writes_in_order()
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
