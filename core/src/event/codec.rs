//! The encoding of an event: postcard, with one canonical byte string per event.
//! The layout table is in the [`event`](crate::event) module docs; the golden byte
//! arrays that pin it are in this module's tests.

use postcard::ser_flavors::{Flavor, Size};

use super::{DecodeError, EncodeError, MonitorEvent, MAX_FAILURE_DATA};

/// Worst-case length in bytes of an encoded [`MonitorEvent`].
///
/// Computed from the postcard layout of every variant with every integer at its
/// maximum varint length and the failure data at [`MAX_FAILURE_DATA`]; the largest is
/// a failed [`HtlcResolved`](MonitorEvent::HtlcResolved) of a forward. A test encodes
/// that largest event and checks it takes exactly this many bytes.
pub const MAX_ENCODED_LEN: usize = layout::MAX_EVENT;

/// Byte lengths of the postcard layout, used to derive [`MAX_ENCODED_LEN`].
mod layout {
    use super::MAX_FAILURE_DATA;

    /// Length of the varint encoding of `value`.
    const fn varint_len(value: u128) -> usize {
        let mut len = 1;
        let mut rest = value >> 7;
        while rest != 0 {
            len += 1;
            rest >>= 7;
        }
        len
    }

    const fn max(a: usize, b: usize) -> usize {
        if a > b {
            a
        } else {
            b
        }
    }

    /// A variant index below 128 or a bool or an `Option` tag.
    const TAG: usize = 1;
    const BYTES32: usize = 32;
    const U16: usize = varint_len(u16::MAX as u128);
    const U32: usize = varint_len(u32::MAX as u128);
    const U64: usize = varint_len(u64::MAX as u128);
    const U128: usize = varint_len(u128::MAX);

    const SOURCE: usize = TAG + max(BYTES32, BYTES32 + U64);
    const CLAIMED: usize = BYTES32 + TAG + U64;
    const FAILED: usize = U16 + varint_len(MAX_FAILURE_DATA as u128) + MAX_FAILURE_DATA + TAG + U32;
    const OUTCOME: usize = TAG + max(CLAIMED, FAILED);
    const HTLC: usize = BYTES32 + BYTES32 + U64 + SOURCE + OUTCOME + TAG + TAG + U128;
    const CLOSE_REASON: usize = TAG + max(U16, U32 + U32);

    pub(super) const MAX_EVENT: usize = TAG
        + max(
            max(HTLC, BYTES32),
            max(BYTES32 + CLOSE_REASON, BYTES32 + U64),
        );
}

impl MonitorEvent {
    /// Length in bytes of the event's encoding (at most [`MAX_ENCODED_LEN`]).
    pub fn encoded_len(&self) -> usize {
        // The `Size` flavor cannot fail.
        postcard::serialize_with_flavor(self, Size::default()).unwrap_or(MAX_ENCODED_LEN)
    }

    /// Validates the event and encodes it into the front of `buf`, returning the
    /// encoded bytes. A buffer of [`MAX_ENCODED_LEN`] bytes always suffices.
    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Result<&'a [u8], EncodeError> {
        self.validate()?;
        let needed = self.encoded_len();
        let available = buf.len();
        if needed > available {
            return Err(EncodeError::BufferTooSmall { needed, available });
        }
        match postcard::to_slice(self, buf) {
            Ok(bytes) => Ok(bytes),
            // Unreachable: the length was checked and serializing these types has no
            // other failure.
            Err(_) => Err(EncodeError::BufferTooSmall { needed, available }),
        }
    }

    /// Decodes an event that [`encode`](Self::encode) produced. Every byte string
    /// gives an event or a typed error, never a panic (invariant I9): trailing bytes,
    /// non-canonical encodings and invalid events are rejected.
    pub fn decode(bytes: &[u8]) -> Result<MonitorEvent, DecodeError> {
        let (event, rest) =
            postcard::take_from_bytes::<MonitorEvent>(bytes).map_err(|e| match e {
                postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
                _ => DecodeError::Malformed,
            })?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes { count: rest.len() });
        }
        event.validate()?;
        // Re-encode and compare, so that each event has exactly one encoding
        // (rejects overlong varints, which postcard accepts).
        postcard::serialize_with_flavor(
            &event,
            SameBytes {
                expected: bytes,
                pos: 0,
            },
        )
        .map_err(|_| DecodeError::NonCanonical)?;
        Ok(event)
    }
}

/// A postcard flavor that compares the serialized bytes with `expected` instead of
/// storing them.
struct SameBytes<'a> {
    expected: &'a [u8],
    pos: usize,
}

impl Flavor for SameBytes<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        if self.expected.get(self.pos) == Some(&byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(postcard::Error::SerializeBufferFull)
        }
    }

    fn finalize(self) -> postcard::Result<()> {
        if self.pos == self.expected.len() {
            Ok(())
        } else {
            Err(postcard::Error::SerializeBufferFull)
        }
    }
}
