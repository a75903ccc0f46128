//! The checks behind the fuzz targets, one function per target.
//!
//! This file is compiled twice: as a module of the fuzz crate (`core/fuzz`, its own
//! workspace, built by `cargo fuzz`) and, through `#[path]`, as a module of the
//! regression test `core/tests/fuzz_regressions.rs` in the normal test suite. So it
//! uses nothing but `monitor-events`, `monitor-events-flash` (feature `sim`) and
//! `std`.
//!
//! | check | target | invariants |
//! |---|---|---|
//! | [`check_decode`] | `decode_event` | I9: no panic; what decodes validates and re-encodes to the same bytes |
//! | [`check_open`] | `open_image` | I9: `open` on any image is `Ok` or a typed error; I8: it writes nothing; pending events read back; the typed store agrees with the journal; a push, an ack and a reopen then work (I1–I3) |
//! | [`check_ops`] | `ops_with_power_cuts` | I1, I2, I3, I4, I6, I7, I8 against a `BTreeMap` model, with power cuts at chosen medium operations |
//!
//! A failed check panics; under libFuzzer that is a crash.

use monitor_events::journal::{
    AckMode, AckOutcome, AppendError, Auth, Config, Journal, OpenError, ReadError, Seen, UnknownId,
};
use monitor_events::MAX_ENCODED_LEN;
use monitor_events::{
    DecodeError, EventId, EventStore, Geometry, Medium, MonitorEvent, StoreError,
};
use monitor_events_flash::sim::{SharedFlash, SimFlash, Torn};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{self, AssertUnwindSafe};

// ------------------------------------------------------------------ shapes

/// A region and journal configuration the image and operation checks run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The simulated flash.
    pub geometry: Geometry,
    /// The journal's body bound.
    pub max_body: usize,
    /// How acks are written.
    pub ack_mode: AckMode,
    /// The pending capacity `N` (3, 4, 6 or 8: the values `with_n!` dispatches).
    pub n: usize,
    /// Whether records are authenticated (with [`auth`]; acks are records then).
    pub auth: bool,
}

/// The device secret and region identity of the authenticated shapes.
pub fn auth() -> Auth {
    Auth::new([0x42; 32], *b"fuzz-region-0001")
}

const fn geo(sector_count: u32, sector_size: u32, write_size: u32, multiwrite: bool) -> Geometry {
    Geometry {
        sector_size,
        sector_count,
        write_size,
        multiwrite,
    }
}

const fn shape(geometry: Geometry, max_body: usize, ack_mode: AckMode, n: usize) -> Shape {
    Shape {
        geometry,
        max_body,
        ack_mode,
        n,
        auth: false,
    }
}

const fn authenticated(geometry: Geometry, max_body: usize, n: usize) -> Shape {
    Shape {
        auth: true,
        ..shape(geometry, max_body, AckMode::Record, n)
    }
}

/// The shapes, chosen by the first input byte modulo their number. Small regions,
/// so that rollover and compaction come every few operations; 4 sectors keep a
/// reserve of 1, 6 and 8 sectors a reserve of 3. The ninth and tenth
/// authenticate. The last four hold more than one sector's worth of copies: the
/// region bounds their `N` (a copy budget per sector), the last authenticated.
pub const SHAPES: [Shape; 14] = [
    shape(geo(4, 256, 4, true), 32, AckMode::InPlace, 3),
    shape(geo(4, 256, 4, false), 32, AckMode::Record, 3),
    shape(geo(8, 512, 4, true), 64, AckMode::InPlace, 4),
    shape(geo(8, 512, 4, true), 64, AckMode::Record, 4),
    shape(geo(8, 512, 4, false), 64, AckMode::Record, 4),
    shape(geo(8, 512, 16, false), 64, AckMode::Record, 4),
    shape(geo(6, 256, 8, true), 24, AckMode::InPlace, 3),
    shape(geo(8, 256, 1, true), 40, AckMode::InPlace, 3),
    authenticated(geo(4, 256, 4, false), 16, 3),
    authenticated(geo(8, 512, 4, true), 64, 3),
    shape(geo(8, 256, 4, false), 32, AckMode::Record, 8),
    shape(geo(6, 256, 4, true), 24, AckMode::InPlace, 8),
    shape(geo(4, 256, 4, false), 32, AckMode::Record, 6),
    authenticated(geo(8, 512, 4, false), 40, 8),
];

impl Shape {
    /// The shape a selector byte names.
    pub fn select(selector: u8) -> Shape {
        SHAPES[selector as usize % SHAPES.len()]
    }

    /// The journal configuration; every shape passes the capacity rule.
    pub fn config<const N: usize>(&self) -> Config<N> {
        assert_eq!(N, self.n, "harness: shape dispatched with the wrong N");
        let c = Config::<N>::try_new(self.geometry, self.max_body)
            .and_then(|c| c.with_ack_mode(self.ack_mode));
        let c = if self.auth {
            c.and_then(|c| c.with_auth(auth()))
        } else {
            c
        };
        c.expect("harness: every shape is a valid configuration")
    }

    /// Bytes of the region.
    pub fn size(&self) -> usize {
        self.geometry.size() as usize
    }
}

/// Calls `$f::<N>(args)` with the shape's capacity as the const generic `N`.
macro_rules! with_n {
    ($shape:expr, $f:ident($($arg:expr),*)) => {
        match $shape.n {
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            6 => $f::<6>($($arg),*),
            8 => $f::<8>($($arg),*),
            n => unreachable!("harness: no dispatch for N = {}", n),
        }
    };
}

// ------------------------------------------------------------------ decode

/// `decode_event`: I9 for [`MonitorEvent::decode`]. Any input gives an event or a
/// typed error; an accepted event is valid and its encoding is exactly the input.
pub fn check_decode(data: &[u8]) {
    let Ok(event) = MonitorEvent::decode(data) else {
        return;
    };
    assert_eq!(
        event.validate(),
        Ok(()),
        "I9: decode accepted an invalid event"
    );
    let mut buf = [0u8; MAX_ENCODED_LEN];
    let bytes = event
        .encode(&mut buf)
        .expect("I9: an event that decodes must encode");
    assert_eq!(bytes, data, "I9: decode accepted a non-canonical encoding");
    assert_eq!(event.encoded_len(), data.len(), "encoded_len disagrees");
}

// ------------------------------------------------------------------ open

/// The image an `open_image` input describes: byte 0 picks the [`Shape`], the
/// rest is the region's content, cut to its size and padded with erased bytes.
pub fn image_of(data: &[u8]) -> Option<(Shape, Vec<u8>)> {
    let (&selector, rest) = data.split_first()?;
    let shape = Shape::select(selector);
    let mut image = rest[..rest.len().min(shape.size())].to_vec();
    image.resize(shape.size(), 0xFF);
    Some((shape, image))
}

/// `open_image`: I9 and I8 for `Journal::open` and `EventStore::open` on an
/// arbitrary image. Either is `Ok` or a typed error and neither writes; the store
/// fails exactly when the journal does, or on a body that is no event; every
/// pending event reads back. If the journal opened, it then takes a push and an
/// ack, and a reopen shows exactly that (I1, I2, I3 on a recovered image). A
/// selector byte from 128 up opens the image on a medium whose unsynced writes
/// may land out of order (as a file's), where recovery takes more records as
/// the tail of an interrupted write.
pub fn check_open(data: &[u8]) {
    if let Some((shape, image)) = image_of(data) {
        let in_order = data[0] < 128;
        with_n!(shape, open_image(shape, image, in_order));
    }
}

/// A medium that answers [`Medium::writes_in_order`] as told.
pub struct Order<M> {
    inner: M,
    in_order: bool,
}

impl<M: Medium> Medium for Order<M> {
    type Error = M::Error;

    fn geometry(&self) -> Geometry {
        self.inner.geometry()
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.inner.read(offset, buf)
    }
    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        self.inner.program(offset, data)
    }
    fn erase(&mut self, sector: u32) -> Result<(), Self::Error> {
        self.inner.erase(sector)
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        self.inner.sync()
    }
    fn erase_block_size(&self) -> u32 {
        self.inner.erase_block_size()
    }
    fn writes_in_order(&self) -> bool {
        self.in_order
    }
}

/// `flash`, answering `writes_in_order` with `in_order`.
pub fn ordered(flash: &mut SimFlash, in_order: bool) -> Order<&mut SimFlash> {
    Order {
        inner: flash,
        in_order,
    }
}

fn open_image<const N: usize>(shape: Shape, image: Vec<u8>, in_order: bool) {
    let cfg = shape.config::<N>();
    let mut flash = SimFlash::from_image(shape.geometry, image.clone()).expect("image size");
    // The offsets of records kept only once a bit was corrected, and of every
    // event record, with its id.
    let (mut fixed, mut events) = (Vec::new(), Vec::new());
    let opened = Journal::open_with(ordered(&mut flash, in_order), cfg, |s| match s {
        Seen::Corrected { offset } => fixed.push(offset),
        Seen::Event { id, offset, .. } => events.push((offset, id.0)),
        _ => {}
    });
    let corrected: BTreeSet<u64> = events
        .iter()
        .filter(|(offset, _)| fixed.contains(offset))
        .map(|&(_, id)| id)
        .collect();
    let journal = match opened {
        Ok(mut j) => Ok(read_pending(&mut j)),
        Err(e) => {
            // Display must not panic either.
            let _ = e.to_string();
            Err(e)
        }
    };
    assert!(
        flash.image() == &image[..],
        "I8: open or read wrote to the medium"
    );
    assert_eq!(flash.op_index(), 0, "I8: open or read programmed or erased");
    store_agrees::<N>(shape, &image, &journal, &corrected, in_order);
    if let Ok(pending) = journal {
        write_after_open::<N>(shape, flash, pending, in_order);
    }
}

/// `EventStore::open` on the same image: the journal's error, or a body that is
/// no event, or the journal's pending events released once each in id order.
/// A pending event whose body is no event is either named by `BadEvent` (the
/// first such one the store did not drop) or dropped as torn, which the store
/// does only for a record the journal kept once a bit was corrected (its id in
/// `corrected`): a chance match in the bytes of a torn or weak write.
fn store_agrees<const N: usize>(
    shape: Shape,
    image: &[u8],
    journal: &Result<BTreeMap<u64, Vec<u8>>, OpenError>,
    corrected: &BTreeSet<u64>,
    in_order: bool,
) {
    let no_event =
        |body: &Vec<u8>| body.len() > MAX_ENCODED_LEN || MonitorEvent::decode(body).is_err();
    let mut flash = SimFlash::from_image(shape.geometry, image.to_vec()).expect("image size");
    match (
        EventStore::<_, N>::open(ordered(&mut flash, in_order), shape.config::<N>()),
        journal,
    ) {
        (Err(StoreError::Journal(s)), Err(j)) => assert_eq!(s, *j, "store and journal disagree"),
        (Err(e), Ok(pending)) => match e {
            StoreError::BadEvent { id, error } => {
                let _ = error.to_string();
                let body = pending.get(&id.0).expect("BadEvent names a pending event");
                let expected = match body.len().checked_sub(MAX_ENCODED_LEN) {
                    Some(count) if count > 0 => DecodeError::TrailingBytes { count },
                    _ => MonitorEvent::decode(body).expect_err("BadEvent names a good event"),
                };
                assert_eq!(error, expected, "BadEvent for {id}");
                for (earlier, body) in pending.range(..id.0) {
                    assert!(
                        !no_event(body) || corrected.contains(earlier),
                        "BadEvent names {id}, but {earlier} before it is bad too, and not corrected"
                    );
                }
            }
            e => panic!("store failed ({e}) where the journal opened"),
        },
        (Ok(mut store), Ok(pending)) => {
            // Every body that is no event was dropped, and only corrected ones.
            let mut pending = pending.clone();
            pending.retain(|id, body| {
                let dropped = no_event(body);
                assert!(
                    !dropped || corrected.contains(id),
                    "the store dropped {id}, which was not corrected"
                );
                !dropped
            });
            assert_eq!(store.pending_count(), pending.len());
            store.no_updates_in_flight();
            let mut released = Vec::new();
            while let Some((id, event)) = store.release_next() {
                let mut buf = [0u8; MAX_ENCODED_LEN];
                let bytes = event.encode(&mut buf).expect("a released event encodes");
                assert_eq!(Some(&bytes.to_vec()), pending.get(&id.0), "I4: event {id}");
                released.push(id.0);
            }
            let ids: Vec<u64> = pending.keys().copied().collect();
            assert_eq!(released, ids, "I4: every pending event once, in id order");
        }
        (r, Err(j)) => panic!("journal failed ({j}), store gave {:?}", r.err()),
    }
    assert!(
        flash.image() == image,
        "I8: the store's open wrote to the medium"
    );
}

/// Reads every pending event, checking what `pending` lists against `read`.
fn read_pending<M: Medium, const N: usize>(j: &mut Journal<M, N>) -> BTreeMap<u64, Vec<u8>> {
    let listed: Vec<(EventId, usize)> = j.pending().collect();
    let next = j.next_id();
    assert!(
        listed.len() <= N,
        "I6: {} pending, capacity {N}",
        listed.len()
    );
    assert_eq!(j.pending_count(), listed.len());
    let mut out = BTreeMap::new();
    let mut prev: Option<EventId> = None;
    for (id, len) in listed {
        assert!(
            prev.is_none_or(|p| id > p),
            "pending ids not increasing at {id}"
        );
        assert!(id < next, "pending id {id} not below the next id {next}");
        assert!(j.is_pending(id));
        prev = Some(id);
        let mut buf = vec![0u8; len + 1];
        if len > 0 {
            assert_eq!(
                j.read(id, &mut buf[..len - 1]),
                Err(ReadError::BufferTooSmall { needed: len })
            );
        }
        let n = j.read(id, &mut buf).expect("a pending event reads");
        assert_eq!(n, len, "read length of {id}");
        buf.truncate(n);
        out.insert(id.0, buf);
    }
    assert!(!j.is_pending(next));
    assert_eq!(j.read(next, &mut [0u8; 8]), Err(ReadError::NotPending));
    out
}

/// On an image that opened: a push (below capacity), an ack of the oldest, and a
/// reopen that shows exactly that.
fn write_after_open<const N: usize>(
    shape: Shape,
    mut flash: SimFlash,
    mut pending: BTreeMap<u64, Vec<u8>>,
    in_order: bool,
) {
    let cfg = shape.config::<N>();
    let mut j = Journal::open(ordered(&mut flash, in_order), cfg).expect("it opened a moment ago");
    let before = j.next_id();
    if pending.len() < N {
        let body = vec![0x5A; shape.max_body];
        let id = j.push(&body).expect("a push below capacity");
        assert_eq!(id, before, "I3: the push got an id other than next_id");
        pending.insert(id.0, body);
    } else {
        assert_eq!(j.push(&[1]), Err(AppendError::Full), "I6");
    }
    if let Some(&oldest) = pending.keys().next() {
        assert_eq!(j.ack(EventId(oldest)), Ok(AckOutcome::Acked));
        pending.remove(&oldest);
    }
    let next = j.next_id();
    drop(j);
    let mut j = Journal::open(ordered(&mut flash, in_order), cfg)
        .unwrap_or_else(|e| panic!("I8: reopen after clean writes failed: {e}"));
    assert_eq!(
        read_pending(&mut j),
        pending,
        "I1/I2: reopen after a push and an ack"
    );
    assert!(j.next_id() >= next, "I3: the next id went back");
}

// ------------------------------------------------------------------ operations

thread_local! {
    /// Set while an operation runs with a power cut armed: its panic is expected.
    static EXPECT_CUT: Cell<bool> = const { Cell::new(false) };
}

/// Wraps the panic hook (libFuzzer's, which aborts, or the test harness's) so that
/// the panic of a simulated power cut inside an operation that expects one stays
/// silent and unwinds to `catch_unwind`; every other panic goes to the old hook.
fn quiet_power_cuts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !(EXPECT_CUT.with(Cell::get) && msg.contains("PowerCut")) {
                previous(info);
            }
        }));
    });
}

/// The operation whose call had not returned when power was cut.
enum InFlight {
    /// These bodies, in order.
    Push(Vec<Vec<u8>>),
    /// These ids.
    Ack(Vec<u64>),
}

/// What the journal has promised: every returned push and ack.
#[derive(Default)]
struct Model {
    durable: BTreeMap<u64, Vec<u8>>,
    acked: BTreeSet<u64>,
    max_id: Option<u64>,
}

impl Model {
    fn pushed(&mut self, id: EventId, body: Vec<u8>) {
        assert!(
            self.max_id.is_none_or(|m| id.0 > m),
            "I3: id {id} not above {:?}",
            self.max_id
        );
        self.max_id = Some(id.0);
        self.durable.insert(id.0, body);
    }

    fn acked(&mut self, id: u64) {
        self.durable.remove(&id);
        self.acked.insert(id);
    }

    /// I3: the next id is above every id returned or acked.
    fn check_next(&self, next: EventId) {
        let top = self.max_id.max(self.acked.last().copied());
        assert!(
            top.is_none_or(|t| next.0 > t),
            "I3: next id {next} not above {top:?}"
        );
    }

    /// Checks what a journal recovered after a power cut during `in_flight` and
    /// adopts the outcome of that operation, which may go either way.
    fn recovered(&mut self, got: &BTreeMap<u64, Vec<u8>>, in_flight: &InFlight, next: EventId) {
        let (acking, pushing): (&[u64], &[Vec<u8>]) = match in_flight {
            InFlight::Ack(ids) => (ids, &[]),
            InFlight::Push(bodies) => (&[], bodies),
        };
        for (id, body) in &self.durable {
            match got.get(id) {
                Some(b) => assert!(b == body, "I4: event {id} came back with other bytes"),
                None => assert!(acking.contains(id), "I1: event {id} was lost"),
            }
        }
        for id in acking {
            if !got.contains_key(id) && self.durable.contains_key(id) {
                self.acked(*id);
            }
        }
        // New events: only from the push in flight, in its order, above every id.
        let mut from = 0;
        let new: Vec<(&u64, &Vec<u8>)> = got
            .iter()
            .filter(|(id, _)| !self.durable.contains_key(id))
            .collect();
        for (id, body) in new {
            assert!(!self.acked.contains(id), "I2: acked event {id} is back");
            match pushing[from..].iter().position(|b| b == body) {
                Some(k) => from += k + 1,
                None => panic!("event {id} appeared that no push in flight wrote"),
            }
            self.pushed(EventId(*id), body.clone());
        }
        self.check_next(next);
    }
}

/// Whether `FUZZ_TRACE` is set: [`check_ops`] then prints every operation, its
/// outcome and the journal's status to stderr (for reading a finding).
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

/// The input of `ops_with_power_cuts`, byte by byte; zeros once it is used up.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn byte(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }
}

/// Most operations one input runs.
pub const MAX_STEPS: usize = 256;

/// `ops_with_power_cuts`: byte 0 picks the [`Shape`], then each operation is an
/// opcode byte (its value modulo 8) and its parameter bytes:
///
/// | opcode | parameters | operation |
/// |---|---|---|
/// | 0, 1 | len, pattern | push one body of `len % (max_body + 3)` bytes (over the bound: `TooLarge`) |
/// | 2 | len, pattern | push a batch of 2 or 3 bodies (`opcode / 8 % 2`) |
/// | 3, 4 | k | ack the `k`-th pending id; `k ≥ 0xF0`: an unknown id, `0xE0..0xF0`: an acked one |
/// | 5 | k1, k2 | ack a batch of two ids chosen as for 3 |
/// | 6 | | reopen; the opcode byte `0xFE`: [`compact`](Journal::compact) |
/// | 7 | j, v | cut power at the `j % 48`-th program or erase from now, torn as `v % 4` says (0 `NotStarted`, 1 `Completed`, 2 `NoBits`, 3 `RandomSubset`) |
///
/// An operation interrupted by the cut panics (I7); the check powers on, reopens
/// (I8: it must open), and compares with the model: every returned push not acked
/// is there with its bytes (I1, I4), no returned ack comes back (I2), the next id
/// is above every id seen (I3); only the operation in flight may go either way.
/// Cuts are skipped once as many in a row as the configured reserve have fired
/// (the documented limit: each reserve sector survives one more consecutive cut
/// during compaction); the count restarts when an operation completes with
/// `1 + reserve` free sectors, the steady state.
pub fn check_ops(data: &[u8]) -> OpsReport {
    let Some((&selector, rest)) = data.split_first() else {
        return OpsReport::default();
    };
    let shape = Shape::select(selector);
    quiet_power_cuts();
    with_n!(shape, run_ops(shape, Input(rest)))
}

/// What one [`check_ops`] run did, so that tests can tell a seed still reaches
/// what it was written for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpsReport {
    /// Pushes that returned an id (a batch counts once).
    pub pushes: u32,
    /// Acks that returned `Ok` (a batch counts once).
    pub acks: u32,
    /// Pushes and acks refused with a typed error.
    pub refused: u32,
    /// Power cuts that fired inside an operation and were recovered from.
    pub cuts: u32,
    /// Cuts skipped because the reserve allows no more in a row.
    pub cuts_skipped: u32,
    /// Clean reopens (the final one included).
    pub reopens: u32,
    /// Compactions that completed.
    pub compactions: u32,
}

struct Run<const N: usize> {
    shape: Shape,
    cfg: Config<N>,
    flash: SharedFlash,
    journal: Option<Journal<SharedFlash, N>>,
    model: Model,
    cut_armed: bool,
    cuts_in_a_row: u32,
    serial: u64,
    report: OpsReport,
}

fn run_ops<const N: usize>(shape: Shape, mut input: Input<'_>) -> OpsReport {
    let cfg = shape.config::<N>();
    let flash = SharedFlash::new(SimFlash::new(shape.geometry));
    let journal = Journal::open(flash.clone(), cfg).expect("a blank medium opens");
    let mut run = Run {
        shape,
        cfg,
        flash,
        journal: Some(journal),
        model: Model::default(),
        cut_armed: false,
        cuts_in_a_row: 0,
        serial: 0,
        report: OpsReport::default(),
    };
    for _ in 0..MAX_STEPS {
        let Some(op) = input.next() else { break };
        run.serial += 1;
        match op % 8 {
            0 | 1 => {
                let body = run.body(input.byte(), input.byte());
                run.push(vec![body]);
            }
            2 => {
                let count = 2 + usize::from(op / 8 % 2);
                let (len, pattern) = (input.byte(), input.byte());
                let bodies = (0..count)
                    .map(|i| {
                        run.body(
                            len.wrapping_add(i as u8 * 13),
                            pattern.wrapping_add(i as u8),
                        )
                    })
                    .collect();
                run.push(bodies);
            }
            3 | 4 => {
                let id = run.pick(input.byte());
                run.ack(vec![id]);
            }
            5 => {
                let ids = vec![run.pick(input.byte()), run.pick(input.byte())];
                run.ack(ids);
            }
            6 if op == 0xFE => run.compact(),
            6 => run.reopen(),
            _ => {
                let (j, v) = (input.byte(), input.byte());
                let torn = match v % 5 {
                    0 => Torn::NotStarted,
                    1 => Torn::Completed,
                    2 => Torn::NoBits,
                    3 => Torn::RandomSubset(u64::from(v) << 32 | run.serial),
                    _ => Torn::Prefix(u64::from(v) << 32 | run.serial),
                };
                run.arm_cut(u64::from(j % 48), torn);
            }
        }
    }
    run.reopen();
    run.report
}

impl<const N: usize> Run<N> {
    fn journal(&mut self) -> &mut Journal<SharedFlash, N> {
        self.journal
            .as_mut()
            .expect("a journal is open between operations")
    }

    fn op_index(&self) -> u64 {
        self.flash.get().op_index()
    }

    /// A body: `len % (max_body + 3)` bytes, erased-looking, zero or mixed.
    fn body(&self, len: u8, pattern: u8) -> Vec<u8> {
        let len = usize::from(len) % (self.shape.max_body + 3);
        (0..len)
            .map(|i| match pattern % 4 {
                0 => 0xFF,
                1 => 0x00,
                _ => (usize::from(pattern) * 31 + i * 7 + self.serial as usize) as u8,
            })
            .collect()
    }

    /// The id an ack parameter names.
    fn pick(&mut self, k: u8) -> EventId {
        let next = self.journal().next_id().0;
        let acked: Vec<u64> = self.model.acked.iter().copied().collect();
        let pending: Vec<u64> = self.model.durable.keys().copied().collect();
        EventId(if k >= 0xF0 || (pending.is_empty() && acked.is_empty()) {
            next + u64::from(k & 3)
        } else if (k >= 0xE0 || pending.is_empty()) && !acked.is_empty() {
            acked[usize::from(k) % acked.len()]
        } else {
            pending[usize::from(k) % pending.len()]
        })
    }

    fn arm_cut(&mut self, k: u64, torn: Torn) {
        // FUZZ_NO_CUT_LIMIT: explore past the documented limit too.
        static NO_LIMIT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let no_limit = *NO_LIMIT.get_or_init(|| std::env::var_os("FUZZ_NO_CUT_LIMIT").is_some());
        trace!(
            "arm cut at medium op +{k} ({torn:?}), {} in a row so far",
            self.cuts_in_a_row
        );
        if no_limit || self.cuts_in_a_row < self.cfg.reserve() {
            self.flash.get_mut().cut_after(k, torn);
            self.cut_armed = true;
        } else {
            self.report.cuts_skipped += 1;
        }
    }

    /// Runs one operation; `None` if a power cut stopped it (then the journal has
    /// been recovered and checked against the model).
    fn mutate<R>(
        &mut self,
        in_flight: InFlight,
        f: impl FnOnce(&mut Journal<SharedFlash, N>) -> R,
    ) -> Option<R> {
        let journal = self.journal.as_mut().expect("a journal is open");
        let result = if self.cut_armed {
            EXPECT_CUT.with(|c| c.set(true));
            let r = panic::catch_unwind(AssertUnwindSafe(|| f(journal)));
            EXPECT_CUT.with(|c| c.set(false));
            r
        } else {
            Ok(f(journal))
        };
        let dead = self.flash.get().is_dead();
        match result {
            Ok(r) => {
                assert!(!dead, "I7: an operation returned after a power cut");
                // Back in the steady state (1 + reserve free sectors): whatever
                // compaction the cuts interrupted has completed.
                let free = self.journal().status().free_sectors;
                if free > self.cfg.reserve() {
                    self.cuts_in_a_row = 0;
                }
                Some(r)
            }
            Err(payload) if !dead => panic::resume_unwind(payload),
            Err(_) => {
                self.recover(&in_flight);
                None
            }
        }
    }

    fn recover(&mut self, in_flight: &InFlight) {
        self.journal = None;
        self.cut_armed = false;
        self.cuts_in_a_row += 1;
        self.report.cuts += 1;
        trace!(
            "  power cut fired at medium op {}; recovering",
            self.op_index() - 1
        );
        self.flash.get_mut().power_on();
        let mut j = Journal::open(self.flash.clone(), self.cfg)
            .unwrap_or_else(|e| panic!("I8: open after a power cut failed: {e}"));
        let got = read_pending(&mut j);
        self.model.recovered(&got, in_flight, j.next_id());
        trace!("  recovered: {:?}", j.status());
        self.journal = Some(j);
    }

    /// The journal lists exactly the model's pending events.
    fn check_listing(&mut self) {
        trace!("  -> {:?}", self.journal().status());
        let listed: Vec<(u64, usize)> = self.journal().pending().map(|(id, n)| (id.0, n)).collect();
        let model: Vec<(u64, usize)> = self
            .model
            .durable
            .iter()
            .map(|(id, b)| (*id, b.len()))
            .collect();
        assert_eq!(
            listed, model,
            "the journal's pending list differs from the model"
        );
        let next = self.journal().next_id();
        self.model.check_next(next);
    }

    fn push(&mut self, bodies: Vec<Vec<u8>>) {
        let next = self.journal().next_id();
        let max = self.shape.max_body;
        let too_large = bodies.iter().find(|b| b.len() > max).map(Vec::len);
        let full = self.model.durable.len() + bodies.len() > N;
        let before = self.op_index();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let mut ids = vec![EventId(0); bodies.len()];
        let lens: Vec<usize> = bodies.iter().map(Vec::len).collect();
        trace!("push {lens:?} (pending {})", self.model.durable.len());
        let in_flight = InFlight::Push(bodies.clone());
        let Some(result) = self.mutate(in_flight, |j| {
            if refs.len() == 1 {
                j.push(refs[0]).map(|id| ids[0] = id)
            } else {
                j.push_batch(&refs, &mut ids)
            }
        }) else {
            return;
        };
        match (result, too_large) {
            (Err(e), too_large) => {
                match too_large {
                    Some(len) => assert_eq!(e, AppendError::TooLarge { len, max }),
                    None => assert!(e == AppendError::Full && full, "push refused: {e}"),
                }
                assert_eq!(self.op_index(), before, "a refused push wrote");
                self.report.refused += 1;
            }
            (Ok(()), _) => {
                assert!(
                    too_large.is_none() && !full,
                    "I6: push beyond the bound or capacity"
                );
                for (k, (id, body)) in ids.into_iter().zip(bodies).enumerate() {
                    assert_eq!(id.0, next.0 + k as u64, "I3: ids follow next_id");
                    self.model.pushed(id, body);
                }
                self.report.pushes += 1;
            }
        }
        self.check_listing();
    }

    fn ack(&mut self, ids: Vec<EventId>) {
        let next = self.journal().next_id();
        let unknown = ids.iter().any(|id| *id >= next);
        let mut expect = Vec::new();
        let mut pending = self.model.durable.clone();
        for id in &ids {
            expect.push(if pending.remove(&id.0).is_some() {
                AckOutcome::Acked
            } else {
                AckOutcome::AlreadyAcked
            });
        }
        let before = self.op_index();
        let mut out = vec![AckOutcome::Acked; ids.len()];
        trace!("ack {ids:?} (pending {:?})", self.model.durable.keys());
        let in_flight = InFlight::Ack(ids.iter().map(|id| id.0).collect());
        let Some(result) = self.mutate(in_flight, |j| {
            if ids.len() == 1 {
                j.ack(ids[0]).map(|o| out[0] = o)
            } else {
                j.ack_batch(&ids, &mut out)
            }
        }) else {
            return;
        };
        match result {
            Err(e) => {
                assert!(unknown && matches!(e, UnknownId { .. }), "ack refused: {e}");
                assert_eq!(self.op_index(), before, "a refused ack wrote");
                self.report.refused += 1;
            }
            Ok(()) => {
                assert!(!unknown, "an ack of an id never pushed was accepted");
                assert_eq!(out, expect, "ack outcomes of {ids:?}");
                for id in ids {
                    self.model.acked(id.0);
                }
                self.report.acks += 1;
            }
        }
        self.check_listing();
    }

    /// Compacts: nothing the journal holds may change, cut or not.
    fn compact(&mut self) {
        trace!("compact (pending {:?})", self.model.durable.keys());
        if self
            .mutate(InFlight::Ack(Vec::new()), |j| j.compact())
            .is_none()
        {
            return;
        }
        self.report.compactions += 1;
        self.check_listing();
    }

    fn reopen(&mut self) {
        trace!("reopen");
        self.journal = None;
        let mut j = Journal::open(self.flash.clone(), self.cfg)
            .unwrap_or_else(|e| panic!("I8: a clean reopen failed: {e}"));
        let got = read_pending(&mut j);
        assert!(
            got == self.model.durable,
            "I1/I2/I4: a clean reopen differs from the model"
        );
        self.model.check_next(j.next_id());
        self.journal = Some(j);
        self.report.reopens += 1;
    }
}
