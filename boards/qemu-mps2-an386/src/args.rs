//! The command line: `<mode> key=value ...` after the program name.
//!
//! | key | default | used by |
//! |---|---|---|
//! | `image` | `selftest.img` (selftest), `flash.img` | all: the host file that is the flash |
//! | `log` | `events.log` | run, verify, link: the report log |
//! | `out` | `verify.txt` | verify: the verdict file |
//! | `carry` | none | verify: on a pass, write the carried-over log here |
//! | `events` | `100000` | selftest: W1 events (100 000 checks docs/BENCH.md's fingerprint); link: push while the next id is below it (`0`: push nothing, serve the link) |
//! | `ops` | `0` (forever) | run: stop after this many operations |
//! | `acks` | `inplace` | run, verify: `record` for a medium without multiwrite |
//! | `auth` | `off` | run, verify: `on` for the authenticated journal (HMAC tags, ack records, 8 sectors of 8 KiB) |
//! | `fail_at` | none | run: the n-th program or erase fails (the journal must panic, I7) |

/// What the firmware does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum Mode {
    /// Self-test with reboots.
    Selftest,
    /// Push and ack forever, reporting to the log.
    Run,
    /// Check the image against the log.
    Verify,
    /// Push events and serve them to a consumer over UART0, reporting to the log
    /// (feature `link`).
    Link,
}

/// The parsed command line.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct Args<'a> {
    /// The mode.
    pub mode: Mode,
    /// The flash image.
    pub image: &'a str,
    /// The report log.
    pub log: &'a str,
    /// The verdict file of `verify`.
    pub out: &'a str,
    /// Where a passing verify writes the carried-over log.
    pub carry: Option<&'a str>,
    /// W1 events of the self-test; `link` pushes while the next id is below it.
    pub events: u64,
    /// Operations of `run` (0: forever).
    pub ops: u64,
    /// Whether the medium is multiwrite (in-place acks).
    pub multiwrite: bool,
    /// Whether the journal is authenticated.
    pub auth: bool,
    /// The program or erase of `run` that fails.
    pub fail_at: Option<u32>,
}

impl<'a> Args<'a> {
    /// Parses the semihosting command line: the first word is the program (QEMU
    /// passes the ELF path), then an optional mode and `key=value` pairs. Returns
    /// the offending word on error.
    pub fn parse(line: &'a str) -> Result<Self, &'a str> {
        let mut words = line.split_ascii_whitespace();
        words.next();
        let mut mode = None;
        let mut image = None;
        let mut a = Args {
            mode: Mode::Selftest,
            image: "",
            log: "events.log",
            out: "verify.txt",
            carry: None,
            events: 100_000,
            ops: 0,
            multiwrite: true,
            auth: false,
            fail_at: None,
        };
        for w in words {
            match w.split_once('=') {
                None if mode.is_none() => {
                    mode = Some(match w {
                        "selftest" => Mode::Selftest,
                        "run" => Mode::Run,
                        "verify" => Mode::Verify,
                        "link" => Mode::Link,
                        _ => return Err(w),
                    })
                }
                None => return Err(w),
                Some(("image", v)) => image = Some(v),
                Some(("log", v)) => a.log = v,
                Some(("out", v)) => a.out = v,
                Some(("carry", v)) => a.carry = Some(v),
                Some(("events", v)) => a.events = v.parse().map_err(|_| w)?,
                Some(("ops", v)) => a.ops = v.parse().map_err(|_| w)?,
                Some(("fail_at", v)) => a.fail_at = Some(v.parse().map_err(|_| w)?),
                Some(("acks", "inplace")) => a.multiwrite = true,
                Some(("acks", "record")) => a.multiwrite = false,
                Some(("auth", "on")) => a.auth = true,
                Some(("auth", "off")) => a.auth = false,
                Some(_) => return Err(w),
            }
        }
        a.mode = mode.unwrap_or(Mode::Selftest);
        a.image = image.unwrap_or(match a.mode {
            Mode::Selftest => "selftest.img",
            _ => "flash.img",
        });
        Ok(a)
    }
}
