//! Tests of the event types and their encoding: golden byte arrays of every kind,
//! the bounds, and random and mutated byte strings against the decoder.

use super::*;
use proptest::prelude::*;

// Golden encodings (I4: replay gives back byte-identical events, also across
// releases; I8: a changed format must be a deliberate, versioned change). Each
// array was derived by hand from the postcard layout, not from the encoder.

#[rustfmt::skip]
const GOLDEN_HTLC_CLAIMED_OUTBOUND: [u8; 137] = [
    0x00, // HtlcResolved
    // channel
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    // payment_hash = SHA-256 of 32 zero bytes
    0x66, 0x68, 0x7a, 0xad, 0xf8, 0x62, 0xbd, 0x77,
    0x6c, 0x8f, 0xc1, 0x8b, 0x8e, 0x9f, 0x8e, 0x20,
    0x08, 0x97, 0x14, 0x85, 0x6e, 0xe2, 0x33, 0xb3,
    0x90, 0x2a, 0x59, 0x1d, 0x0d, 0x5f, 0x29, 0x25,
    0xe8, 0x07, // amount_msat 1000
    0x00, // source: OutboundPayment
    // payment_id
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x00, // outcome: Claimed
    // preimage
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, // skimmed_fee_msat: None
    0x00, // resolved_on_chain: false
    0x01, 0x2a, // user_channel_id: Some(42)
];

#[rustfmt::skip]
const GOLDEN_HTLC_FAILED_FORWARD: [u8; 125] = [
    0x00, // HtlcResolved
    // channel
    0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
    0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
    0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
    0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
    // payment_hash
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0xc0, 0x96, 0xb1, 0x02, // amount_msat 5_000_000
    0x01, // source: Forward
    // prev_channel
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x07, // prev_htlc_id 7
    0x01, // outcome: Failed
    0x8f, 0x80, 0x01, // code 0x400f (PERM|15)
    0x0c, // data length 12
    // data: htlc_msat, height
    0x00, 0x00, 0x00, 0x00, 0x00, 0x4c, 0x4b, 0x40,
    0x00, 0x0c, 0x35, 0x00,
    0x01, 0xac, 0x02, // hold_time: Some(300)
    0x01, // resolved_on_chain: true
    0x00, // user_channel_id: None
];

#[rustfmt::skip]
const GOLDEN_COMMITMENT_TX_CONFIRMED: [u8; 33] = [
    0x01, // CommitmentTxConfirmed
    // channel
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
];

#[rustfmt::skip]
const GOLDEN_HOLDER_FORCE_CLOSED: [u8; 36] = [
    0x02, // HolderForceClosed
    // channel
    0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
    0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
    0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
    0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
    0x03, // reason: ProcessingError
    0xac, 0x02, // code 300
];

#[rustfmt::skip]
const GOLDEN_UPDATE_COMPLETED: [u8; 35] = [
    0x03, // UpdateCompleted
    // channel
    0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
    0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
    0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
    0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
    0x81, 0x01, // update_id 129
];

fn chan(b: u8) -> ChannelId {
    ChannelId([b; 32])
}

fn claimed_outbound() -> MonitorEvent {
    let preimage = PaymentPreimage([0; 32]);
    MonitorEvent::HtlcResolved(HtlcResolution {
        channel: chan(0x11),
        payment_hash: preimage.payment_hash(),
        amount_msat: 1000,
        source: HtlcSource::OutboundPayment {
            payment_id: [0x22; 32],
        },
        outcome: HtlcOutcome::Claimed {
            preimage,
            skimmed_fee_msat: None,
        },
        resolved_on_chain: false,
        user_channel_id: Some(42),
    })
}

fn failed_forward() -> MonitorEvent {
    let mut data = [0u8; 12];
    data[..8].copy_from_slice(&5_000_000u64.to_be_bytes());
    data[8..].copy_from_slice(&800_000u32.to_be_bytes());
    MonitorEvent::HtlcResolved(HtlcResolution {
        channel: chan(0x33),
        payment_hash: PaymentHash([0x44; 32]),
        amount_msat: 5_000_000,
        source: HtlcSource::Forward {
            prev_channel: chan(0x55),
            prev_htlc_id: 7,
        },
        outcome: HtlcOutcome::Failed {
            reason: FailureReason::new(0x400f, &data).unwrap(),
            hold_time: Some(300),
        },
        resolved_on_chain: true,
        user_channel_id: None,
    })
}

fn goldens() -> [(MonitorEvent, &'static [u8]); 5] {
    [
        (claimed_outbound(), &GOLDEN_HTLC_CLAIMED_OUTBOUND),
        (failed_forward(), &GOLDEN_HTLC_FAILED_FORWARD),
        (
            MonitorEvent::CommitmentTxConfirmed {
                channel: chan(0x66),
            },
            &GOLDEN_COMMITMENT_TX_CONFIRMED,
        ),
        (
            MonitorEvent::HolderForceClosed {
                channel: chan(0x77),
                reason: CloseReason::ProcessingError { code: 300 },
            },
            &GOLDEN_HOLDER_FORCE_CLOSED,
        ),
        (
            MonitorEvent::UpdateCompleted {
                channel: chan(0x88),
                update_id: 129,
            },
            &GOLDEN_UPDATE_COMPLETED,
        ),
    ]
}

fn encode_to_vec(event: &MonitorEvent) -> Result<Vec<u8>, EncodeError> {
    let mut buf = [0u8; MAX_ENCODED_LEN];
    event.encode(&mut buf).map(|b| b.to_vec())
}

/// The largest event: a failed forward with every integer at its maximum.
fn largest_event() -> MonitorEvent {
    MonitorEvent::HtlcResolved(HtlcResolution {
        channel: chan(0xff),
        payment_hash: PaymentHash([0xff; 32]),
        amount_msat: u64::MAX,
        source: HtlcSource::Forward {
            prev_channel: chan(0xff),
            prev_htlc_id: u64::MAX,
        },
        outcome: HtlcOutcome::Failed {
            reason: FailureReason::new(u16::MAX, &[0xff; MAX_FAILURE_DATA]).unwrap(),
            hold_time: Some(u32::MAX),
        },
        resolved_on_chain: true,
        user_channel_id: Some(u128::MAX),
    })
}

#[test]
fn i4_golden_encodings_of_every_kind() {
    for (event, golden) in goldens() {
        assert_eq!(encode_to_vec(&event).unwrap(), golden, "{:?}", event.kind());
        assert_eq!(MonitorEvent::decode(golden), Ok(event.clone()));
        assert_eq!(event.encoded_len(), golden.len());
    }
}

#[test]
fn i9_max_encoded_len_is_the_largest_event() {
    assert_eq!(MAX_ENCODED_LEN, 214);
    let largest = largest_event();
    assert_eq!(encode_to_vec(&largest).unwrap().len(), MAX_ENCODED_LEN);

    // The largest of every other shape fits.
    let preimage = PaymentPreimage([0xff; 32]);
    let claimed = MonitorEvent::HtlcResolved(HtlcResolution {
        channel: chan(0xff),
        payment_hash: preimage.payment_hash(),
        amount_msat: u64::MAX,
        source: HtlcSource::Forward {
            prev_channel: chan(0xff),
            prev_htlc_id: u64::MAX,
        },
        outcome: HtlcOutcome::Claimed {
            preimage,
            skimmed_fee_msat: Some(u64::MAX),
        },
        resolved_on_chain: true,
        user_channel_id: Some(u128::MAX),
    });
    let others = [
        claimed,
        MonitorEvent::CommitmentTxConfirmed { channel: chan(1) },
        MonitorEvent::HolderForceClosed {
            channel: chan(1),
            reason: CloseReason::PeerFeerateTooLow {
                peer_feerate_sat_per_kw: u32::MAX,
                required_feerate_sat_per_kw: u32::MAX,
            },
        },
        MonitorEvent::HolderForceClosed {
            channel: chan(1),
            reason: CloseReason::ProcessingError { code: u16::MAX },
        },
        MonitorEvent::UpdateCompleted {
            channel: chan(1),
            update_id: u64::MAX,
        },
    ];
    for event in others {
        assert!(encode_to_vec(&event).unwrap().len() <= MAX_ENCODED_LEN);
    }
}

#[test]
#[cfg(feature = "validate")]
fn i9_wrong_preimage_is_rejected_by_encode_and_decode() {
    let MonitorEvent::HtlcResolved(mut h) = claimed_outbound() else {
        unreachable!()
    };
    h.payment_hash.0[0] ^= 1;
    let bad = MonitorEvent::HtlcResolved(h);
    assert_eq!(bad.validate(), Err(InvalidEvent::PreimageMismatch));
    assert_eq!(
        encode_to_vec(&bad),
        Err(EncodeError::Invalid(InvalidEvent::PreimageMismatch))
    );
    let mut bytes = GOLDEN_HTLC_CLAIMED_OUTBOUND;
    bytes[33] ^= 1; // first byte of the payment hash
    assert_eq!(
        MonitorEvent::decode(&bytes),
        Err(DecodeError::Invalid(InvalidEvent::PreimageMismatch))
    );
    check_decode(&bytes);
}

#[test]
fn i9_zero_amount_is_rejected_by_encode_and_decode() {
    let MonitorEvent::HtlcResolved(mut h) = failed_forward() else {
        unreachable!()
    };
    h.amount_msat = 0;
    let bad = MonitorEvent::HtlcResolved(h);
    assert_eq!(
        encode_to_vec(&bad),
        Err(EncodeError::Invalid(InvalidEvent::ZeroAmount))
    );
    // amount_msat 5_000_000 (4 bytes at 65..69) becomes 0 (1 byte).
    let mut bytes = GOLDEN_HTLC_FAILED_FORWARD[..65].to_vec();
    bytes.push(0);
    bytes.extend_from_slice(&GOLDEN_HTLC_FAILED_FORWARD[69..]);
    assert_eq!(
        MonitorEvent::decode(&bytes),
        Err(DecodeError::Invalid(InvalidEvent::ZeroAmount))
    );
    check_decode(&bytes);
}

#[test]
fn i6_failure_data_over_the_bound_is_a_typed_error() {
    assert_eq!(
        FailureReason::new(1, &[0; MAX_FAILURE_DATA + 1]),
        Err(InvalidEvent::FailureDataTooLong {
            len: MAX_FAILURE_DATA + 1
        })
    );
    assert!(FailureReason::new(1, &[0; MAX_FAILURE_DATA]).is_ok());
    // I9: an encoding with MAX_FAILURE_DATA + 1 bytes of data is malformed.
    let mut bytes = GOLDEN_HTLC_FAILED_FORWARD[..107].to_vec();
    bytes.push(MAX_FAILURE_DATA as u8 + 1);
    bytes.extend_from_slice(&[0; MAX_FAILURE_DATA + 1]);
    bytes.extend_from_slice(&[0, 0, 0]);
    assert_eq!(MonitorEvent::decode(&bytes), Err(DecodeError::Malformed));
}

#[test]
fn i9_buffer_too_small_is_typed() {
    let event = failed_forward();
    let needed = GOLDEN_HTLC_FAILED_FORWARD.len();
    let mut buf = [0u8; 256];
    assert_eq!(
        event.encode(&mut buf[..needed - 1]),
        Err(EncodeError::BufferTooSmall {
            needed,
            available: needed - 1
        })
    );
    assert_eq!(
        event.encode(&mut buf[..needed]).unwrap(),
        GOLDEN_HTLC_FAILED_FORWARD
    );
}

#[test]
fn i9_truncated_trailing_and_malformed_bytes_are_typed_errors() {
    for (_, golden) in goldens() {
        for len in 0..golden.len() {
            assert_eq!(
                MonitorEvent::decode(&golden[..len]),
                Err(DecodeError::Truncated)
            );
        }
        let mut longer = golden.to_vec();
        longer.extend_from_slice(&[0, 0]);
        assert_eq!(
            MonitorEvent::decode(&longer),
            Err(DecodeError::TrailingBytes { count: 2 })
        );
    }
    // Unknown event variant.
    let mut bytes = GOLDEN_COMMITMENT_TX_CONFIRMED;
    bytes[0] = 4;
    assert_eq!(MonitorEvent::decode(&bytes), Err(DecodeError::Malformed));
    // A bool that is neither 0 nor 1 (resolved_on_chain).
    let mut bytes = GOLDEN_HTLC_FAILED_FORWARD;
    bytes[123] = 2;
    assert_eq!(MonitorEvent::decode(&bytes), Err(DecodeError::Malformed));
    // A varint over u16 for the failure code.
    let mut bytes = GOLDEN_HTLC_FAILED_FORWARD;
    bytes[106] = 0x04; // last byte of the code: 0x8f 0x80 0x04 > u16::MAX
    assert_eq!(MonitorEvent::decode(&bytes), Err(DecodeError::Malformed));
}

#[test]
fn i9_non_canonical_encodings_are_rejected() {
    // update_id 129 as a three-byte varint instead of two.
    let mut bytes = GOLDEN_UPDATE_COMPLETED[..33].to_vec();
    bytes.extend_from_slice(&[0x81, 0x81, 0x00]);
    assert_eq!(MonitorEvent::decode(&bytes), Err(DecodeError::NonCanonical));
    // Variant index 1 as [0x81, 0x00].
    let mut bytes = vec![0x81, 0x00];
    bytes.extend_from_slice(&GOLDEN_COMMITMENT_TX_CONFIRMED[1..]);
    assert_eq!(MonitorEvent::decode(&bytes), Err(DecodeError::NonCanonical));
}

#[test]
fn i5_accessors_name_channel_kind_and_gating() {
    // I5: only HTLC events are gated, so `is_htlc` decides.
    let kinds = [
        EventKind::HtlcResolved,
        EventKind::HtlcResolved,
        EventKind::CommitmentTxConfirmed,
        EventKind::HolderForceClosed,
        EventKind::UpdateCompleted,
    ];
    let channels = [0x11, 0x33, 0x66, 0x77, 0x88];
    for (((event, _), kind), c) in goldens().into_iter().zip(kinds).zip(channels) {
        assert_eq!(event.kind(), kind);
        assert_eq!(event.channel(), chan(c));
        assert_eq!(event.is_htlc(), kind == EventKind::HtlcResolved);
    }
    assert_eq!(EventKind::UpdateCompleted.to_string(), "UpdateCompleted");
    assert_eq!(chan(0xab).to_string(), "ab".repeat(32));
}

#[test]
fn i4_the_32_byte_newtypes_display_as_hex_and_encode_without_a_length() {
    // I4: the three newtypes made by one macro keep one shape: 64 lowercase hex
    // digits in logs, exactly their 32 bytes on the medium.
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0xa5;
    }
    let hex: std::string::String = bytes.iter().map(|b| std::format!("{b:02x}")).collect();
    assert_eq!(ChannelId(bytes).to_string(), hex);
    assert_eq!(PaymentHash(bytes).to_string(), hex);
    assert_eq!(PaymentPreimage(bytes).to_string(), hex);
    let mut buf = [0u8; 40];
    assert_eq!(
        postcard::to_slice(&ChannelId(bytes), &mut buf).unwrap(),
        bytes
    );
    assert_eq!(
        postcard::to_slice(&PaymentHash(bytes), &mut buf).unwrap(),
        bytes
    );
    assert_eq!(
        postcard::to_slice(&PaymentPreimage(bytes), &mut buf).unwrap(),
        bytes
    );
    // The preimage of the golden claim hashes to the golden payment hash.
    assert_eq!(
        PaymentPreimage([0; 32]).payment_hash().0,
        GOLDEN_HTLC_CLAIMED_OUTBOUND[33..65]
    );
}

#[test]
fn i9_errors_display_and_chain_sources() {
    use core::error::Error as _;
    let e = DecodeError::Invalid(InvalidEvent::ZeroAmount);
    assert_eq!(
        e.to_string(),
        "decoded event is invalid: HTLC amount is zero"
    );
    assert!(e.source().is_some());
    let e = EncodeError::BufferTooSmall {
        needed: 3,
        available: 2,
    };
    assert_eq!(e.to_string(), "encoding needs 3 bytes, buffer has 2");
    assert!(e.source().is_none());
}

/// Integers spread over every varint length.
fn spread_u64() -> impl Strategy<Value = u64> {
    (any::<u64>(), 0..64u32).prop_map(|(x, s)| x >> s)
}

fn arb_channel() -> impl Strategy<Value = ChannelId> {
    prop_oneof![
        any::<u8>().prop_map(chan),
        any::<[u8; 32]>().prop_map(ChannelId)
    ]
}

fn arb_source() -> impl Strategy<Value = HtlcSource> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|payment_id| HtlcSource::OutboundPayment { payment_id }),
        (arb_channel(), spread_u64()).prop_map(|(prev_channel, prev_htlc_id)| {
            HtlcSource::Forward {
                prev_channel,
                prev_htlc_id,
            }
        }),
    ]
}

/// An outcome and a payment hash that fits it.
fn arb_outcome() -> impl Strategy<Value = (HtlcOutcome, PaymentHash)> {
    prop_oneof![
        (any::<[u8; 32]>(), proptest::option::of(spread_u64())).prop_map(|(p, fee)| {
            let preimage = PaymentPreimage(p);
            let outcome = HtlcOutcome::Claimed {
                preimage,
                skimmed_fee_msat: fee,
            };
            (outcome, preimage.payment_hash())
        }),
        (
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..=MAX_FAILURE_DATA),
            proptest::option::of(any::<u32>()),
            any::<[u8; 32]>(),
        )
            .prop_map(|(code, data, hold_time, hash)| {
                let reason = FailureReason::new(code, &data).unwrap();
                (HtlcOutcome::Failed { reason, hold_time }, PaymentHash(hash))
            }),
    ]
}

fn arb_event() -> impl Strategy<Value = MonitorEvent> {
    let htlc = (
        arb_channel(),
        spread_u64().prop_map(|a| a.max(1)),
        arb_source(),
        arb_outcome(),
        any::<bool>(),
        proptest::option::of(any::<u128>()),
    )
        .prop_map(
            |(channel, amount_msat, source, (outcome, hash), on_chain, user)| {
                MonitorEvent::HtlcResolved(HtlcResolution {
                    channel,
                    payment_hash: hash,
                    amount_msat,
                    source,
                    outcome,
                    resolved_on_chain: on_chain,
                    user_channel_id: user,
                })
            },
        );
    let reason = prop_oneof![
        Just(CloseReason::HolderForceClosed),
        Just(CloseReason::CommitmentTxConfirmed),
        Just(CloseReason::HtlcsTimedOut),
        any::<u16>().prop_map(|code| CloseReason::ProcessingError { code }),
        (any::<u32>(), any::<u32>()).prop_map(|(p, r)| CloseReason::PeerFeerateTooLow {
            peer_feerate_sat_per_kw: p,
            required_feerate_sat_per_kw: r,
        }),
    ];
    prop_oneof![
        htlc,
        arb_channel().prop_map(|channel| MonitorEvent::CommitmentTxConfirmed { channel }),
        (arb_channel(), reason)
            .prop_map(|(channel, reason)| MonitorEvent::HolderForceClosed { channel, reason }),
        (arb_channel(), spread_u64()).prop_map(|(channel, update_id)| {
            MonitorEvent::UpdateCompleted { channel, update_id }
        }),
    ]
}

/// I9: whatever decode accepts is a valid event whose encoding is exactly the
/// input; and the store's check at `open` gives what decode gives (the channel
/// and kind, or the same error).
fn check_decode(bytes: &[u8]) {
    let decoded = MonitorEvent::decode(bytes);
    if let Ok(event) = &decoded {
        assert_eq!(event.validate(), Ok(()));
        assert_eq!(encode_to_vec(event).unwrap(), bytes);
    }
    let mut out = super::Checked::new();
    let checked = super::check_encoding(bytes, &mut out).and_then(|()| {
        out.preimage
            .as_ref()
            .map_or(Ok(()), |c| c.run())
            .map(|()| (out.channel, out.kind))
    });
    assert_eq!(
        checked,
        decoded.map(|e| (e.channel(), e.kind())),
        "{bytes:02x?}"
    );
}

proptest! {
    #[test]
    fn i9_decode_never_panics_on_random_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..2 * MAX_ENCODED_LEN)
    ) {
        check_decode(&bytes);
    }

    #[test]
    fn i9_decode_never_panics_on_mutated_encodings(
        event in arb_event(),
        pos in any::<prop::sample::Index>(),
        mask in 1..=255u8,
        cut in any::<prop::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let bytes = encode_to_vec(&event).unwrap();
        let mut flipped = bytes.clone();
        flipped[pos.index(bytes.len())] ^= mask;
        check_decode(&flipped);
        check_decode(&bytes[..cut.index(bytes.len())]);
        let mut longer = bytes.clone();
        longer.extend_from_slice(&extra);
        check_decode(&longer);
    }

    #[test]
    fn i4_encode_decode_round_trip(event in arb_event()) {
        let bytes = encode_to_vec(&event).unwrap();
        prop_assert!(bytes.len() <= MAX_ENCODED_LEN);
        prop_assert_eq!(bytes.len(), event.encoded_len());
        prop_assert_eq!(MonitorEvent::decode(&bytes), Ok(event));
        check_decode(&bytes);
    }
}

// The codec against postcard itself (I4, I8: the hand-written codec is postcard's
// wire format, so the on-medium bytes are the ones the golden arrays pin; I9: both
// decoders accept and reject the same byte strings).

/// The encoding by postcard through the serde derives.
fn postcard_encode(event: &MonitorEvent) -> Vec<u8> {
    let mut buf = [0u8; 2 * MAX_ENCODED_LEN];
    postcard::to_slice(event, &mut buf).unwrap().to_vec()
}

/// The reference decoder: postcard through the serde derives, then the checks the
/// codec makes (no trailing bytes, a valid event, and canonicity by encoding again
/// and comparing, since postcard accepts overlong varints).
fn postcard_decode(bytes: &[u8]) -> Option<MonitorEvent> {
    let (event, rest) = postcard::take_from_bytes::<MonitorEvent>(bytes).ok()?;
    if !rest.is_empty() || event.validate().is_err() || postcard_encode(&event) != bytes {
        return None;
    }
    Some(event)
}

/// I9: the codec and postcard agree on `bytes`: both decode it to the same event,
/// or both reject it.
fn check_same_as_postcard(bytes: &[u8]) {
    assert_eq!(
        MonitorEvent::decode(bytes).ok(),
        postcard_decode(bytes),
        "{bytes:02x?}"
    );
}

#[test]
fn i4_golden_encodings_are_postcards() {
    for (event, golden) in goldens() {
        assert_eq!(postcard_encode(&event), golden, "{:?}", event.kind());
        assert_eq!(postcard_decode(golden), Some(event));
        check_same_as_postcard(golden);
    }
    assert_eq!(postcard_encode(&largest_event()).len(), MAX_ENCODED_LEN);
}

#[test]
fn i9_codec_and_postcard_agree_on_edge_varints() {
    // Every length of every varint field, at the edges of each type's range and
    // one over, canonical and overlong: update_id (u64), the close reason's code
    // (u16) and feerates (u32), and the variant index itself.
    let channel = GOLDEN_UPDATE_COMPLETED[1..33].to_vec();
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for len in 1..=11usize {
        for last in [0x00, 0x01, 0x02, 0x03, 0x04, 0x0f, 0x10, 0x7f, 0x80, 0xff] {
            let mut v = vec![0xffu8; len - 1];
            v.push(last);
            let mut low = vec![0x80u8; len - 1];
            low.push(last);
            for varint in [v, low] {
                let mut update = vec![0x03];
                update.extend_from_slice(&channel);
                update.extend_from_slice(&varint);
                cases.push(update);
                for reason in [3u8, 4] {
                    let mut close = vec![0x02];
                    close.extend_from_slice(&channel);
                    close.push(reason);
                    close.extend_from_slice(&varint);
                    if reason == 4 {
                        close.push(0x05);
                    }
                    cases.push(close);
                }
                let mut index = varint.clone();
                index.extend_from_slice(&channel);
                cases.push(index);
            }
        }
    }
    let mut accepted = 0;
    for bytes in &cases {
        check_same_as_postcard(bytes);
        accepted += usize::from(MonitorEvent::decode(bytes).is_ok());
    }
    // Not vacuous: the canonical encodings among them are accepted.
    assert!(accepted > 20, "{accepted} accepted");
}

/// A byte string near an encoding: one of several edits of it.
fn arb_near_encoding() -> impl Strategy<Value = Vec<u8>> {
    (
        arb_event(),
        any::<prop::sample::Index>(),
        0..6u8,
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 1..4),
    )
        .prop_map(|(event, at, edit, byte, extra)| {
            let mut b = postcard_encode(&event);
            let i = at.index(b.len());
            match edit {
                0 => b[i] ^= byte | 1,
                1 => b[i] = byte,
                2 => b.truncate(i),
                3 => b.extend_from_slice(&extra),
                // An overlong varint, if a varint ends here.
                4 => {
                    if b[i] < 0x80 {
                        b[i] |= 0x80;
                        b.insert(i + 1, 0);
                    }
                }
                _ => {
                    b.splice(i..i, extra);
                }
            }
            b
        })
}

proptest! {
    #[test]
    fn i4_codec_encodes_exactly_as_postcard(event in arb_event()) {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let bytes = event.encode(&mut buf).unwrap();
        prop_assert_eq!(bytes, &postcard_encode(&event)[..]);
        prop_assert_eq!(event.encoded_len(), bytes.len());
    }

    #[test]
    fn i9_codec_and_postcard_agree_on_random_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..2 * MAX_ENCODED_LEN)
    ) {
        check_same_as_postcard(&bytes);
    }

    #[test]
    fn i9_codec_and_postcard_agree_near_encodings(bytes in arb_near_encoding()) {
        check_same_as_postcard(&bytes);
        check_decode(&bytes);
    }
}
