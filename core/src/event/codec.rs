//! The encoding of an event: postcard's wire format, written and read by hand, with
//! one canonical byte string per event.
//!
//! The layout table is in the [`event`](crate::event) module docs; the golden byte
//! arrays that pin it are in this module's tests. The bytes are exactly postcard's
//! (version 1 wire format) for the same types: integers other than `u8` as
//! varints (LEB128, least significant group first), an enum's variant index as a
//! `u32` varint, `bool` and an `Option`'s tag as one byte `0`/`1`, `[u8; 32]` as its
//! 32 bytes, the failure data as a varint length and its bytes. A test proves the
//! equality with postcard itself over the golden arrays and random events, and that
//! both decoders accept and reject the same byte strings.
//!
//! Decoding checks canonicity as it reads, instead of encoding again and comparing:
//! a varint whose last byte is `0` (overlong), a varint over its type's range or
//! longer than its type's longest encoding, a tag other than `0`/`1`, an unknown
//! variant index, failure data over [`MAX_FAILURE_DATA`] and trailing bytes are all
//! rejected, so every accepted byte string is the encoding of the event it decodes
//! to.

use super::{ChannelId, PaymentHash, PaymentPreimage};
use super::{
    CloseReason, DecodeError, EncodeError, EventKind, FailureReason, HtlcOutcome, HtlcResolution,
    HtlcSource, InvalidEvent, MonitorEvent, MAX_FAILURE_DATA,
};

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
        let mut w = Writer {
            buf: &mut [],
            pos: 0,
        };
        w.event(self);
        w.pos
    }

    /// Validates the event and encodes it into the front of `buf`, returning the
    /// encoded bytes. A buffer of [`MAX_ENCODED_LEN`] bytes always suffices. On an
    /// error nothing is written.
    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Result<&'a [u8], EncodeError> {
        self.validate()?;
        let needed = self.encoded_len();
        let available = buf.len();
        if needed > available {
            return Err(EncodeError::BufferTooSmall { needed, available });
        }
        let mut w = Writer { buf, pos: 0 };
        w.event(self);
        let Writer { buf, pos } = w;
        // Not `[..pos]`: a failed range index formats numbers, which would link
        // `core::fmt`'s integer code into builds that have none (`crate::split`).
        Ok(crate::split::split_mut(buf, pos).0)
    }

    /// Decodes an event that [`encode`](Self::encode) produced. Every byte string
    /// gives an event or a typed error, never a panic (invariant I9): truncated
    /// bytes, trailing bytes, non-canonical encodings (an overlong varint) and
    /// invalid events are rejected.
    // Out of line: inlined into the demo firmware's replay loop it took 120 B
    // more on the nRF52840 and 80 B more on the RP2040.
    #[inline(never)]
    pub fn decode(bytes: &[u8]) -> Result<MonitorEvent, DecodeError> {
        let mut r = Reader::new(bytes);
        let mut event = MonitorEvent::CommitmentTxConfirmed {
            channel: ChannelId([0; 32]),
        };
        r.event_into(&mut event);
        r.ok()?;
        let count = bytes.len() - r.pos;
        if count != 0 {
            return Err(DecodeError::TrailingBytes { count });
        }
        event.validate()?;
        Ok(event)
    }
}

/// What [`check_encoding`] found: the event's channel and kind, and for a claim
/// (with the feature `validate`) the preimage check still to run.
pub(crate) struct Checked {
    pub(crate) channel: ChannelId,
    pub(crate) kind: EventKind,
    pub(crate) preimage: Option<PreimageCheck>,
}

impl Checked {
    /// Nothing checked yet.
    pub(crate) const fn new() -> Self {
        Checked {
            channel: ChannelId([0; 32]),
            kind: EventKind::UpdateCompleted,
            preimage: None,
        }
    }
}

/// Checks `bytes` as [`MonitorEvent::decode`] does, all but the last check, and
/// fills `out`: the event's channel and kind, and for a claim (with the feature
/// `validate`) the preimage check still to [`run`](PreimageCheck::run). Running
/// it gives exactly `decode`'s result (the same error, in the same order),
/// without building the event: the store checks every pending event at `open`
/// this way, on a stack of a few words, and hashes the preimage once the body's
/// buffer is gone. A proptest holds it to `decode` over random and
/// near-encoding bytes.
#[inline(never)]
pub(crate) fn check_encoding(bytes: &[u8], out: &mut Checked) -> Result<(), DecodeError> {
    let mut r = Reader::new(bytes);
    let s = r.skim_event();
    r.ok()?;
    let count = bytes.len() - r.pos;
    if count != 0 {
        return Err(DecodeError::TrailingBytes { count });
    }
    // What `MonitorEvent::validate` checks, in its order.
    if s.kind == EventKind::HtlcResolved && s.amount_msat == 0 {
        return Err(InvalidEvent::ZeroAmount.into());
    }
    out.channel = s.channel;
    out.kind = s.kind;
    out.preimage = None;
    #[cfg(feature = "validate")]
    if let Some(at) = s.preimage_at {
        let check = out.preimage.insert(PreimageCheck {
            preimage: [0; 32],
            hash: [0; 32],
        });
        // In range: the walk read both (the payment hash right after the channel).
        if let (Some(p), Some(h)) = (bytes.get(at..at + 32), bytes.get(HASH_AT..HASH_AT + 32)) {
            check.preimage.copy_from_slice(p);
            check.hash.copy_from_slice(h);
        }
    }
    Ok(())
}

/// The last check of [`MonitorEvent::decode`], which [`check_encoding`] leaves
/// to its caller: that a claim's preimage hashes (SHA-256) to its payment hash.
/// Without the feature `validate` none is made.
#[cfg_attr(not(feature = "validate"), allow(dead_code))]
pub(crate) struct PreimageCheck {
    #[cfg(feature = "validate")]
    preimage: [u8; 32],
    #[cfg(feature = "validate")]
    hash: [u8; 32],
}

impl PreimageCheck {
    /// `Err(PreimageMismatch)` unless the preimage hashes to the payment hash.
    #[inline(never)]
    #[cfg_attr(not(feature = "validate"), allow(dead_code))]
    pub(crate) fn run(&self) -> Result<(), DecodeError> {
        #[cfg(feature = "validate")]
        if PaymentPreimage(self.preimage).payment_hash() != PaymentHash(self.hash) {
            return Err(InvalidEvent::PreimageMismatch.into());
        }
        Ok(())
    }
}

/// Where an HTLC resolution's payment hash starts: after the variant index and
/// the channel.
#[cfg(feature = "validate")]
const HASH_AT: usize = 1 + 32;

/// What [`Reader::skim_event`] keeps of an event: enough to validate it.
struct Skimmed {
    channel: ChannelId,
    kind: EventKind,
    /// An HTLC resolution's amount (1 for other kinds: never refused).
    amount_msat: u64,
    /// Where a claim's preimage starts.
    #[cfg_attr(not(feature = "validate"), allow(dead_code))]
    preimage_at: Option<usize>,
}

/// Writes the encoding into `buf`, or only counts it: bytes past the end of `buf`
/// are counted in `pos` and dropped (`encoded_len` passes an empty buffer, so one
/// copy of the encoder serves both).
struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    #[inline(never)]
    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.pos) {
            *slot = b;
        }
        self.pos += 1;
    }

    /// Bytes that do not all fit are dropped whole (they are only counted): an
    /// encoding is written only into a buffer that holds all of it.
    #[inline(never)]
    fn bytes(&mut self, bs: &[u8]) {
        if let Some(to) = self.buf.get_mut(self.pos..self.pos + bs.len()) {
            to.copy_from_slice(bs);
        }
        self.pos += bs.len();
    }

    /// A varint: 7 bits a byte, least significant first, the high bit set on every
    /// byte but the last. In `u64` (cheaper than `u128` on a 32-bit core): every
    /// integer but the `u128` goes through here.
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte(v as u8 | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    /// A `u128` varint: its low groups while the rest exceeds `u64`, then the rest.
    fn varint128(&mut self, mut v: u128) {
        while v > u64::MAX as u128 {
            self.byte(v as u8 | 0x80);
            v >>= 7;
        }
        self.varint(v as u64);
    }

    fn tag(&mut self, t: bool) {
        self.byte(t as u8);
    }

    fn event(&mut self, e: &MonitorEvent) {
        // Every variant starts with its index (the kinds are in variant order) and
        // its channel (an HTLC resolution's first field).
        self.byte(e.kind() as u8);
        self.bytes(&e.channel().0);
        match e {
            MonitorEvent::HtlcResolved(h) => self.htlc(h),
            MonitorEvent::CommitmentTxConfirmed { .. } => {}
            MonitorEvent::HolderForceClosed { reason, .. } => match *reason {
                CloseReason::HolderForceClosed => self.byte(0),
                CloseReason::CommitmentTxConfirmed => self.byte(1),
                CloseReason::HtlcsTimedOut => self.byte(2),
                CloseReason::ProcessingError { code } => {
                    self.byte(3);
                    self.varint(code.into());
                }
                CloseReason::PeerFeerateTooLow {
                    peer_feerate_sat_per_kw,
                    required_feerate_sat_per_kw,
                } => {
                    self.byte(4);
                    self.varint(peer_feerate_sat_per_kw.into());
                    self.varint(required_feerate_sat_per_kw.into());
                }
            },
            MonitorEvent::UpdateCompleted { update_id, .. } => self.varint(*update_id),
        }
    }

    /// An HTLC resolution after its channel.
    fn htlc(&mut self, h: &HtlcResolution) {
        self.bytes(&h.payment_hash.0);
        self.varint(h.amount_msat);
        match &h.source {
            HtlcSource::OutboundPayment { payment_id } => {
                self.byte(0);
                self.bytes(payment_id);
            }
            HtlcSource::Forward {
                prev_channel,
                prev_htlc_id,
            } => {
                self.byte(1);
                self.bytes(&prev_channel.0);
                self.varint(*prev_htlc_id);
            }
        }
        match &h.outcome {
            HtlcOutcome::Claimed {
                preimage,
                skimmed_fee_msat,
            } => {
                self.byte(0);
                self.bytes(&preimage.0);
                self.tag(skimmed_fee_msat.is_some());
                if let Some(fee) = skimmed_fee_msat {
                    self.varint(*fee);
                }
            }
            HtlcOutcome::Failed { reason, hold_time } => {
                self.byte(1);
                self.varint(reason.code.into());
                self.varint(reason.data.len() as u64);
                self.bytes(&reason.data);
                self.tag(hold_time.is_some());
                if let Some(t) = hold_time {
                    self.varint((*t).into());
                }
            }
        }
        self.tag(h.resolved_on_chain);
        self.tag(h.user_channel_id.is_some());
        if let Some(id) = h.user_channel_id {
            self.varint128(id);
        }
    }
}

/// Why the [`Reader`] failed: the [`DecodeError`]s it can find, without payload
/// (one byte, cheaper to keep in the reader than the public error).
#[derive(Clone, Copy)]
enum Fail {
    Truncated,
    Malformed,
    NonCanonical,
}

impl From<Fail> for DecodeError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Truncated => DecodeError::Truncated,
            Fail::Malformed => DecodeError::Malformed,
            Fail::NonCanonical => DecodeError::NonCanonical,
        }
    }
}

/// Reads an encoding, checking canonicity as it goes.
///
/// A failed read records why in `fail` (the first failure only) and every read
/// after it reads nothing and gives zeros, so that the walk goes on without a
/// branch at each field; the caller asks [`ok`](Self::ok) once at the end. The
/// first failure is the one an early return at each read would give.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    fail: Option<Fail>,
    /// The bits above the low 64 of the last [`varint`](Self::varint) (only a
    /// `u128` has any).
    high: u64,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader {
            bytes,
            pos: 0,
            fail: None,
            high: 0,
        }
    }

    /// Records `f`, unless a failure is recorded already.
    fn fail(&mut self, f: Fail) {
        if self.fail.is_none() {
            self.fail = Some(f);
        }
    }

    /// The first failure, if any.
    fn ok(&self) -> Result<(), Fail> {
        match self.fail {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// The next `n` bytes; after a failure, or past the end (`Truncated`), none.
    #[inline(never)]
    fn take(&mut self, n: usize) -> &'a [u8] {
        if self.fail.is_some() {
            return &[];
        }
        let start = self.pos;
        match self.bytes.get(start..start.saturating_add(n)) {
            Some(out) => {
                self.pos = start + n;
                out
            }
            None => {
                self.fail(Fail::Truncated);
                &[]
            }
        }
    }

    /// The next byte, or 0 (see [`take`](Self::take)).
    fn byte(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    /// The next 32 bytes, into `out` (left as it is on a failure). Out of line:
    /// one call is smaller than the bounds check and copy at each of its sites.
    #[inline(never)]
    fn read32(&mut self, out: &mut [u8; 32]) {
        if let Ok(bytes) = <&[u8; 32]>::try_from(self.take(32)) {
            *out = *bytes;
        }
    }

    /// A varint of an integer type of `bits` bits (16, 32, 64 or 128): at most
    /// `ceil(bits / 7)` bytes and within the type's range (else `Malformed`, as
    /// postcard), without a final `0` byte after the first (else `NonCanonical`:
    /// postcard accepts overlong varints, the journal does not). Its low 64
    /// bits; the rest in `high`. 0 on a failure.
    #[inline(never)]
    fn varint(&mut self, bits: u32) -> u64 {
        // Find the end and check it first; then build the value from the last
        // byte back, in two `u64` halves shifted by a constant 7 (cheaper than
        // `u128` shifts on a 32-bit core).
        let start = self.pos;
        let max = bits.div_ceil(7);
        let mut n = 1;
        loop {
            let b = self.byte();
            if b & 0x80 == 0 {
                // The last byte the type allows carries only the bits left over.
                if n == max && b >> (bits - 7 * (max - 1)) != 0 {
                    self.fail(Fail::Malformed);
                }
                if b == 0 && n > 1 {
                    self.fail(Fail::NonCanonical);
                }
                break;
            }
            if n == max {
                self.fail(Fail::Malformed);
                break;
            }
            n += 1;
        }
        let (mut low, mut high) = (0u64, 0u64);
        if self.fail.is_none() {
            // In range (just read): `get` spares the slice's panic path.
            for &b in self
                .bytes
                .get(start..self.pos)
                .unwrap_or_default()
                .iter()
                .rev()
            {
                high = high << 7 | low >> 57;
                low = low << 7 | u64::from(b & 0x7F);
            }
        }
        self.high = high;
        low
    }

    /// A `u128` varint.
    fn u128(&mut self) -> u128 {
        let low = self.varint(128);
        u128::from(self.high) << 64 | u128::from(low)
    }

    fn u16(&mut self) -> u16 {
        self.varint(16) as u16
    }

    fn u32(&mut self) -> u32 {
        self.varint(32) as u32
    }

    #[inline(never)]
    fn u64(&mut self) -> u64 {
        self.varint(64)
    }

    /// An enum's variant index (a `u32` varint) that must be below `count`
    /// (else `Malformed`, and 0).
    #[inline(never)]
    fn variant(&mut self, count: u32) -> u32 {
        let v = self.u32();
        if v < count {
            v
        } else {
            self.fail(Fail::Malformed);
            0
        }
    }

    /// A `bool` or an `Option`'s tag: exactly `0` or `1` (else `Malformed`).
    fn tag(&mut self) -> bool {
        match self.byte() {
            0 => false,
            1 => true,
            _ => {
                self.fail(Fail::Malformed);
                false
            }
        }
    }

    /// Reads an event into `out`, overwriting it: each variant is first written
    /// whole with zeroed fields, then every field is read into its place. Moving
    /// 32-byte fields through registers into a new value costs about twice the
    /// code.
    fn event_into(&mut self, out: &mut MonitorEvent) {
        // Every variant starts with its channel (an HTLC resolution's first field).
        let channel = ChannelId([0; 32]);
        *out = match self.variant(4) {
            0 => MonitorEvent::HtlcResolved(HtlcResolution {
                channel,
                payment_hash: PaymentHash([0; 32]),
                amount_msat: 0,
                source: HtlcSource::OutboundPayment {
                    payment_id: [0; 32],
                },
                outcome: HtlcOutcome::Claimed {
                    preimage: PaymentPreimage([0; 32]),
                    skimmed_fee_msat: None,
                },
                resolved_on_chain: false,
                user_channel_id: None,
            }),
            1 => MonitorEvent::CommitmentTxConfirmed { channel },
            2 => MonitorEvent::HolderForceClosed {
                channel,
                reason: CloseReason::HolderForceClosed,
            },
            _ => MonitorEvent::UpdateCompleted {
                channel,
                update_id: 0,
            },
        };
        match out {
            MonitorEvent::HtlcResolved(h) => {
                self.read32(&mut h.channel.0);
                self.htlc_into(h);
            }
            MonitorEvent::CommitmentTxConfirmed { channel } => self.read32(&mut channel.0),
            MonitorEvent::HolderForceClosed { channel, reason } => {
                self.read32(&mut channel.0);
                *reason = match self.variant(5) {
                    0 => CloseReason::HolderForceClosed,
                    1 => CloseReason::CommitmentTxConfirmed,
                    2 => CloseReason::HtlcsTimedOut,
                    3 => CloseReason::ProcessingError { code: self.u16() },
                    _ => CloseReason::PeerFeerateTooLow {
                        peer_feerate_sat_per_kw: self.u32(),
                        required_feerate_sat_per_kw: self.u32(),
                    },
                };
            }
            MonitorEvent::UpdateCompleted { channel, update_id } => {
                self.read32(&mut channel.0);
                *update_id = self.u64();
            }
        }
    }

    /// Reads an event as [`event_into`](Self::event_into) does, field by field
    /// with the same checks in the same order, keeping only what validation
    /// needs.
    fn skim_event(&mut self) -> Skimmed {
        let variant = self.variant(4);
        let mut s = Skimmed {
            channel: ChannelId([0; 32]),
            kind: EventKind::UpdateCompleted,
            amount_msat: 1,
            preimage_at: None,
        };
        // Not through the out-of-line `read32`: `open` checks every pending
        // event through here, at its deepest stack.
        if let Ok(channel) = <[u8; 32]>::try_from(self.take(32)) {
            s.channel.0 = channel;
        }
        match variant {
            0 => {
                s.kind = EventKind::HtlcResolved;
                self.take(32); // payment_hash
                s.amount_msat = self.u64();
                if self.variant(2) == 0 {
                    self.take(32); // payment_id
                } else {
                    self.take(32); // prev_channel
                    self.u64(); // prev_htlc_id
                }
                if self.variant(2) == 0 {
                    s.preimage_at = Some(self.pos);
                    self.take(32);
                    if self.tag() {
                        self.u64(); // skimmed_fee_msat
                    }
                } else {
                    self.u16(); // code
                    let len = self.data_len();
                    self.take(len);
                    if self.tag() {
                        self.u32(); // hold_time
                    }
                }
                self.tag(); // resolved_on_chain
                if self.tag() {
                    self.varint(128); // user_channel_id
                }
            }
            1 => s.kind = EventKind::CommitmentTxConfirmed,
            2 => {
                s.kind = EventKind::HolderForceClosed;
                match self.variant(5) {
                    0..=2 => {}
                    3 => {
                        self.u16();
                    }
                    _ => {
                        self.u32();
                        self.u32();
                    }
                }
            }
            _ => {
                self.u64(); // update_id
            }
        }
        s
    }

    /// The length of a failure's data: at most [`MAX_FAILURE_DATA`] (else
    /// `Malformed`, and 0).
    fn data_len(&mut self) -> usize {
        let len = self.varint(usize::BITS);
        if len > MAX_FAILURE_DATA as u64 {
            self.fail(Fail::Malformed);
            return 0;
        }
        len as usize
    }

    /// The rest of an HTLC resolution after its channel, into `h` (which
    /// [`event_into`](Self::event_into) wrote with zeroed fields, a payment's
    /// source and a claim).
    fn htlc_into(&mut self, h: &mut HtlcResolution) {
        self.read32(&mut h.payment_hash.0);
        h.amount_msat = self.u64();
        if self.variant(2) == 1 {
            h.source = HtlcSource::Forward {
                prev_channel: ChannelId([0; 32]),
                prev_htlc_id: 0,
            };
        }
        match &mut h.source {
            HtlcSource::OutboundPayment { payment_id } => self.read32(payment_id),
            HtlcSource::Forward {
                prev_channel,
                prev_htlc_id,
            } => {
                self.read32(&mut prev_channel.0);
                *prev_htlc_id = self.u64();
            }
        }
        if self.variant(2) == 1 {
            h.outcome = HtlcOutcome::Failed {
                reason: FailureReason {
                    code: 0,
                    data: heapless::Vec::new(),
                },
                hold_time: None,
            };
        }
        match &mut h.outcome {
            HtlcOutcome::Claimed {
                preimage,
                skimmed_fee_msat,
            } => {
                self.read32(&mut preimage.0);
                if self.tag() {
                    *skimmed_fee_msat = Some(self.u64());
                }
            }
            HtlcOutcome::Failed { reason, hold_time } => {
                reason.code = self.u16();
                let len = self.data_len();
                // Cannot fail: at most MAX_FAILURE_DATA bytes.
                let _ = reason.data.extend_from_slice(self.take(len));
                if self.tag() {
                    *hold_time = Some(self.u32());
                }
            }
        }
        h.resolved_on_chain = self.tag();
        if self.tag() {
            h.user_channel_id = Some(self.u128());
        }
    }
}
