//! The async store under embassy's executor (std): a task that pushes and acks
//! through [`asynch::EventStore`] on a flash whose erase takes a W25Q's 45 ms, and
//! a second task, a 1 ms heartbeat, that must keep running while the erases are
//! under way. The heartbeat counts its ticks; the medium notes the count when each
//! erase starts and ends, so the ticks of every erase are known exactly.
//!
//! Scenario: the executor is not blocked by an erase. An erase that awaits the
//! device (here an embassy-time timer of the erase's duration) lets the heartbeat
//! tick during every erase; an erase that busy-waits the same time (a blocking
//! driver wrapped in an async call) lets it tick during none, which shows the
//! measurement can fail. Both runs check the store's answers too: every pushed
//! event is pending until acked (I1, I2), and a reopen finds exactly the pending
//! set (I3).

use embassy_executor::Executor;
use embassy_time::Timer;
use monitor_events::{
    asynch, AckOutcome, AsyncMedium, ChannelId, Config, EventId, Geometry, MonitorEvent,
    MonitorEventSource, MAX_ENCODED_LEN,
};
use monitor_events_flash::sim::{Profile, SimError, SimFlash};
use monitor_events_flash::workload::Pcg32;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// W25Q-class 4 KiB sectors; four of them, so the journal erases often.
const GEOMETRY: Geometry = Geometry {
    sector_size: 4096,
    sector_count: 4,
    write_size: 4,
    multiwrite: true,
};
/// Room for 16 pending events.
const N: usize = 16;
/// Events pushed in one run: enough for a dozen erases and more.
const EVENTS: u64 = 1200;
/// A reopen check after every this many pushes.
const REOPEN_EVERY: u64 = 300;
/// The heartbeat's period.
const TICK: Duration = Duration::from_millis(1);
/// The longest a run may take before the test fails instead of hanging.
const TIMEOUT: Duration = Duration::from_secs(120);

type Store = asynch::EventStore<SlowErase, N, 4>;

/// What the heartbeat and the medium share.
#[derive(Default)]
struct Probe {
    /// Heartbeat ticks so far.
    ticks: AtomicU64,
    /// Ticks during each erase, in order.
    per_erase: Mutex<Vec<u64>>,
    /// The store task has finished: the heartbeat stops, the executor returns.
    done: AtomicBool,
}

/// How [`SlowErase`] spends an erase's duration.
#[derive(Clone, Copy, Debug)]
enum Erase {
    /// Awaits a timer: the executor runs other tasks meanwhile (an async driver
    /// waiting for the flash's ready interrupt or polling its status with a timer).
    Awaits(Duration),
    /// Spins without returning to the executor (a blocking driver).
    Spins(Duration),
}

/// A [`SimFlash`] whose erase takes time, and which notes the heartbeat's ticks
/// during every erase.
struct SlowErase {
    flash: SimFlash,
    erase: Erase,
    probe: &'static Probe,
}

impl AsyncMedium for SlowErase {
    type Error = SimError;

    fn geometry(&self) -> Geometry {
        AsyncMedium::geometry(&self.flash)
    }
    async fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), SimError> {
        AsyncMedium::read(&mut self.flash, offset, buf).await
    }
    async fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), SimError> {
        AsyncMedium::program(&mut self.flash, offset, data).await
    }
    async fn erase(&mut self, sector: u32) -> Result<(), SimError> {
        let start = self.probe.ticks.load(SeqCst);
        match self.erase {
            Erase::Awaits(d) => {
                Timer::after(embassy_time::Duration::from_micros(d.as_micros() as u64)).await
            }
            Erase::Spins(d) => {
                let end = Instant::now() + d;
                while Instant::now() < end {
                    std::hint::spin_loop();
                }
            }
        }
        let result = AsyncMedium::erase(&mut self.flash, sector).await;
        let during = self.probe.ticks.load(SeqCst) - start;
        self.probe.per_erase.lock().unwrap().push(during);
        result
    }
    async fn sync(&mut self) -> Result<(), SimError> {
        AsyncMedium::sync(&mut self.flash).await
    }
}

/// What a run reports back from the executor's thread.
#[derive(Debug)]
struct Report {
    /// Ticks during each erase.
    per_erase: Vec<u64>,
    /// Heartbeat ticks in the whole run.
    ticks: u64,
    /// Erases the flash counted.
    erases: u64,
    /// Pushes and acks done.
    pushes: u64,
    acks: u64,
    /// Reopens whose pending set was checked.
    reopens: u64,
}

/// The second task: ticks every [`TICK`] until the store task is done.
#[embassy_executor::task(pool_size = 2)]
async fn heartbeat(probe: &'static Probe) {
    while !probe.done.load(SeqCst) {
        Timer::after(embassy_time::Duration::from_micros(TICK.as_micros() as u64)).await;
        probe.ticks.fetch_add(1, SeqCst);
    }
}

/// The first task: pushes and acks, checks the store against a model, reports.
#[embassy_executor::task(pool_size = 2)]
async fn store_task(erase: Erase, probe: &'static Probe, report: mpsc::Sender<Report>) {
    let result = push_and_ack(erase, probe).await;
    probe.done.store(true, SeqCst);
    // The receiver gave up only if the test already failed.
    let _ = report.send(result);
}

fn event(n: u64) -> MonitorEvent {
    MonitorEvent::UpdateCompleted {
        channel: ChannelId([(n % 4) as u8; 32]),
        update_id: n,
    }
}

/// I1, I2: the store's pending set is the model's, in id order.
fn check_pending(store: &Store, model: &VecDeque<(EventId, MonitorEvent)>, when: &str) {
    let ids: Vec<EventId> = store.pending().map(|p| p.id).collect();
    let want: Vec<EventId> = model.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, want, "{when}: pending ids");
}

/// I3: after a reopen every pending event reads back as pushed.
async fn check_reopened(store: &mut Store, model: &VecDeque<(EventId, MonitorEvent)>, when: &str) {
    check_pending(store, model, when);
    let mut buf = [0u8; MAX_ENCODED_LEN];
    for (id, want) in model {
        let got = store
            .peek(*id, &mut buf)
            .await
            .expect("pending event reads");
        assert_eq!(&got, want, "{when}: event {id:?}");
    }
}

async fn push_and_ack(erase: Erase, probe: &'static Probe) -> Report {
    let config = Config::<N>::try_new(GEOMETRY, MAX_ENCODED_LEN).expect("configuration");
    let medium = SlowErase {
        flash: SimFlash::new(GEOMETRY),
        erase,
        probe,
    };
    let mut store = Store::open(medium, config)
        .await
        .expect("open a blank flash");
    store.no_updates_in_flight();
    let mut model: VecDeque<(EventId, MonitorEvent)> = VecDeque::new();
    let mut rng = Pcg32::new(15);
    let (mut acks, mut reopens) = (0u64, 0u64);
    for n in 0..EVENTS {
        let e = event(n);
        let id = store.push(&e).await.expect("push");
        model.push_back((id, e));
        // As a task waiting for its next event would: back to the executor.
        embassy_futures::yield_now().await;
        check_pending(&store, &model, &format!("after push {n}"));
        // Keep 4 to 12 pending; ack one at random (acks come in any order).
        while model.len() > 4 + (rng.next_u32() % 9) as usize {
            let (id, e) = model.remove(rng.next_u32() as usize % model.len()).unwrap();
            let source = MonitorEventSource {
                channel: e.channel(),
                id,
            };
            assert_eq!(store.ack(source).await, Ok(AckOutcome::Acked), "ack {id:?}");
            acks += 1;
            check_pending(&store, &model, &format!("after the ack of {id:?}"));
        }
        if (n + 1) % REOPEN_EVERY == 0 {
            let medium = store.into_medium();
            store = Store::open(medium, config).await.expect("reopen");
            store.no_updates_in_flight();
            reopens += 1;
            check_reopened(&mut store, &model, &format!("reopen after push {n}")).await;
        }
    }
    let erases = store.journal().medium().flash.stats().erases;
    Report {
        per_erase: std::mem::take(&mut *probe.per_erase.lock().unwrap()),
        ticks: probe.ticks.load(SeqCst),
        erases,
        pushes: EVENTS,
        acks,
        reopens,
    }
}

/// Runs the store task and the heartbeat on an embassy executor of their own
/// thread; fails after [`TIMEOUT`] instead of hanging.
fn run(erase: Erase) -> Report {
    let probe: &'static Probe = Box::leak(Box::default());
    let (report, reports) = mpsc::channel();
    std::thread::spawn(move || {
        let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
        executor.run_until(
            |spawner| {
                spawner.spawn(heartbeat(probe).expect("heartbeat slot"));
                spawner.spawn(store_task(erase, probe, report).expect("store task slot"));
            },
            || probe.done.load(SeqCst),
        );
    });
    match reports.recv_timeout(TIMEOUT) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{erase:?}: no report after {TIMEOUT:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{erase:?}: the store task panicked (see its message above)")
        }
    }
}

/// The erase time of a W25Q-class 4 KiB sector.
fn w25q_erase() -> Duration {
    Duration::from_micros(Profile::W25qSpi.erase_us() as u64)
}

/// Scenario: an erase that awaits the device leaves the executor free; the
/// heartbeat ticks during every one of them. I1, I2, I3 hold throughout.
#[test]
fn executor_keeps_running_during_erases() {
    let started = Instant::now();
    let r = run(Erase::Awaits(w25q_erase()));
    let during: u64 = r.per_erase.iter().sum();
    let min = r.per_erase.iter().copied().min().unwrap_or(0);
    println!("executor ticks during erases: {during}");
    println!(
        "{} erases of {:?}, ticks per erase min {min} mean {:.1}, {} ticks in all; \
         {} pushes, {} acks, {} reopens checked; {:.2} s",
        r.per_erase.len(),
        w25q_erase(),
        during as f64 / r.per_erase.len().max(1) as f64,
        r.ticks,
        r.pushes,
        r.acks,
        r.reopens,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        r.per_erase.len() as u64,
        r.erases,
        "every erase of the flash went through the medium's erase"
    );
    assert!(r.erases >= 10, "the run erased {} times", r.erases);
    assert!(during > 0, "the heartbeat never ticked during an erase");
    assert!(
        r.per_erase.iter().all(|&t| t > 0),
        "an erase of {:?} passed without a tick: {:?}",
        w25q_erase(),
        r.per_erase
    );
    assert_eq!(r.reopens, EVENTS / REOPEN_EVERY);
}

/// The contrast: the same run with an erase that spins for the same time
/// without yielding. The heartbeat keeps ticking between operations, but never
/// during an erase: the measurement above can fail. I1, I2, I3 hold as well.
#[test]
fn a_blocking_erase_starves_the_executor() {
    let r = run(Erase::Spins(w25q_erase()));
    let during: u64 = r.per_erase.iter().sum();
    println!(
        "blocking erase: executor ticks during erases: {during} ({} erases, {} ticks in all)",
        r.per_erase.len(),
        r.ticks
    );
    assert_eq!(r.per_erase.len() as u64, r.erases);
    assert!(r.erases >= 10, "the run erased {} times", r.erases);
    assert_eq!(during, 0, "a spinning erase let the heartbeat run");
    assert!(
        r.ticks > 0,
        "the heartbeat ran at all (so the zero above is the erases' doing)"
    );
}
