//! Shared by the crash, bit-flip and error tests: a model of what the store has
//! promised, the check of a recovered journal against it, and [`PathJournal`]
//! and [`PathStore`], a journal and a typed store on either build of the engine
//! (blocking, or async under a minimal executor) so that one scenario drives
//! both.
#![allow(dead_code)]

pub mod events;
#[cfg(feature = "async")]
pub mod yielding;

use monitor_events::journal::{AckMode, AppendError, Auth, Config, Journal, OpenError, UnknownId};
use monitor_events::journal::{MonotonicCounter, ReadError};
use monitor_events::{AckError, AckOutcome, ChannelGates, ChannelId, InFlightError, InFlightState};
use monitor_events::{EventId, EventStore, Geometry, Medium, MonitorEvent, MonitorEventSource};
use monitor_events::{PendingInfo, PushError, StoreError};
use monitor_events_flash::sim::{SimError, SimFlash};
use monitor_events_flash::workload::Pcg32;
use monitor_events_flash::Grouped;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// Pending capacity used by the flash tests (W1 keeps 16 pending).
pub const N: usize = 16;
/// W1's largest payload.
pub const MAX_BODY: usize = 120;

/// docs/BENCH.md's geometry, multiwrite or not.
pub fn geometry(mode: AckMode) -> Geometry {
    Geometry {
        multiwrite: mode == AckMode::InPlace,
        ..SimFlash::BENCH_GEOMETRY
    }
}

/// The journal configuration for a mode.
pub fn config(mode: AckMode) -> Config<N> {
    Config::<N>::try_new(geometry(mode), MAX_BODY)
        .unwrap()
        .with_ack_mode(mode)
        .unwrap()
}

/// The three ways a journal runs: in-place acks (multiwrite flash), ack records
/// (one program per unit), ack records with every record and header
/// authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    InPlace,
    Record,
    RecordAuth,
}

impl Flavor {
    pub const ALL: [Flavor; 3] = [Flavor::InPlace, Flavor::Record, Flavor::RecordAuth];

    /// BENCH geometry, multiwrite for in-place acks only.
    pub fn geometry(self) -> Geometry {
        geometry(if self == Flavor::InPlace {
            AckMode::InPlace
        } else {
            AckMode::Record
        })
    }

    /// The journal configuration (`N` = 16, bodies up to [`MAX_BODY`]).
    pub fn config(self) -> Config<N> {
        match self {
            Flavor::InPlace => config(AckMode::InPlace),
            Flavor::Record => config(AckMode::Record),
            Flavor::RecordAuth => config(AckMode::Record)
                .with_auth(monitor_events::journal::Auth::new(
                    [0x42; 32],
                    *b"crash point test",
                ))
                .unwrap(),
        }
    }
}

/// The operation whose call has not returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InFlight {
    /// A push of these bytes.
    Push(Vec<u8>),
    /// An ack of this id.
    Ack(u64),
    /// A `push_batch` of these bytes, in order: after a cut any of them may be
    /// there, each under the id the batch gave it (consecutive, in batch order).
    PushBatch(Vec<Vec<u8>>),
    /// An `ack_batch` of these ids: after a cut any of them may be acked.
    AckBatch(Vec<u64>),
}

impl InFlight {
    /// Whether this operation may have acked `id`.
    fn may_ack(&self, id: u64) -> bool {
        match self {
            InFlight::Ack(a) => *a == id,
            InFlight::AckBatch(ids) => ids.contains(&id),
            _ => false,
        }
    }
}

/// What the store has promised: every returned push, every returned ack.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub durable: BTreeMap<u64, Vec<u8>>,
    pub acked: BTreeSet<u64>,
    pub in_flight: Option<InFlight>,
    pub max_id: Option<u64>,
}

impl Model {
    pub fn pushed(&mut self, id: EventId, payload: Vec<u8>) {
        assert!(
            self.max_id.is_none_or(|m| id.0 > m),
            "I3: id {id} not above {:?}",
            self.max_id
        );
        self.max_id = Some(id.0);
        self.durable.insert(id.0, payload);
        self.in_flight = None;
    }

    pub fn acked(&mut self, id: EventId) {
        self.durable.remove(&id.0);
        self.acked.insert(id.0);
        self.in_flight = None;
    }

    /// Adopts what a recovered journal holds once it passed `check` (the in-flight
    /// operation either happened or not).
    pub fn adopt(&mut self, got: &BTreeMap<u64, Vec<u8>>) {
        match self.in_flight.take() {
            Some(InFlight::Ack(id)) if !got.contains_key(&id) => {
                self.durable.remove(&id);
                self.acked.insert(id);
            }
            Some(InFlight::AckBatch(ids)) => {
                for id in ids.into_iter().filter(|id| !got.contains_key(id)) {
                    self.durable.remove(&id);
                    self.acked.insert(id);
                }
            }
            Some(InFlight::Push(_) | InFlight::PushBatch(_)) => {
                let new: Vec<(u64, Vec<u8>)> = got
                    .iter()
                    .filter(|(id, _)| !self.durable.contains_key(id))
                    .map(|(&id, p)| (id, p.clone()))
                    .collect();
                for (id, p) in new {
                    self.durable.insert(id, p);
                    self.max_id = Some(id);
                }
            }
            _ => {}
        }
    }
}

/// Violations found by one check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub checked: u64,
    pub lost: u64,
    pub resurrected: u64,
    pub reused: u64,
    pub wrong: u64,
}

impl Counts {
    pub fn add(&mut self, o: Counts) {
        self.checked += o.checked;
        self.lost += o.lost;
        self.resurrected += o.resurrected;
        self.reused += o.reused;
        self.wrong += o.wrong;
    }

    pub fn clean(&self) -> bool {
        self.lost + self.resurrected + self.reused + self.wrong == 0
    }

    /// `N checks, lost N, resurrected N, reused ids N, wrong data N`.
    pub fn summary(&self) -> String {
        format!(
            "{} checks, lost {}, resurrected {}, reused ids {}, wrong data {}",
            self.checked, self.lost, self.resurrected, self.reused, self.wrong
        )
    }
}

/// Keeps the expected panics of a test's own simulated failures (those whose
/// message contains `needle`) out of the output; every other panic goes to the
/// previous hook.
pub fn quiet_panics_containing(needle: &'static str) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !monitor_events_flash::sim::panic_text(info.payload()).contains(needle) {
            previous(info);
        }
    }));
}

/// The build of the engine a scenario runs through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// `monitor_events::journal::Journal`.
    Blocking,
    /// `monitor_events::asynch::Journal`, each call driven by `block_on`.
    #[cfg(feature = "async")]
    Async,
}

/// The engine of the `k`-th run of something: the async one every other time
/// when the tests are built with it, else blocking. `ci/test flash` builds them
/// so, then runs the tests that call this once more without `async`, so that
/// every seed also runs through the blocking engine.
pub fn path_for(k: u64) -> Path {
    #[cfg(feature = "async")]
    if k % 2 == 1 {
        return Path::Async;
    }
    let _ = k;
    Path::Blocking
}

/// A medium both builds of the engine take.
#[cfg(feature = "async")]
pub trait Flash: Medium + monitor_events::AsyncMedium {}
#[cfg(feature = "async")]
impl<T: Medium + monitor_events::AsyncMedium> Flash for T {}
/// A medium both builds of the engine take.
#[cfg(not(feature = "async"))]
pub trait Flash: Medium {}
#[cfg(not(feature = "async"))]
impl<T: Medium> Flash for T {}

/// A journal opened through one [`Path`]: the scenario calls the same methods
/// whichever engine runs underneath.
pub enum PathJournal<M: Flash, const K: usize> {
    Blocking(Journal<M, K>),
    #[cfg(feature = "async")]
    Async(monitor_events::asynch::Journal<M, K>),
}

/// `$j` bound to the journal underneath; `$async` awaited by `block_on` on the
/// async path.
macro_rules! on_path {
    ($self:expr, $j:ident => $blocking:expr, $async:expr) => {
        match $self {
            PathJournal::Blocking($j) => $blocking,
            #[cfg(feature = "async")]
            PathJournal::Async($j) => embassy_futures::block_on($async),
        }
    };
    ($self:expr, $j:ident => $either:expr) => {
        match $self {
            PathJournal::Blocking($j) => $either,
            #[cfg(feature = "async")]
            PathJournal::Async($j) => $either,
        }
    };
}

impl<M: Flash, const K: usize> PathJournal<M, K> {
    /// Opens `medium` through `path`.
    pub fn open(path: Path, medium: M, config: Config<K>) -> Result<Self, OpenError> {
        match path {
            Path::Blocking => Journal::open(medium, config).map(PathJournal::Blocking),
            #[cfg(feature = "async")]
            Path::Async => {
                embassy_futures::block_on(monitor_events::asynch::Journal::open(medium, config))
                    .map(PathJournal::Async)
            }
        }
    }

    pub fn path(&self) -> Path {
        match self {
            PathJournal::Blocking(_) => Path::Blocking,
            #[cfg(feature = "async")]
            PathJournal::Async(_) => Path::Async,
        }
    }

    pub fn push(&mut self, body: &[u8]) -> Result<EventId, AppendError> {
        on_path!(self, j => j.push(body), j.push(body))
    }

    pub fn ack(&mut self, id: EventId) -> Result<AckOutcome, UnknownId> {
        on_path!(self, j => j.ack(id), j.ack(id))
    }

    /// The bytes of pending event `id`.
    pub fn body(&mut self, id: EventId) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let n = on_path!(self, j => j.read(id, &mut buf), j.read(id, &mut buf)).unwrap();
        buf[..n].to_vec()
    }

    pub fn pending_ids(&self) -> Vec<EventId> {
        on_path!(self, j => j.pending().map(|(id, _)| id).collect())
    }

    pub fn pending_count(&self) -> usize {
        on_path!(self, j => j.pending_count())
    }

    pub fn next_id(&self) -> EventId {
        on_path!(self, j => j.next_id())
    }

    pub fn compact(&mut self) {
        on_path!(self, j => j.compact(), j.compact())
    }

    pub fn medium(&self) -> &M {
        on_path!(self, j => j.medium())
    }

    pub fn into_medium(self) -> M {
        on_path!(self, j => j.into_medium())
    }
}

/// A typed store opened through one [`Path`]: the scenario calls the same
/// methods whichever engine runs underneath.
pub enum PathStore<M: Flash, const N: usize, const K: usize, C: MonotonicCounter, const CH: usize> {
    Blocking(EventStore<M, N, K, C, CH>),
    #[cfg(feature = "async")]
    Async(monitor_events::asynch::EventStore<M, N, K, C, CH>),
}

/// As `on_path!`, for a [`PathStore`].
macro_rules! on_store {
    ($self:expr, $s:ident => $blocking:expr, $async:expr) => {
        match $self {
            PathStore::Blocking($s) => $blocking,
            #[cfg(feature = "async")]
            PathStore::Async($s) => embassy_futures::block_on($async),
        }
    };
    ($self:expr, $s:ident => $either:expr) => {
        match $self {
            PathStore::Blocking($s) => $either,
            #[cfg(feature = "async")]
            PathStore::Async($s) => $either,
        }
    };
}

impl<M: Flash, const N: usize, const K: usize, C: MonotonicCounter, const CH: usize>
    PathStore<M, N, K, C, CH>
{
    /// Opens `medium` through `path`, `counter` beside it.
    pub fn open_with_counter(
        path: Path,
        medium: M,
        config: Config<N>,
        counter: C,
    ) -> Result<Self, StoreError> {
        match path {
            Path::Blocking => {
                EventStore::open_with_counter(medium, config, counter).map(PathStore::Blocking)
            }
            #[cfg(feature = "async")]
            Path::Async => embassy_futures::block_on(
                monitor_events::asynch::EventStore::open_with_counter(medium, config, counter),
            )
            .map(PathStore::Async),
        }
    }

    pub fn path(&self) -> Path {
        match self {
            PathStore::Blocking(_) => Path::Blocking,
            #[cfg(feature = "async")]
            PathStore::Async(_) => Path::Async,
        }
    }

    pub fn push(&mut self, event: &MonitorEvent) -> Result<EventId, PushError> {
        on_store!(self, s => s.push(event), s.push(event))
    }

    pub fn push_batch(
        &mut self,
        events: &[MonitorEvent],
        scratch: &mut [u8],
        ids: &mut [EventId],
    ) -> Result<(), PushError> {
        on_store!(self, s => s.push_batch(events, scratch, ids), s.push_batch(events, scratch, ids))
    }

    pub fn ack(&mut self, source: MonitorEventSource) -> Result<AckOutcome, AckError> {
        on_store!(self, s => s.ack(source), s.ack(source))
    }

    pub fn ack_batch(
        &mut self,
        sources: &[MonitorEventSource],
        out: &mut [AckOutcome],
    ) -> Result<(), AckError> {
        on_store!(self, s => s.ack_batch(sources, out), s.ack_batch(sources, out))
    }

    pub fn release_next(&mut self) -> Option<(EventId, MonitorEvent)> {
        on_store!(self, s => s.release_next(), s.release_next())
    }

    pub fn peek(&mut self, id: EventId, buf: &mut [u8]) -> Result<MonitorEvent, ReadError> {
        on_store!(self, s => s.peek(id, buf), s.peek(id, buf))
    }

    /// The pending events in id order, as the store's `pending` shows them.
    pub fn pending(&self) -> std::vec::IntoIter<PendingInfo> {
        on_store!(self, s => s.pending().collect::<Vec<_>>()).into_iter()
    }

    pub fn pending_count(&self) -> usize {
        on_store!(self, s => s.pending_count())
    }

    pub fn next_id(&self) -> EventId {
        on_store!(self, s => s.next_id())
    }

    pub fn restore_in_flight(&mut self, updates: &[(ChannelId, u64)]) -> Result<(), InFlightError> {
        on_store!(self, s => s.restore_in_flight(updates))
    }

    pub fn no_updates_in_flight(&mut self) {
        on_store!(self, s => s.no_updates_in_flight())
    }

    pub fn in_flight_state(&self) -> InFlightState {
        on_store!(self, s => s.in_flight_state())
    }

    pub fn begin_update(
        &mut self,
        channel: ChannelId,
        update_id: u64,
    ) -> Result<(), InFlightError> {
        on_store!(self, s => s.begin_update(channel, update_id))
    }

    pub fn complete_update(&mut self, channel: ChannelId, update_id: u64) -> bool {
        on_store!(self, s => s.complete_update(channel, update_id))
    }

    pub fn gates(&self) -> &ChannelGates<K> {
        on_store!(self, s => s.gates())
    }

    /// The medium under the store's journal.
    pub fn medium(&self) -> &M {
        on_store!(self, s => s.journal().medium())
    }

    /// The journal's version (what a monotonic counter is told).
    pub fn version(&self) -> u64 {
        on_store!(self, s => s.journal().version())
    }

    pub fn compact(&mut self) {
        on_store!(self, s => s.compact(), s.compact())
    }

    pub fn into_medium(self) -> M {
        on_store!(self, s => s.into_medium())
    }
}

/// What [`check`] reads of a recovered journal.
pub trait Recovered {
    /// The pending ids, in order.
    fn ids(&self) -> Vec<EventId>;
    /// The bytes of pending event `id`.
    fn bytes(&mut self, id: EventId) -> Vec<u8>;
    /// The id the next push gets.
    fn next(&self) -> EventId;
}

impl<M: Medium, const K: usize, C: monitor_events::journal::MonotonicCounter> Recovered
    for Journal<M, K, C>
{
    fn ids(&self) -> Vec<EventId> {
        self.pending().map(|(id, _)| id).collect()
    }
    fn bytes(&mut self, id: EventId) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let n = self.read(id, &mut buf).unwrap();
        buf[..n].to_vec()
    }
    fn next(&self) -> EventId {
        self.next_id()
    }
}

impl<M: Flash, const K: usize> Recovered for PathJournal<M, K> {
    fn ids(&self) -> Vec<EventId> {
        self.pending_ids()
    }
    fn bytes(&mut self, id: EventId) -> Vec<u8> {
        self.body(id)
    }
    fn next(&self) -> EventId {
        self.next_id()
    }
}

/// Every pending event of a journal with its bytes.
pub fn pending(j: &mut impl Recovered) -> BTreeMap<u64, Vec<u8>> {
    j.ids().into_iter().map(|id| (id.0, j.bytes(id))).collect()
}

/// Checks a recovered journal against the model: I1 (nothing returned is lost),
/// I2 (no returned ack comes back), I3 (no id is reused), I4 (byte-identical
/// replay; only the in-flight operation may go either way).
pub fn check(
    model: &Model,
    j: &mut impl Recovered,
    what: &str,
) -> (Counts, BTreeMap<u64, Vec<u8>>) {
    let got = pending(j);
    let mut c = Counts {
        checked: 1,
        ..Counts::default()
    };
    for (id, p) in &model.durable {
        match got.get(id) {
            None if model.in_flight.as_ref().is_some_and(|f| f.may_ack(*id)) => {}
            None => c.lost += 1,
            Some(b) if b != p => c.wrong += 1,
            Some(_) => {}
        }
    }
    let mut extra = 0;
    // The last event of an interrupted batch found: its id and its place.
    let mut batch_at: Option<(u64, usize)> = None;
    for (id, b) in &got {
        if model.durable.contains_key(id) {
            continue;
        }
        let new = model.max_id.is_none_or(|m| *id > m);
        if model.acked.contains(id) {
            c.resurrected += 1;
        } else if matches!(&model.in_flight, Some(InFlight::Push(p)) if p == b) && new && extra == 0
        {
            extra += 1;
        } else if let (Some(InFlight::PushBatch(batch)), true) = (&model.in_flight, new) {
            // Ids follow the batch's order: the place of this one is fixed by
            // the previous one found, the first may be any.
            let place = match batch_at {
                Some((prev, at)) => Some(at + (id - prev) as usize),
                None => batch.iter().position(|p| p == b),
            };
            match place {
                Some(k) if batch.get(k) == Some(b) => batch_at = Some((*id, k)),
                _ => c.wrong += 1,
            }
        } else {
            c.wrong += 1;
        }
    }
    let next = j.next().0;
    if model.max_id.is_some_and(|m| next <= m) || model.acked.last().is_some_and(|&a| next <= a) {
        c.reused += 1;
    }
    if !c.clean() {
        eprintln!(
            "{what}: {c:?}\n  model {:?} in flight {:?}\n  got {:?}",
            model.durable.keys(),
            model.in_flight,
            got.keys()
        );
    }
    (c, got)
}

/// A number from the environment, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The flash as the journal sees it: sectors of `group` erase blocks.
pub fn sectors(flash: &mut SimFlash, group: u32) -> Sectors<'_, SimFlash> {
    Sectors(Grouped::new(flash, group).expect("a grouping the flash was sized for"))
}

/// Acks a random pending event of `j` past its first `skip` (a stuck consumer
/// never acks those), the model told of the ack in flight first.
pub fn ack_random<M: Flash, const K: usize>(
    j: &mut PathJournal<M, K>,
    model: &mut Model,
    rng: &mut Pcg32,
    skip: usize,
) -> Result<(), String> {
    let ids = j.pending_ids();
    let id = ids[skip + rng.below((ids.len() - skip) as u32) as usize];
    model.in_flight = Some(InFlight::Ack(id.0));
    j.ack(id)
        .map_err(|e| format!("ack of a pending id refused: {e}"))?;
    model.acked(id);
    Ok(())
}

/// Runs `work(0..count)` on every core, adding what each returns with `add`.
pub fn fan_out_with<T: Default + Send>(
    count: u64,
    work: impl Fn(u64) -> T + Sync,
    add: impl Fn(&mut T, T) + Sync,
) -> T {
    let next = std::sync::atomic::AtomicU64::new(0);
    let total = std::sync::Mutex::new(T::default());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let t = work(i);
                add(&mut total.lock().unwrap(), t);
            });
        }
    });
    total.into_inner().unwrap()
}

/// Where the next cut of a brown-out lands: after a cut, 4 times in 10 a burst
/// of 1..=20 more cuts follows, each within the first 0..6 operations after the
/// restart; otherwise the next cut lands in the next `spread` operations.
#[derive(Default)]
pub struct Bursts {
    left: u32,
}

impl Bursts {
    /// The operations before the next cut.
    pub fn next(&mut self, rng: &mut Pcg32, spread: u32) -> u64 {
        u64::from(if self.left > 0 {
            self.left -= 1;
            rng.below(6)
        } else {
            if rng.below(10) < 4 {
                self.left = 1 + rng.below(20);
            }
            rng.below(spread)
        })
    }
}

/// The largest body bound `Config` takes: a record's 12-bit length field, less
/// a copy's 8 B id.
pub const LARGEST_BODY: usize = (monitor_events::journal::format::MAX_LEN_FIELD - 8) as usize;

/// `c` in `mode`'s ack mode, authenticated for [`Flavor::RecordAuth`] (with the
/// key the random-geometry hunts share); `Err` where the geometry does not take
/// the mode.
pub fn flavored<const K: usize>(
    c: Config<K>,
    mode: Flavor,
) -> Result<Config<K>, monitor_events::journal::ConfigError> {
    match mode {
        Flavor::InPlace => c.with_ack_mode(AckMode::InPlace),
        Flavor::Record => c.with_ack_mode(AckMode::Record),
        Flavor::RecordAuth => c.with_auth(Auth::new([0x3C; 32], *b"torn and flipped")),
    }
}

/// A random geometry `Config` takes for `N` events of [`MAX_BODY`] bytes in
/// `mode`: sectors of 256 B to 16 KiB, 3 to 16 of them, program units of 1 to
/// 32 B, a random reserve; and the erase blocks per sector (1, 2 or 4, blocks
/// of at least 256 B).
pub fn draw_config(rng: &mut Pcg32, mode: Flavor) -> (Config<N>, u32, String) {
    draw_config_with(rng, mode, MAX_BODY)
}

/// As [`draw_config`], for `K` events of `max_body` bytes.
pub fn draw_config_with<const K: usize>(
    rng: &mut Pcg32,
    mode: Flavor,
    max_body: usize,
) -> (Config<K>, u32, String) {
    loop {
        let g = Geometry {
            sector_size: 256 << rng.below(7),
            sector_count: 3 + rng.below(14),
            write_size: 1 << rng.below(6),
            multiwrite: mode == Flavor::InPlace,
        };
        let reserve = rng.below(g.sector_count - 2);
        let Ok(c) = Config::<K>::try_new_with_reserve(g, max_body, reserve) else {
            continue;
        };
        let group = 1 << rng.below(3);
        if g.sector_size / group < 256 {
            continue;
        }
        if let Ok(c) = flavored(c, mode) {
            let name = format!(
                "{mode:?}, {}x{} B in {group} blocks, unit {} B, reserve {reserve}",
                g.sector_count, g.sector_size, g.write_size
            );
            return (c, group, name);
        }
    }
}

/// A random geometry for `N` events of up to [`LARGEST_BODY`] bytes in `mode`:
/// sectors of 32 KiB (1, 2 or 4 erase blocks each), 4 to 6 of them, program
/// units of 1 to 32 B, a random reserve.
pub fn draw_largest(rng: &mut Pcg32, mode: Flavor) -> (Config<N>, u32, String) {
    loop {
        let g = Geometry {
            sector_size: 32768,
            sector_count: 4 + rng.below(3),
            write_size: 1 << rng.below(6),
            multiwrite: mode == Flavor::InPlace,
        };
        let reserve = rng.below(g.sector_count - 2);
        let group = 1 << rng.below(3);
        let Ok(c) = Config::<N>::try_new_with_reserve(g, LARGEST_BODY, reserve) else {
            continue;
        };
        if let Ok(c) = flavored(c, mode) {
            let name = format!(
                "{mode:?}, bodies up to {LARGEST_BODY} B, {}x{} B in {group} blocks, unit {} B, reserve {reserve}",
                g.sector_count, g.sector_size, g.write_size
            );
            return (c, group, name);
        }
    }
}

/// A medium that forwards everything to `inner` but answers
/// [`Medium::writes_in_order`] with `in_order`: the same image read as a
/// flash's (true) or as a file's (false), whose recovery takes a failing record
/// with records behind it as the end of an interrupted write.
pub struct Ordered<M> {
    pub inner: M,
    pub in_order: bool,
}

impl<M: Medium> Medium for Ordered<M> {
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
    fn error_name(error: &Self::Error) -> &'static str {
        M::error_name(error)
    }
}

/// A monotonic counter outside the medium: power cuts and crashes do not touch
/// it, and every journal or store opened in a run shares it.
#[derive(Clone)]
pub struct Counter {
    pub kind: CounterKind,
    pub kept: std::rc::Rc<std::cell::Cell<u64>>,
}

#[derive(Clone, Copy, Debug)]
pub enum CounterKind {
    /// No counter (reads 0, keeps nothing).
    None,
    /// Keeps every version it is told.
    Every,
    /// Keeps a version only when its sector part (`to >> 32`) grows, as OTP
    /// bits per rollover would.
    Rollovers,
}

impl monitor_events::journal::MonotonicCounter for Counter {
    type Error = core::convert::Infallible;

    fn read(&mut self) -> Result<u64, Self::Error> {
        Ok(self.kept.get())
    }

    fn advance(&mut self, to: u64) -> Result<(), Self::Error> {
        let kept = self.kept.get();
        assert!(to >= kept, "advance to {to:#x} below the kept {kept:#x}");
        match self.kind {
            CounterKind::None => {}
            CounterKind::Every => self.kept.set(to),
            CounterKind::Rollovers if to >> 32 > kept >> 32 => self.kept.set(to),
            CounterKind::Rollovers => {}
        }
        Ok(())
    }
}

/// What a [`Weak`] medium's program writes in place of `data`, on a flash that
/// holds `flash`: `Some` data with some of the bits `data` clears left at 1, or
/// `None` to program `data` as it is.
pub trait Weaken {
    fn weaken(&mut self, flash: &mut SimFlash, offset: u32, data: &[u8]) -> Option<Vec<u8>>;
}

/// `SimFlash` whose programs may be weak, as `cells` decides ([`Weaken`]):
/// bits a program should clear stay 1 (a worn cell, or a program that did not
/// take). NOR's rules are still asserted by the simulator underneath.
pub struct Weak<W> {
    pub flash: SimFlash,
    pub cells: W,
}

impl<W: Weaken> Medium for Weak<W> {
    type Error = SimError;
    fn geometry(&self) -> Geometry {
        Medium::geometry(&self.flash)
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), SimError> {
        Medium::read(&mut self.flash, offset, buf)
    }
    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), SimError> {
        match self.cells.weaken(&mut self.flash, offset, data) {
            Some(weak) => Medium::program(&mut self.flash, offset, &weak),
            None => Medium::program(&mut self.flash, offset, data),
        }
    }
    fn erase(&mut self, sector: u32) -> Result<(), SimError> {
        Medium::erase(&mut self.flash, sector)
    }
    fn sync(&mut self) -> Result<(), SimError> {
        Medium::sync(&mut self.flash)
    }
    fn error_name(error: &SimError) -> &'static str {
        error.name()
    }
}

/// [`Grouped`] blocks of a simulated flash `F` ([`SimFlash`], or [`Weak`] over
/// it), for both builds of the engine: the blocking one through `Grouped`
/// itself; the async one through `F`'s `AsyncMedium`, erasing a sector's
/// blocks first to last as `Grouped` does.
pub struct Sectors<'a, F>(pub Grouped<&'a mut F>);

impl<F: Medium<Error = SimError>> Medium for Sectors<'_, F> {
    type Error = SimError;

    fn geometry(&self) -> Geometry {
        self.0.geometry()
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.0.read(offset, buf)
    }
    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        self.0.program(offset, data)
    }
    fn erase(&mut self, sector: u32) -> Result<(), Self::Error> {
        self.0.erase(sector)
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        self.0.sync()
    }
    fn erase_block_size(&self) -> u32 {
        self.0.erase_block_size()
    }
    fn error_name(error: &Self::Error) -> &'static str {
        <SimFlash as Medium>::error_name(error)
    }
}

#[cfg(feature = "async")]
impl<F: Flash + monitor_events::AsyncMedium<Error = SimError>> monitor_events::AsyncMedium
    for Sectors<'_, F>
{
    type Error = SimError;

    fn geometry(&self) -> Geometry {
        self.0.geometry()
    }
    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error> {
        monitor_events::AsyncMedium::read(&mut **self.0.inner_mut(), offset, buf).await
    }
    async fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        monitor_events::AsyncMedium::program(&mut **self.0.inner_mut(), offset, data).await
    }
    async fn erase(&mut self, sector: u32) -> Result<(), Self::Error> {
        let blocks = self.0.blocks();
        for block in sector * blocks..(sector + 1) * blocks {
            monitor_events::AsyncMedium::erase(&mut **self.0.inner_mut(), block).await?;
        }
        Ok(())
    }
    async fn sync(&mut self) -> Result<(), Self::Error> {
        monitor_events::AsyncMedium::sync(&mut **self.0.inner_mut()).await
    }
    fn erase_block_size(&self) -> u32 {
        self.0.erase_block_size()
    }
    fn error_name(error: &Self::Error) -> &'static str {
        <SimFlash as Medium>::error_name(error)
    }
}

#[cfg(feature = "async")]
impl<W: Weaken> monitor_events::AsyncMedium for Weak<W> {
    type Error = SimError;
    fn error_name(error: &SimError) -> &'static str {
        error.name()
    }
    fn geometry(&self) -> Geometry {
        Medium::geometry(&self.flash)
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

/// Programs now and then weak: bits that the data clears (a 1 on the flash, a
/// 0 in the data) stay 1: one of them, a random part of them, or all (a
/// program that did not take). A test arms it through `plan` before an
/// operation: `Some(k)` makes the program `k` programs later weak (or the first
/// after it that clears a bit), then disarms.
pub struct Plan {
    pub plan: Rc<Cell<Option<u32>>>,
    pub rng: Pcg32,
    /// Programs made weak so far (a cut may have stopped one before it began).
    pub weak: u64,
}

impl Plan {
    /// A weak flash over `flash`, unarmed, its choices seeded by `seed`.
    pub fn weak(flash: SimFlash, seed: u64) -> Weak<Plan> {
        Weak {
            flash,
            cells: Plan {
                plan: Rc::new(Cell::new(None)),
                rng: Pcg32::new(seed),
                weak: 0,
            },
        }
    }
}

impl Weaken for Plan {
    fn weaken(&mut self, flash: &mut SimFlash, offset: u32, data: &[u8]) -> Option<Vec<u8>> {
        match self.plan.get() {
            None => return None,
            Some(k) if k > 0 => {
                self.plan.set(Some(k - 1));
                return None;
            }
            Some(_) => {}
        }
        let mut old = vec![0u8; data.len()];
        // After a cut the read fails, and so will the program.
        Medium::read(flash, offset, &mut old).ok()?;
        // The bits this program clears.
        let clears: Vec<usize> = (0..data.len() * 8)
            .filter(|&b| (old[b / 8] & !data[b / 8]) & (1 << (b % 8)) != 0)
            .collect();
        if clears.is_empty() {
            // It changes nothing: the next program is the weak one.
            return None;
        }
        // One bit the program should clear stays 1; or each of them does, one
        // time in two (at least one); or all of them (the program did not take).
        let mut weak = data.to_vec();
        let keep = |weak: &mut Vec<u8>, bit: usize| weak[bit / 8] |= 1 << (bit % 8);
        let one = |rng: &mut Pcg32| clears[rng.below(clears.len() as u32) as usize];
        match self.rng.below(3) {
            0 => keep(&mut weak, one(&mut self.rng)),
            1 => {
                keep(&mut weak, one(&mut self.rng));
                for &bit in &clears {
                    if self.rng.below(2) == 0 {
                        keep(&mut weak, bit);
                    }
                }
            }
            _ => clears.iter().for_each(|&bit| keep(&mut weak, bit)),
        }
        self.plan.set(None);
        self.weak += 1;
        Some(weak)
    }
}

/// How often and how deep the weak programs land: before each operation (a
/// push, an ack, a reopen), one time in `every`, the program `0..depth`
/// programs into it is weak (deep ones reach a retirement's copies).
#[derive(Clone, Copy)]
pub struct Rate {
    pub every: u32,
    pub depth: u32,
}

impl Rate {
    /// Arms `plan` for the next operation, or disarms it: at most one weak
    /// program per operation, so that a retried write is never weak.
    pub fn arm(self, plan: &Cell<Option<u32>>, rng: &mut Pcg32) {
        plan.set((rng.below(self.every) == 0).then(|| rng.below(self.depth)));
    }
}

/// A random body for a push: `max_body` bytes one time in three, else 1 to
/// `max_body`.
pub fn random_body(rng: &mut Pcg32, max_body: usize) -> Vec<u8> {
    let len = if rng.below(3) == 0 {
        max_body
    } else {
        1 + rng.below(max_body as u32) as usize
    };
    (0..len).map(|_| rng.next_u32() as u8).collect()
}
