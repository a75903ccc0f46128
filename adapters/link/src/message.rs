//! The messages: postcard enums, one per frame. Variant indices and field order
//! are the wire format; the golden frames in the tests pin them.
//!
//! Device → host ([`DeviceMessage`]):
//!
//! | index | message | fields (postcard) | meaning |
//! |---|---|---|---|
//! | 0 | `Hello` | protocol varint u16, next id varint u64, pending varint u32 | the device (re)started, or answers the host's `Hello` |
//! | 1 | `Event` | id varint u64, then the event's own encoding ([`MonitorEvent::encode`]) to the end of the payload | an un-acked event |
//! | 2 | `AckResult` | id varint u64, [`AckStatus`] index | what an ack did; durable before it is sent |
//!
//! Host → device ([`HostMessage`]):
//!
//! | index | message | fields (postcard) | meaning |
//! |---|---|---|---|
//! | 0 | `Hello` | protocol varint u16 | the host (re)started: answer with `Hello` |
//! | 1 | `Ack` | channel 32 B, id varint u64 | ack one event |
//! | 2 | `AckBatch` | count varint (1..=[`MAX_ACK_BATCH`]), then as `Ack` each | ack several events with one sync |
//! | 3 | `Credit` | n varint u32 | send at most n events ahead of their `AckResult` |
//! | 4 | `Resume` | | rewind: send every un-acked event again, from the start |
//!
//! Index 0 with the protocol as its first field is fixed for every version, so a
//! peer of another version is recognised and reported, not taken for noise.

use heapless::Vec;
use monitor_events::{AckError, AckOutcome, ChannelId, EventId, MonitorEvent, MonitorEventSource};
use serde::{Deserialize, Serialize};

use crate::frame::{encode, Direction};

/// The protocol version both ends announce in `Hello`.
pub const PROTOCOL: u16 = 1;

/// The most acks in one `AckBatch`.
pub const MAX_ACK_BATCH: usize = 8;

/// What the device did with an ack. `Acked` and `AlreadyAcked` are success: the ack
/// is durable (invariant I2); acks are idempotent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AckStatus {
    /// The event was pending and is acked now, durably.
    Acked,
    /// The event was acked before; nothing changed.
    AlreadyAcked,
    /// No event with this id was ever pushed; nothing changed.
    Unknown,
    /// The event is pending but the ack named another channel; nothing changed.
    WrongChannel,
}

impl AckStatus {
    /// Whether the ack is durable now (`Acked` or `AlreadyAcked`).
    pub const fn is_success(self) -> bool {
        matches!(self, AckStatus::Acked | AckStatus::AlreadyAcked)
    }

    /// The status of the store's answer to an ack.
    pub fn from_store(r: Result<AckOutcome, AckError>) -> Self {
        match r {
            Ok(AckOutcome::Acked) => AckStatus::Acked,
            Ok(AckOutcome::AlreadyAcked) => AckStatus::AlreadyAcked,
            Err(AckError::WrongChannel) => AckStatus::WrongChannel,
            Err(_) => AckStatus::Unknown,
        }
    }
}

/// An ack on the wire: the channel's 32 bytes and the id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WireSource {
    /// The channel of the event.
    pub channel: [u8; 32],
    /// The event's id.
    pub id: u64,
}

impl From<MonitorEventSource> for WireSource {
    fn from(s: MonitorEventSource) -> Self {
        WireSource {
            channel: s.channel.0,
            id: s.id.0,
        }
    }
}

impl From<WireSource> for MonitorEventSource {
    fn from(s: WireSource) -> Self {
        MonitorEventSource {
            channel: ChannelId(s.channel),
            id: EventId(s.id),
        }
    }
}

/// A message from the host to the device.
// No heap to box the batch into; messages live in fixed queues anyway.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HostMessage {
    /// The host (re)started; the device answers with its `Hello`.
    Hello {
        /// The host's [`PROTOCOL`].
        protocol: u16,
    },
    /// Ack one event.
    Ack(WireSource),
    /// Ack up to [`MAX_ACK_BATCH`] events with one sync.
    AckBatch(Vec<WireSource, MAX_ACK_BATCH>),
    /// Send at most `n` events ahead of their `AckResult` (replaces the last credit).
    Credit {
        /// The window.
        n: u32,
    },
    /// Send every un-acked event again, from the start (after a host restart, or
    /// when the host suspects a loss).
    Resume,
}

/// The header of a message from the device to the host; an `Event`'s encoded
/// event follows it to the end of the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DeviceHeader {
    /// The device (re)started or answers the host's `Hello`.
    Hello {
        /// The device's [`PROTOCOL`].
        protocol: u16,
        /// The id the next push will get.
        next_id: u64,
        /// Events pending (pushed, not acked).
        pending: u32,
    },
    /// An un-acked event; its encoding follows.
    Event {
        /// Its id.
        id: u64,
    },
    /// What an ack did.
    AckResult {
        /// The acked id.
        id: u64,
        /// The outcome.
        outcome: AckStatus,
    },
}

/// A checked message from the device.
// Events live in fixed buffers; no heap to box them into.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DeviceMessage {
    /// See [`DeviceHeader::Hello`].
    Hello {
        /// The device's protocol (equal to [`PROTOCOL`]; another one is a
        /// [`Malformed::Protocol`]).
        protocol: u16,
        /// The id the next push will get.
        next_id: EventId,
        /// Events pending.
        pending: u32,
    },
    /// An un-acked event.
    Event {
        /// Its id.
        id: EventId,
        /// The event, decoded and validated.
        event: MonitorEvent,
    },
    /// What an ack did.
    AckResult {
        /// The acked id.
        id: EventId,
        /// The outcome.
        outcome: AckStatus,
    },
}

/// Why a frame with a good CRC holds no message this end understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Malformed {
    /// A `Hello` of another protocol version.
    Protocol(u16),
    /// An unknown variant, a bad field, trailing bytes, or an event that does not
    /// decode.
    Unknown,
}

/// The protocol of a `Hello` payload (variant 0, protocol first), if it is one:
/// readable whatever else a `Hello` of another version carries.
fn hello_protocol(body: &[u8]) -> Option<u16> {
    let (tag, rest) = postcard::take_from_bytes::<u32>(body).ok()?;
    if tag != 0 {
        return None;
    }
    postcard::take_from_bytes::<u16>(rest).ok().map(|(p, _)| p)
}

/// Parses a checked payload from the device.
pub fn parse_device(body: &[u8]) -> Result<DeviceMessage, Malformed> {
    if let Some(p) = hello_protocol(body) {
        if p != PROTOCOL {
            return Err(Malformed::Protocol(p));
        }
    }
    let (head, rest) =
        postcard::take_from_bytes::<DeviceHeader>(body).map_err(|_| Malformed::Unknown)?;
    let msg = match head {
        DeviceHeader::Event { id } => {
            let event = MonitorEvent::decode(rest).map_err(|_| Malformed::Unknown)?;
            return Ok(DeviceMessage::Event {
                id: EventId(id),
                event,
            });
        }
        DeviceHeader::Hello {
            protocol,
            next_id,
            pending,
        } => DeviceMessage::Hello {
            protocol,
            next_id: EventId(next_id),
            pending,
        },
        DeviceHeader::AckResult { id, outcome } => DeviceMessage::AckResult {
            id: EventId(id),
            outcome,
        },
    };
    if !rest.is_empty() {
        return Err(Malformed::Unknown);
    }
    Ok(msg)
}

/// Parses a checked payload from the host.
pub fn parse_host(body: &[u8]) -> Result<HostMessage, Malformed> {
    if let Some(p) = hello_protocol(body) {
        if p != PROTOCOL {
            return Err(Malformed::Protocol(p));
        }
    }
    match postcard::take_from_bytes::<HostMessage>(body) {
        Ok((HostMessage::AckBatch(b), _)) if b.is_empty() => Err(Malformed::Unknown),
        Ok((m, [])) => Ok(m),
        _ => Err(Malformed::Unknown),
    }
}

/// Writes a device frame with header `head` (and, for an `Event`, the event's
/// encoding `event` after it) into `out`; its length, or `None` if `out` is too
/// short.
pub fn encode_device(head: &DeviceHeader, event: &[u8], out: &mut [u8]) -> Option<usize> {
    encode(Direction::DeviceToHost, head, event, out)
}

/// Writes a host frame into `out`; its length, or `None` if `out` is too short.
pub fn encode_host(msg: &HostMessage, out: &mut [u8]) -> Option<usize> {
    encode(Direction::HostToDevice, msg, &[], out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{frame_len_for, FrameReader};
    use crate::{Counters, MAX_DEVICE_FRAME_LEN, MAX_HOST_FRAME_LEN};

    fn body(dir: Direction, frame: &[u8]) -> std::vec::Vec<u8> {
        let mut r = FrameReader::<512>::new();
        let (_, got) = r.feed(dir, frame, &mut Counters::default());
        got.unwrap().unwrap().to_vec()
    }

    /// The wire format: golden payloads of every message (the variant indices and
    /// field order are the protocol).
    #[test]
    fn golden_payloads() {
        let mut out = [0u8; MAX_HOST_FRAME_LEN];
        let src = WireSource {
            channel: [7; 32],
            id: 300,
        };
        let cases: [(HostMessage, std::vec::Vec<u8>); 5] = [
            (HostMessage::Hello { protocol: 1 }, std::vec![0, 1]),
            (HostMessage::Ack(src), {
                let mut v = std::vec![1];
                v.extend([7; 32]);
                v.extend([0xac, 0x02]);
                v
            }),
            (HostMessage::AckBatch(Vec::from_slice(&[src]).unwrap()), {
                let mut v = std::vec![2, 1];
                v.extend([7; 32]);
                v.extend([0xac, 0x02]);
                v
            }),
            (HostMessage::Credit { n: 8 }, std::vec![3, 8]),
            (HostMessage::Resume, std::vec![4]),
        ];
        for (msg, want) in cases {
            let n = encode_host(&msg, &mut out).unwrap();
            let b = body(Direction::HostToDevice, &out[..n]);
            assert_eq!(b, want, "{msg:?}");
            assert_eq!(parse_host(&b), Ok(msg));
        }
        let mut out = [0u8; MAX_DEVICE_FRAME_LEN];
        let hello = DeviceHeader::Hello {
            protocol: 1,
            next_id: 5,
            pending: 2,
        };
        let n = encode_device(&hello, &[], &mut out).unwrap();
        assert_eq!(body(Direction::DeviceToHost, &out[..n]), [0, 1, 5, 2]);
        let result = DeviceHeader::AckResult {
            id: 5,
            outcome: AckStatus::WrongChannel,
        };
        let n = encode_device(&result, &[], &mut out).unwrap();
        assert_eq!(body(Direction::DeviceToHost, &out[..n]), [2, 5, 3]);
        let ev = MonitorEvent::UpdateCompleted {
            channel: ChannelId([1; 32]),
            update_id: 9,
        };
        let mut enc = [0u8; monitor_events::MAX_ENCODED_LEN];
        let enc = ev.encode(&mut enc).unwrap();
        let n = encode_device(&DeviceHeader::Event { id: 127 }, enc, &mut out).unwrap();
        let b = body(Direction::DeviceToHost, &out[..n]);
        assert_eq!(b[..2], [1, 127]);
        assert_eq!(b[2..], *enc);
        assert_eq!(
            parse_device(&b),
            Ok(DeviceMessage::Event {
                id: EventId(127),
                event: ev
            })
        );
        // 1 B variant + 1 B id + 4 B CRC + 1 B COBS + 1 B delimiter.
        assert_eq!(n - enc.len(), 8, "frame overhead of an event with a 1 B id");
        assert!(n <= frame_len_for(2 + enc.len()));
    }

    /// I9: a Hello of another version is reported as such, whatever follows its
    /// protocol field; trailing bytes, empty batches, oversize batches and unknown
    /// variants are malformed.
    #[test]
    fn i9_versions_and_malformed() {
        assert_eq!(parse_host(&[0, 2]), Err(Malformed::Protocol(2)));
        assert_eq!(
            parse_host(&[0, 0x80, 0x01, 9, 9]),
            Err(Malformed::Protocol(128))
        );
        assert_eq!(parse_device(&[0, 7, 1, 1]), Err(Malformed::Protocol(7)));
        assert_eq!(parse_device(&[0, 1, 1, 1, 0]), Err(Malformed::Unknown));
        assert_eq!(parse_host(&[4, 0]), Err(Malformed::Unknown));
        assert_eq!(parse_host(&[5]), Err(Malformed::Unknown));
        assert_eq!(parse_host(&[2, 0]), Err(Malformed::Unknown));
        let mut nine = std::vec![2, 9];
        for _ in 0..9 {
            nine.extend([1; 32]);
            nine.push(1);
        }
        assert_eq!(parse_host(&nine), Err(Malformed::Unknown));
        assert_eq!(parse_device(&[1, 1, 3]), Err(Malformed::Unknown));
        assert_eq!(parse_device(&[2, 1, 4]), Err(Malformed::Unknown));
        assert_eq!(parse_device(&[]), Err(Malformed::Unknown));
    }
}
