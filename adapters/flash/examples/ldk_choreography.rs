//! LDK's persistent-monitor-events choreography on the simulated flash, with
//! device and consumer restarts, checked at every step.
//!
//! | scenario | what happens |
//! |---|---|
//! | outbound claim | the claim of our own payment is released; its ack waits for the user's PaymentSent; the device restarts twice meanwhile |
//! | three-part MPP forward | a forward's claim names one inbound HTLC, the consumer adds the two other parts; the consumer restarts (`rewind`, holds rebuilt from its own state), then the device |
//! | update in flight across a restart | a claim on a channel with a monitor update in flight; the device restarts with the update still in flight; nothing HTLC comes out before the in-flight updates are declared; a pushed `UpdateCompleted` lifts the gate cumulatively |
//! | force-close with a full store | a force-close resolves more HTLCs than fit; the monitor keeps what was refused, pushes batches as acks make room; nothing dropped |
//!
//! Every release is checked against what the channel manager knows (an HTLC event
//! of a channel with an update in flight, or any before the declaration, is an
//! unsafe release; one released twice in a run too), every restart against every
//! returned push and ack (a pushed, un-acked event missing is lost; an acked one
//! present or released is replayed after ack). The last line counts them; the
//! process exits with 1 if any count is not zero.
//!
//! Run: `cargo run --release -p monitor-events-flash --features sim --example ldk_choreography`

use std::collections::{BTreeMap, BTreeSet};

use monitor_events::{
    AckBarrier, AckOutcome, ChannelId, Condition, Config, EventId, EventStore, Geometry,
    HtlcOutcome, HtlcResolution, HtlcSource, MonitorEvent, MonitorEventSource, PaymentPreimage,
    PushError, MAX_ENCODED_LEN,
};
use monitor_events_flash::SimFlash;

const GEO: Geometry = Geometry {
    sector_size: 4096,
    sector_count: 8,
    write_size: 4,
    multiwrite: true,
};
/// Room for 16 pending events.
const N: usize = 16;
const CONFIG: Config<N> = Config::new(GEO, MAX_ENCODED_LEN);
type Store = EventStore<SimFlash, N, 4>;

fn channel(name: u8) -> ChannelId {
    ChannelId([name; 32])
}

fn short(c: ChannelId) -> char {
    c.0[0] as char
}

fn claim(on: ChannelId, n: u8, source: HtlcSource) -> MonitorEvent {
    let preimage = PaymentPreimage([n; 32]);
    MonitorEvent::HtlcResolved(HtlcResolution {
        channel: on,
        payment_hash: preimage.payment_hash(),
        amount_msat: 10_000 + u64::from(n),
        source,
        outcome: HtlcOutcome::Claimed {
            preimage,
            skimmed_fee_msat: None,
        },
        resolved_on_chain: false,
        user_channel_id: None,
    })
}

/// Ids as `#1, #2`.
fn list(ids: &[EventId]) -> String {
    let all: Vec<String> = ids.iter().map(ToString::to_string).collect();
    format!("[{}]", all.join(", "))
}

fn source_of(id: EventId, event: &MonitorEvent) -> MonitorEventSource {
    MonitorEventSource {
        channel: event.channel(),
        id,
    }
}

/// The device (store on flash) and everything the checks compare it with.
struct Device {
    store: Option<Store>,
    /// Returned pushes not yet acked.
    pending: BTreeMap<EventId, MonitorEvent>,
    /// Returned acks.
    acked: BTreeSet<EventId>,
    /// What the channel manager knows is in flight: channel -> highest update.
    in_flight: BTreeMap<ChannelId, u64>,
    declared: bool,
    released: BTreeSet<EventId>,
    unsafe_releases: u64,
    lost: u64,
    replayed_after_ack: u64,
}

impl Device {
    fn new() -> Self {
        let store = Store::open(SimFlash::new(GEO), CONFIG).expect("a blank flash opens");
        Device {
            store: Some(store),
            pending: BTreeMap::new(),
            acked: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            declared: false,
            released: BTreeSet::new(),
            unsafe_releases: 0,
            lost: 0,
            replayed_after_ack: 0,
        }
    }

    fn s(&mut self) -> &mut Store {
        self.store.as_mut().expect("open")
    }

    fn push(&mut self, event: MonitorEvent) -> EventId {
        let id = self.s().push(&event).expect("room");
        self.pushed(id, event);
        id
    }

    fn pushed(&mut self, id: EventId, event: MonitorEvent) {
        if let MonitorEvent::UpdateCompleted { channel, update_id } = event {
            if self
                .in_flight
                .get(&channel)
                .is_some_and(|h| *h <= update_id)
            {
                self.in_flight.remove(&channel);
            }
        }
        self.pending.insert(id, event);
    }

    fn begin(&mut self, c: ChannelId, update: u64) {
        self.s().begin_update(c, update).expect("room for the gate");
        self.in_flight.insert(c, update);
    }

    /// The device declares what the channel manager says is in flight.
    fn declare(&mut self) {
        let list: Vec<(ChannelId, u64)> = self.in_flight.iter().map(|(c, u)| (*c, *u)).collect();
        self.s()
            .restore_in_flight(&list)
            .expect("room for the gates");
        self.declared = true;
    }

    /// Releases one event and checks it.
    fn release(&mut self) -> Option<(EventId, MonitorEvent)> {
        let (id, event) = self.s().release_next()?;
        let gated = !self.declared || self.in_flight.contains_key(&event.channel());
        if event.is_htlc() && gated {
            println!("    UNSAFE: HTLC event {id} released while its channel is gated");
            self.unsafe_releases += 1;
        }
        if !self.released.insert(id) {
            println!("    UNSAFE: {id} released twice in one run");
            self.unsafe_releases += 1;
        }
        if self.acked.contains(&id) {
            println!("    REPLAYED: {id} released after its ack returned");
            self.replayed_after_ack += 1;
        } else if self.pending.get(&id) != Some(&event) {
            println!("    LOST: {id} released differs from what was pushed");
            self.lost += 1;
        }
        Some((id, event))
    }

    fn release_all(&mut self) -> Vec<(EventId, MonitorEvent)> {
        std::iter::from_fn(|| self.release()).collect()
    }

    fn ack(&mut self, source: MonitorEventSource) {
        assert_eq!(self.s().ack(source), Ok(AckOutcome::Acked));
        self.pending.remove(&source.id);
        self.acked.insert(source.id);
    }

    /// The device reboots: RAM is gone, the flash stays. Checks every returned
    /// push and ack against what the store recovered.
    fn restart(&mut self) {
        let flash = self.store.take().expect("open").into_medium();
        self.store = Some(Store::open(flash, CONFIG).expect("reopens"));
        self.declared = false;
        self.released.clear();
        let there: BTreeSet<EventId> = self.s().pending().map(|p| p.id).collect();
        for id in self.pending.keys() {
            if !there.contains(id) {
                println!("    LOST: {id} missing after the restart");
                self.lost += 1;
            }
        }
        for id in &self.acked {
            if there.contains(id) {
                println!("    REPLAYED: acked {id} pending after the restart");
                self.replayed_after_ack += 1;
            }
        }
        println!(
            "  device restarts: {} pending, every HTLC event held until the in-flight updates are declared",
            there.len()
        );
    }
}

/// The channel manager's side: the barrier and what it knows durably itself.
struct Consumer {
    barrier: AckBarrier<16, 4>,
}

fn outbound_claim(d: &mut Device) {
    println!("scenario 1: outbound claim held until PaymentSent is processed");
    d.declare();
    let a = channel(b'A');
    let mut c = Consumer {
        barrier: AckBarrier::new(),
    };
    let payment_sent = Condition::EventProcessed(1);
    let id = d.push(claim(
        a,
        1,
        HtlcSource::OutboundPayment {
            payment_id: [7; 32],
        },
    ));
    println!(
        "  monitor: claim {id} of our payment on channel {}",
        short(a)
    );
    for (event_id, event) in d.release_all() {
        c.barrier
            .hold(source_of(event_id, &event), &[payment_sent])
            .unwrap();
        println!("  consumer: {event_id} handled, ack held until PaymentSent is processed");
    }
    for round in 1..=2 {
        d.restart();
        d.declare();
        for (event_id, event) in d.release_all() {
            let held = c.barrier.is_held(&source_of(event_id, &event));
            println!("  consumer: {event_id} replayed (restart {round}), ack already held: {held}");
            assert!(held);
        }
    }
    assert_eq!(c.barrier.next_ready(), None);
    c.barrier.satisfy(&payment_sent);
    let ready = c.barrier.next_ready().expect("ready");
    d.ack(ready);
    println!("  user: PaymentSent processed; ack of {} sent", ready.id);
    d.restart();
    d.declare();
    let again = d.release_all();
    println!("  after the ack: {} event(s) replayed", again.len());
}

fn mpp_forward(d: &mut Device) {
    println!("scenario 2: three-part MPP forward, consumer and device restarts");
    d.declare();
    let (a, b, out) = (channel(b'a'), channel(b'b'), channel(b'O'));
    let parts = [
        Condition::HtlcRemoved {
            channel: a,
            htlc_id: 1,
        },
        Condition::HtlcRemoved {
            channel: b,
            htlc_id: 7,
        },
        Condition::HtlcRemoved {
            channel: b,
            htlc_id: 8,
        },
    ];
    let forwarded = Condition::EventProcessed(2);
    // The consumer's durable state: what it saw happen.
    let mut seen: Vec<Condition> = Vec::new();
    let id = d.push(claim(
        out,
        2,
        HtlcSource::Forward {
            prev_channel: a,
            prev_htlc_id: 1,
        },
    ));
    println!(
        "  monitor: claim {id} on channel {} of a forward; the event names inbound {}/1",
        short(out),
        short(a)
    );
    let mut c = Consumer {
        barrier: AckBarrier::new(),
    };
    let (event_id, event) = d.release().expect("released");
    let source = source_of(event_id, &event);
    c.barrier.hold(source, &[forwarded, parts[0]]).unwrap();
    c.barrier.add_conditions(&source, &parts[1..]).unwrap();
    println!("  consumer: ack held; two more inbound parts b/7, b/8 added from its own state");
    for p in [parts[0], forwarded] {
        c.barrier.satisfy(&p);
        seen.push(p);
    }
    println!(
        "  upstream: a/1 removed, PaymentForwarded processed; still waiting for {} condition(s)",
        c.barrier.waiting_for(&source).map_or(0, |w| w.len())
    );

    // The consumer restarts, the device does not: rewind, rebuild from `seen`.
    c = Consumer {
        barrier: AckBarrier::new(),
    };
    d.s().rewind();
    d.released.clear();
    for (event_id, event) in d.release_all() {
        let unmet: Vec<Condition> = [forwarded, parts[0], parts[1], parts[2]]
            .into_iter()
            .filter(|x| !seen.contains(x))
            .collect();
        c.barrier.hold(source_of(event_id, &event), &unmet).unwrap();
        println!(
            "  consumer restarts: rewind releases {event_id} again, held on the {} unmet part(s)",
            unmet.len()
        );
    }
    c.barrier.satisfy(&parts[1]);
    seen.push(parts[1]);
    println!("  upstream: b/7 removed");

    d.restart();
    d.declare();
    for (event_id, event) in d.release_all() {
        let held = c.barrier.is_held(&source_of(event_id, &event));
        println!("  consumer: {event_id} replayed after the device restart, already held: {held}");
        assert!(held);
    }
    assert_eq!(c.barrier.next_ready(), None, "b/8 is still in place");
    c.barrier.satisfy(&parts[2]);
    let ready = c.barrier.next_ready().expect("ready");
    d.ack(ready);
    println!("  upstream: b/8 removed; ack of {} sent", ready.id);
    d.restart();
    d.declare();
    println!(
        "  after the ack: {} event(s) replayed",
        d.release_all().len()
    );
}

fn update_across_restart(d: &mut Device) {
    println!("scenario 3: a monitor update in flight across a device restart");
    d.declare();
    let (g, other) = (channel(b'G'), channel(b'H'));
    d.begin(g, 41);
    let htlc = d.push(claim(
        g,
        3,
        HtlcSource::Forward {
            prev_channel: other,
            prev_htlc_id: 4,
        },
    ));
    let confirmed = d.push(MonitorEvent::CommitmentTxConfirmed { channel: other });
    let out: Vec<EventId> = d.release_all().into_iter().map(|(id, _)| id).collect();
    println!(
        "  update 41 of {} in flight; claim {htlc} pushed; released: {}",
        short(g),
        list(&out)
    );
    assert_eq!(out, [confirmed]);
    d.restart();
    // The unsafe order: release before the declaration. Nothing HTLC comes out.
    let early: Vec<EventId> = d.release_all().into_iter().map(|(id, _)| id).collect();
    println!(
        "  released before the declaration: {} (the claim waits)",
        list(&early)
    );
    d.declare();
    d.begin(g, 42);
    println!(
        "  declared: update 41 of {} in flight; update 42 begins",
        short(g)
    );
    assert!(d.release_all().is_empty());
    d.restart();
    d.declare();
    let again: Vec<EventId> = d.release_all().into_iter().map(|(id, _)| id).collect();
    assert_eq!(again, [confirmed]);
    println!(
        "  device restarts again with 41 and 42 in flight: released {}, the claim still waits",
        list(&again)
    );
    let done = d.push(MonitorEvent::UpdateCompleted {
        channel: g,
        update_id: 42,
    });
    let out = d.release_all();
    println!(
        "  UpdateCompleted {{ {}, 42 }} pushed as {done}: completes 41 and 42; released: {}",
        short(g),
        list(&out.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    );
    for (id, event) in out {
        d.ack(source_of(id, &event));
    }
    d.ack(MonitorEventSource {
        channel: other,
        id: confirmed,
    });
    d.restart();
    d.declare();
    println!(
        "  after the acks: {} event(s) replayed",
        d.release_all().len()
    );
}

fn force_close_full(d: &mut Device) {
    println!("scenario 4: a force-close resolves 40 HTLCs into a store with room for {N}");
    d.declare();
    let f = channel(b'F');
    let mut outbox: Vec<MonitorEvent> = (0..40)
        .map(|i| {
            claim(
                f,
                100 + i,
                HtlcSource::Forward {
                    prev_channel: channel(b'p'),
                    prev_htlc_id: u64::from(i),
                },
            )
        })
        .collect();
    outbox.reverse(); // pop from the end, in order
    let (mut batches, mut refused, mut restarts) = (0, 0, 0);
    let mut scratch = vec![0u8; N * MAX_ENCODED_LEN];
    let mut ids = vec![EventId(0); N];
    while !outbox.is_empty() || !d.pending.is_empty() {
        // The monitor pushes what fits as one batch; a refused event stays queued.
        let want = outbox.len().min(8);
        let n = want.min(d.s().free_slots());
        if n < want {
            refused += 1;
        }
        let mut restart_now = false;
        if n > 0 {
            let batch: Vec<MonitorEvent> =
                outbox[outbox.len() - n..].iter().rev().cloned().collect();
            match d.s().push_batch(&batch, &mut scratch, &mut ids) {
                Ok(()) => {
                    outbox.truncate(outbox.len() - n);
                    for (id, e) in ids.iter().zip(batch) {
                        d.pushed(*id, e);
                    }
                    batches += 1;
                    restart_now = batches % 3 == 2;
                }
                Err(PushError::Full) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        if restart_now {
            d.restart();
            d.declare();
            restarts += 1;
        }
        // The consumer handles five events and acks them in one batch.
        let handled: Vec<MonitorEventSource> = (0..5)
            .filter_map(|_| d.release())
            .map(|(id, e)| source_of(id, &e))
            .collect();
        let mut outcomes = vec![AckOutcome::Acked; handled.len()];
        d.s().ack_batch(&handled, &mut outcomes).unwrap();
        for s in &handled {
            d.pending.remove(&s.id);
            d.acked.insert(s.id);
        }
    }
    println!(
        "  {batches} batches pushed, {refused} times short of room (kept, retried after acks), {restarts} restarts, {} acked",
        d.acked.len()
    );
    d.restart();
    d.declare();
    println!("  at the end: {} event(s) replayed", d.release_all().len());
}

/// A scenario's name and body.
type Scenario = (&'static str, fn(&mut Device));

fn main() {
    let scenarios: [Scenario; 4] = [
        ("outbound claim", outbound_claim),
        ("MPP forward", mpp_forward),
        ("update across restart", update_across_restart),
        ("force-close, full store", force_close_full),
    ];
    let (mut unsafe_releases, mut lost, mut replayed) = (0, 0, 0);
    for (_, run) in &scenarios {
        let mut d = Device::new();
        run(&mut d);
        unsafe_releases += d.unsafe_releases;
        lost += d.lost;
        replayed += d.replayed_after_ack;
    }
    println!(
        "ldk choreography: {} scenarios, {unsafe_releases} unsafe releases, {lost} lost, {replayed} replayed after ack",
        scenarios.len()
    );
    if unsafe_releases + lost + replayed != 0 {
        std::process::exit(1);
    }
}
