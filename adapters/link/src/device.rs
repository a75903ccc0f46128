//! The device end: a sans-IO state machine that drives an [`EventStore`] from the
//! link. Bytes from the line go in with [`DeviceLink::receive`]; frames to send
//! come out of [`DeviceLink::poll_transmit`]. No UART, no clock, no heap.

use heapless::{Deque, Vec};
use monitor_events::journal::MonotonicCounter;
use monitor_events::{AckOutcome, EventStore, Medium, MonitorEventSource, MAX_ENCODED_LEN};

use crate::frame::{Direction, FrameReader};
use crate::message::{encode_device, parse_host, AckStatus, DeviceHeader, HostMessage, Malformed};
use crate::{Counters, MAX_ACK_BATCH, MAX_DEVICE_FRAME_LEN, MAX_HOST_FRAME_LEN, PROTOCOL};

/// The device end of the link, with a window of up to `W` events sent ahead of
/// their `AckResult` and a queue of up to `Q` `AckResult`s.
///
/// # What it does
///
/// | input | effect |
/// |---|---|
/// | (start) | `Hello` is the first frame; no event goes out before the host grants credit |
/// | `Hello` | answer with `Hello` (protocol, next id, pending count) |
/// | `Hello` of another protocol | ignored, counted in [`Counters::version`] |
/// | `Ack` | [`EventStore::ack`]: durable before the `AckResult` is queued (I2) |
/// | `AckBatch` | [`EventStore::ack_batch`] (one sync); if the store refuses it whole (an unknown id, a wrong channel), each ack alone, so each gets its own outcome |
/// | `Credit { n }` | at most `min(n, W)` events sent and not yet answered by an `AckResult` |
/// | `Resume` | [`EventStore::rewind`] and an empty window: every un-acked event goes out again, from the lowest id |
/// | damaged, oversize, unknown frames | dropped and counted; never a panic (I9) |
///
/// [`poll_transmit`](Self::poll_transmit) sends, in this order: the `Hello` when
/// due, queued `AckResult`s, then events from [`EventStore::release_next`] while
/// the window has room. Events of one release pass go out in id order (except
/// HTLC events held back by an in-flight update, which follow when it completes,
/// I5); each event is released once per pass (I4). The link acks nothing by
/// itself: only the host's acks reach the store.
///
/// # Losses
///
/// A lost `Event` frame keeps its window slot until the host sends `Resume`
/// (which the host does when the line has gone quiet); a lost `Ack` or
/// `AckResult` is repaired by the host acking again (`AlreadyAcked` is success).
///
/// # Restarts
///
/// After a device restart make a new `DeviceLink` on the reopened store: it says
/// `Hello`, and the store releases every un-acked event again. After a host
/// restart the host says `Hello`, `Credit` and `Resume`.
#[derive(Clone, Debug)]
pub struct DeviceLink<const W: usize = 16, const Q: usize = 16> {
    rx: FrameReader<{ MAX_HOST_FRAME_LEN - 1 }>,
    counters: Counters,
    hello_due: bool,
    credit: u32,
    /// Ids sent in this pass whose `AckResult` has not been queued yet.
    window: Vec<u64, W>,
    results: Deque<(u64, AckStatus), Q>,
    passes: u64,
}

impl<const W: usize, const Q: usize> Default for DeviceLink<W, Q> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize, const Q: usize> DeviceLink<W, Q> {
    /// A link that starts with `Hello` and no credit.
    pub const fn new() -> Self {
        DeviceLink {
            rx: FrameReader::new(),
            counters: Counters {
                bytes_in: 0,
                frames: 0,
                oversize: 0,
                damaged: 0,
                unknown: 0,
                version: 0,
                queue_full: 0,
            },
            hello_due: true,
            credit: 0,
            window: Vec::new(),
            results: Deque::new(),
            passes: 0,
        }
    }

    /// Consumes bytes from the line: acks go to the store (durable on return,
    /// I2) and queue `AckResult`s; `Credit`, `Resume` and `Hello` change what
    /// [`poll_transmit`](Self::poll_transmit) sends. Never panics on any bytes
    /// (I9); the store panics if its medium fails (I7).
    pub fn receive<M: Medium, const N: usize, const K: usize, C: MonotonicCounter>(
        &mut self,
        store: &mut EventStore<M, N, K, C>,
        bytes: &[u8],
    ) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (n, got) = self
                .rx
                .feed(Direction::HostToDevice, rest, &mut self.counters);
            rest = &rest[n..];
            let parsed = match got {
                Some(Ok(body)) => parse_host(body),
                _ => continue,
            };
            match parsed {
                Ok(msg) => {
                    self.counters.frames += 1;
                    self.handle(store, msg);
                }
                Err(Malformed::Protocol(_)) => self.counters.version += 1,
                Err(Malformed::Unknown) => self.counters.unknown += 1,
            }
        }
    }

    fn handle<M: Medium, const N: usize, const K: usize, C: MonotonicCounter>(
        &mut self,
        store: &mut EventStore<M, N, K, C>,
        msg: HostMessage,
    ) {
        match msg {
            HostMessage::Hello { .. } => self.hello_due = true,
            HostMessage::Ack(s) => {
                let source = MonitorEventSource::from(s);
                let status = AckStatus::from_store(store.ack(source));
                self.answer(source.id.0, status);
            }
            HostMessage::AckBatch(batch) => {
                let mut sources: Vec<MonitorEventSource, MAX_ACK_BATCH> = Vec::new();
                for s in &batch {
                    // Cannot fail: the batch holds at most MAX_ACK_BATCH.
                    let _ = sources.push(MonitorEventSource::from(*s));
                }
                let mut out = [AckOutcome::Acked; MAX_ACK_BATCH];
                let out = &mut out[..sources.len()];
                if store.ack_batch(&sources, out).is_ok() {
                    for (s, o) in sources.iter().zip(out.iter()) {
                        self.answer(s.id.0, AckStatus::from_store(Ok(*o)));
                    }
                } else {
                    for s in &sources {
                        let status = AckStatus::from_store(store.ack(*s));
                        self.answer(s.id.0, status);
                    }
                }
            }
            HostMessage::Credit { n } => self.credit = n,
            HostMessage::Resume => {
                store.rewind();
                self.window.clear();
                self.passes += 1;
            }
        }
    }

    /// Frees the event's window slot if the ack is durable, and queues the
    /// `AckResult`.
    fn answer(&mut self, id: u64, status: AckStatus) {
        if status.is_success() {
            self.window.retain(|&x| x != id);
        }
        if self.results.push_back((id, status)).is_err() {
            self.counters.queue_full += 1;
        }
    }

    /// Writes the next frame to send into `out` and returns its length; 0 when
    /// there is nothing to send (or `out` is shorter than
    /// [`MAX_DEVICE_FRAME_LEN`]). Releases at most one event per call.
    pub fn poll_transmit<M: Medium, const N: usize, const K: usize, C: MonotonicCounter>(
        &mut self,
        store: &mut EventStore<M, N, K, C>,
        out: &mut [u8],
    ) -> usize {
        if out.len() < MAX_DEVICE_FRAME_LEN {
            return 0;
        }
        if self.hello_due {
            self.hello_due = false;
            let hello = DeviceHeader::Hello {
                protocol: PROTOCOL,
                next_id: store.next_id().0,
                pending: u32::try_from(store.pending_count()).unwrap_or(u32::MAX),
            };
            return encode_device(&hello, &[], out).unwrap_or(0);
        }
        if let Some((id, outcome)) = self.results.pop_front() {
            let head = DeviceHeader::AckResult { id, outcome };
            return encode_device(&head, &[], out).unwrap_or(0);
        }
        let limit = W.min(usize::try_from(self.credit).unwrap_or(usize::MAX));
        if self.window.len() >= limit {
            return 0;
        }
        let Some((id, event)) = store.release_next() else {
            return 0;
        };
        let mut buf = [0u8; MAX_ENCODED_LEN];
        // The store validated the event at push and checked it at release, so it
        // encodes; if it did not, the next pass would try again.
        let Ok(bytes) = event.encode(&mut buf) else {
            return 0;
        };
        // Cannot fail: checked above.
        let _ = self.window.push(id.0);
        encode_device(&DeviceHeader::Event { id: id.0 }, bytes, out).unwrap_or(0)
    }

    /// What was received and dropped.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The credit the host granted (the window is the smaller of it and `W`).
    pub fn credit(&self) -> u32 {
        self.credit
    }

    /// Events sent in this pass and not yet answered by an `AckResult`.
    pub fn in_flight(&self) -> &[u64] {
        &self.window
    }

    /// `Resume`s handled so far: each starts a new release pass.
    pub fn passes(&self) -> u64 {
        self.passes
    }

    /// `AckResult`s queued and not yet sent.
    pub fn queued_results(&self) -> usize {
        self.results.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{HostEvent, HostLink};
    use crate::MAX_FRAME_LEN;
    use monitor_events::{ChannelId, Config, EventId, Geometry, MonitorEvent};
    use monitor_events_flash::SimFlash;

    const GEO: Geometry = Geometry {
        sector_size: 4096,
        sector_count: 8,
        write_size: 4,
        multiwrite: true,
    };
    type Store = EventStore<SimFlash, 16>;

    fn store() -> Store {
        let mut s = Store::open(SimFlash::new(GEO), Config::new(GEO, MAX_ENCODED_LEN)).unwrap();
        s.no_updates_in_flight();
        s
    }

    fn ev(i: u8) -> MonitorEvent {
        MonitorEvent::CommitmentTxConfirmed {
            channel: ChannelId([i; 32]),
        }
    }

    /// Runs both ends over a clean line until neither sends; returns what the
    /// host saw.
    fn pump(
        dev: &mut DeviceLink<4>,
        s: &mut Store,
        host: &mut HostLink,
    ) -> std::vec::Vec<HostEvent> {
        let mut seen = std::vec::Vec::new();
        let mut buf = [0u8; MAX_FRAME_LEN];
        loop {
            let mut idle = true;
            let n = host.poll_transmit(&mut buf);
            if n > 0 {
                idle = false;
                dev.receive(s, &buf[..n]);
            }
            let n = dev.poll_transmit(s, &mut buf);
            if n > 0 {
                idle = false;
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    let (k, e) = host.receive(rest);
                    rest = &rest[k..];
                    seen.extend(e);
                }
            }
            if idle {
                return seen;
            }
        }
    }

    fn event_ids(seen: &[HostEvent]) -> std::vec::Vec<u64> {
        seen.iter()
            .filter_map(|e| match e {
                HostEvent::Event { id, .. } => Some(id.0),
                _ => None,
            })
            .collect()
    }

    /// I4: Hello first; nothing before credit; then at most `credit` events ahead
    /// of their AckResult, in id order; acks free the window; Resume sends every
    /// un-acked event again from the lowest id; the link acks nothing itself.
    #[test]
    fn i4_credit_window_resume() {
        let mut s = store();
        for i in 0..6 {
            s.push(&ev(i)).unwrap();
        }
        let mut dev = DeviceLink::<4>::new();
        let mut out = [0u8; MAX_FRAME_LEN];
        let n = dev.poll_transmit(&mut s, &mut out);
        let mut host = HostLink::<16>::with_credit(0);
        let (_, e) = host.receive(&out[..n]);
        assert_eq!(
            e,
            Some(HostEvent::Hello {
                protocol: PROTOCOL,
                next_id: EventId(6),
                pending: 6
            })
        );
        assert!(
            event_ids(&pump(&mut dev, &mut s, &mut host)).is_empty(),
            "no credit"
        );
        host.credit(3).unwrap();
        let seen = pump(&mut dev, &mut s, &mut host);
        assert_eq!(
            event_ids(&seen),
            [0, 1, 2],
            "I4: within credit, in id order"
        );
        assert_eq!(dev.in_flight(), [0, 1, 2]);
        host.ack(MonitorEventSource {
            channel: ChannelId([1; 32]),
            id: EventId(1),
        })
        .unwrap();
        let seen = pump(&mut dev, &mut s, &mut host);
        assert_eq!(
            seen[0],
            HostEvent::AckResult {
                id: EventId(1),
                outcome: AckStatus::Acked
            }
        );
        assert_eq!(event_ids(&seen), [3], "one slot freed");
        host.credit(10).unwrap();
        assert_eq!(
            event_ids(&pump(&mut dev, &mut s, &mut host)),
            [4],
            "W = 4 caps it"
        );
        host.resume().unwrap();
        assert_eq!(event_ids(&pump(&mut dev, &mut s, &mut host)), [0, 2, 3, 4]);
        assert_eq!(dev.passes(), 2, "the greeting's Resume and this one");
        assert_eq!(s.pending_count(), 5, "the link acked nothing by itself");
    }

    /// I5: an HTLC event of a channel with an update in flight is not sent (and
    /// takes no credit) until the update completes; other events flow past it.
    #[test]
    fn i5_gated_htlc_events_wait() {
        use monitor_events::{HtlcOutcome, HtlcResolution, HtlcSource, PaymentPreimage};
        let mut s = store();
        let channel = ChannelId([1; 32]);
        s.begin_update(channel, 41).unwrap();
        let preimage = PaymentPreimage([9; 32]);
        let claim = MonitorEvent::HtlcResolved(HtlcResolution {
            channel,
            payment_hash: preimage.payment_hash(),
            amount_msat: 5_000,
            source: HtlcSource::OutboundPayment {
                payment_id: [3; 32],
            },
            outcome: HtlcOutcome::Claimed {
                preimage,
                skimmed_fee_msat: None,
            },
            resolved_on_chain: false,
            user_channel_id: None,
        });
        s.push(&claim).unwrap();
        s.push(&ev(2)).unwrap();
        let mut dev = DeviceLink::<4>::new();
        let mut host = HostLink::<16>::with_credit(1);
        assert_eq!(
            event_ids(&pump(&mut dev, &mut s, &mut host)),
            [1],
            "I5: held back"
        );
        assert_eq!(dev.in_flight(), [1], "the held event takes no credit");
        host.ack(MonitorEventSource {
            channel: ChannelId([2; 32]),
            id: EventId(1),
        })
        .unwrap();
        assert!(event_ids(&pump(&mut dev, &mut s, &mut host)).is_empty());
        assert!(s.complete_update(channel, 41));
        let seen = pump(&mut dev, &mut s, &mut host);
        assert_eq!(
            seen,
            [HostEvent::Event {
                id: EventId(0),
                event: claim
            }],
            "I5: sent once the update completed"
        );
    }

    /// I2, I9: a batch with an unknown id is answered ack by ack; the good acks
    /// are durable; the store is otherwise unchanged; repeated acks are
    /// AlreadyAcked.
    #[test]
    fn i2_batch_with_unknown_id() {
        let mut s = store();
        for i in 0..3 {
            s.push(&ev(i)).unwrap();
        }
        let mut dev = DeviceLink::<4>::new();
        let mut host = HostLink::<16>::with_credit(0);
        let src = |c: u8, id: u64| MonitorEventSource {
            channel: ChannelId([c; 32]),
            id: EventId(id),
        };
        host.ack_batch(&[src(0, 0), src(9, 1), src(2, 2), src(2, 77), src(0, 0)])
            .unwrap();
        let got: std::vec::Vec<_> = pump(&mut dev, &mut s, &mut host)
            .into_iter()
            .filter_map(|e| match e {
                HostEvent::AckResult { id, outcome } => Some((id.0, outcome)),
                _ => None,
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, AckStatus::Acked),
                (1, AckStatus::WrongChannel),
                (2, AckStatus::Acked),
                (77, AckStatus::Unknown),
                (0, AckStatus::AlreadyAcked)
            ]
        );
        let left: std::vec::Vec<u64> = s.pending().map(|p| p.id.0).collect();
        assert_eq!(left, [1], "I2: acked ones gone, the refused one stays");
    }
}
