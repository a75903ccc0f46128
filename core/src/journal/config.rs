//! Journal configuration and its capacity check.

use super::format::{round_up, RECORD_HEADER_LEN, SECTOR_HEADER_LEN, TAG_LEN};
use crate::medium::Geometry;

/// How an ack is made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AckMode {
    /// Clear the ack byte inside the event's own record header: one program of one
    /// unit, no new record. Needs a medium that allows a second program of a unit
    /// (`Geometry::multiwrite`).
    InPlace,
    /// Append an ack record: for media that allow one program per unit (ECC flash).
    Record,
}

/// The device secret and region identity of an authenticated journal.
///
/// Every record and sector header then carries an HMAC-SHA-256 tag (truncated to
/// 16 bytes) over its place (sequence number and offset), its content and this
/// region's identity: `open` refuses a record that was forged, altered, moved,
/// reordered or transplanted from another device or region. Debug output never
/// shows the key.
///
/// Without the crate feature `auth` no `Auth` can be made (the type is
/// uninhabited): every journal is plain, and the HMAC code is compiled out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Auth {
    // The key is not kept: only the SHA-256 states after its inner and outer HMAC
    // pad blocks (as secret as the key itself), so that no tag hashes the pads
    // again (two compressions fewer per tag) and no tag needs the pads' buffers.
    #[cfg(feature = "auth")]
    pub(crate) inner: [u8; 32],
    #[cfg(feature = "auth")]
    pub(crate) outer: [u8; 32],
    #[cfg(feature = "auth")]
    pub(crate) region: [u8; 16],
    // Without `auth`: empty and uninhabited, so `Option<Auth>` is always `None`
    // and every authenticated branch is compiled out.
    #[cfg(not(feature = "auth"))]
    pub(crate) region: [u8; 0],
    #[cfg(not(feature = "auth"))]
    pub(crate) never: core::convert::Infallible,
}

impl Auth {
    /// A device secret (keep it out of the medium) and the identity of this region
    /// (for instance the device serial and the partition's name).
    ///
    /// Hashes the key's two HMAC pad blocks once, here: the `Auth` keeps those
    /// states, not the key.
    #[cfg(feature = "auth")]
    pub fn new(key: [u8; 32], region: [u8; 16]) -> Self {
        Auth {
            inner: pad_state(&key, 0x36),
            outer: pad_state(&key, 0x5c),
            region,
        }
    }
}

/// The SHA-256 state after one block of `key ^ pad` (HMAC's inner or outer
/// key block, RFC 2104; the key is 32 B, shorter than the 64 B block).
#[cfg(feature = "auth")]
fn pad_state(key: &[u8; 32], pad: u8) -> [u8; 32] {
    let mut block = [pad; 64];
    for (b, k) in block.iter_mut().zip(key) {
        *b ^= k;
    }
    bitcoin_hashes::sha256::Midstate::SHA256_IV
        .update_64(&block)
        .to_parts()
        .0
}

impl core::fmt::Debug for Auth {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Auth")
            .field("key", &"<redacted>")
            .field("region", &self.region)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Auth {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(
            f,
            "Auth {{ key: <redacted>, region: {=[u8]:x} }}",
            self.region
        )
    }
}

/// Why a configuration cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// The sector size is not a power of two between 256 B and 1 MiB.
    SectorSize,
    /// The write size is not a power of two of at most 32 B and at most the sector size.
    WriteSize,
    /// Fewer than 3 sectors, more than 65 535, or not enough for the reserve.
    SectorCount,
    /// The body bound is zero or larger than a record can carry (4087 B).
    BodyTooLarge,
    /// N copies of the largest event do not fit: neither in one sector (with a
    /// retirement and one more record) nor in the region (see [`Config`]'s rule).
    CapacityExceeded,
    /// `AckMode::InPlace` on a medium that allows one program per unit.
    InPlaceNeedsMultiwrite,
    /// The pending capacity N is zero.
    ZeroCapacity,
    /// In-place acks cannot be authenticated: an authenticated journal acks with records.
    InPlaceWithAuth,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ConfigError::SectorSize => "sector size must be a power of two from 256 B to 1 MiB",
            ConfigError::WriteSize => "write size must be a power of two of at most 32 B",
            ConfigError::SectorCount => {
                "need at least 3 sectors plus the reserve, at most 65535, and under 4 GiB in all"
            }
            ConfigError::BodyTooLarge => "body bound must be 1..=4087 bytes",
            ConfigError::CapacityExceeded => {
                "N copies of the largest event do not fit in one sector nor in the region"
            }
            ConfigError::InPlaceNeedsMultiwrite => "in-place acks need a multiwrite medium",
            ConfigError::ZeroCapacity => "pending capacity N must be at least 1",
            ConfigError::InPlaceWithAuth => {
                "an authenticated journal acks with records, not in place"
            }
        })
    }
}

impl core::error::Error for ConfigError {}

/// Configuration of a [`Journal`](super::Journal) with room for `N` pending events.
///
/// Build it in a `const` block to have a bad configuration fail the build:
///
/// ```
/// use monitor_events::journal::Config;
/// use monitor_events::Geometry;
/// const GEOMETRY: Geometry =
///     Geometry { sector_size: 4096, sector_count: 16, write_size: 4, multiwrite: true };
/// const CONFIG: Config<16> = Config::new(GEOMETRY, 200);
/// ```
///
/// # The rule it checks
///
/// | check | why |
/// |---|---|
/// | sector size a power of two, 256 B ..= 1 MiB; program unit a power of two ≤ 32 B | the format's fields ([`format`](super::format)) |
/// | `N ≥ 1`, `1 ≤ max_body ≤ 4087` | a record's `len` field |
/// | sectors ≥ 3 + reserve, ≤ 65 535, region < 4 GiB | one sector being written, one being retired, one free after every restart |
/// | **either** `header + N × copy(max_body) + retire + copy(max_body) ≤ sector size` (one sector holds them all) | a retirement into a fresh sector always completes, with room for one more record |
/// | **or** `reserve ≥ 1` and `N × copy(max_body) ≤ (sectors − reserve − 1) × (budget − copy(max_body))` (the region holds them) | the same, sector by sector: see below |
///
/// where `copy(b)` is the extent of a `Copy` record of a `b`-byte event (record
/// header, tag when authenticated, the 8 B id, the body, rounded up to the program
/// unit), `retire` the extent of a record without a body, and
/// `budget = sector size − header − retire`.
///
/// **Capacity bounded by the region.** When `N` copies do not fit in one sector,
/// the journal keeps a copy budget per sector: a sector takes an event or a copy
/// only while the copies of everything it holds (each event at the extent of its
/// `Copy` record) stay within `budget`. So whatever of a sector is still pending
/// fits, copied, into one fresh sector with its `Retire` record: retiring the
/// oldest sector never takes more than the one sector it rolls over into, exactly
/// as with the one-sector rule. The second inequality makes sure the sectors do
/// not all fill with pending copies: with at most `N` pending, some sector other
/// than the newest holds at most `budget − copy(max_body)` of them, and retiring
/// the oldest sectors in turn reaches it with at most one sector taken from the
/// reserve (hence `reserve ≥ 1`). The budget costs the 8 B id of each event's
/// copy per sector (about 4 % on 4 KiB sectors of 200 B events) and applies only
/// when the first rule does not hold, so configurations it accepts write exactly
/// as before.
///
/// Together they make compaction always possible (`Full` only ever comes from the
/// pending index, never from the medium filling up: invariant I6) and keep the
/// journal live under any sequence of power cuts (invariant I10): every restart
/// writes into at most one fresh sector, a retirement into a fresh sector frees
/// the oldest one, and a retirement a cut interrupts is given back at `open` (see
/// the journal's liveness rules). [`max_pending`] gives the largest `N` the rule
/// accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config<const N: usize> {
    pub(crate) geometry: Geometry,
    pub(crate) max_body: u32,
    pub(crate) ack_mode: AckMode,
    pub(crate) reserve: u32,
    pub(crate) auth: Option<Auth>,
    /// The one-sector rule does not hold: sectors keep a copy budget (see above).
    pub(crate) budgeted: bool,
}

impl<const N: usize> Config<N> {
    /// Checks and builds a configuration. `max_body` bounds the bytes of one event
    /// body. Acks are in place on multiwrite media, records otherwise; three sectors
    /// are kept in reserve (fewer on regions of under 7 sectors) so that compaction
    /// survives three consecutive power cuts.
    pub const fn try_new(geometry: Geometry, max_body: usize) -> Result<Self, ConfigError> {
        Self::try_new_with_reserve(geometry, max_body, default_reserve(geometry.sector_count))
    }

    /// As [`try_new`](Self::try_new), keeping `reserve` free sectors beyond the
    /// next one (see [`with_reserve`](Self::with_reserve)). A smaller reserve than
    /// `try_new`'s admits more pending events when the region bounds them.
    pub const fn try_new_with_reserve(
        geometry: Geometry,
        max_body: usize,
        reserve: u32,
    ) -> Result<Self, ConfigError> {
        let ack_mode = if geometry.multiwrite {
            AckMode::InPlace
        } else {
            AckMode::Record
        };
        Self::check(
            Config {
                geometry,
                max_body: max_body as u32,
                ack_mode,
                reserve,
                auth: None,
                budgeted: false,
            },
            max_body,
        )
    }

    /// As [`try_new`](Self::try_new), panicking on a bad configuration (at compile
    /// time in a `const` context).
    pub const fn new(geometry: Geometry, max_body: usize) -> Self {
        match Self::try_new(geometry, max_body) {
            Ok(c) => c,
            Err(_) => panic!("invalid monitor-events journal configuration"),
        }
    }

    /// Chooses the ack mode.
    pub const fn with_ack_mode(self, ack_mode: AckMode) -> Result<Self, ConfigError> {
        let max = self.max_body as usize;
        Self::check(Config { ack_mode, ..self }, max)
    }

    /// Chooses how many free sectors beyond the next one are kept in reserve: each
    /// lets the journal make progress after one more consecutive power cut during
    /// compaction. The reserve also absorbs worn flash: a record that does not
    /// read back as written seals its sector early (the rest of the sector is
    /// lost to that lap of the ring), and a cell that no longer programs does so
    /// on every lap, which near the start of a sector costs that sector for good
    /// and one sector of the reserve with it. With a reserve of 0 or 1 such a
    /// cell (with power cuts on top) can leave a retirement without a free
    /// sector: the device stops with a panic (invariant I7), with every promised
    /// event still on the medium.
    pub const fn with_reserve(self, reserve: u32) -> Result<Self, ConfigError> {
        let max = self.max_body as usize;
        Self::check(Config { reserve, ..self }, max)
    }

    /// Authenticates every record and sector header with `auth` (see [`Auth`]);
    /// acks become records. Costs 16 bytes per record and one HMAC-SHA-256 per
    /// record written or read. Needs the crate feature `auth`.
    #[cfg(feature = "auth")]
    pub const fn with_auth(self, auth: Auth) -> Result<Self, ConfigError> {
        let max = self.max_body as usize;
        Self::check(
            Config {
                auth: Some(auth),
                ack_mode: AckMode::Record,
                ..self
            },
            max,
        )
    }

    /// Whether records are authenticated.
    pub const fn authenticated(&self) -> bool {
        self.auth.is_some()
    }

    /// Bytes of the authentication tag of a record (0 or 16).
    pub(crate) const fn tag_len(&self) -> u32 {
        if self.auth.is_some() {
            TAG_LEN
        } else {
            0
        }
    }

    /// The geometry the journal expects of its medium.
    pub const fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The largest event body.
    pub const fn max_body(&self) -> usize {
        self.max_body as usize
    }

    /// The ack mode.
    pub const fn ack_mode(&self) -> AckMode {
        self.ack_mode
    }

    /// Free sectors kept beyond the next one.
    pub const fn reserve(&self) -> u32 {
        self.reserve
    }

    /// Whether the capacity is bounded by the region rather than by one sector:
    /// `N` copies of the largest event do not fit in one sector, so every sector
    /// keeps a copy budget (see the rule above).
    pub const fn region_bounded(&self) -> bool {
        self.budgeted
    }

    /// The copy budget of one sector: what the copies of its events may take so
    /// that they and a `Retire` record fit in a fresh sector.
    pub(crate) const fn copy_budget(&self) -> u32 {
        self.geometry.sector_size - self.header_len() - self.extent(0)
    }

    /// Bytes of the sector header after padding.
    pub(crate) const fn header_len(&self) -> u32 {
        round_up(SECTOR_HEADER_LEN + self.tag_len(), self.geometry.write_size)
    }

    /// Bytes a record with a body of `body` bytes occupies. Out of line: open
    /// computes it at many places.
    #[inline(never)]
    pub(crate) const fn extent(&self, body: u32) -> u32 {
        round_up(
            RECORD_HEADER_LEN + self.tag_len() + body,
            self.geometry.write_size,
        )
    }

    const fn check(c: Self, max_body: usize) -> Result<Self, ConfigError> {
        let g = c.geometry;
        if !g.sector_size.is_power_of_two() || g.sector_size < 256 || g.sector_size > 1 << 20 {
            return Err(ConfigError::SectorSize);
        }
        if !g.write_size.is_power_of_two() || g.write_size > 32 {
            return Err(ConfigError::WriteSize);
        }
        if N == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if g.sector_count < 3 + c.reserve
            || g.sector_count > 0xFFFF
            || g.sector_size as u64 * g.sector_count as u64 > u32::MAX as u64
        {
            return Err(ConfigError::SectorCount);
        }
        if max_body == 0 || max_body > (super::format::MAX_LEN_FIELD - 8) as usize {
            return Err(ConfigError::BodyTooLarge);
        }
        if matches!(c.ack_mode, AckMode::InPlace) && !g.multiwrite {
            return Err(ConfigError::InPlaceNeedsMultiwrite);
        }
        if matches!(c.ack_mode, AckMode::InPlace) && c.auth.is_some() {
            return Err(ConfigError::InPlaceWithAuth);
        }
        match capacity(&c) {
            Some((one_sector, _)) if N <= one_sector => Ok(Config {
                budgeted: false,
                ..c
            }),
            Some((_, region)) if N <= region => Ok(Config {
                budgeted: true,
                ..c
            }),
            _ => Err(ConfigError::CapacityExceeded),
        }
    }
}

/// The largest `N` each rule of [`Config`] accepts for `c` (its `N` aside): in one
/// sector, in the region (0 without a reserve). `None` if a sector cannot hold a
/// header, a retirement and one copy of the largest event.
const fn capacity<const K: usize>(c: &Config<K>) -> Option<(usize, usize)> {
    let size = c.geometry.sector_size as u64;
    let copy = c.extent(c.max_body + 8) as u64;
    let fixed = c.header_len() as u64 + c.extent(0) as u64 + copy;
    if fixed > size {
        return None;
    }
    let one_sector = (size - fixed) / copy;
    // budget − copy = size − header − retire − copy = size − fixed.
    let region = if c.reserve >= 1 && c.geometry.sector_count > c.reserve + 1 {
        (c.geometry.sector_count - c.reserve - 1) as u64 * (size - fixed) / copy
    } else {
        0
    };
    Some((saturate(one_sector), saturate(region)))
}

const fn saturate(n: u64) -> usize {
    if n > usize::MAX as u64 {
        usize::MAX
    } else {
        n as usize
    }
}

/// The reserve [`Config::try_new`] chooses for `sector_count` sectors.
const fn default_reserve(sector_count: u32) -> u32 {
    if sector_count >= 7 {
        3
    } else {
        sector_count.saturating_sub(3)
    }
}

/// The largest pending capacity `N` that [`Config::try_new`] accepts for
/// `geometry` and events of up to `max_body` bytes, with or without
/// authentication ([`Config::with_auth`]), with the reserve `try_new` chooses;
/// 0 if none. Use it to size `N` in a `const`:
///
/// ```
/// use monitor_events::journal::{max_pending, Config};
/// use monitor_events::Geometry;
/// const G: Geometry =
///     Geometry { sector_size: 4096, sector_count: 16, write_size: 4, multiwrite: true };
/// const N: usize = max_pending(G, 120, false);
/// const CONFIG: Config<N> = Config::new(G, 120);
/// # assert!(Config::<{ N + 1 }>::try_new(G, 120).is_err());
/// ```
pub const fn max_pending(geometry: Geometry, max_body: usize, authenticated: bool) -> usize {
    max_pending_with_reserve(
        geometry,
        max_body,
        authenticated,
        default_reserve(geometry.sector_count),
    )
}

/// As [`max_pending`], for a configuration that keeps `reserve` free sectors
/// ([`Config::with_reserve`]).
pub const fn max_pending_with_reserve(
    geometry: Geometry,
    max_body: usize,
    authenticated: bool,
    reserve: u32,
) -> usize {
    let c = Config::<1> {
        geometry,
        max_body: max_body as u32,
        ack_mode: AckMode::Record,
        reserve,
        #[cfg(feature = "auth")]
        auth: if authenticated {
            // Only whether there is an `Auth` matters to the sizes.
            Some(Auth {
                inner: [0; 32],
                outer: [0; 32],
                region: [0; 16],
            })
        } else {
            None
        },
        // Without the feature `auth` there are no authenticated journals to size.
        #[cfg(not(feature = "auth"))]
        auth: None,
        budgeted: false,
    };
    #[cfg(not(feature = "auth"))]
    let _ = authenticated;
    if Config::<1>::check(c, max_body).is_err() {
        return 0;
    }
    match capacity(&c) {
        Some((one_sector, region)) if one_sector > region => one_sector,
        Some((_, region)) => region,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Geometry = Geometry {
        sector_size: 4096,
        sector_count: 16,
        write_size: 4,
        multiwrite: true,
    };

    /// I6: the capacity check refuses a region that could not always compact.
    #[test]
    fn i6_capacity_check() {
        assert!(Config::<16>::try_new(G, 200).is_ok());
        assert!(!Config::<16>::try_new(G, 200).unwrap().region_bounded());
        // Beyond one sector, the region bounds N: 12 sectors of 3 848 B of
        // budget beyond one copy, copies of 216 B.
        let n = max_pending(G, 200, false);
        assert_eq!(n, 12 * (4096 - 24 - 8 - 216) / 216);
        assert!(Config::<64>::try_new(G, 200).unwrap().region_bounded());
        assert_eq!(
            Config::<214>::try_new(G, 200),
            Err(ConfigError::CapacityExceeded)
        );
        // The region rule needs a reserve.
        assert_eq!(
            Config::<64>::try_new(G, 200).unwrap().with_reserve(0),
            Err(ConfigError::CapacityExceeded)
        );
        assert!(Config::<16>::try_new(G, 200)
            .unwrap()
            .with_reserve(0)
            .is_ok());
        assert_eq!(
            Config::<16>::try_new(G, 5000),
            Err(ConfigError::BodyTooLarge)
        );
        assert_eq!(Config::<0>::try_new(G, 10), Err(ConfigError::ZeroCapacity));
        let two = Geometry {
            sector_count: 2,
            ..G
        };
        assert_eq!(Config::<1>::try_new(two, 10), Err(ConfigError::SectorCount));
        let odd = Geometry {
            sector_size: 3000,
            ..G
        };
        assert_eq!(Config::<1>::try_new(odd, 10), Err(ConfigError::SectorSize));
        let ecc = Geometry {
            multiwrite: false,
            ..G
        };
        let c = Config::<16>::try_new(ecc, 100).unwrap();
        assert_eq!(c.ack_mode(), AckMode::Record);
        assert_eq!(
            c.with_ack_mode(AckMode::InPlace),
            Err(ConfigError::InPlaceNeedsMultiwrite)
        );
        const _C: Config<16> = Config::new(G, 120);
    }

    /// I6: the capacities asked of the journal at scale: 4 096 events of the
    /// largest size on a 1 MiB partition of 256 × 4 KiB SPI NOR (1 B unit), 512 on
    /// 64 × 4 KiB of nRF52840 flash (4 B unit); and what one sector holds.
    #[test]
    fn i6_thousands_fit_in_the_region() {
        use crate::event::MAX_ENCODED_LEN;
        let spi = Geometry {
            sector_size: 4096,
            sector_count: 256,
            write_size: 1,
            multiwrite: true,
        };
        let nrf = Geometry {
            sector_size: 4096,
            sector_count: 64,
            write_size: 4,
            multiwrite: true,
        };
        let c = Config::<4096>::try_new(spi, MAX_ENCODED_LEN).unwrap();
        assert!(c.region_bounded());
        assert!(Config::<512>::try_new(nrf, MAX_ENCODED_LEN).is_ok());
        assert!(max_pending(spi, MAX_ENCODED_LEN, false) >= 4096);
        assert!(max_pending(nrf, MAX_ENCODED_LEN, false) >= 512);
        let small = Geometry {
            sector_count: 16,
            ..nrf
        };
        assert_eq!(
            max_pending(small, MAX_ENCODED_LEN, false),
            12 * (4096 - 24 - 8 - 232) / 232
        );
        let spi16 = Geometry {
            sector_count: 16,
            ..spi
        };
        let three = Geometry {
            sector_count: 3,
            ..spi
        };
        println!(
            "largest N for events of MAX_ENCODED_LEN ({MAX_ENCODED_LEN} B): 256 x 4 KiB, 1 B unit: {}; \
             16 x 4 KiB, 1 B unit: {}; 16 x 4 KiB, 4 B unit: {}; 64 x 4 KiB, 4 B unit: {}; 3 x 4 KiB: {}; \
             authenticated on 256 x 4 KiB: {}",
            max_pending(spi, MAX_ENCODED_LEN, false),
            max_pending(spi16, MAX_ENCODED_LEN, false),
            max_pending(small, MAX_ENCODED_LEN, false),
            max_pending(nrf, MAX_ENCODED_LEN, false),
            max_pending(three, MAX_ENCODED_LEN, false),
            max_pending(spi, MAX_ENCODED_LEN, true),
        );
    }

    /// I6, I10: `max_pending` is exactly the edge `try_new` draws, for plain and
    /// authenticated journals, small and large program units, one-sector and
    /// region-bounded capacities, with the default reserve and others.
    #[test]
    fn i6_max_pending_is_the_edge() {
        fn accepted<const N: usize>(g: Geometry, body: usize, auth: bool, r: Option<u32>) -> bool {
            let c = match r {
                Some(r) => Config::<N>::try_new_with_reserve(g, body, r),
                None => Config::<N>::try_new(g, body),
            };
            if auth {
                #[cfg(feature = "auth")]
                return c
                    .and_then(|c| c.with_auth(Auth::new([7; 32], [1; 16])))
                    .is_ok();
                // The loop below skips authenticated sizes without the feature.
                #[cfg(not(feature = "auth"))]
                unreachable!("an authenticated configuration needs the feature `auth`");
            }
            c.is_ok()
        }
        let (mut one_sector, mut region) = (0, 0);
        for ws in [1, 4, 8, 32] {
            for (auth, body) in [
                (false, 214),
                (true, 214),
                (false, 40),
                (true, 100),
                (false, 16),
            ] {
                // Without the feature every journal is plain and sized as such.
                if auth && !cfg!(feature = "auth") {
                    continue;
                }
                for (size, count) in [
                    (4096, 16),
                    (4096, 5),
                    (256, 4),
                    (256, 9),
                    (512, 6),
                    (512, 12),
                    (1024, 8),
                    (1024, 3),
                ] {
                    for r in [None, Some(0), Some(1), Some(2)] {
                        let g = Geometry {
                            sector_size: size,
                            sector_count: count,
                            write_size: ws,
                            multiwrite: false,
                        };
                        let n = match r {
                            None => max_pending(g, body, auth),
                            Some(r) => max_pending_with_reserve(g, body, auth, r),
                        };
                        // Config is generic over N: probe the edge through a table of N.
                        macro_rules! probe {
                            ($($k:literal)*) => {$(
                                if n == $k {
                                    assert!(accepted::<$k>(g, body, auth, r), "N = {} accepted: {g:?} {body} {auth} {r:?}", $k);
                                    assert!(!accepted::<{ $k + 1 }>(g, body, auth, r), "N = {} refused: {g:?} {body} {auth} {r:?}", $k + 1);
                                    let c = match r { Some(r) => Config::<$k>::try_new_with_reserve(g, body, r), None => Config::<$k>::try_new(g, body) };
                                    if c.unwrap().region_bounded() { region += 1 } else { one_sector += 1 }
                                }
                            )*};
                        }
                        probe!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25
                               26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48
                               49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 69 70 71
                               72 73 74 75 76 77 78 79 80 81 82 83 84 85 86 87 88 89 90 91 92 93 94
                               95 96 97 98 99 100 101 102 103 104 105 106 107 108 109 110 111 112);
                        if n == 0 {
                            assert!(
                                !accepted::<1>(g, body, auth, r),
                                "{g:?} {body} {auth} {r:?}"
                            );
                        }
                    }
                }
            }
        }
        assert!(
            one_sector >= 40 && region >= 40,
            "edges probed: {one_sector} one-sector, {region} region"
        );
    }
}
