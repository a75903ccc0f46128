//! End to end in one process: a device (an `EventStore` on `SimFlash` driven by a
//! `DeviceLink`) and a consumer (`LinkClient`) over a seeded lossy line that
//! drops frames and bytes, flips bits, truncates and duplicates frames; the
//! device loses power at random (torn programs and erases) and the consumer
//! restarts at random, deferring some acks; in a second test monitor updates
//! begin and complete at random too. A tap on the wire checks what reaches the
//! host.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

use monitor_events::{
    ChannelId, Config, EventStore, Geometry, MonitorEvent, MonitorEventSource, PushError,
    MAX_ENCODED_LEN,
};
use monitor_events_flash::rng::Pcg32;
use monitor_events_flash::sim::{SharedFlash, Torn};
use monitor_events_flash::SimFlash;
use monitor_events_link::{Counters, DeviceLink, HostEvent, HostLink, LinkClient, MAX_FRAME_LEN};

const GEO: Geometry = Geometry {
    sector_size: 4096,
    sector_count: 8,
    write_size: 4,
    multiwrite: true,
};
const N: usize = 16;
const CONFIG: Config<N> = Config::new(GEO, MAX_ENCODED_LEN);
type Store = EventStore<SharedFlash, N>;
const CREDIT: u32 = 8;

/// What the checker learns from the device side and from the wire.
#[derive(Default)]
struct World {
    /// Events the device made durable (push returned, or found after a cut).
    pushed: BTreeMap<u64, MonitorEvent>,
    /// Ids whose `AckResult` (success) reached the host.
    confirmed: BTreeSet<u64>,
    /// Ids whose `Event` frame reached the host intact.
    on_wire: BTreeSet<u64>,
    duplicates: u64,
    redelivered_after_ack: u64,
    wrong_content: u64,
    ack_refused: u64,
    order_violations: u64,
    gating_violations: u64,
    cuts: u64,
    faulted_frames: u64,
    device_damaged: u64,
}

/// The device and the line, as the consumer's stream: a read runs the device
/// until it has sent something (or three quiet steps pass: a read timeout).
struct SimLine {
    rng: Pcg32,
    events: Pcg32,
    flash: SharedFlash,
    store: Option<Store>,
    link: DeviceLink<16>,
    outbox: VecDeque<MonitorEvent>,
    producing: bool,
    faults: bool,
    cut_armed: bool,
    h2d: VecDeque<u8>,
    d2h: VecDeque<u8>,
    tap: HostLink<4>,
    generation: u64,
    last_sent: Option<((u64, u64), u64)>,
    world: World,
    /// Begin and complete monitor updates at random (I5).
    gating: bool,
    /// The updates in flight, as the integrator knows them across device
    /// restarts. Their ids are above every `UpdateCompleted` the workload
    /// pushes, so only `complete_update` completes them.
    gates: Vec<(ChannelId, u64)>,
    next_update: u64,
}

/// Opens the store and declares the updates in flight (the integrator's own
/// durable state knows them).
fn open(flash: &SharedFlash, in_flight: &[(ChannelId, u64)]) -> Store {
    let mut s = Store::open(flash.clone(), CONFIG).expect("I10: open after a power cut");
    s.restore_in_flight(in_flight)
        .expect("K covers every channel");
    s
}

impl SimLine {
    fn new(seed: u64, gating: bool) -> Self {
        let flash = SharedFlash::new(SimFlash::new(GEO));
        SimLine {
            rng: Pcg32::new(seed),
            events: Pcg32::new(seed ^ 0xe7e7),
            store: Some(open(&flash, &[])),
            flash,
            link: DeviceLink::new(),
            outbox: VecDeque::new(),
            producing: true,
            faults: true,
            cut_armed: false,
            h2d: VecDeque::new(),
            d2h: VecDeque::new(),
            tap: HostLink::with_credit(0),
            generation: 0,
            last_sent: None,
            world: World::default(),
            gating,
            gates: Vec::new(),
            next_update: 1 << 40,
        }
    }

    fn store(&mut self) -> &mut Store {
        self.store.as_mut().unwrap()
    }

    /// After a caught panic: it must be the armed power cut (anything else is a
    /// bug and goes on unwinding). Reopens the store, `no_updates_in_flight`, a
    /// new `DeviceLink`.
    fn power_cut(&mut self, panic: Box<dyn std::any::Any + Send>) {
        if !self.flash.get().is_dead() {
            std::panic::resume_unwind(panic);
        }
        self.world.cuts += 1;
        self.world.device_damaged += self.link.counters().damaged;
        drop(self.store.take());
        self.flash.get_mut().power_on();
        self.cut_armed = false;
        self.store = Some(open(&self.flash, &self.gates));
        self.link = DeviceLink::new();
        self.generation += 1;
    }

    /// The line's faults on one frame.
    fn fault(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut f = frame.to_vec();
        if !self.faults || f.is_empty() {
            return f;
        }
        let len = f.len() as u32;
        match self.rng.below(100) {
            0..=1 => f.clear(),
            2..=3 => drop(f.remove(self.rng.below(len) as usize)),
            4..=5 => {
                let bit = self.rng.below(len * 8) as usize;
                f[bit / 8] ^= 1 << (bit % 8);
            }
            6..=7 => f.truncate(self.rng.below(len) as usize),
            8..=9 => f.extend_from_within(..),
            _ => return f,
        }
        self.world.faulted_frames += 1;
        f
    }

    /// One step of the device: maybe push, maybe arm a cut, take what the host
    /// sent, send up to four frames. Whether it sent anything.
    fn device_step(&mut self) -> bool {
        if self.producing && self.rng.below(100) < 50 {
            let ev = self
                .outbox
                .pop_front()
                .unwrap_or_else(|| common::random_event(&mut self.events));
            let guess = self.store().next_id();
            let store = self.store.as_mut().unwrap();
            match catch_unwind(AssertUnwindSafe(|| store.push(&ev))) {
                Ok(Ok(id)) => {
                    assert_eq!(id, guess, "I3");
                    self.world.pushed.insert(id.0, ev);
                }
                Ok(Err(PushError::Full)) => self.outbox.push_front(ev),
                Ok(Err(e)) => panic!("push refused: {e}"),
                Err(p) => {
                    self.power_cut(p);
                    // A push a cut interrupted promised nothing: kept if it is
                    // there, else the monitor pushes it again.
                    if self.store().pending().any(|p| p.id == guess) {
                        self.world.pushed.insert(guess.0, ev);
                    } else {
                        self.outbox.push_front(ev);
                    }
                }
            }
        }
        if self.gating {
            if self.faults && self.rng.below(100) < 3 {
                let c = ChannelId([self.rng.below(8) as u8; 32]);
                if !self.gates.iter().any(|g| g.0 == c) {
                    let u = self.next_update;
                    self.next_update += 1;
                    self.store().begin_update(c, u).expect("a free gate");
                    self.gates.push((c, u));
                }
            }
            while !self.gates.is_empty() && (!self.faults || self.rng.below(100) < 3) {
                let (c, u) = self.gates.remove(0);
                assert!(self.store().complete_update(c, u), "I5: it was in flight");
            }
        }
        if self.faults && !self.cut_armed && self.rng.below(1000) < 15 {
            let k = u64::from(self.rng.below(4));
            let torn = Torn::random(self.rng.next_u64());
            self.flash.get_mut().cut_after(k, torn);
            self.cut_armed = true;
        }
        let bytes: Vec<u8> = self.h2d.drain(..).collect();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = rest.len().min(1 + self.rng.below(64) as usize);
            let (store, link) = (self.store.as_mut().unwrap(), &mut self.link);
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| link.receive(store, &rest[..n]))) {
                self.power_cut(p);
            }
            rest = &rest[n..];
        }
        let mut sent = false;
        let mut frame = [0u8; MAX_FRAME_LEN];
        for _ in 0..4 {
            let before = self.link.in_flight().len();
            let (store, link) = (self.store.as_mut().unwrap(), &mut self.link);
            let n = match catch_unwind(AssertUnwindSafe(|| link.poll_transmit(store, &mut frame))) {
                Ok(n) => n,
                Err(p) => {
                    self.power_cut(p);
                    break;
                }
            };
            if n == 0 {
                break;
            }
            if self.link.in_flight().len() == before + 1 {
                let id = *self.link.in_flight().last().unwrap();
                let event = &self.world.pushed[&id];
                if event.is_htlc() && self.gates.iter().any(|g| g.0 == event.channel()) {
                    self.world.gating_violations += 1;
                }
                // Ids strictly increase within a release pass; with gating, among
                // the events nothing holds back (HTLC events wait for their gate).
                if !(self.gating && event.is_htlc()) {
                    let pass = (self.generation, self.link.passes());
                    if let Some((p, last)) = self.last_sent {
                        if p == pass && id <= last {
                            self.world.order_violations += 1;
                        }
                    }
                    self.last_sent = Some((pass, id));
                }
            }
            let f = self.fault(&frame[..n]);
            self.d2h.extend(f);
            sent = true;
        }
        sent
    }

    /// What reached the host, as the host parses it.
    fn tap(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (n, e) = self.tap.receive(rest);
            rest = &rest[n..];
            let w = &mut self.world;
            match e {
                Some(HostEvent::Event { id, event }) => {
                    if w.confirmed.contains(&id.0) {
                        w.redelivered_after_ack += 1;
                    }
                    if !w.on_wire.insert(id.0) {
                        w.duplicates += 1;
                    }
                    if w.pushed.get(&id.0) != Some(&event) {
                        w.wrong_content += 1;
                    }
                }
                Some(HostEvent::AckResult { id, outcome }) => {
                    if outcome.is_success() {
                        w.confirmed.insert(id.0);
                    } else {
                        w.ack_refused += 1;
                    }
                }
                _ => {}
            }
        }
    }
}

impl Read for SimLine {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut quiet = 0;
        while self.d2h.is_empty() {
            if !self.device_step() {
                quiet += 1;
                if quiet >= 3 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            }
        }
        let n = buf
            .len()
            .min(self.d2h.len())
            .min(1 + self.rng.below(256) as usize);
        for b in buf[..n].iter_mut() {
            *b = self.d2h.pop_front().unwrap();
        }
        self.tap(&buf[..n]);
        Ok(n)
    }
}

impl Write for SimLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = self.fault(buf);
        self.h2d.extend(f);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// I1, I2, I3, I4 over the link: every event the device made durable reaches the
/// host at least once; none comes again after the host saw its AckResult; ids
/// strictly increase within a release pass; events arrive byte-identical; after
/// the last ack the store is empty across a reopen.
#[test]
fn i1_i2_i4_lossy_line_power_cuts_host_restarts() {
    quiet_power_cuts();
    let mut total = [0u64; 6];
    for seed in [0x11d4_2026, 1, 2, 3, 4, 5, 6, 7] {
        let r = run(seed, false);
        for (t, x) in total.iter_mut().zip(r) {
            *t += x;
        }
    }
    println!(
        "link (8 seeds): events {}, device power cuts {}, host restarts {}, lost {}, redelivered after ack {}, duplicates seen {}",
        total[0], total[1], total[2], total[3], total[4], total[5]
    );
}

/// I5 over the link, with I1, I2 and I4 as above: monitor updates begin and
/// complete at random and are declared again after every device restart; no
/// HTLC event of a channel with an update in flight goes out.
#[test]
fn i5_gating_over_a_lossy_line() {
    quiet_power_cuts();
    for seed in [0x15, 0x25, 0x35, 0x45] {
        run(seed, true);
    }
}

/// Power cuts panic in the store (I7); keep those quiet, report the rest.
fn quiet_power_cuts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !format!("{info}").contains("PowerCut") {
                default_hook(info);
            }
        }));
    });
}

/// One seeded run; returns events, cuts, host restarts, lost, redelivered
/// after ack, duplicates.
fn run(seed: u64, gating: bool) -> [u64; 6] {
    const TARGET_EVENTS: usize = 2_400;
    const TARGET_CUTS: u64 = 25;
    const TARGET_RESTARTS: u64 = 25;
    let mut rng = Pcg32::new(seed ^ 0xc0de);
    let mut client = Some(LinkClient::connect(SimLine::new(seed, gating), CREDIT).unwrap());
    let mut deferred: Vec<MonitorEventSource> = Vec::new();
    let mut delivered: BTreeSet<u64> = BTreeSet::new();
    let mut host_restarts = 0u64;
    let mut drained = false;
    let mut host_counters = Counters::default();
    for _ in 0..200_000u64 {
        let c = client.as_mut().unwrap();
        let line = c.get_mut();
        if line.faults
            && line.world.pushed.len() >= TARGET_EVENTS
            && line.world.cuts >= TARGET_CUTS
            && host_restarts >= TARGET_RESTARTS
        {
            // Drain: a clean line, no more pushes, every ack sent at once.
            line.faults = false;
            line.producing = false;
            line.flash.get_mut().power_on();
            line.cut_armed = false;
        }
        let faults = line.faults;
        if !faults
            && line.store().pending_count() == 0
            && deferred.is_empty()
            && c.unconfirmed() == 0
        {
            drained = true;
            break;
        }
        match c.next_event() {
            Ok(Some(d)) => {
                delivered.insert(d.id.0);
                if faults && rng.below(100) < 35 {
                    deferred.push(d.source());
                } else {
                    c.ack(d.source()).unwrap();
                }
            }
            Ok(None) => {
                // Quiet: the consumer finishes some of what it held.
                let mut keep = Vec::new();
                for s in deferred.drain(..) {
                    if faults && rng.below(2) == 0 {
                        keep.push(s);
                    } else {
                        c.ack(s).unwrap();
                    }
                }
                deferred = keep;
            }
            Err(e) => panic!("link: {e}"),
        }
        if !deferred.is_empty() && rng.below(100) < 5 {
            let s = deferred.remove(rng.below(deferred.len() as u32) as usize);
            c.ack(s).unwrap();
        }
        if faults && rng.below(1000) < 8 {
            // The consumer restarts: its held acks are gone with it.
            let old = client.take().unwrap();
            add(&mut host_counters, old.counters());
            let mut line = old.into_inner();
            line.tap.reset_receiver();
            deferred.clear();
            host_restarts += 1;
            client = Some(LinkClient::connect(line, CREDIT).unwrap());
        }
    }
    let c = client.take().unwrap();
    let mut counters = host_counters;
    add(&mut counters, c.counters());
    let mut line = c.into_inner();
    let device_damaged = line.world.device_damaged + line.link.counters().damaged;
    drop(line.store.take());
    let s = open(&line.flash, &[]);
    let w = &line.world;
    let lost = w
        .pushed
        .keys()
        .filter(|id| !delivered.contains(id) || !w.on_wire.contains(id))
        .count();
    println!(
        "link seed {seed:#x}{}: events {}, device power cuts {}, host restarts {}, lost {}, redelivered after ack {}, duplicates seen {}",
        if gating { " (gating)" } else { "" },
        w.pushed.len(),
        w.cuts,
        host_restarts,
        lost,
        w.redelivered_after_ack,
        w.duplicates
    );
    println!(
        "  line: {} frames faulted; host dropped {} damaged, {} oversize, {} unknown; device dropped {} damaged",
        w.faulted_frames,
        counters.damaged,
        counters.oversize,
        counters.unknown,
        device_damaged,
    );
    assert_eq!(
        w.redelivered_after_ack, 0,
        "I2: nothing after its AckResult"
    );
    assert_eq!(lost, 0, "I1: every durable event reaches the host");
    assert!(drained, "the run did not converge");
    assert_eq!(w.order_violations, 0, "I4: ids increase within a pass");
    assert_eq!(
        w.gating_violations, 0,
        "I5: no HTLC event of a gated channel"
    );
    assert_eq!(w.wrong_content, 0, "I4: byte-identical");
    assert_eq!(w.ack_refused, 0, "acks name real events");
    assert!(w.pushed.len() >= TARGET_EVENTS && w.cuts >= TARGET_CUTS);
    assert!(host_restarts >= TARGET_RESTARTS);
    assert!(w.duplicates > 0, "the faults made the host see duplicates");
    assert_eq!(
        s.pending_count(),
        0,
        "I2: every ack durable across a reopen"
    );
    assert!(
        s.next_id().0 as usize >= w.pushed.len(),
        "I3: ids only grow"
    );
    [
        w.pushed.len() as u64,
        w.cuts,
        host_restarts,
        lost as u64,
        w.redelivered_after_ack,
        w.duplicates,
    ]
}

fn add(total: &mut Counters, c: &Counters) {
    total.damaged += c.damaged;
    total.oversize += c.oversize;
    total.unknown += c.unknown;
    total.version += c.version;
}
