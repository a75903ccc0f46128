//! The host end: a sans-IO state machine. Bytes from the line go in with
//! [`HostLink::receive`], which hands out [`HostEvent`]s; acks, `Credit` and
//! `Resume` are queued and come out of [`HostLink::poll_transmit`] as frames.
//! `no_std`, no heap; `LinkClient` (feature `std`) wraps it
//! over a stream.
//!
//! # Duplicates
//!
//! Delivery is at least once: an event comes again after a `Resume`, after a
//! device restart, and after a host restart. The host dedups by id; ids are unique
//! (I3). [`Seen`] is the bounded helper for it: it remembers the ids delivered and
//! not yet confirmed acked (an `AckResult` of `Acked` or `AlreadyAcked`); once
//! confirmed, an id never comes again (I2), so it is forgotten. A restarted host
//! starts with an empty `Seen` and sees every un-acked event once more: the
//! consumer's own durable state decides what it already handled, as it must for
//! a device restart anyway.

use heapless::{Deque, Vec};
use monitor_events::{EventId, MonitorEvent, MonitorEventSource};

use crate::frame::{Direction, FrameReader};
use crate::message::{encode_host, parse_device, DeviceMessage, HostMessage, Malformed};
use crate::{AckStatus, Counters, MAX_ACK_BATCH, MAX_DEVICE_FRAME_LEN, MAX_HOST_FRAME_LEN};
use crate::{WireSource, PROTOCOL};

/// What the host end hands out.
// No heap to box the event into.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HostEvent {
    /// The device (re)started, or answered the host's `Hello`.
    Hello {
        /// Its protocol, equal to [`PROTOCOL`].
        protocol: u16,
        /// The id its next push will get.
        next_id: EventId,
        /// Events pending on it.
        pending: u32,
    },
    /// An un-acked event (possibly again: dedup by id).
    Event {
        /// Its id.
        id: EventId,
        /// The event, decoded and validated.
        event: MonitorEvent,
    },
    /// What an ack did; `Acked` and `AlreadyAcked` mean it is durable.
    AckResult {
        /// The acked id.
        id: EventId,
        /// The outcome.
        outcome: AckStatus,
    },
    /// The device speaks another protocol version: stop.
    ProtocolMismatch {
        /// The device's version.
        device: u16,
        /// Ours, [`PROTOCOL`].
        host: u16,
    },
}

/// The host's queue of frames to send is full: send ([`HostLink::poll_transmit`])
/// and try again. Nothing was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QueueFull;

impl core::fmt::Display for QueueFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the link's send queue is full")
    }
}

impl core::error::Error for QueueFull {}

/// The host end of the link with a queue of up to `Q` messages to send.
#[derive(Clone, Debug)]
pub struct HostLink<const Q: usize = 16> {
    rx: FrameReader<{ MAX_DEVICE_FRAME_LEN - 1 }>,
    tx: Deque<HostMessage, Q>,
    counters: Counters,
}

impl<const Q: usize> HostLink<Q> {
    /// A host end that greets the device: `Hello`, `Resume` (whatever the device
    /// released before anyone listened comes again) and `Credit { n: credit }`
    /// (after `Resume`, so nothing is sent twice at the start).
    ///
    /// # Panics
    /// If `Q < 3`.
    pub fn with_credit(credit: u32) -> Self {
        let mut link = HostLink {
            rx: FrameReader::new(),
            tx: Deque::new(),
            counters: Counters::default(),
        };
        let greeting = [
            HostMessage::Hello { protocol: PROTOCOL },
            HostMessage::Resume,
            HostMessage::Credit { n: credit },
        ];
        for m in greeting {
            assert!(
                link.tx.push_back(m).is_ok(),
                "HostLink: Q must be at least 3"
            );
        }
        link
    }

    /// Consumes bytes up to the end of the first frame that makes a
    /// [`HostEvent`]; returns how many bytes it consumed and the event. Call
    /// again with the rest. Damaged, oversize and unknown frames are dropped and
    /// counted; never panics on any bytes (I9).
    pub fn receive(&mut self, bytes: &[u8]) -> (usize, Option<HostEvent>) {
        let mut used = 0;
        while used < bytes.len() {
            let (n, got) =
                self.rx
                    .feed(Direction::DeviceToHost, &bytes[used..], &mut self.counters);
            used += n;
            let parsed = match got {
                Some(Ok(body)) => parse_device(body),
                _ => continue,
            };
            let event = match parsed {
                Ok(DeviceMessage::Hello {
                    protocol,
                    next_id,
                    pending,
                }) => HostEvent::Hello {
                    protocol,
                    next_id,
                    pending,
                },
                Ok(DeviceMessage::Event { id, event }) => HostEvent::Event { id, event },
                Ok(DeviceMessage::AckResult { id, outcome }) => {
                    HostEvent::AckResult { id, outcome }
                }
                Err(Malformed::Protocol(device)) => {
                    self.counters.version += 1;
                    return (
                        used,
                        Some(HostEvent::ProtocolMismatch {
                            device,
                            host: PROTOCOL,
                        }),
                    );
                }
                Err(Malformed::Unknown) => {
                    self.counters.unknown += 1;
                    continue;
                }
            };
            self.counters.frames += 1;
            return (used, Some(event));
        }
        (used, None)
    }

    fn queue(&mut self, msgs: &[HostMessage]) -> Result<(), QueueFull> {
        if self.tx.capacity() - self.tx.len() < msgs.len() {
            self.counters.queue_full += 1;
            return Err(QueueFull);
        }
        for m in msgs {
            let _ = self.tx.push_back(m.clone());
        }
        Ok(())
    }

    /// Queues an ack. The device answers with an `AckResult`.
    pub fn ack(&mut self, source: MonitorEventSource) -> Result<(), QueueFull> {
        self.queue(&[HostMessage::Ack(source.into())])
    }

    /// Queues acks in `AckBatch`es of up to [`MAX_ACK_BATCH`] (one sync each on
    /// the device); all or nothing.
    pub fn ack_batch(&mut self, sources: &[MonitorEventSource]) -> Result<(), QueueFull> {
        let chunks = sources.len().div_ceil(MAX_ACK_BATCH);
        if self.tx.capacity() - self.tx.len() < chunks {
            self.counters.queue_full += 1;
            return Err(QueueFull);
        }
        for chunk in sources.chunks(MAX_ACK_BATCH) {
            let batch: Vec<WireSource, MAX_ACK_BATCH> = chunk.iter().map(|&s| s.into()).collect();
            let _ = self.tx.push_back(HostMessage::AckBatch(batch));
        }
        Ok(())
    }

    /// Queues `Resume`: the device sends every un-acked event again, from the
    /// lowest id. Send it when the line has been quiet while events were
    /// expected (a lost frame holds a window slot until then).
    pub fn resume(&mut self) -> Result<(), QueueFull> {
        self.queue(&[HostMessage::Resume])
    }

    /// Queues `Credit { n }`: the device sends at most `n` events ahead of their
    /// `AckResult`.
    pub fn credit(&mut self, n: u32) -> Result<(), QueueFull> {
        self.queue(&[HostMessage::Credit { n }])
    }

    /// Queues `Hello`: the device answers with its own.
    pub fn hello(&mut self) -> Result<(), QueueFull> {
        self.queue(&[HostMessage::Hello { protocol: PROTOCOL }])
    }

    /// Writes the next queued frame into `out` and returns its length; 0 when the
    /// queue is empty (or `out` is shorter than [`MAX_HOST_FRAME_LEN`]).
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> usize {
        if out.len() < MAX_HOST_FRAME_LEN {
            return 0;
        }
        match self.tx.pop_front() {
            Some(m) => encode_host(&m, out).unwrap_or(0),
            None => 0,
        }
    }

    /// Messages queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Forgets a partly received frame (after the line was reset).
    pub fn reset_receiver(&mut self) {
        self.rx.clear();
    }

    /// What was received and dropped.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// Dedup by id: the ids delivered and not yet confirmed acked, up to `M` of them
/// (at least the device's pending capacity `N` for exact dedup).
///
/// Beyond `M` it forgets nothing and dedups nothing more: [`deliver`](Self::deliver)
/// answers `true` (deliver) and counts [`overflowed`](Self::overflowed), so
/// delivery stays at least once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Seen<const M: usize> {
    ids: Vec<u64, M>,
    overflowed: u64,
}

impl<const M: usize> Seen<M> {
    /// Nothing seen.
    pub const fn new() -> Self {
        Seen {
            ids: Vec::new(),
            overflowed: 0,
        }
    }

    /// Whether to deliver event `id` to the consumer: `true` the first time,
    /// `false` for a duplicate of an id delivered and not yet confirmed.
    pub fn deliver(&mut self, id: EventId) -> bool {
        match self.ids.binary_search(&id.0) {
            Ok(_) => false,
            Err(at) => {
                if self.ids.insert(at, id.0).is_err() {
                    self.overflowed += 1;
                }
                true
            }
        }
    }

    /// Whether `id` was delivered and not yet confirmed.
    pub fn contains(&self, id: EventId) -> bool {
        self.ids.binary_search(&id.0).is_ok()
    }

    /// The device confirmed the ack of `id` (`Acked` or `AlreadyAcked`): it never
    /// comes again (I2), forget it.
    pub fn confirm(&mut self, id: EventId) {
        if let Ok(at) = self.ids.binary_search(&id.0) {
            self.ids.remove(at);
        }
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Deliveries that found it full (not deduplicated).
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{encode_device, DeviceHeader};
    use crate::MAX_FRAME_LEN;

    /// I9: a device Hello of another version gives ProtocolMismatch; garbage
    /// around frames is dropped and counted; the frames after it still read.
    #[test]
    fn i9_mismatch_and_garbage() {
        let mut host = HostLink::<4>::with_credit(1);
        let mut line = std::vec![1u8, 2, 3, 0, 0, 0, 0xff, 7, 0];
        let mut f = [0u8; MAX_FRAME_LEN];
        let other = DeviceHeader::Hello {
            protocol: 2,
            next_id: 0,
            pending: 0,
        };
        let n = encode_device(&other, &[], &mut f).unwrap();
        line.extend_from_slice(&f[..n]);
        let result = DeviceHeader::AckResult {
            id: 3,
            outcome: AckStatus::AlreadyAcked,
        };
        let n = encode_device(&result, &[], &mut f).unwrap();
        line.extend_from_slice(&f[..n]);
        let (k, e) = host.receive(&line);
        assert_eq!(e, Some(HostEvent::ProtocolMismatch { device: 2, host: 1 }));
        let (_, e) = host.receive(&line[k..]);
        assert_eq!(
            e,
            Some(HostEvent::AckResult {
                id: EventId(3),
                outcome: AckStatus::AlreadyAcked
            })
        );
        let c = host.counters();
        assert_eq!((c.damaged, c.version, c.frames), (2, 1, 1));
        assert_eq!(c.bytes_in, line.len() as u64);
    }

    /// The queue refuses whole when full and says so; a batch is split in
    /// frames of MAX_ACK_BATCH.
    #[test]
    fn queue_full_and_batches() {
        let mut host = HostLink::<4>::with_credit(1);
        let s = |i| MonitorEventSource {
            channel: monitor_events::ChannelId([0; 32]),
            id: EventId(i),
        };
        let many: std::vec::Vec<_> = (0..9).map(s).collect();
        assert_eq!(host.ack_batch(&many), Err(QueueFull));
        assert_eq!(host.queued(), 3);
        let mut out = [0u8; MAX_FRAME_LEN];
        while host.poll_transmit(&mut out) > 0 {}
        host.ack_batch(&many).unwrap();
        assert_eq!(host.queued(), 2);
    }

    /// Seen dedups until confirmed; beyond M it delivers (at least once).
    #[test]
    fn seen_dedups_until_confirmed() {
        let mut seen = Seen::<2>::new();
        assert!(seen.deliver(EventId(5)));
        assert!(!seen.deliver(EventId(5)));
        seen.confirm(EventId(5));
        assert!(seen.deliver(EventId(5)));
        assert!(seen.deliver(EventId(1)));
        assert!(seen.deliver(EventId(9)));
        assert!(seen.deliver(EventId(9)), "full: not remembered, delivered");
        assert_eq!(seen.overflowed(), 2);
    }
}
