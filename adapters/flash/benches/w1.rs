//! docs/BENCH.md's W1 on the simulated NOR flash: every store in one run, on the same
//! `SimFlash` geometry, driven by the same operation stream (the fingerprint
//! proves it), with figures for both device profiles.
//!
//! ```text
//! cargo bench -p monitor-events-flash --features sim --bench w1 [-- --short | --events N] [--json]
//! ```
//!
//! A store takes part by implementing `W1Store` over a `SimFlash` and handing its
//! label and store to `measure`; `main` collects the rows.

use embedded_storage_async::nor_flash::{ErrorType, MultiwriteNorFlash, NorFlash, ReadNorFlash};
use monitor_events::journal::{AckMode, Auth, Config, Journal};
use monitor_events::{EventId, Geometry, Medium};
use monitor_events_flash::sim::{Profile, SimError, SimFlash};
use monitor_events_flash::workload::{
    run_w1, run_w3, W1Store, W3Result, W1_EVENTS, W1_FINGERPRINT, W1_REOPEN_EVERY, W3_EVENTS,
};
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
}

impl Opts {
    fn parse() -> Self {
        let mut opts = Opts {
            events: W1_EVENTS,
            json: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--json" => opts.json = true,
                "--short" => opts.events = 10_000,
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
    fn new() -> Self {
        let flash = SimFlash::default();
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
type BestCache = Cache<ArrayPageStates<16>, ArrayPagePointers<16>, Uncached>;

impl<C: CacheImpl<()>> PeerQueue<C> {
    fn new(new_cache: fn() -> C) -> Self {
        let flash = AsyncSim::new();
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

/// monitor-events' journal as a W1 store: W1's payload is the event body.
struct OurJournal<const N: usize = OUR_N> {
    journal: Option<Journal<SimFlash, N>>,
    config: Config<N>,
    buf: [u8; 256],
}

impl<const N: usize> OurJournal<N> {
    /// `auth`: the authenticated journal (HMAC tags; acks as records).
    fn new(mode: AckMode, auth: bool) -> Self {
        let geometry = Geometry {
            multiwrite: mode == AckMode::InPlace,
            ..SimFlash::BENCH_GEOMETRY
        };
        let config = Config::<N>::try_new(geometry, 120)
            .and_then(|c| c.with_ack_mode(mode))
            .and_then(|c| {
                if auth {
                    c.with_auth(Auth::new([0x42; 32], *b"bench-region-w1 "))
                } else {
                    Ok(c)
                }
            })
            .expect("W1 configuration");
        let journal = Journal::open(SimFlash::new(geometry), config).expect("open a blank flash");
        Self {
            journal: Some(journal),
            config,
            buf: [0; 256],
        }
    }

    fn journal(&mut self) -> &mut Journal<SimFlash, N> {
        self.journal.as_mut().expect("journal is open")
    }

    fn sim(&mut self) -> &mut SimFlash {
        self.journal().medium_mut()
    }

    fn label(mode: AckMode, auth: bool) -> Label {
        Label {
            store: "monitor-events journal",
            mode_key: "ack_mode",
            mode: match (mode, auth) {
                (AckMode::InPlace, _) => "in-place",
                (AckMode::Record, false) => "record",
                (AckMode::Record, true) => "record, authenticated",
            },
            ram_bytes: size_of::<Journal<&'static mut SimFlash, N>>(),
            cache_ram_bytes: None,
        }
    }
}

impl<const N: usize> W1Store for OurJournal<N> {
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
        self.journal = Some(Journal::open(flash, self.config).expect("monitor-events reopen"));
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
    for (mode, auth) in [
        (AckMode::InPlace, false),
        (AckMode::Record, false),
        (AckMode::Record, true),
    ] {
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

fn main() {
    let opts = Opts::parse();
    let mut rows = our_rows(&opts);
    rows.extend(peer_rows(&opts));
    rows.sort_by_key(|r| r.profile as usize);
    let w3_events = if opts.events == W1_EVENTS {
        W3_EVENTS
    } else {
        opts.events
    };
    let w3 = w3_rows(w3_events);
    if opts.json {
        print_json(&rows);
        print_w3_json(&w3);
    } else {
        print_table(&rows);
        print_w3(&w3, |p| {
            rows.iter()
                .find(|r| r.profile == p && r.label.mode == "in-place")
                .map(|r| r.device_ms_per_event)
        });
    }
}
