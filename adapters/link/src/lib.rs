#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod device;
pub mod frame;
pub mod host;
pub mod message;

#[cfg(feature = "std")]
pub mod client;

#[cfg(feature = "std")]
pub use client::{Delivery, LinkClient, LinkError};
pub use device::DeviceLink;
pub use frame::{encode_payload, Direction, Dropped, FrameReader};
pub use host::{HostEvent, HostLink, Seen};
pub use message::{AckStatus, DeviceHeader, DeviceMessage, HostMessage, Malformed, WireSource};
pub use message::{MAX_ACK_BATCH, PROTOCOL};

use monitor_events::MAX_ENCODED_LEN;

/// Longest varint of a `u64` (an event id).
const ID_LEN: usize = 10;

/// Longest payload of a device frame, CRC excluded: an `Event` (variant, id, the
/// largest encoded event); `Hello` and `AckResult` are shorter.
pub const MAX_DEVICE_PAYLOAD: usize = 1 + ID_LEN + MAX_ENCODED_LEN;

/// Longest payload of a host frame, CRC excluded: an `AckBatch` of
/// [`MAX_ACK_BATCH`] acks (variant, count, each a 32 B channel and an id).
pub const MAX_HOST_PAYLOAD: usize = 1 + 1 + MAX_ACK_BATCH * (32 + ID_LEN);

/// Longest device frame on the line (COBS worst case and delimiter included):
/// the size of the buffer [`DeviceLink::poll_transmit`] needs.
pub const MAX_DEVICE_FRAME_LEN: usize = frame::frame_len_for(MAX_DEVICE_PAYLOAD);

/// Longest host frame on the line: the size of the buffer
/// [`HostLink::poll_transmit`] needs.
pub const MAX_HOST_FRAME_LEN: usize = frame::frame_len_for(MAX_HOST_PAYLOAD);

/// The longer of [`MAX_DEVICE_FRAME_LEN`] and [`MAX_HOST_FRAME_LEN`]: a buffer this
/// long holds any frame of either direction. A longer frame is dropped and counted
/// as [`Counters::oversize`].
pub const MAX_FRAME_LEN: usize = if MAX_DEVICE_FRAME_LEN > MAX_HOST_FRAME_LEN {
    MAX_DEVICE_FRAME_LEN
} else {
    MAX_HOST_FRAME_LEN
};

/// What one end of the link received and dropped. Every dropped frame is counted
/// once, in exactly one of `oversize`, `damaged`, `unknown` and `version`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// Bytes consumed from the line.
    pub bytes_in: u64,
    /// Frames accepted.
    pub frames: u64,
    /// Frames longer than the longest valid frame, dropped.
    pub oversize: u64,
    /// Frames with bad COBS or a CRC that does not match, dropped.
    pub damaged: u64,
    /// Frames with a good CRC and a message this end does not know (or a
    /// message meant for the other end), dropped.
    pub unknown: u64,
    /// `Hello` frames of another protocol version, dropped.
    pub version: u64,
    /// Device: `AckResult`s not sent because the queue was full (the acks were
    /// done; a repeated ack answers `AlreadyAcked`). Host: frames not queued.
    pub queue_full: u64,
}

impl Counters {
    /// Frames dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.oversize + self.damaged + self.unknown + self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frame bounds: the longest payload of each direction fits its bound,
    /// and a host frame of 8 acks of the largest ids is the longest host frame.
    #[test]
    fn frame_bounds() {
        let mut out = [0u8; MAX_FRAME_LEN + 8];
        let big = [0x7fu8; MAX_DEVICE_PAYLOAD];
        let n = encode_payload(Direction::DeviceToHost, &big, &mut out).unwrap();
        assert!(n <= MAX_DEVICE_FRAME_LEN);
        let batch: heapless::Vec<WireSource, MAX_ACK_BATCH> = (0..MAX_ACK_BATCH)
            .map(|_| WireSource {
                channel: [0xff; 32],
                id: u64::MAX,
            })
            .collect();
        let n = message::encode_host(&HostMessage::AckBatch(batch), &mut out).unwrap();
        assert!(
            n <= MAX_HOST_FRAME_LEN && MAX_HOST_FRAME_LEN - n <= 2,
            "{n}"
        );
        std::println!(
            "MAX_ENCODED_LEN {MAX_ENCODED_LEN}, device frame <= {MAX_DEVICE_FRAME_LEN} B, host frame <= {MAX_HOST_FRAME_LEN} B"
        );
    }
}
