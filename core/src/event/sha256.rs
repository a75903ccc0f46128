//! SHA-256 (FIPS 180-4) of a 32-byte message, the only one the event types hash:
//! a payment preimage. Such a message and its padding fill exactly one 64-byte
//! block, so this is one compression with its loops rolled up, a fraction of the
//! code of a general streaming hasher (which unrolls its rounds) on a
//! microcontroller. The tests check it against `bitcoin_hashes`.

/// The round constants.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// The initial hash value.
const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The SHA-256 of the 32 bytes `msg`.
pub(crate) fn sha256_32(msg: &[u8; 32]) -> [u8; 32] {
    // The one block: the message, the `1` bit, zeros, the length in bits (256).
    let mut w = [0u32; 64];
    for (word, bytes) in w.iter_mut().zip(msg.chunks_exact(4)) {
        *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    w[8] = 0x8000_0000;
    w[15] = 256;
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16]
            .wrapping_add(s0)
            .wrapping_add(w[i - 7])
            .wrapping_add(s1);
    }
    let mut s = H0;
    for (k, w) in K.iter().zip(w.iter()) {
        let [a, b, c, d, e, f, g, h] = s;
        let t1 = h
            .wrapping_add(e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25))
            .wrapping_add((e & f) ^ (!e & g))
            .wrapping_add(*k)
            .wrapping_add(*w);
        let t2 = (a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22))
            .wrapping_add((a & b) ^ (a & c) ^ (b & c));
        s = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
    }
    let mut out = [0u8; 32];
    for ((bytes, h0), v) in out.chunks_exact_mut(4).zip(H0).zip(s) {
        bytes.copy_from_slice(&h0.wrapping_add(v).to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sha256_32;
    use proptest::prelude::*;

    /// Scenario: preimage validation (a claim's preimage hashes to its payment
    /// hash). The SHA-256 of 32 zero bytes, the published value, and of 32 `0xff`.
    #[test]
    fn preimage_validation_sha256_of_known_preimages() {
        assert_eq!(
            sha256_32(&[0; 32]),
            [
                0x66, 0x68, 0x7a, 0xad, 0xf8, 0x62, 0xbd, 0x77, 0x6c, 0x8f, 0xc1, 0x8b, 0x8e, 0x9f,
                0x8e, 0x20, 0x08, 0x97, 0x14, 0x85, 0x6e, 0xe2, 0x33, 0xb3, 0x90, 0x2a, 0x59, 0x1d,
                0x0d, 0x5f, 0x29, 0x25,
            ]
        );
        assert_eq!(
            sha256_32(&[0xff; 32]),
            bitcoin_hashes::sha256::Hash::hash(&[0xff; 32]).to_byte_array()
        );
    }

    proptest! {
        /// Scenario: preimage validation. For any 32-byte preimage the one-block
        /// hash is `bitcoin_hashes`' SHA-256.
        #[test]
        fn preimage_validation_sha256_is_bitcoin_hashes_sha256(msg in any::<[u8; 32]>()) {
            prop_assert_eq!(
                sha256_32(&msg),
                bitcoin_hashes::sha256::Hash::hash(&msg).to_byte_array()
            );
        }
    }
}
