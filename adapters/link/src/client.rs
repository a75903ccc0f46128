//! [`LinkClient`]: the host end over any blocking `Read + Write` stream (a serial
//! port, a TCP socket), with dedup and ack repair built in (feature `std`).
//!
//! # With an ack barrier
//!
//! The consumer acks an event only once it irrevocably handled what the event led
//! to; [`AckBarrier`](monitor_events::AckBarrier) holds the ack until then. Here an
//! outbound claim waits for the user's PaymentSent, over an in-memory stream that
//! plays a device:
//!
//! ```
//! use monitor_events::{AckBarrier, ChannelId, Condition, Config, EventStore, Geometry,
//!     MonitorEvent, MonitorEventSource, MAX_ENCODED_LEN};
//! use monitor_events_flash::SimFlash;
//! use monitor_events_link::{DeviceLink, LinkClient, MAX_FRAME_LEN};
//! use std::io::{Read, Write};
//!
//! /// A device on the other end of a pipe: its link runs on every read.
//! struct Device { store: EventStore<SimFlash, 16>, link: DeviceLink, out: Vec<u8> }
//! impl Write for Device {
//!     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
//!         self.link.receive(&mut self.store, b);
//!         Ok(b.len())
//!     }
//!     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! }
//! impl Read for Device {
//!     fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
//!         let mut f = [0u8; MAX_FRAME_LEN];
//!         while self.out.len() < b.len() {
//!             let n = self.link.poll_transmit(&mut self.store, &mut f);
//!             if n == 0 { break }
//!             self.out.extend_from_slice(&f[..n]);
//!         }
//!         if self.out.is_empty() {
//!             return Err(std::io::ErrorKind::WouldBlock.into()); // as a read timeout
//!         }
//!         let n = b.len().min(self.out.len());
//!         b[..n].copy_from_slice(&self.out[..n]);
//!         self.out.drain(..n);
//!         Ok(n)
//!     }
//! }
//!
//! const GEO: Geometry = Geometry { sector_size: 4096, sector_count: 8, write_size: 4, multiwrite: true };
//! let mut store = EventStore::open(SimFlash::new(GEO), Config::new(GEO, MAX_ENCODED_LEN)).unwrap();
//! store.no_updates_in_flight();
//! let channel = ChannelId([1; 32]);
//! let id = store.push(&MonitorEvent::CommitmentTxConfirmed { channel }).unwrap();
//! let device = Device { store, link: DeviceLink::new(), out: Vec::new() };
//!
//! let mut client = LinkClient::connect(device, 8).unwrap();
//! let mut barrier = AckBarrier::<32>::new();
//! let payment_sent = Condition::EventProcessed(1);
//! while let Some(d) = client.next_event().unwrap() {
//!     // Hand `d.event` to the channel manager, then hold its ack.
//!     barrier.hold(d.source(), &[payment_sent]).unwrap();
//! }
//! // Later the user processed PaymentSent: the ack may go.
//! barrier.satisfy(&payment_sent);
//! while let Some(source) = barrier.next_ready() {
//!     client.ack(source).unwrap();
//! }
//! client.flush_acks().unwrap();
//! assert_eq!(client.unconfirmed(), 0, "the device confirmed the ack");
//! assert_eq!(client.get_mut().store.pending_count(), 0);
//! # let _ = id;
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, ErrorKind, Read, Write};

use monitor_events::{EventId, MonitorEvent, MonitorEventSource};

use crate::{AckStatus, Counters, HostEvent, HostLink, MAX_FRAME_LEN};

/// How many bytes may arrive before the first valid frame before the peer is
/// declared not a monitor-events device.
pub const NOT_A_DEVICE_AFTER: usize = 4 * MAX_FRAME_LEN;

/// Why the client stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkError {
    /// The stream failed (a read timeout is not an error: `next_event` answers
    /// `Ok(None)`).
    Io(io::Error),
    /// The stream ended.
    Closed,
    /// The device speaks another protocol version.
    ProtocolMismatch {
        /// The device's version.
        device: u16,
        /// Ours.
        host: u16,
    },
    /// No valid frame in the first [`NOT_A_DEVICE_AFTER`] bytes: the peer is not
    /// a monitor-events device.
    NotMonitorEvents {
        /// Bytes received.
        bytes: u64,
    },
    /// The device refused an ack (an id it never assigned, or the wrong channel):
    /// a bug in the consumer.
    AckRefused {
        /// The id.
        id: EventId,
        /// What the device said.
        outcome: AckStatus,
    },
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Io(e) => write!(f, "link I/O: {e}"),
            LinkError::Closed => f.write_str("the device closed the link"),
            LinkError::ProtocolMismatch { device, host } => write!(
                f,
                "protocol mismatch: the device speaks monitor-events link v{device}, this host v{host}"
            ),
            LinkError::NotMonitorEvents { bytes } => write!(
                f,
                "not a monitor-events device: no valid frame in the first {bytes} bytes"
            ),
            LinkError::AckRefused { id, outcome } => {
                write!(f, "the device refused the ack of {id}: {outcome:?}")
            }
        }
    }
}

impl std::error::Error for LinkError {}

impl From<io::Error> for LinkError {
    fn from(e: io::Error) -> Self {
        LinkError::Io(e)
    }
}

/// One event handed to the consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Its id.
    pub id: EventId,
    /// The event.
    pub event: MonitorEvent,
}

impl Delivery {
    /// What its ack names.
    pub fn source(&self) -> MonitorEventSource {
        MonitorEventSource {
            channel: self.event.channel(),
            id: self.id,
        }
    }
}

/// What the device said in its last `Hello`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The id its next push will get.
    pub next_id: EventId,
    /// Events pending on it then.
    pub pending: u32,
}

/// The host end over a blocking stream: yields each event once (dedup by id),
/// takes acks, repairs lost frames.
///
/// - A duplicate of an event the consumer holds is not yielded again; a
///   duplicate of an event it acked (no `AckResult` yet) re-sends the ack.
/// - When a read times out ([`ErrorKind::WouldBlock`] or [`ErrorKind::TimedOut`]:
///   set the stream's read timeout), [`next_event`](Self::next_event) answers
///   `Ok(None)` after sending `Resume` and every unconfirmed ack again: a lost
///   frame costs one timeout.
/// - A device `Hello` (the device restarted) re-sends every unconfirmed ack.
/// - A restarted client sees every un-acked event again.
///
/// Credit: events the consumer holds (delivered, not yet acked) keep their
/// window slots, and after a `Resume` they are sent first again (lowest ids
/// first). Grant a credit above the most acks the consumer holds at once, or
/// new events stop flowing until it acks.
pub struct LinkClient<T: Read + Write> {
    io: T,
    link: HostLink<64>,
    credit: u32,
    /// Delivered to the consumer, not yet confirmed acked.
    delivered: BTreeSet<u64>,
    /// Acked by the consumer, not yet confirmed.
    acked: BTreeMap<u64, MonitorEventSource>,
    ready: VecDeque<Delivery>,
    inbox: Vec<u8>,
    device: Option<DeviceInfo>,
    valid_frames: u64,
}

impl<T: Read + Write> LinkClient<T> {
    /// A client that has sent nothing yet; the greeting (`Hello`, `Resume`,
    /// `Credit`) goes out with the first call that talks.
    pub fn new(io: T, credit: u32) -> Self {
        LinkClient {
            io,
            link: HostLink::with_credit(credit),
            credit,
            delivered: BTreeSet::new(),
            acked: BTreeMap::new(),
            ready: VecDeque::new(),
            inbox: Vec::new(),
            device: None,
            valid_frames: 0,
        }
    }

    /// Greets the device and waits for its `Hello`. Fails with
    /// [`LinkError::ProtocolMismatch`] or [`LinkError::NotMonitorEvents`] for a
    /// wrong peer; keeps waiting through read timeouts (re-greeting each time).
    pub fn connect(io: T, credit: u32) -> Result<Self, LinkError> {
        let mut c = Self::new(io, credit);
        c.flush()?;
        while c.device.is_none() {
            if !c.read_some()? {
                c.link.hello().ok();
                c.flush()?;
            }
        }
        c.flush()?;
        Ok(c)
    }

    /// The next event not yet delivered; `Ok(None)` when a read timed out (after
    /// sending `Resume` and the unconfirmed acks again).
    pub fn next_event(&mut self) -> Result<Option<Delivery>, LinkError> {
        loop {
            if let Some(d) = self.ready.pop_front() {
                return Ok(Some(d));
            }
            self.flush()?;
            if !self.read_some()? {
                self.idle()?;
                return Ok(None);
            }
        }
    }

    /// Acks an event: sends it now. Its confirmation (an `AckResult`) arrives
    /// with later reads; [`unconfirmed`](Self::unconfirmed) counts the rest.
    pub fn ack(&mut self, source: MonitorEventSource) -> Result<(), LinkError> {
        self.acked.insert(source.id.0, source);
        if self.link.ack(source).is_err() {
            self.flush()?;
            self.link.ack(source).ok();
        }
        self.flush()
    }

    /// Reads until every ack sent is confirmed, re-sending them on each read
    /// timeout. Events that arrive meanwhile wait for
    /// [`next_event`](Self::next_event).
    pub fn flush_acks(&mut self) -> Result<(), LinkError> {
        while !self.acked.is_empty() {
            self.flush()?;
            if !self.read_some()? {
                self.idle()?;
            }
        }
        Ok(())
    }

    /// The line went quiet: every unconfirmed ack, `Credit` and `Resume` again
    /// (any of them may have been lost).
    pub fn idle(&mut self) -> Result<(), LinkError> {
        self.resend_acks()?;
        if self.link.credit(self.credit).is_err() || self.link.resume().is_err() {
            self.flush()?;
            self.link.credit(self.credit).ok();
            self.link.resume().ok();
        }
        self.flush()
    }

    /// Acks sent and not yet confirmed by the device.
    pub fn unconfirmed(&self) -> usize {
        self.acked.len()
    }

    /// What the device said in its last `Hello`.
    pub fn device(&self) -> Option<DeviceInfo> {
        self.device
    }

    /// What was received and dropped.
    pub fn counters(&self) -> &Counters {
        self.link.counters()
    }

    /// The stream.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// The stream back.
    pub fn into_inner(self) -> T {
        self.io
    }

    fn resend_acks(&mut self) -> Result<(), LinkError> {
        let sources: Vec<MonitorEventSource> = self.acked.values().copied().collect();
        for chunk in sources.chunks(crate::MAX_ACK_BATCH) {
            if self.link.ack_batch(chunk).is_err() {
                self.flush()?;
                self.link.ack_batch(chunk).ok();
            }
        }
        Ok(())
    }

    /// Sends every queued frame.
    fn flush(&mut self) -> Result<(), LinkError> {
        let mut frame = [0u8; MAX_FRAME_LEN];
        loop {
            let n = self.link.poll_transmit(&mut frame);
            if n == 0 {
                break;
            }
            self.io.write_all(&frame[..n])?;
        }
        self.io.flush()?;
        Ok(())
    }

    /// One read; handles what it brought. `false` on a read timeout.
    fn read_some(&mut self) -> Result<bool, LinkError> {
        let mut buf = [0u8; 512];
        let n = match self.io.read(&mut buf) {
            Ok(0) => return Err(LinkError::Closed),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(false)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        self.inbox.extend_from_slice(&buf[..n]);
        let mut used = 0;
        while used < self.inbox.len() {
            let (k, event) = self.link.receive(&self.inbox[used..]);
            used += k;
            if let Some(event) = event {
                self.valid_frames += 1;
                self.handle(event)?;
            }
        }
        self.inbox.clear();
        let c = self.link.counters();
        if self.valid_frames == 0 && c.bytes_in as usize > NOT_A_DEVICE_AFTER {
            return Err(LinkError::NotMonitorEvents { bytes: c.bytes_in });
        }
        Ok(true)
    }

    fn handle(&mut self, event: HostEvent) -> Result<(), LinkError> {
        match event {
            HostEvent::ProtocolMismatch { device, host } => {
                return Err(LinkError::ProtocolMismatch { device, host })
            }
            HostEvent::Hello {
                next_id, pending, ..
            } => {
                let first = self.device.is_none();
                self.device = Some(DeviceInfo { next_id, pending });
                // The device (re)started: our credit, and acks it had not made
                // durable yet, may be lost with its RAM.
                self.link.credit(self.credit).ok();
                if !first {
                    self.resend_acks()?;
                }
            }
            HostEvent::Event { id, event } => {
                if let Some(source) = self.acked.get(&id.0).copied() {
                    // Acked, unconfirmed, and here again: the ack or its
                    // result was lost.
                    if self.link.ack(source).is_err() {
                        self.flush()?;
                        self.link.ack(source).ok();
                    }
                } else if self.delivered.insert(id.0) {
                    self.ready.push_back(Delivery { id, event });
                }
            }
            HostEvent::AckResult { id, outcome } => {
                if outcome.is_success() {
                    self.acked.remove(&id.0);
                    self.delivered.remove(&id.0);
                } else {
                    self.acked.remove(&id.0);
                    return Err(LinkError::AckRefused { id, outcome });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{encode_device, parse_host, DeviceHeader};
    use crate::{Direction, FrameReader, HostMessage, MAX_FRAME_LEN};
    use monitor_events::ChannelId;

    /// A scripted peer: each read hands out the next chunk (an empty chunk is a
    /// read timeout); writes are kept.
    struct Script {
        reads: VecDeque<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.reads.pop_front() {
                Some(c) if c.is_empty() => Err(ErrorKind::WouldBlock.into()),
                Some(mut c) => {
                    let n = c.len().min(buf.len());
                    buf[..n].copy_from_slice(&c[..n]);
                    if n < c.len() {
                        self.reads.push_front(c.split_off(n));
                    }
                    Ok(n)
                }
                None => Ok(0),
            }
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn frame(head: DeviceHeader, event: &[u8]) -> Vec<u8> {
        let mut out = [0u8; MAX_FRAME_LEN];
        let n = encode_device(&head, event, &mut out).unwrap();
        out[..n].to_vec()
    }

    fn hello(protocol: u16) -> Vec<u8> {
        frame(
            DeviceHeader::Hello {
                protocol,
                next_id: 9,
                pending: 1,
            },
            &[],
        )
    }

    fn event(id: u64) -> (Vec<u8>, MonitorEventSource) {
        let channel = ChannelId([4; 32]);
        let e = MonitorEvent::CommitmentTxConfirmed { channel };
        let mut buf = [0u8; monitor_events::MAX_ENCODED_LEN];
        let f = frame(DeviceHeader::Event { id }, e.encode(&mut buf).unwrap());
        (
            f,
            MonitorEventSource {
                channel,
                id: EventId(id),
            },
        )
    }

    /// What the client wrote, as messages.
    fn sent(written: &[u8]) -> Vec<HostMessage> {
        let mut r = FrameReader::<512>::new();
        let mut c = Counters::default();
        let mut rest = written;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (n, got) = r.feed(Direction::HostToDevice, rest, &mut c);
            rest = &rest[n..];
            if let Some(Ok(body)) = got {
                out.push(parse_host(body).unwrap());
            }
        }
        out
    }

    fn client(reads: Vec<Vec<u8>>) -> Result<LinkClient<Script>, LinkError> {
        let script = Script {
            reads: reads.into(),
            written: Vec::new(),
        };
        LinkClient::connect(script, 4)
    }

    /// I9: a device of another version, and a peer that only sends noise, are
    /// refused with their own errors.
    #[test]
    fn i9_wrong_peers() {
        let e = client(vec![hello(3)]).err().unwrap();
        assert!(matches!(
            e,
            LinkError::ProtocolMismatch { device: 3, host: 1 }
        ));
        let noise = b"login: \0".repeat(NOT_A_DEVICE_AFTER / 8 + 2);
        let e = client(vec![noise]).err().unwrap();
        assert!(matches!(e, LinkError::NotMonitorEvents { .. }), "{e}");
        assert!(matches!(client(vec![]).err().unwrap(), LinkError::Closed));
    }

    /// I2: the greeting, then dedup: a duplicate of an event the consumer holds
    /// is not yielded; a duplicate of one it acked (no AckResult yet) re-sends
    /// the ack; a read timeout re-sends the unconfirmed acks, Credit and Resume;
    /// the AckResult confirms.
    #[test]
    fn i2_dedup_and_ack_repair() {
        let (e5, s5) = event(5);
        let (e6, _) = event(6);
        let mut c = client(vec![hello(1), [e5.clone(), e6.clone(), e6].concat()]).unwrap();
        let greeting = sent(&c.get_mut().written);
        assert_eq!(
            greeting,
            [
                HostMessage::Hello { protocol: 1 },
                HostMessage::Resume,
                HostMessage::Credit { n: 4 },
                HostMessage::Credit { n: 4 },
            ],
            "greeting, and credit again on the device's Hello"
        );
        assert_eq!(c.next_event().unwrap().unwrap().id, EventId(5));
        assert_eq!(c.next_event().unwrap().unwrap().id, EventId(6));
        c.ack(s5).unwrap();
        c.get_mut().written.clear();
        c.get_mut().reads.extend([e5, Vec::new()]);
        assert_eq!(c.next_event().unwrap(), None, "6 again is not yielded");
        let again = sent(&c.get_mut().written);
        assert_eq!(
            again[0],
            HostMessage::Ack(s5.into()),
            "the duplicate re-acks"
        );
        assert!(again.contains(&HostMessage::Resume), "the timeout resumes");
        assert_eq!(c.unconfirmed(), 1);
        let result = frame(
            DeviceHeader::AckResult {
                id: 5,
                outcome: AckStatus::AlreadyAcked,
            },
            &[],
        );
        c.get_mut().reads.push_back(result);
        c.flush_acks().unwrap();
        assert_eq!(c.unconfirmed(), 0, "AlreadyAcked is success");
        assert_eq!(c.device().unwrap().next_id, EventId(9));
    }
}
