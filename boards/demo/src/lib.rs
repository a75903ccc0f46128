//! The demo that the monitor-events firmware boards (nRF52840, RP2040) run at every
//! boot, on whatever [`Medium`] the board binds its flash partition to:
//!
//! 1. opens the journal (recovery after any power cut; writes nothing until the
//!    first push or ack);
//! 2. replays every event still pending, in id order (decodes it and logs its
//!    kind), and acks it;
//! 3. lets a simulated channel [`monitor`] push [`EVENTS_PER_BOOT`] new events,
//!    each durable when `push` returns;
//! 4. acks all but the last two of them out of push order (odd positions first);
//!    those two stay pending and are replayed at the next boot.
//!
//! Everything is logged with defmt; any error is a `defmt::panic!` that names the
//! failed operation and, with the feature `defmt` (the library's `defmt::Format`
//! impls), the library's error. A board keeps its HAL setup, the binding of its
//! partition (linker symbols, driver, geometry and [`Config`]) and a call to
//! [`run`].

#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

/// `defmt::panic!` with `$fmt` and `$args`, then `: ` and the library error `$e`
/// when the library formats its types (feature `defmt`); without it `$e` is not
/// printed, so that the library needs no `defmt::Format` impls.
macro_rules! fail {
    ($fmt:literal, $fmt_e:literal $(, $arg:expr)*; $e:expr) => {{
        #[cfg(feature = "defmt")]
        defmt::panic!($fmt_e $(, $arg)*, $e);
        #[cfg(not(feature = "defmt"))]
        {
            let _ = &$e;
            defmt::panic!($fmt $(, $arg)*);
        }
    }};
}

pub mod monitor;

use monitor_events::journal::{AckMode, AckOutcome, Config, Journal};
use monitor_events::{EventId, Medium, MonitorEvent, MAX_ENCODED_LEN};

/// New events per boot: a demo, not a flash-wearing loop.
pub const EVENTS_PER_BOOT: usize = 6;

/// Where the partition starts, and so how the log lines name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// An address that is also the offset in the flash (nRF52840: the flash
    /// starts at 0). Logged as "journal at 0x…".
    Address(u32),
    /// An offset from the start of the flash, not an address (RP2040: the flash
    /// is mapped at 0x1000_0000). Logged as "journal at flash offset 0x…" (and
    /// "cannot open the journal at offset 0x…").
    FlashOffset(u32),
}

impl Base {
    fn value(self) -> u32 {
        match self {
            Base::Address(a) | Base::FlashOffset(a) => a,
        }
    }
}

/// The `size_of` figures of a store on medium `M` with room for `N` events: the
/// journal (all the RAM the store holds), its medium, a decoded event, the longest
/// encoding and `N`, in bytes and events.
///
/// `boards/size.py` reads them from the ELF symbol `MONITOR_EVENTS_SIZES`, which
/// the board declares (`#[used]`, `#[no_mangle]`) with this as its value.
pub const fn sizes<M: Medium, const N: usize>() -> [u32; 5] {
    [
        size_of::<Journal<M, N>>() as u32,
        size_of::<M>() as u32,
        size_of::<MonitorEvent>() as u32,
        MAX_ENCODED_LEN as u32,
        N as u32,
    ]
}

/// Recovers, replays, pushes and acks (see the crate documentation) on `medium`,
/// a partition that starts at `base`.
///
/// # Panics
/// With a defmt message on any error: typically `NotAStore` from `open` when the
/// partition holds something else (erase it once if that is expected).
pub fn run<M: Medium, const N: usize>(medium: M, config: Config<N>, base: Base) {
    // The words that differ between the boards' log lines, as interned strings:
    // a `{=istr}` costs an index on the wire and little code; `{=str}` would send
    // the bytes.
    let (at, journal_at) = match base {
        Base::Address(_) => (defmt::intern!(""), defmt::intern!("")),
        Base::FlashOffset(_) => (defmt::intern!("offset "), defmt::intern!("flash offset ")),
    };
    let mut journal = match Journal::open(medium, config) {
        Ok(j) => j,
        Err(e) => fail!(
            "cannot open the journal at {=istr}{=u32:#x}",
            "cannot open the journal at {=istr}{=u32:#x}: {}",
            at,
            base.value();
            e
        ),
    };
    let geometry = journal.config().geometry();
    let acks = match journal.config().ack_mode() {
        AckMode::InPlace => defmt::intern!(""),
        AckMode::Record => defmt::intern!(", ack records"),
    };
    defmt::info!(
        "journal at {=istr}{=u32:#x}, {} x {} B{=istr}: {} pending, next id #{=u64}",
        journal_at,
        base.value(),
        geometry.sector_count,
        geometry.sector_size,
        acks,
        journal.pending_count(),
        journal.next_id().0
    );

    // Replay: every event still pending after the restart goes to the consumer
    // again, in id order, then the consumer acks it.
    let mut body = [0u8; MAX_ENCODED_LEN];
    // The oldest pending event each time (the ack below removes it): no copy of
    // the pending ids on the stack.
    for _ in 0..journal.pending_count() {
        let Some((id, _)) = journal.pending().next() else {
            break;
        };
        let len = match journal.read(id, &mut body) {
            Ok(n) => n,
            Err(e) => fail!("read #{=u64}", "read #{=u64}: {}", id.0; e),
        };
        match MonitorEvent::decode(&body[..len]) {
            Ok(event) => defmt::info!("replayed #{=u64}: {=str}", id.0, event.kind().as_str()),
            Err(e) => fail!(
                "event #{=u64} does not decode",
                "event #{=u64} does not decode: {}",
                id.0;
                e
            ),
        }
        ack(&mut journal, id);
    }

    // The monitor produces events; each is durable when push returns.
    let first = journal.next_id().0;
    let mut pushed = [EventId(0); EVENTS_PER_BOOT];
    for (k, slot) in pushed.iter_mut().enumerate() {
        let event = monitor::event(first + k as u64);
        let bytes = match event.encode(&mut body) {
            Ok(b) => b,
            Err(e) => fail!("encode", "encode: {}"; e),
        };
        *slot = match journal.push(bytes) {
            Ok(id) => id,
            Err(e) => fail!("push", "push: {}"; e),
        };
        defmt::info!(
            "pushed #{=u64}: {=str} on channel {=u8}, {} B",
            slot.0,
            event.kind().as_str(),
            event.channel().0[31],
            bytes.len()
        );
    }

    // The consumer acks out of order (odd positions first, then even ones); the
    // last two stay pending and are replayed at the next boot. By index: the
    // iterator adapters cost more code than the demo's logic.
    let odd = EVENTS_PER_BOOT / 2;
    for k in 0..EVENTS_PER_BOOT - 2 {
        let i = if k < odd { 2 * k + 1 } else { 2 * (k - odd) };
        ack(&mut journal, pushed[i]);
    }
    defmt::info!(
        "{} pending (replayed at the next boot), next id #{=u64}",
        journal.pending_count(),
        journal.next_id().0
    );
}

fn ack<M: Medium, const N: usize>(journal: &mut Journal<M, N>, id: EventId) {
    match journal.ack(id) {
        Ok(AckOutcome::Acked) => defmt::info!("acked #{=u64}", id.0),
        Ok(AckOutcome::AlreadyAcked) => defmt::info!("#{=u64} was already acked", id.0),
        Err(e) => fail!("ack #{=u64}", "ack #{=u64}: {}", id.0; e),
    }
}
