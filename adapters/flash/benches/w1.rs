//! docs/BENCH.md's W1, W2 and W3 on the simulated NOR flash: every store in one
//! run, on the same `SimFlash` geometry, driven by the same operation stream (the
//! fingerprint proves it), with figures for both device profiles.
//!
//! ```text
//! cargo bench -p monitor-events-flash --features sim[,async] --bench w1 [-- --short | --events N] [--json] [--only W]
//! ```
//!
//! W1 and W3 run on 16 x 4 KiB. W2 (480 events pending at once) runs our journal on
//! `Grouped` sectors of 16 erase blocks (the journal's sector must hold N copies
//! of the largest event), the peer on a flash of the same size and on W1's; W2 at
//! scale (4000 pending, `w25q-spi`) on sectors of 256 blocks. `--short` runs W1
//! and W3 on 10 000 events, W2 whole and W2 at scale for one round. `--only W`
//! runs one workload (`W1`, `W2`, `W2-scale` or `W3`; W2 at scale with W2 beside
//! it, which its summary compares with).
//!
//! With the crate feature `async` (`--features sim,async`), W1 also runs through
//! the async engine (`asynch::Journal` under `embassy_futures::block_on`, rows
//! "monitor-events journal, async"), and the bench fails unless its fingerprint and
//! every flash figure equal the blocking engine's.
//!
//! A store takes part by implementing `W1Store` over a `SimFlash` and handing its
//! label and store to `measure`; `main` collects the rows.

use embedded_storage_async::nor_flash::{ErrorType, MultiwriteNorFlash, NorFlash, ReadNorFlash};
#[cfg(feature = "async")]
use monitor_events::asynch;
use monitor_events::journal::{AckMode, Auth, Config, Journal};
use monitor_events::{EventId, Geometry, Medium};
use monitor_events_flash::sim::{Profile, SimError, SimFlash, Stats};
use monitor_events_flash::workload::{
    run_w1, run_w2, run_w2_scale, run_w3, W1Store, W2Phase, W2Result, W3Result, W1_EVENTS,
    W1_FINGERPRINT, W1_REOPEN_EVERY, W2_EVENTS, W2_PAYLOAD, W2_SCALE_EVENTS, W2_SCALE_MAX_PAYLOAD,
    W2_SCALE_MIN_PAYLOAD, W2_SCALE_ROUNDS, W2_SEED, W3_EVENTS,
};
use monitor_events_flash::Grouped;
use sequential_storage::cache::{
    page_pointers::ArrayPagePointers, page_states::ArrayPageStates, Cache, CacheImpl, Uncached,
};
use sequential_storage::queue::{QueueConfig, QueueStorage};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

// ---------------------------------------------------------------- options

struct Opts {
    events: u64,
    json: bool,
    short: bool,
    /// `--only W`: run workload `W` alone (`W1`, `W2`, `W2-scale`, `W3`).
    only: Option<String>,
}

impl Opts {
    fn parse() -> Self {
        let mut opts = Opts {
            events: W1_EVENTS,
            json: false,
            short: false,
            only: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--json" => opts.json = true,
                "--short" => {
                    opts.events = 10_000;
                    opts.short = true;
                }
                "--only" => {
                    let w = args.next().expect("--only needs a workload");
                    assert!(
                        ["W1", "W2", "W2-scale", "W3"].contains(&w.as_str()),
                        "--only takes W1, W2, W2-scale or W3, not {w}"
                    );
                    opts.only = Some(w);
                }
                "--events" => {
                    opts.events = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .expect("--events needs a number")
                }
                // `cargo bench` passes `--bench`; a filter may follow.
                _ => {}
            }
        }
        opts
    }
}

// ---------------------------------------------------------------- measuring

/// What a row is about.
#[derive(Clone)]
struct Label {
    /// The store, with its version.
    store: &'static str,
    /// `"cache"` for the peer, `"ack_mode"` for ours.
    mode_key: &'static str,
    /// The cache or ack mode.
    mode: &'static str,
    /// `size_of` the store with its cache (and a reference to the flash).
    ram_bytes: usize,
    /// The cache alone, where the store has one (docs/BENCH.md's "cache RAM B").
    cache_ram_bytes: Option<usize>,
}

/// One line of the report: one store run, seen under one profile.
struct Row {
    label: Label,
    profile: Profile,
    fingerprint: u64,
    events: u64,
    avg_payload: f64,
    prog_bytes_per_event: f64,
    prog_ops_per_event: f64,
    read_bytes_per_event: f64,
    erases_per_1k: f64,
    write_amp: f64,
    max_sector_erases: u64,
    mean_sector_erases: f64,
    device_ms_per_event: f64,
    limit_ratio: f64,
    host_ns_per_event: f64,
    /// The flash's counters over the run.
    stats: Stats,
}

/// Runs W1 on `store` (whose flash `flash` reaches) and returns one row per
/// profile. Counters start at zero when W1 starts: formatting a fresh medium is
/// not counted.
fn measure<S: W1Store>(
    label: Label,
    opts: &Opts,
    store: &mut S,
    flash: impl Fn(&mut S) -> &mut SimFlash,
) -> Vec<Row> {
    flash(store).reset_stats();
    let started = Instant::now();
    let result = run_w1(store, opts.events, W1_REOPEN_EVERY);
    let host_ns = started.elapsed().as_nanos() as f64;
    if opts.events == W1_EVENTS {
        assert_eq!(result.fingerprint, W1_FINGERPRINT, "W1 fingerprint");
    }
    let sim = flash(store);
    let stats = sim.stats().clone();
    let sector_size = sim.geometry().sector_size;
    let n = result.pushes as f64;
    Profile::all()
        .into_iter()
        .map(|profile| {
            let device_ms = stats.device_us(profile) / 1000.0 / n;
            let limit_ms = profile.limit_us(result.average_payload(), sector_size) / 1000.0;
            Row {
                label: label.clone(),
                profile,
                fingerprint: result.fingerprint,
                events: result.pushes,
                avg_payload: result.average_payload(),
                prog_bytes_per_event: stats.bytes_programmed as f64 / n,
                prog_ops_per_event: stats.program_ops as f64 / n,
                read_bytes_per_event: stats.bytes_read as f64 / n,
                erases_per_1k: stats.erases as f64 * 1000.0 / n,
                write_amp: stats.bytes_programmed as f64 / result.payload_bytes as f64,
                max_sector_erases: stats.max_sector_erases(),
                mean_sector_erases: stats.mean_sector_erases(),
                device_ms_per_event: device_ms,
                limit_ratio: device_ms / limit_ms,
                host_ns_per_event: host_ns / n,
                stats: stats.clone(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------- the peer

/// Polls a future that never waits (the simulated flash answers at once).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// `SimFlash` as an embedded-storage-async NOR flash of docs/BENCH.md's geometry, so
/// the peer's every read, write and erase goes through `SimFlash`'s rules and
/// counters.
struct AsyncSim(SimFlash);

impl AsyncSim {
    /// `pages` erase blocks of docs/BENCH.md's 4 KiB.
    fn new(pages: u32) -> Self {
        let flash = SimFlash::new(Geometry {
            sector_count: pages,
            ..SimFlash::BENCH_GEOMETRY
        });
        let g = flash.geometry();
        assert_eq!(
            (g.sector_size as usize, g.write_size as usize, g.multiwrite),
            (Self::ERASE_SIZE, Self::WRITE_SIZE, true)
        );
        Self(flash)
    }
}

impl ErrorType for AsyncSim {
    type Error = SimError;
}

impl ReadNorFlash for AsyncSim {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        self.0.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.0.geometry().size() as usize
    }
}

impl NorFlash for AsyncSim {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        let sector = Self::ERASE_SIZE as u32;
        if from % sector != 0 || to % sector != 0 {
            return Err(SimError::NotAligned);
        }
        if from > to {
            return Err(SimError::OutOfBounds);
        }
        (from / sector..to / sector).try_for_each(|s| self.0.erase(s))
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        self.0.program(offset, bytes)
    }
}

impl MultiwriteNorFlash for AsyncSim {}

/// sequential-storage's queue as a W1 store. Its id for an event is W1's (bytes
/// 0..8 of the payload); an ack iterates from the oldest item and pops the
/// matching one (for the oldest that is exactly what `pop` does).
struct PeerQueue<C: CacheImpl<()>> {
    queue: Option<QueueStorage<AsyncSim, C>>,
    new_cache: fn() -> C,
    buf: [u8; 256],
}

type NoCache = Cache<Uncached, Uncached, Uncached>;
/// The peer's best cache for a flash of `PAGES` pages.
type PagesCache<const PAGES: usize> =
    Cache<ArrayPageStates<PAGES>, ArrayPagePointers<PAGES>, Uncached>;
type BestCache = PagesCache<16>;

fn best_cache<const PAGES: usize>() -> PagesCache<PAGES> {
    Cache::new(ArrayPageStates::new(), ArrayPagePointers::new(), Uncached)
}

impl<C: CacheImpl<()>> PeerQueue<C> {
    /// On docs/BENCH.md's 16 x 4 KiB.
    fn new(new_cache: fn() -> C) -> Self {
        Self::with_pages(16, new_cache)
    }

    /// On `pages` x 4 KiB.
    fn with_pages(pages: u32, new_cache: fn() -> C) -> Self {
        let flash = AsyncSim::new(pages);
        let range = 0..flash.capacity() as u32;
        Self {
            queue: Some(QueueStorage::new(
                flash,
                QueueConfig::new(range),
                new_cache(),
            )),
            new_cache,
            buf: [0; 256],
        }
    }

    fn queue(&mut self) -> &mut QueueStorage<AsyncSim, C> {
        self.queue.as_mut().expect("queue is open")
    }

    fn sim(&mut self) -> &mut SimFlash {
        &mut self.queue().flash().0
    }

    fn label(mode: &'static str) -> Label {
        Label {
            store: "sequential-storage 8.0.2 queue",
            mode_key: "cache",
            mode,
            ram_bytes: size_of::<QueueStorage<&'static mut AsyncSim, C>>(),
            cache_ram_bytes: Some(size_of::<C>()),
        }
    }
}

impl<C: CacheImpl<()>> W1Store for PeerQueue<C> {
    fn push(&mut self, payload: &[u8]) -> u64 {
        block_on(self.queue().push(payload, false)).expect("sequential-storage push");
        u64::from_le_bytes(
            payload[..8]
                .try_into()
                .expect("W1 payloads start with the id"),
        )
    }

    fn ack(&mut self, id: u64) {
        let queue = self.queue.as_mut().expect("queue is open");
        let buf = &mut self.buf;
        block_on(async {
            let mut items = queue.iter().await?;
            while let Some(entry) = items.next(buf).await? {
                if entry[..8] == id.to_le_bytes() {
                    entry.pop().await?;
                    return Ok::<_, sequential_storage::Error<SimError>>(());
                }
            }
            panic!("sequential-storage: W1 id {id} is not in the queue");
        })
        .expect("sequential-storage ack");
    }

    fn try_push(&mut self, payload: &[u8]) -> Result<u64, String> {
        block_on(self.queue().push(payload, false)).map_err(|e| format!("{e:?}"))?;
        Ok(u64::from_le_bytes(
            payload[..8]
                .try_into()
                .expect("W1 payloads start with the id"),
        ))
    }

    fn reopen(&mut self) {
        let (flash, _cache) = self.queue.take().expect("queue is open").destroy();
        let range = 0..flash.capacity() as u32;
        self.queue = Some(QueueStorage::new(
            flash,
            QueueConfig::new(range),
            (self.new_cache)(),
        ));
    }

    fn pending(&mut self) -> Vec<Vec<u8>> {
        let queue = self.queue.as_mut().expect("queue is open");
        let buf = &mut self.buf;
        block_on(async {
            let mut all = Vec::new();
            let mut items = queue.iter().await?;
            while let Some(entry) = items.next(buf).await? {
                all.push(entry.to_vec());
            }
            Ok::<_, sequential_storage::Error<SimError>>(all)
        })
        .expect("sequential-storage iteration")
    }
}

fn peer_rows(opts: &Opts) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut plain = PeerQueue::<NoCache>::new(Cache::new_uncached);
    rows.extend(measure(
        PeerQueue::<NoCache>::label("none"),
        opts,
        &mut plain,
        PeerQueue::sim,
    ));
    let mut cached = PeerQueue::<BestCache>::new(|| {
        Cache::new(ArrayPageStates::new(), ArrayPagePointers::new(), Uncached)
    });
    rows.extend(measure(
        PeerQueue::<BestCache>::label("page states + page pointers"),
        opts,
        &mut cached,
        PeerQueue::sim,
    ));
    rows
}

// ---------------------------------------------------------------- report

fn print_table(rows: &[Row]) {
    if let Some(first) = rows.first() {
        println!(
            "W1: {} events, fingerprint {:#018x}, average payload {:.1} B",
            first.events, first.fingerprint, first.avg_payload
        );
        for p in Profile::all() {
            let ms = p.limit_us(first.avg_payload, SimFlash::BENCH_GEOMETRY.sector_size) / 1000.0;
            println!("physical limit on {}: {ms:.3} ms/event", p.name());
        }
        println!();
    }
    println!(
        "| store | cache / ack mode | profile | RAM B | cache RAM B | prog B/event | prog ops/event \
         | read B/event | erases/1k | write amp | max / mean sector erases | device ms/event \
         | x limit | host ns/event |"
    );
    println!("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.2} | {:.0} | {:.2} | {:.3} | {} / {:.1} | {:.3} | {:.2} | {:.0} |",
            r.label.store,
            r.label.mode,
            r.profile.name(),
            r.label.ram_bytes,
            r.label.cache_ram_bytes.map_or("-".into(), |b| b.to_string()),
            r.prog_bytes_per_event,
            r.prog_ops_per_event,
            r.read_bytes_per_event,
            r.erases_per_1k,
            r.write_amp,
            r.max_sector_erases,
            r.mean_sector_erases,
            r.device_ms_per_event,
            r.limit_ratio,
            r.host_ns_per_event,
        );
    }
}

fn print_json(rows: &[Row]) {
    for r in rows {
        let cache_ram = r
            .label
            .cache_ram_bytes
            .map_or(String::new(), |b| format!(",\"cache_ram_bytes\":{b}"));
        println!(
            "{{\"workload\":\"W1\",\"store\":\"{}\",\"{}\":\"{}\",\"profile\":\"{}\",\"events\":{},\"fingerprint\":\"{:#018x}\",\
             \"avg_payload\":{:.3},\"prog_bytes_per_event\":{:.4},\"prog_ops_per_event\":{:.4},\
             \"read_bytes_per_event\":{:.4},\"erases_per_1k\":{:.4},\"write_amp\":{:.4},\
             \"max_sector_erases\":{},\"mean_sector_erases\":{:.4},\"device_ms_per_event\":{:.4},\
             \"limit_ratio\":{:.4},\"host_ns_per_event\":{:.0},\"ram_bytes\":{}{}}}",
            r.label.store,
            r.label.mode_key,
            r.label.mode,
            r.profile.name(),
            r.events,
            r.fingerprint,
            r.avg_payload,
            r.prog_bytes_per_event,
            r.prog_ops_per_event,
            r.read_bytes_per_event,
            r.erases_per_1k,
            r.write_amp,
            r.max_sector_erases,
            r.mean_sector_erases,
            r.device_ms_per_event,
            r.limit_ratio,
            r.host_ns_per_event,
            r.label.ram_bytes,
            cache_ram,
        );
    }
}

// ---------------------------------------------------------------- monitor-events

/// W1's 16 pending events.
const OUR_N: usize = 16;
/// W3's 16 pending events plus the stuck one.
const W3_N: usize = 17;

/// monitor-events' journal on medium `M` as a W1/W2/W3 store: the workload's
/// payload is the event body. Boxed: with thousands pending it is large.
struct Ours<M: Medium, const N: usize> {
    journal: Option<Box<Journal<M, N>>>,
    config: Config<N>,
    buf: [u8; 256],
}

/// On W1's flash.
type OurJournal<const N: usize = OUR_N> = Ours<SimFlash, N>;
/// On [`Grouped`] sectors of a `SimFlash` of 4 KiB erase blocks.
type GroupedJournal<const N: usize> = Ours<Grouped<SimFlash>, N>;

impl<M: Medium, const N: usize> Ours<M, N> {
    fn open(medium: M, config: Config<N>) -> Self {
        let journal = Journal::open(medium, config).expect("open a blank flash");
        Self {
            journal: Some(Box::new(journal)),
            config,
            buf: [0; 256],
        }
    }

    fn journal(&mut self) -> &mut Journal<M, N> {
        self.journal.as_mut().expect("journal is open")
    }
}

impl<const N: usize> OurJournal<N> {
    /// On `sectors` sectors of docs/BENCH.md's 4 KiB erase blocks, capacity bounded
    /// by the region (W2 and W2 at scale); in-place acks on a multiwrite flash,
    /// ack records on one that allows one program per unit.
    fn on_sectors(sectors: u32, max_body: usize, mode: AckMode) -> Self {
        let geometry = Geometry {
            sector_count: sectors,
            multiwrite: mode == AckMode::InPlace,
            ..SimFlash::BENCH_GEOMETRY
        };
        let config = Config::<N>::try_new(geometry, max_body)
            .and_then(|c| c.with_ack_mode(mode))
            .expect("W2 configuration");
        Self::open(SimFlash::new(geometry), config)
    }

    /// "S x 4 KiB (reserve R, capacity bounded by the region)".
    fn flash(&self) -> String {
        let g = self.config.geometry();
        format!(
            "{} x {} KiB (reserve {}{})",
            g.sector_count,
            g.sector_size / 1024,
            self.config.reserve(),
            if self.config.region_bounded() {
                ", capacity bounded by the region"
            } else {
                ""
            }
        )
    }

    /// `auth`: the authenticated journal (HMAC tags; acks as records).
    fn new(mode: AckMode, auth: bool) -> Self {
        let config = w1_config::<N>(mode, auth);
        Self::open(SimFlash::new(config.geometry()), config)
    }

    fn sim(&mut self) -> &mut SimFlash {
        self.journal().medium_mut()
    }

    fn label(mode: AckMode, auth: bool) -> Label {
        Label {
            store: "monitor-events journal",
            mode_key: "ack_mode",
            mode: mode_name(mode, auth),
            ram_bytes: size_of::<Journal<&'static mut SimFlash, N>>(),
            cache_ram_bytes: None,
        }
    }
}

/// W1's journal configuration on docs/BENCH.md's flash: in-place acks on a
/// multiwrite flash, ack records on one that allows one program per unit;
/// `auth`: the authenticated journal (HMAC tags; acks as records).
fn w1_config<const N: usize>(mode: AckMode, auth: bool) -> Config<N> {
    let geometry = Geometry {
        multiwrite: mode == AckMode::InPlace,
        ..SimFlash::BENCH_GEOMETRY
    };
    Config::<N>::try_new(geometry, 120)
        .and_then(|c| c.with_ack_mode(mode))
        .and_then(|c| {
            if auth {
                c.with_auth(Auth::new([0x42; 32], *b"bench-region-w1 "))
            } else {
                Ok(c)
            }
        })
        .expect("W1 configuration")
}

/// The report's name of an ack mode.
fn mode_name(mode: AckMode, auth: bool) -> &'static str {
    match (mode, auth) {
        (AckMode::InPlace, _) => "in-place",
        (AckMode::Record, false) => "record",
        (AckMode::Record, true) => "record, authenticated",
    }
}

/// W1's three journal configurations: in-place acks, ack records, and ack
/// records with authentication.
const W1_MODES: [(AckMode, bool); 3] = [
    (AckMode::InPlace, false),
    (AckMode::Record, false),
    (AckMode::Record, true),
];

impl<M: Medium, const N: usize> W1Store for Ours<M, N> {
    fn push(&mut self, payload: &[u8]) -> u64 {
        self.journal().push(payload).expect("monitor-events push").0
    }

    fn try_push(&mut self, payload: &[u8]) -> Result<u64, String> {
        self.journal()
            .push(payload)
            .map(|id| id.0)
            .map_err(|e| e.to_string())
    }

    fn ack(&mut self, id: u64) {
        self.journal().ack(EventId(id)).expect("monitor-events ack");
    }

    fn reopen(&mut self) {
        let flash = self.journal.take().expect("journal is open").into_medium();
        let journal = Journal::open(flash, self.config).expect("monitor-events reopen");
        self.journal = Some(Box::new(journal));
    }

    fn pending(&mut self) -> Vec<Vec<u8>> {
        let journal = self.journal.as_mut().expect("journal is open");
        let ids: Vec<EventId> = journal.pending().map(|(id, _)| id).collect();
        ids.into_iter()
            .map(|id| {
                let n = journal.read(id, &mut self.buf).expect("pending body");
                self.buf[..n].to_vec()
            })
            .collect()
    }
}

fn our_rows(opts: &Opts) -> Vec<Row> {
    let mut rows = Vec::new();
    for (mode, auth) in W1_MODES {
        let mut store = OurJournal::<OUR_N>::new(mode, auth);
        rows.extend(measure(
            OurJournal::<OUR_N>::label(mode, auth),
            opts,
            &mut store,
            OurJournal::sim,
        ));
    }
    rows
}

// ---------------------------------------------------------------- the async engine

/// The label of the async engine's rows.
const ASYNC_STORE: &str = "monitor-events journal, async";

/// monitor-events' journal compiled async ([`asynch::Journal`], crate feature
/// `async`) on W1's flash, each operation driven to completion by
/// `embassy_futures::block_on`: the same engine source as [`OurJournal`], so the
/// same operations and device time.
#[cfg(feature = "async")]
struct OurAsyncJournal<const N: usize = OUR_N> {
    journal: Option<Box<asynch::Journal<SimFlash, N>>>,
    config: Config<N>,
    buf: [u8; 256],
}

#[cfg(feature = "async")]
impl<const N: usize> OurAsyncJournal<N> {
    fn new(mode: AckMode, auth: bool) -> Self {
        let config = w1_config::<N>(mode, auth);
        let journal = embassy_futures::block_on(asynch::Journal::open(
            SimFlash::new(config.geometry()),
            config,
        ))
        .expect("open a blank flash");
        Self {
            journal: Some(Box::new(journal)),
            config,
            buf: [0; 256],
        }
    }

    fn journal(&mut self) -> &mut asynch::Journal<SimFlash, N> {
        self.journal.as_mut().expect("journal is open")
    }

    fn sim(&mut self) -> &mut SimFlash {
        self.journal().medium_mut()
    }

    fn label(mode: AckMode, auth: bool) -> Label {
        Label {
            store: ASYNC_STORE,
            mode_key: "ack_mode",
            mode: mode_name(mode, auth),
            ram_bytes: size_of::<asynch::Journal<&'static mut SimFlash, N>>(),
            cache_ram_bytes: None,
        }
    }
}

#[cfg(feature = "async")]
impl<const N: usize> W1Store for OurAsyncJournal<N> {
    fn push(&mut self, payload: &[u8]) -> u64 {
        embassy_futures::block_on(self.journal().push(payload))
            .expect("monitor-events push")
            .0
    }

    fn try_push(&mut self, payload: &[u8]) -> Result<u64, String> {
        embassy_futures::block_on(self.journal().push(payload))
            .map(|id| id.0)
            .map_err(|e| e.to_string())
    }

    fn ack(&mut self, id: u64) {
        embassy_futures::block_on(self.journal().ack(EventId(id))).expect("monitor-events ack");
    }

    fn reopen(&mut self) {
        let flash = self.journal.take().expect("journal is open").into_medium();
        let journal = embassy_futures::block_on(asynch::Journal::open(flash, self.config))
            .expect("monitor-events reopen");
        self.journal = Some(Box::new(journal));
    }

    fn pending(&mut self) -> Vec<Vec<u8>> {
        let journal = self.journal.as_mut().expect("journal is open");
        let ids: Vec<EventId> = journal.pending().map(|(id, _)| id).collect();
        ids.into_iter()
            .map(|id| {
                let n = embassy_futures::block_on(journal.read(id, &mut self.buf))
                    .expect("pending body");
                self.buf[..n].to_vec()
            })
            .collect()
    }
}

/// W1 through the async engine, in each of [`W1_MODES`].
#[cfg(feature = "async")]
fn our_async_rows(opts: &Opts) -> Vec<Row> {
    let mut rows = Vec::new();
    for (mode, auth) in W1_MODES {
        let mut store = OurAsyncJournal::<OUR_N>::new(mode, auth);
        rows.extend(measure(
            OurAsyncJournal::<OUR_N>::label(mode, auth),
            opts,
            &mut store,
            OurAsyncJournal::sim,
        ));
    }
    rows
}

/// Without the crate feature `async` there is no async engine to measure.
#[cfg(not(feature = "async"))]
fn our_async_rows(_opts: &Opts) -> Vec<Row> {
    Vec::new()
}

/// Each async row with the blocking row of its ack mode and profile.
///
/// # Panics
///
/// If any figure but host time differs: the two engines are one source, so W1
/// must do the same operations on the flash through both.
fn async_pairs(rows: &[Row]) -> Vec<(&Row, &Row)> {
    let pairs: Vec<(&Row, &Row)> = rows
        .iter()
        .filter(|a| a.label.store == ASYNC_STORE)
        .map(|a| {
            let b = rows
                .iter()
                .find(|b| {
                    b.label.store == "monitor-events journal"
                        && b.label.mode == a.label.mode
                        && b.profile == a.profile
                })
                .expect("a blocking row for each async row");
            (b, a)
        })
        .collect();
    for (b, a) in &pairs {
        let figures = |r: &Row| {
            (
                r.fingerprint,
                r.events,
                r.avg_payload.to_bits(),
                r.prog_bytes_per_event.to_bits(),
                r.prog_ops_per_event.to_bits(),
                r.read_bytes_per_event.to_bits(),
                r.erases_per_1k.to_bits(),
                r.write_amp.to_bits(),
                (r.max_sector_erases, r.mean_sector_erases.to_bits()),
                r.device_ms_per_event.to_bits(),
            )
        };
        assert!(
            figures(b) == figures(a) && b.stats == a.stats,
            "W1 {} on {}: the async engine's figures differ from the blocking one's: \
             device ms/event {} and {}, counters {:?} and {:?}",
            a.label.mode,
            a.profile.name(),
            b.device_ms_per_event,
            a.device_ms_per_event,
            b.stats,
            a.stats
        );
    }
    pairs
}

/// One line per ack mode and profile: the blocking and the async engine's
/// fingerprint and device time, checked identical by [`async_pairs`].
fn print_async(pairs: &[(&Row, &Row)]) {
    if pairs.is_empty() {
        return;
    }
    println!();
    println!(
        "W1, blocking and async engine (asynch::Journal under embassy_futures::block_on), \
         same flash, same stream:"
    );
    for (b, a) in pairs {
        println!(
            "W1 {} {}: fingerprint {:#018x} / {:#018x}, device ms/event blocking {:.3}, async {:.3}: \
             identical (every flash counter too); host ns/event {:.0} / {:.0}",
            b.label.mode,
            b.profile.name(),
            b.fingerprint,
            a.fingerprint,
            b.device_ms_per_event,
            a.device_ms_per_event,
            b.host_ns_per_event,
            a.host_ns_per_event,
        );
    }
}

// ---------------------------------------------------------------- W3

/// One W3 run of a store, seen under one profile.
struct W3Row {
    label: Label,
    profile: Profile,
    result: W3Result,
    prog_bytes_per_event: f64,
    erases_per_1k: f64,
    device_ms_per_event: f64,
}

/// Runs W3 on `store` and returns one row per profile.
fn measure_w3<S: W1Store>(
    label: Label,
    events: u64,
    store: &mut S,
    flash: impl Fn(&mut S) -> &mut SimFlash,
) -> Vec<W3Row> {
    flash(store).reset_stats();
    let result = run_w3(store, events, W1_REOPEN_EVERY);
    let stats = flash(store).stats().clone();
    let n = result.completed.max(1) as f64;
    Profile::all()
        .into_iter()
        .map(|profile| W3Row {
            label: label.clone(),
            profile,
            result,
            prog_bytes_per_event: stats.bytes_programmed as f64 / n,
            erases_per_1k: stats.erases as f64 * 1000.0 / n,
            device_ms_per_event: stats.device_us(profile) / 1000.0 / n,
        })
        .collect()
}

fn w3_rows(events: u64) -> Vec<W3Row> {
    let mut rows = Vec::new();
    let mut ours = OurJournal::<W3_N>::new(AckMode::InPlace, false);
    rows.extend(measure_w3(
        OurJournal::<W3_N>::label(AckMode::InPlace, false),
        events,
        &mut ours,
        OurJournal::sim,
    ));
    let mut peer = PeerQueue::<BestCache>::new(|| {
        Cache::new(ArrayPageStates::new(), ArrayPagePointers::new(), Uncached)
    });
    rows.extend(measure_w3(
        PeerQueue::<BestCache>::label("page states + page pointers"),
        events,
        &mut peer,
        PeerQueue::sim,
    ));
    rows.sort_by_key(|r| r.profile as usize);
    rows
}

/// W3's rows, with each store's device time per event as a ratio to our W1 row
/// of the same profile (`w1_ms`).
fn print_w3(rows: &[W3Row], w1_ms: impl Fn(Profile) -> Option<f64>) {
    if let Some(first) = rows.first() {
        println!();
        println!(
            "W3 (stuck consumer): event 0 never acked, {} events of 120 B, a window of 16 besides it",
            first.result.completed.max(rows.iter().map(|r| r.result.completed).max().unwrap_or(0))
        );
    }
    println!(
        "| store | cache / ack mode | profile | completed events | stopped by | prog B/event \
         | erases/1k | device ms/event | x our W1 |"
    );
    println!("|---|---|---|--:|---|--:|--:|--:|--:|");
    for r in rows {
        let ratio =
            w1_ms(r.profile).map_or("-".into(), |w| format!("{:.2}", r.device_ms_per_event / w));
        println!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.2} | {:.3} | {} |",
            r.label.store,
            r.label.mode,
            r.profile.name(),
            r.result.completed,
            if r.result.failed {
                "a refused push"
            } else {
                "-"
            },
            r.prog_bytes_per_event,
            r.erases_per_1k,
            r.device_ms_per_event,
            ratio,
        );
    }
}

fn print_w3_json(rows: &[W3Row]) {
    for r in rows {
        println!(
            "{{\"workload\":\"W3\",\"store\":\"{}\",\"{}\":\"{}\",\"profile\":\"{}\",\
             \"completed_events\":{},\"failed\":{},\"fingerprint\":\"{:#018x}\",\
             \"prog_bytes_per_event\":{:.4},\"erases_per_1k\":{:.4},\"device_ms_per_event\":{:.4},\
             \"ram_bytes\":{}}}",
            r.label.store,
            r.label.mode_key,
            r.label.mode,
            r.profile.name(),
            r.result.completed,
            r.result.failed,
            r.result.fingerprint,
            r.prog_bytes_per_event,
            r.erases_per_1k,
            r.device_ms_per_event,
            r.label.ram_bytes,
        );
    }
}

// ---------------------------------------------------------------- W2

/// W2's burst: our journal's capacity.
const W2_N: usize = W2_EVENTS;
/// W2 at scale: our journal's capacity.
const W2_SCALE_N: usize = W2_SCALE_EVENTS;
/// W2's burst: erase blocks (4 KiB) per journal sector, 64 KiB.
const W2_BLOCKS_PER_SECTOR: u32 = 16;
/// W2 at scale: erase blocks (4 KiB) per journal sector, 1 MiB.
const W2_SCALE_BLOCKS_PER_SECTOR: u32 = 256;
/// W2's burst: the fewest 64 KiB sectors `Config` accepts for 480 events of 100 B.
const W2_SECTORS: u32 = fewest_sectors::<W2_N>(W2_BLOCKS_PER_SECTOR, W2_PAYLOAD);
/// W2 at scale: the fewest 1 MiB sectors `Config` accepts for 4000 events of 214 B.
const W2_SCALE_SECTORS: u32 =
    fewest_sectors::<W2_SCALE_N>(W2_SCALE_BLOCKS_PER_SECTOR, W2_SCALE_MAX_PAYLOAD);
/// W2's burst: 4 KiB pages of the flash, for ours and the peer beside it.
const W2_PAGES: usize = (W2_SECTORS * W2_BLOCKS_PER_SECTOR) as usize;
/// W2 at scale as docs/BENCH.md specifies it: a 1 MiB partition of 256 x 4 KiB,
/// for ours (the region bounds its capacity) and the peer.
const W2_SCALE_PLAIN_SECTORS: u32 = 256;
const _: () = assert!(Config::<W2_SCALE_N>::try_new(
    Geometry {
        sector_count: W2_SCALE_PLAIN_SECTORS,
        ..SimFlash::BENCH_GEOMETRY
    },
    W2_SCALE_MAX_PAYLOAD
)
.is_ok());

/// The geometry of a journal on `sectors` sectors of `blocks` erase blocks of
/// docs/BENCH.md's flash (4 KiB, 4 B program unit).
const fn grouped_geometry(blocks: u32, sectors: u32, multiwrite: bool) -> Geometry {
    Geometry {
        sector_size: SimFlash::BENCH_GEOMETRY.sector_size * blocks,
        sector_count: sectors,
        write_size: SimFlash::BENCH_GEOMETRY.write_size,
        multiwrite,
    }
}

/// The fewest sectors of `blocks` erase blocks on which `Config::<N>` accepts
/// bodies of `max_body` bytes (in-place acks).
const fn fewest_sectors<const N: usize>(blocks: u32, max_body: usize) -> u32 {
    let mut sectors = 1;
    while sectors <= 0xFFFF {
        if Config::<N>::try_new(grouped_geometry(blocks, sectors, true), max_body).is_ok() {
            return sectors;
        }
        sectors += 1;
    }
    panic!("no sector count holds N events");
}

impl<const N: usize> GroupedJournal<N> {
    fn new(blocks: u32, sectors: u32, max_body: usize, mode: AckMode) -> Self {
        let geometry = grouped_geometry(blocks, sectors, mode == AckMode::InPlace);
        let flash = SimFlash::new(Geometry {
            sector_count: sectors * blocks,
            ..grouped_geometry(1, sectors, geometry.multiwrite)
        });
        let medium = Grouped::new(flash, blocks).expect("a whole number of sectors");
        assert_eq!(medium.geometry(), geometry);
        let config = Config::<N>::try_new(geometry, max_body)
            .and_then(|c| c.with_ack_mode(mode))
            .expect("W2 configuration");
        Self::open(medium, config)
    }

    fn sim(&mut self) -> &mut SimFlash {
        self.journal().medium_mut().inner_mut()
    }

    fn label(mode: AckMode) -> Label {
        Label {
            store: "monitor-events journal",
            mode_key: "ack_mode",
            mode: match mode {
                AckMode::InPlace => "in-place",
                AckMode::Record => "record",
            },
            ram_bytes: size_of::<Journal<Grouped<&'static mut SimFlash>, N>>(),
            cache_ram_bytes: None,
        }
    }

    /// "S x K KiB (Grouped B x 4 KiB, reserve R)".
    fn flash(&self) -> String {
        let g = self.config.geometry();
        format!(
            "{} x {} KiB (Grouped {} x 4 KiB, reserve {})",
            g.sector_count,
            g.sector_size / 1024,
            g.sector_size / SimFlash::BENCH_GEOMETRY.sector_size,
            self.config.reserve()
        )
    }
}

/// What the medium did in one phase (or several phases added up), with the host
/// time it took.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    read_bytes: u64,
    prog_bytes: u64,
    prog_ops: u64,
    erases: u64,
    device_us: [f64; Profile::COUNT],
    host_ns: f64,
}

impl Tally {
    fn between(before: &Stats, after: &Stats, host_ns: f64) -> Self {
        let mut device_us = [0.0; Profile::COUNT];
        for p in Profile::all() {
            device_us[p as usize] = after.device_us(p) - before.device_us(p);
        }
        Tally {
            read_bytes: after.bytes_read - before.bytes_read,
            prog_bytes: after.bytes_programmed - before.bytes_programmed,
            prog_ops: after.program_ops - before.program_ops,
            erases: after.erases - before.erases,
            device_us,
            host_ns,
        }
    }

    fn add(&mut self, other: &Tally) {
        self.read_bytes += other.read_bytes;
        self.prog_bytes += other.prog_bytes;
        self.prog_ops += other.prog_ops;
        self.erases += other.erases;
        for (a, b) in self.device_us.iter_mut().zip(other.device_us) {
            *a += b;
        }
        self.host_ns += other.host_ns;
    }

    fn device_ms(&self, p: Profile) -> f64 {
        self.device_us[p as usize] / 1000.0
    }
}

/// One W2 run of a store: its cost per phase. Checks of the pending payloads are
/// not counted anywhere.
#[derive(Clone, Debug)]
struct W2Run {
    result: W2Result,
    push: Tally,
    ack: Tally,
    /// Every reopen: events pending, and its cost.
    opens: Vec<(usize, Tally)>,
    max_sector_erases: u64,
    mean_sector_erases: f64,
}

impl W2Run {
    /// The reopens with `pending` events pending, added up, and how many there were.
    fn opens_at(&self, pending: usize) -> (Tally, usize) {
        let mut sum = Tally::default();
        let mut n = 0;
        for (_, t) in self.opens.iter().filter(|(p, _)| *p == pending) {
            sum.add(t);
            n += 1;
        }
        (sum, n)
    }
}

/// Runs a W2 driver (`drive`: [`run_w2`] or [`run_w2_scale`]) on `store`, charging
/// the medium's work between two phase marks to the phase that ran.
fn measure_w2<S: W1Store>(
    store: &mut S,
    flash: impl Fn(&mut S) -> &mut SimFlash,
    drive: impl FnOnce(&mut S, &mut dyn FnMut(&mut S, W2Phase)) -> W2Result,
) -> W2Run {
    flash(store).reset_stats();
    let mut push = Tally::default();
    let mut ack = Tally::default();
    let mut opens = Vec::new();
    let mut phase = None;
    let mut last = flash(store).stats().clone();
    let mut since = Instant::now();
    let result = drive(store, &mut |s: &mut S, next: W2Phase| {
        let host_ns = since.elapsed().as_nanos() as f64;
        let now = flash(s).stats().clone();
        let tally = Tally::between(&last, &now, host_ns);
        match phase {
            Some(W2Phase::Push) => push.add(&tally),
            Some(W2Phase::Ack) => ack.add(&tally),
            Some(W2Phase::Open { pending }) => opens.push((pending, tally)),
            _ => {}
        }
        phase = Some(next);
        last = now;
        since = Instant::now();
    });
    let stats = flash(store).stats();
    W2Run {
        result,
        push,
        ack,
        opens,
        max_sector_erases: stats.max_sector_erases(),
        mean_sector_erases: stats.mean_sector_erases(),
    }
}

/// One W2 or W2-scale run of a store, seen under one profile.
struct W2Row {
    workload: &'static str,
    label: Label,
    flash: String,
    profile: Profile,
    run: W2Run,
    /// The capacity the store was built for (ours), for RAM per pending slot.
    slots: Option<usize>,
}

impl W2Row {
    fn acks(&self) -> f64 {
        self.run.result.acks.max(1) as f64
    }

    fn pushes(&self) -> f64 {
        self.run.result.pushes.max(1) as f64
    }

    fn ms_per_ack(&self) -> f64 {
        self.run.ack.device_ms(self.profile) / self.acks()
    }

    fn ms_per_push(&self) -> f64 {
        self.run.push.device_ms(self.profile) / self.pushes()
    }

    fn read_per_ack(&self) -> f64 {
        self.run.ack.read_bytes as f64 / self.acks()
    }

    fn prog_per_ack(&self) -> f64 {
        self.run.ack.prog_bytes as f64 / self.acks()
    }

    /// Push and ack phases together (reopens and checks left out).
    fn work(&self) -> Tally {
        let mut t = self.run.push;
        t.add(&self.run.ack);
        t
    }

    fn is_ours(&self) -> bool {
        self.label.mode_key == "ack_mode"
    }
}

fn w2_rows(label: Label, flash: String, run: W2Run, slots: Option<usize>) -> Vec<W2Row> {
    Profile::all()
        .into_iter()
        .map(|profile| W2Row {
            workload: "W2",
            label: label.clone(),
            flash: flash.clone(),
            profile,
            run: run.clone(),
            slots,
        })
        .collect()
}

/// W2's burst: ours on grouped sectors (in-place acks and ack records), the peer
/// with its best cache on a flash of the same size and on W1's 16 x 4 KiB.
fn w2_burst_rows() -> Vec<W2Row> {
    let mut rows = Vec::new();
    for mode in [AckMode::InPlace, AckMode::Record] {
        // On the peer's 48 x 4 KiB: the region bounds the capacity.
        let mut ours = OurJournal::<W2_N>::on_sectors(W2_PAGES as u32, W2_PAYLOAD, mode);
        let flash = ours.flash();
        let run = measure_w2(&mut ours, OurJournal::sim, |s, mark| run_w2(s, mark));
        rows.extend(w2_rows(
            OurJournal::<W2_N>::label(mode, false),
            flash,
            run,
            Some(W2_N),
        ));
        drop(ours);
        let mut ours =
            GroupedJournal::<W2_N>::new(W2_BLOCKS_PER_SECTOR, W2_SECTORS, W2_PAYLOAD, mode);
        let flash = ours.flash();
        let run = measure_w2(&mut ours, GroupedJournal::sim, |s, mark| run_w2(s, mark));
        rows.extend(w2_rows(
            GroupedJournal::<W2_N>::label(mode),
            flash,
            run,
            Some(W2_N),
        ));
    }
    let mut peer = PeerQueue::<PagesCache<W2_PAGES>>::with_pages(W2_PAGES as u32, best_cache);
    let run = measure_w2(&mut peer, PeerQueue::sim, |s, mark| run_w2(s, mark));
    rows.extend(w2_rows(
        PeerQueue::<PagesCache<W2_PAGES>>::label("page states + page pointers"),
        format!("{W2_PAGES} x 4 KiB"),
        run,
        None,
    ));
    let mut peer = PeerQueue::<BestCache>::new(best_cache);
    let run = measure_w2(&mut peer, PeerQueue::sim, |s, mark| run_w2(s, mark));
    rows.extend(w2_rows(
        PeerQueue::<BestCache>::label("page states + page pointers"),
        "16 x 4 KiB".into(),
        run,
        None,
    ));
    rows.sort_by_key(|r| r.profile as usize);
    rows
}

/// W2 at scale on `w25q-spi`: ours on 256 x 4 KiB (the region bounds its
/// capacity) and on 1 MiB grouped sectors, the peer with its best cache on the
/// same 256 x 4 KiB; `rounds` rounds of 4000 pending.
fn w2_scale_rows(rounds: u32) -> Vec<W2Row> {
    let scale = |label, flash, run, slots| W2Row {
        workload: "W2-scale",
        label,
        flash,
        profile: Profile::W25qSpi,
        run,
        slots,
    };
    let mut rows = vec![w2_scale_shape(W2_SCALE_EVENTS, rounds)];
    let mut ours = GroupedJournal::<W2_SCALE_N>::new(
        W2_SCALE_BLOCKS_PER_SECTOR,
        W2_SCALE_SECTORS,
        W2_SCALE_MAX_PAYLOAD,
        AckMode::InPlace,
    );
    let flash = ours.flash();
    let run = measure_w2(&mut ours, GroupedJournal::sim, |s, mark| {
        run_w2_scale(s, W2_SCALE_EVENTS, rounds, mark)
    });
    rows.push(scale(
        GroupedJournal::<W2_SCALE_N>::label(AckMode::InPlace),
        flash,
        run,
        Some(W2_SCALE_N),
    ));
    drop(ours);
    const PAGES: usize = W2_SCALE_PLAIN_SECTORS as usize;
    let mut peer = PeerQueue::<PagesCache<PAGES>>::with_pages(PAGES as u32, best_cache);
    let run = measure_w2(&mut peer, PeerQueue::sim, |s, mark| {
        run_w2_scale(s, W2_SCALE_EVENTS, rounds, mark)
    });
    rows.push(scale(
        PeerQueue::<PagesCache<PAGES>>::label("page states + page pointers"),
        format!("{PAGES} x 4 KiB"),
        run,
        None,
    ));
    rows
}

/// W2 at scale's workload with `events` pending instead of 4000 (`rounds`
/// rounds), ours on the same 256 x 4 KiB: the comparison that shows whether a push or an ack costs
/// more with more pending (not a JSON row: the workload differs).
fn w2_scale_shape(events: usize, rounds: u32) -> W2Row {
    let mut ours = OurJournal::<W2_SCALE_N>::on_sectors(
        W2_SCALE_PLAIN_SECTORS,
        W2_SCALE_MAX_PAYLOAD,
        AckMode::InPlace,
    );
    let flash = ours.flash();
    let run = measure_w2(&mut ours, OurJournal::sim, |s, mark| {
        run_w2_scale(s, events, rounds, mark)
    });
    W2Row {
        workload: "W2-scale",
        label: OurJournal::<W2_SCALE_N>::label(AckMode::InPlace, false),
        flash,
        profile: Profile::W25qSpi,
        run,
        slots: Some(W2_SCALE_N),
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// The peer's row beside `ours`: same profile, on `flash` pages.
fn peer_of<'a>(rows: &'a [W2Row], ours: &W2Row, flash: &str) -> Option<&'a W2Row> {
    rows.iter()
        .find(|r| !r.is_ours() && r.profile == ours.profile && r.flash == flash)
}

fn print_w2(rows: &[W2Row]) {
    let Some(first) = rows.first() else { return };
    println!();
    println!(
        "W2 (force-close burst): {} events of {} B pending at once, acked in random order \
         (PCG32 seed {W2_SEED}, swap-remove), fingerprint {:#018x}; \
         ours on the peer's {W2_PAGES} x 4 KiB and on Grouped sectors, the fewest \
         Config::<{W2_N}> accepts for {W2_PAYLOAD} B",
        first.run.result.pushes, W2_PAYLOAD, first.run.result.fingerprint
    );
    println!(
        "| store | cache / ack mode | flash | profile | RAM B | completed events | device ms/push \
         | device ms/ack | read B/ack | prog B/ack | erases (acks) | host ns/ack | x peer ms/ack (same flash) |"
    );
    println!("|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let same_flash = format!("{W2_PAGES} x 4 KiB");
    for r in rows {
        let ratio = if r.is_ours() {
            peer_of(rows, r, &same_flash).map_or("-".into(), |p| {
                format!("{:.3}", r.ms_per_ack() / p.ms_per_ack())
            })
        } else {
            "-".into()
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.0} | {:.1} | {} | {:.0} | {} |",
            r.label.store,
            r.label.mode,
            r.flash,
            r.profile.name(),
            r.label.ram_bytes,
            r.run.result.pushes,
            r.ms_per_push(),
            r.ms_per_ack(),
            r.read_per_ack(),
            r.prog_per_ack(),
            r.run.ack.erases,
            r.run.ack.host_ns / r.acks(),
            ratio,
        );
    }
    for r in rows.iter().filter(|r| r.is_ours()) {
        let vs = |flash: &str| {
            peer_of(rows, r, flash).map_or("no peer row".into(), |p| {
                let x = r.ms_per_ack() / p.ms_per_ack();
                format!(
                    "{:.3}x the peer's {:.3} ms on {flash} ({})",
                    x,
                    p.ms_per_ack(),
                    met(x <= 0.1)
                )
            })
        };
        println!(
            "W2 goals, ours {} on {}, {}: device ms/ack {:.4} = {}, {}; read B/ack {:.0} <= 256 ({})",
            r.label.mode,
            r.flash,
            r.profile.name(),
            r.ms_per_ack(),
            vs(&same_flash),
            vs("16 x 4 KiB"),
            r.read_per_ack(),
            met(r.read_per_ack() <= 256.0),
        );
    }
}

fn print_w2_scale(rows: &[W2Row], rounds: u32, short: bool, burst: &[W2Row]) {
    println!();
    println!(
        "W2-scale: {W2_SCALE_EVENTS} events of {W2_SCALE_MIN_PAYLOAD}..={W2_SCALE_MAX_PAYLOAD} B \
         pending at once (PCG32 seed {W2_SEED}: per event the length 40 + below(175), then the \
         payload words), acked in random order, restarts with all pending and halfway through \
         the acks, {rounds} round(s){}; w25q-spi",
        if short {
            " (reduced by --short from 3)"
        } else {
            ""
        }
    );
    if let Some(first) = rows.first() {
        println!("fingerprint {:#018x}", first.run.result.fingerprint);
    }
    println!(
        "| store | cache / ack mode | flash | profile | RAM B | RAM B/pending slot | completed events \
         | device ms/push | device ms/ack | read B/ack | prog B/ack | erases (pushes / acks) \
         | open with {W2_SCALE_EVENTS} pending: device ms | host ms | read B | host ns/ack |"
    );
    println!("|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        let (open, n) = r.run.opens_at(W2_SCALE_EVENTS);
        let n = n.max(1) as f64;
        println!(
            "| {} | {} | {} | {} | {} | {} | {}{} | {:.3} | {:.3} | {:.0} | {:.1} | {} / {} | {:.2} | {:.2} | {:.0} | {:.0} |",
            r.label.store,
            r.label.mode,
            r.flash,
            r.profile.name(),
            r.label.ram_bytes,
            r.slots.map_or("-".into(), |s| format!(
                "{:.1} (journal alone)",
                r.label.ram_bytes as f64 / s as f64
            )),
            r.run.result.pushes,
            if r.run.result.failed {
                " (a refused push)"
            } else {
                ""
            },
            r.ms_per_push(),
            r.ms_per_ack(),
            r.read_per_ack(),
            r.prog_per_ack(),
            r.run.push.erases,
            r.run.ack.erases,
            open.device_ms(r.profile) / n,
            open.host_ns / 1e6 / n,
            open.read_bytes as f64 / n,
            r.run.ack.host_ns / r.acks(),
        );
    }
    if let Some(ours) = rows.iter().find(|r| r.is_ours()) {
        let (open, n) = ours.run.opens_at(W2_SCALE_EVENTS);
        let worst = ours
            .run
            .opens
            .iter()
            .filter(|(p, _)| *p == W2_SCALE_EVENTS)
            .map(|(_, t)| t.device_ms(ours.profile))
            .fold(0.0, f64::max);
        println!(
            "W2-scale goals, ours: open with {W2_SCALE_EVENTS} pending {:.2} ms device (mean of {n}, \
             worst {worst:.2}; {} B programmed) <= 100 ms ({}); RAM {:.1} B per pending slot, \
             journal alone (the goal, <= 16 B, counts journal + pending index: {})",
            open.device_ms(ours.profile) / n.max(1) as f64,
            open.prog_bytes,
            met(worst <= 100.0),
            ours.label.ram_bytes as f64 / W2_SCALE_N as f64,
            met(ours.label.ram_bytes as f64 / W2_SCALE_N as f64 <= 16.0),
        );
        if let Some(peer) = rows.iter().find(|r| !r.is_ours()) {
            println!(
                "W2-scale, device ms/ack: ours {:.4}, the peer {:.4} ({:.3}x)",
                ours.ms_per_ack(),
                peer.ms_per_ack(),
                ours.ms_per_ack() / peer.ms_per_ack()
            );
        }
        if let Some(small) = burst
            .iter()
            .find(|r| r.is_ours() && r.label.mode == "in-place" && r.profile == ours.profile)
        {
            println!(
                "ours on {}, device ms/ack with {W2_N} pending (W2) {:.4}, with {W2_SCALE_EVENTS} \
                 (W2-scale) {:.4}; ms/push {:.4} and {:.4}",
                ours.profile.name(),
                small.ms_per_ack(),
                ours.ms_per_ack(),
                small.ms_per_push(),
                ours.ms_per_push()
            );
        }
    }
}

fn print_w2_json(rows: &[W2Row]) {
    for r in rows {
        let work = r.work();
        let n = r.pushes();
        let cache_ram = r
            .label
            .cache_ram_bytes
            .map_or(String::new(), |b| format!(",\"cache_ram_bytes\":{b}"));
        let limit_ms = r.profile.limit_us(
            r.run.result.average_payload(),
            SimFlash::BENCH_GEOMETRY.sector_size,
        ) / 1000.0;
        let mut extra = String::new();
        if r.workload == "W2-scale" {
            let (open, opens) = r.run.opens_at(W2_SCALE_EVENTS);
            let opens = opens.max(1) as f64;
            extra = format!(
                ",\"pending_at_open\":{W2_SCALE_EVENTS},\"open_device_ms\":{:.4},\"open_host_ms\":{:.4},\
                 \"open_read_bytes\":{:.0}",
                open.device_ms(r.profile) / opens,
                open.host_ns / 1e6 / opens,
                open.read_bytes as f64 / opens,
            );
            if let Some(slots) = r.slots {
                extra += &format!(
                    ",\"ram_bytes_per_slot\":{:.2}",
                    r.label.ram_bytes as f64 / slots as f64
                );
            }
        }
        println!(
            "{{\"workload\":\"{}\",\"store\":\"{}\",\"{}\":\"{}\",\"profile\":\"{}\",\"flash\":\"{}\",\
             \"events\":{},\"completed_events\":{},\"failed\":{},\"fingerprint\":\"{:#018x}\",\
             \"avg_payload\":{:.3},\"prog_bytes_per_event\":{:.4},\"prog_ops_per_event\":{:.4},\
             \"read_bytes_per_event\":{:.4},\"erases_per_1k\":{:.4},\"write_amp\":{:.4},\
             \"max_sector_erases\":{},\"mean_sector_erases\":{:.4},\"device_ms_per_event\":{:.4},\
             \"limit_ratio\":{:.4},\"host_ns_per_event\":{:.0},\"device_ms_per_push\":{:.4},\
             \"device_ms_per_ack\":{:.4},\"read_bytes_per_ack\":{:.4},\"prog_bytes_per_ack\":{:.4},\
             \"ram_bytes\":{}{}{}}}",
            r.workload,
            r.label.store,
            r.label.mode_key,
            r.label.mode,
            r.profile.name(),
            r.flash,
            r.run.result.pushes,
            r.run.result.pushes,
            r.run.result.failed,
            r.run.result.fingerprint,
            r.run.result.average_payload(),
            work.prog_bytes as f64 / n,
            work.prog_ops as f64 / n,
            work.read_bytes as f64 / n,
            work.erases as f64 * 1000.0 / n,
            work.prog_bytes as f64 / r.run.result.payload_bytes.max(1) as f64,
            r.run.max_sector_erases,
            r.run.mean_sector_erases,
            work.device_ms(r.profile) / n,
            work.device_ms(r.profile) / n / limit_ms,
            work.host_ns / n,
            r.ms_per_push(),
            r.ms_per_ack(),
            r.read_per_ack(),
            r.prog_per_ack(),
            r.label.ram_bytes,
            cache_ram,
            extra,
        );
    }
}

fn main() {
    let opts = Opts::parse();
    let run = |w: &str| opts.only.as_deref().is_none_or(|o| o == w);
    let mut rows = Vec::new();
    if run("W1") || run("W3") {
        rows = our_rows(&opts);
        if run("W1") {
            rows.extend(our_async_rows(&opts));
        }
        rows.extend(peer_rows(&opts));
        rows.sort_by_key(|r| r.profile as usize);
    }
    let async_pairs = async_pairs(&rows);
    let w3_events = if opts.events == W1_EVENTS {
        W3_EVENTS
    } else {
        opts.events
    };
    let w3 = if run("W3") {
        w3_rows(w3_events)
    } else {
        Vec::new()
    };
    let w2 = if run("W2") || run("W2-scale") {
        w2_burst_rows()
    } else {
        Vec::new()
    };
    let scale_rounds = if opts.short { 1 } else { W2_SCALE_ROUNDS };
    let w2_scale = if run("W2-scale") {
        w2_scale_rows(scale_rounds)
    } else {
        Vec::new()
    };
    // The same shape at W2's 480 pending, over as many events in all (so the
    // region wraps as often): whether a push or an ack costs more with more pending.
    let shape_rounds = (scale_rounds as usize * W2_SCALE_EVENTS).div_ceil(W2_N) as u32;
    let shape_480 = if run("W2-scale") && !opts.json {
        Some(w2_scale_shape(W2_N, shape_rounds))
    } else {
        None
    };
    if opts.json {
        print_json(&rows);
        print_w2_json(&w2);
        print_w2_json(&w2_scale);
        print_w3_json(&w3);
    } else {
        if run("W1") {
            print_table(&rows);
            print_async(&async_pairs);
        }
        if run("W3") {
            print_w3(&w3, |p| {
                rows.iter()
                    .find(|r| r.profile == p && r.label.mode == "in-place")
                    .map(|r| r.device_ms_per_event)
            });
        }
        if run("W2") {
            print_w2(&w2);
        }
        if run("W2-scale") {
            print_w2_scale(&w2_scale, scale_rounds, opts.short, &w2);
            if let (Some(small), Some(ours)) = (&shape_480, w2_scale.iter().find(|r| r.is_ours())) {
                println!(
                    "W2-scale's shape (two restarts a round) on {}, ours: device ms/ack with {W2_N} \
                     pending ({shape_rounds} rounds) {:.4}, with {W2_SCALE_EVENTS} ({scale_rounds} rounds) \
                     {:.4} ({:.2}x); ms/push {:.4} and {:.4} ({:.2}x); host ns/ack {:.0} and {:.0}",
                    ours.flash,
                    small.ms_per_ack(),
                    ours.ms_per_ack(),
                    ours.ms_per_ack() / small.ms_per_ack(),
                    small.ms_per_push(),
                    ours.ms_per_push(),
                    ours.ms_per_push() / small.ms_per_push(),
                    small.run.ack.host_ns / small.acks(),
                    ours.run.ack.host_ns / ours.acks(),
                );
            }
        }
    }
}
