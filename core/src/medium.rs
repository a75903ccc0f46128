//! The port between the journal and a persistent medium.
//!
//! A [`Medium`] is a byte-addressed region of `sector_count` sectors of
//! `sector_size` bytes each. The journal is the only thing that decides; an
//! implementation only checks bounds and alignment, performs the raw operation
//! and reports its error. Errors never reach the journal's caller: the journal
//! panics with the operation, the offset and the error (invariant I7).

/// Shape and rules of a medium.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Geometry {
    /// Size of one erase unit in bytes (a power of two).
    pub sector_size: u32,
    /// Number of sectors in the region.
    pub sector_count: u32,
    /// Program unit in bytes (a power of two, at most 32): offsets and lengths of
    /// `program` are multiples of it.
    pub write_size: u32,
    /// Whether a program unit may be programmed a second time before the next erase
    /// (embedded-storage's `MultiwriteNorFlash`). The result is the AND of both
    /// writes. Enables in-place acks.
    pub multiwrite: bool,
}

impl Geometry {
    /// Total size of the region in bytes.
    pub const fn size(&self) -> u32 {
        self.sector_size * self.sector_count
    }
}

/// A persistent medium with NOR-flash semantics: erased bytes read `0xFF`, a
/// program only clears bits, an erase sets a whole sector back to `0xFF`.
///
/// Offsets are relative to the start of the region.
pub trait Medium {
    /// The error of a failed operation. Only ever printed in a panic message.
    #[cfg(not(feature = "defmt"))]
    type Error: core::fmt::Debug;
    /// The error of a failed operation. Only ever printed in a panic message.
    #[cfg(feature = "defmt")]
    type Error: core::fmt::Debug + defmt::Format;

    /// The shape of this medium; must not change while a journal uses it.
    fn geometry(&self) -> Geometry;
    /// Reads `buf.len()` bytes at `offset`.
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Programs `data` at `offset`; both aligned to `write_size`.
    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error>;
    /// Erases sector number `sector` (not a byte offset).
    fn erase(&mut self, sector: u32) -> Result<(), Self::Error>;
    /// Barrier: returns once every earlier operation is durable.
    fn sync(&mut self) -> Result<(), Self::Error>;

    /// The medium's own erase unit in bytes, when a sector is made of several
    /// (such as the flash adapter's `Grouped`); by default the sector size.
    ///
    /// `erase` of such a sector erases its blocks one after the other, so a power
    /// cut during it can leave some blocks as they were, with units a torn program
    /// spent without changing a bit: they read erased but must not be programmed
    /// again. The journal therefore erases every free sector before its first
    /// use after `open` when this is smaller than the sector.
    fn erase_block_size(&self) -> u32 {
        self.geometry().sector_size
    }

    /// Whether the writes made since the last [`sync`](Self::sync) reach stable
    /// storage in the order they were made. True for flash (the default), where
    /// a program or an erase is done when it returns and a power cut tears only
    /// the one under way. A file answers false: the kernel writes dirty pages
    /// back when it likes, so after the host loses power a later write may be
    /// there and an earlier one not, or only part of it.
    ///
    /// The journal then takes a record that fails its check as the end of the
    /// writes a crash interrupted, even with programmed bytes behind it, instead
    /// of refusing to open; and it syncs after writing each sector header, so
    /// that no unsynced group of writes spans a header. A single flipped bit is
    /// still corrected or refused: a record that reads one bit short, with
    /// records behind it, is kept corrected with them if the bit's byte reads
    /// `0xFF` (a byte a crash kept from landing, or rot: corrected, it is what
    /// was written either way) and refused otherwise (a byte lands whole or not
    /// at all, so only rot leaves it). The cost: on such a medium, damage of
    /// more than one bit to a record followed by intact ones reads as an
    /// interrupted write (the records behind it are dropped), not as an error.
    ///
    /// A medium that wraps another (to count, log or throttle its operations)
    /// must forward this: the default is the flash answer, and a wrapped file
    /// that answered true could leave a store that refuses to open after the
    /// host loses power.
    fn writes_in_order(&self) -> bool {
        true
    }

    /// A name for `error` in the panic message of a build without `core::fmt`
    /// (the crate feature `panic-static`), where its `Debug` output is not
    /// available: its variant, say. By default `"<error>"`.
    fn error_name(error: &Self::Error) -> &'static str {
        let _ = error;
        "<error>"
    }
}

impl<T: Medium + ?Sized> Medium for &mut T {
    type Error = T::Error;

    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        (**self).read(offset, buf)
    }
    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        (**self).program(offset, data)
    }
    fn erase(&mut self, sector: u32) -> Result<(), Self::Error> {
        (**self).erase(sector)
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        (**self).sync()
    }
    fn erase_block_size(&self) -> u32 {
        (**self).erase_block_size()
    }
    fn writes_in_order(&self) -> bool {
        (**self).writes_in_order()
    }
    fn error_name(error: &Self::Error) -> &'static str {
        T::error_name(error)
    }
}

/// A [`Medium`] whose operations are async: an external flash behind an async
/// SPI or QSPI driver (`embedded-storage-async`), under an async executor. The
/// same rules as [`Medium`]: NOR semantics, offsets relative to the region, the
/// journal alone decides, an error panics the journal (invariant I7).
///
/// Crate feature `async`. The store on it is `asynch::EventStore`.
#[cfg(feature = "async")]
#[allow(async_fn_in_trait)] // futures of a single-threaded executor: no `Send` bound
pub trait AsyncMedium {
    /// The error of a failed operation. Only ever printed in a panic message.
    #[cfg(not(feature = "defmt"))]
    type Error: core::fmt::Debug;
    /// The error of a failed operation. Only ever printed in a panic message.
    #[cfg(feature = "defmt")]
    type Error: core::fmt::Debug + defmt::Format;

    /// The shape of this medium; must not change while a journal uses it.
    fn geometry(&self) -> Geometry;
    /// Reads `buf.len()` bytes at `offset`.
    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Programs `data` at `offset`; both aligned to `write_size`.
    async fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error>;
    /// Erases sector number `sector` (not a byte offset).
    async fn erase(&mut self, sector: u32) -> Result<(), Self::Error>;
    /// Barrier: returns once every earlier operation is durable.
    async fn sync(&mut self) -> Result<(), Self::Error>;

    /// The medium's own erase unit in bytes; see [`Medium::erase_block_size`].
    fn erase_block_size(&self) -> u32 {
        self.geometry().sector_size
    }

    /// Whether writes since the last `sync` become durable in order; see
    /// [`Medium::writes_in_order`].
    fn writes_in_order(&self) -> bool {
        true
    }

    /// A static name for `error`; see [`Medium::error_name`].
    fn error_name(error: &Self::Error) -> &'static str {
        let _ = error;
        "<error>"
    }
}

#[cfg(feature = "async")]
impl<T: AsyncMedium + ?Sized> AsyncMedium for &mut T {
    type Error = T::Error;

    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }
    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        (**self).read(offset, buf).await
    }
    async fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        (**self).program(offset, data).await
    }
    async fn erase(&mut self, sector: u32) -> Result<(), Self::Error> {
        (**self).erase(sector).await
    }
    async fn sync(&mut self) -> Result<(), Self::Error> {
        (**self).sync().await
    }
    fn erase_block_size(&self) -> u32 {
        (**self).erase_block_size()
    }
    fn writes_in_order(&self) -> bool {
        (**self).writes_in_order()
    }
    fn error_name(error: &Self::Error) -> &'static str {
        T::error_name(error)
    }
}
