//! [`SharedFlash`]: one [`SimFlash`] seen by a store (as its [`Medium`]) and by the
//! test or emulator that drives it (to arm power cuts, restore power and read the
//! counters while the store owns its handle).

use super::{SimError, SimFlash};
use monitor_events::{Geometry, Medium};
use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

/// A [`SimFlash`] behind a shared handle: clones share the same flash.
#[derive(Clone, Debug)]
pub struct SharedFlash(Rc<RefCell<SimFlash>>);

impl SharedFlash {
    /// Shares `flash`.
    pub fn new(flash: SimFlash) -> Self {
        SharedFlash(Rc::new(RefCell::new(flash)))
    }

    /// The flash, to read.
    pub fn get(&self) -> Ref<'_, SimFlash> {
        self.0.borrow()
    }

    /// The flash, to arm a cut or restore power.
    pub fn get_mut(&self) -> RefMut<'_, SimFlash> {
        self.0.borrow_mut()
    }
}

impl Medium for SharedFlash {
    type Error = SimError;

    fn error_name(error: &SimError) -> &'static str {
        error.name()
    }

    fn geometry(&self) -> Geometry {
        self.0.borrow().geometry()
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), SimError> {
        self.0.borrow_mut().read(offset, buf)
    }
    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), SimError> {
        self.0.borrow_mut().program(offset, data)
    }
    fn erase(&mut self, sector: u32) -> Result<(), SimError> {
        self.0.borrow_mut().erase(sector)
    }
    fn sync(&mut self) -> Result<(), SimError> {
        self.0.borrow_mut().sync()
    }
}

/// Each operation completes when first polled, as through [`Medium`].
#[cfg(feature = "async")]
impl monitor_events::AsyncMedium for SharedFlash {
    type Error = SimError;

    fn error_name(error: &SimError) -> &'static str {
        error.name()
    }
    fn geometry(&self) -> Geometry {
        Medium::geometry(&*self.0.borrow())
    }
    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), SimError> {
        Medium::read(self, offset, buf)
    }
    async fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), SimError> {
        Medium::program(self, offset, data)
    }
    async fn erase(&mut self, sector: u32) -> Result<(), SimError> {
        Medium::erase(self, sector)
    }
    async fn sync(&mut self) -> Result<(), SimError> {
        Medium::sync(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cut armed through one handle tears the store's operation on the other.
    #[test]
    fn clones_share_one_flash() {
        let shared = SharedFlash::new(SimFlash::default());
        let mut medium = shared.clone();
        medium.program(0, &[0, 0, 0, 0]).unwrap();
        assert_eq!(shared.get().image()[..4], [0, 0, 0, 0]);
        shared
            .get_mut()
            .cut_after(0, super::super::Torn::NotStarted);
        assert_eq!(medium.program(4, &[0; 4]), Err(SimError::PowerCut));
        assert!(shared.get().is_dead());
    }
}
