//! BOLT 4 failure codes: the ones the emulator's monitor produces
//! ([`sim::workload`](crate::sim::workload)) and `inspect` names
//! ([`image::describe`](crate::image::describe)).

/// BOLT 4 failure codes the emulator produces, with their names.
pub const FAILURE_CODES: &[(u16, &str)] = &[
    (0x400f, "incorrect_or_unknown_payment_details"),
    (0x1007, "temporary_channel_failure"),
    (0x100b, "amount_below_minimum"),
    (0x100c, "fee_insufficient"),
    (0x100d, "incorrect_cltv_expiry"),
    (0x100e, "expiry_too_soon"),
    (0x400a, "unknown_next_peer"),
    (0x2002, "temporary_node_failure"),
    (0xc005, "invalid_onion_hmac"),
    (0x0017, "mpp_timeout"),
    (0x0012, "final_incorrect_cltv_expiry"),
];

/// The BOLT 4 name of a failure code, if it is one the emulator knows.
pub fn failure_name(code: u16) -> Option<&'static str> {
    FAILURE_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_name_and_unknown_codes_none() {
        for &(code, name) in FAILURE_CODES {
            assert_eq!(failure_name(code), Some(name));
            assert_eq!(FAILURE_CODES.iter().filter(|(c, _)| *c == code).count(), 1);
        }
        assert_eq!(failure_name(0xffff), None);
    }
}
