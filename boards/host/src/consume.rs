//! `monitor-events consume`: a reference consumer of a device's events over the
//! link (`monitor-events-link`), on a TCP socket or a serial port. It prints each
//! event and acks it, at once or deferred through an [`AckBarrier`] until the line
//! goes quiet (`--defer`: what a channel manager does when an ack must wait for a
//! follow-up event).
//!
//! A peer that never greets (nothing but a silent listener on the port, a
//! device without the firmware, a firmware that does not speak the link) ends
//! it after [`ConsumeOptions::connect_timeout`] with one line and exit code 1,
//! rather than waiting forever.
//!
//! Serial ports are opened with the `serialport` crate without its default
//! `libudev` feature: port enumeration is not needed, so nothing but the kernel's
//! tty interface is used and the command builds without system libraries.

use std::io::{self, IsTerminal, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use monitor_events::{AckBarrier, Condition};
use monitor_events_link::{Delivery, LinkClient, LinkError};

use crate::error::CliError;

/// Most acks held at once with `--defer`; when full, the held acks are released.
pub const MAX_HELD: usize = 256;

/// What `consume` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// Events the device may send ahead of their acks.
    pub credit: u32,
    /// One JSON object per event instead of a text line.
    pub json: bool,
    /// Hold each ack in an [`AckBarrier`] until the line goes quiet.
    pub defer: bool,
    /// Stop after this many events, once their acks are confirmed.
    pub count: Option<u64>,
    /// Stop when the line is quiet twice in a row and every ack is confirmed.
    pub until_idle: bool,
    /// Print a live status line on stderr (when it is a terminal).
    pub status: bool,
    /// How long the device may take to say `Hello` (checked after each read,
    /// so at most one read timeout later); `None` waits forever.
    pub connect_timeout: Option<Duration>,
    /// The peer, as the error lines name it: the address or the port's path.
    pub peer: String,
}

/// Default of `--connect-timeout`, in seconds.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;

/// What a `consume` run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events delivered (each id once).
    pub events: u64,
    /// Acks sent.
    pub acked: u64,
    /// Frames dropped (damaged, oversize, unknown).
    pub dropped_frames: u64,
}

/// Every link error is one line and exit code 1: a wrong peer (another protocol
/// version, not a monitor-events device), a closed or failing stream.
fn link_error(e: LinkError) -> CliError {
    CliError::usage(e.to_string())
}

/// The read error of a [`Greeting`] past its deadline: not a read timeout, so
/// `LinkClient::connect` stops rather than greeting again.
#[derive(Debug)]
struct NoHello;

impl std::fmt::Display for NoHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no Hello before the connect deadline")
    }
}

impl std::error::Error for NoHello {}

/// The stream, with a deadline for the device's `Hello`: once it has passed,
/// reads fail with [`NoHello`]. Lifted (`None`) once connected.
struct Greeting<T> {
    io: T,
    deadline: Option<Instant>,
}

impl<T: Read> Read for Greeting<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(io::Error::other(NoHello));
        }
        self.io.read(buf)
    }
}

impl<T: Write> Write for Greeting<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.io.flush()
    }
}

/// Greets the device through `io` and waits for its `Hello`, at most
/// `opts.connect_timeout`.
fn connect<T: Read + Write>(
    io: T,
    opts: &ConsumeOptions,
) -> Result<LinkClient<Greeting<T>>, CliError> {
    let greeting = Greeting {
        io,
        deadline: opts.connect_timeout.map(|t| Instant::now() + t),
    };
    match LinkClient::connect(greeting, opts.credit) {
        Ok(mut client) => {
            client.get_mut().deadline = None;
            Ok(client)
        }
        Err(LinkError::Io(e)) if e.get_ref().is_some_and(|i| i.is::<NoHello>()) => {
            let secs = opts.connect_timeout.unwrap_or_default().as_secs_f64();
            Err(CliError::usage(format!(
                "{}: no monitor-events device answered within {secs} s (no Hello): is the \
                 firmware running and is this its port? (--connect-timeout SECS waits longer)",
                opts.peer
            )))
        }
        Err(e) => Err(link_error(e)),
    }
}

/// Connects over TCP to `addr` with a read timeout of `timeout`; each of the
/// address's resolutions gets `connect_timeout` (`None`: the system's own) to
/// accept the connection.
pub fn open_tcp(
    addr: &str,
    timeout: Duration,
    connect_timeout: Option<Duration>,
) -> Result<TcpStream, CliError> {
    let cannot = |e: io::Error| CliError::usage(format!("cannot connect to {addr}: {e}"));
    let s = match connect_timeout {
        None => TcpStream::connect(addr).map_err(cannot)?,
        Some(limit) => {
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
            let mut found = None;
            for a in addr.to_socket_addrs().map_err(cannot)? {
                match TcpStream::connect_timeout(&a, limit) {
                    Ok(s) => {
                        found = Some(s);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            found.ok_or_else(|| cannot(last))?
        }
    };
    s.set_read_timeout(Some(timeout))
        .map_err(|e| CliError::usage(format!("{addr}: {e}")))?;
    s.set_write_timeout(Some(timeout.max(Duration::from_secs(1))))
        .map_err(|e| CliError::usage(format!("{addr}: {e}")))?;
    s.set_nodelay(true).ok();
    Ok(s)
}

/// Opens the serial port `path` at `baud` (8N1, no flow control) with a read
/// timeout of `timeout`.
pub fn open_serial(
    path: &str,
    baud: u32,
    timeout: Duration,
) -> Result<Box<dyn serialport::SerialPort>, CliError> {
    serialport::new(path, baud)
        .timeout(timeout)
        .open()
        .map_err(|e| CliError::usage(format!("cannot open {path}: {e}")))
}

fn print_event(out: &mut dyn Write, d: &Delivery, json: bool) -> Result<(), CliError> {
    let channel = d.event.channel().to_string();
    let kind = d.event.kind().as_str();
    let r = if json {
        let v = serde_json::json!({
            "id": d.id.0,
            "kind": kind,
            "channel": channel,
            "event": format!("{:?}", d.event),
        });
        writeln!(out, "{v}")
    } else {
        writeln!(out, "{} {kind} channel {channel}", d.id)
    };
    r.map_err(|e| CliError::usage(format!("cannot write: {e}")))
}

/// Consumes events from `io` until `opts` says stop (or forever): prints each
/// event to `out` and acks it. Errors: a device of another protocol version, a
/// peer that is not a monitor-events device or that sends no `Hello` within
/// `opts.connect_timeout` (one line, exit code 1), the stream failing or
/// closing.
pub fn consume<T: Read + Write>(
    io: T,
    opts: &ConsumeOptions,
    out: &mut dyn Write,
) -> Result<Summary, CliError> {
    let mut client = connect(io, opts)?;
    let mut barrier = AckBarrier::<MAX_HELD, 1>::new();
    let mut summary = Summary::default();
    let mut quiet = 0u32;
    let status = opts.status && std::io::stderr().is_terminal();
    loop {
        let done_counting = opts.count.is_some_and(|n| summary.events >= n);
        if done_counting {
            release_all(&mut client, &mut barrier, &mut summary)?;
            client.flush_acks().map_err(link_error)?;
            break;
        }
        match client.next_event().map_err(link_error)? {
            Some(d) => {
                quiet = 0;
                summary.events += 1;
                print_event(out, &d, opts.json)?;
                if opts.defer {
                    if barrier.is_held(&d.source()) {
                        continue;
                    }
                    if barrier.len() == barrier.capacity() {
                        release_all(&mut client, &mut barrier, &mut summary)?;
                    }
                    // The follow-up this ack waits for: here, the line going quiet.
                    let _ = barrier.hold(d.source(), &[Condition::EventProcessed(d.id.0)]);
                } else {
                    client.ack(d.source()).map_err(link_error)?;
                    summary.acked += 1;
                }
            }
            None => {
                quiet += 1;
                release_all(&mut client, &mut barrier, &mut summary)?;
                if opts.until_idle && quiet >= 2 && client.unconfirmed() == 0 {
                    break;
                }
            }
        }
        if status {
            let c = client.counters();
            eprint!(
                "\revents {}, acked {}, held {}, unconfirmed {}, dropped frames {}   ",
                summary.events,
                summary.acked,
                barrier.len(),
                client.unconfirmed(),
                c.dropped()
            );
        }
    }
    if status {
        eprintln!();
    }
    summary.dropped_frames = client.counters().dropped();
    Ok(summary)
}

/// Meets every held ack's condition and sends the acks.
fn release_all<T: Read + Write>(
    client: &mut LinkClient<T>,
    barrier: &mut AckBarrier<MAX_HELD, 1>,
    summary: &mut Summary,
) -> Result<(), CliError> {
    let held: Vec<_> = barrier.iter().map(|(s, _)| s).collect();
    for s in held {
        barrier.satisfy(&Condition::EventProcessed(s.id.0));
    }
    while let Some(source) = barrier.next_ready() {
        client.ack(source).map_err(link_error)?;
        summary.acked += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_events::{ChannelId, Config, EventStore, Geometry, MonitorEvent, MAX_ENCODED_LEN};
    use monitor_events_flash::SimFlash;
    use monitor_events_link::{DeviceLink, MAX_FRAME_LEN};

    const GEO: Geometry = Geometry {
        sector_size: 4096,
        sector_count: 8,
        write_size: 4,
        multiwrite: true,
    };

    /// A peer that takes every write and never answers: each read waits `pause`
    /// and times out.
    struct Silent {
        pause: Duration,
        written: usize,
    }

    impl Read for Silent {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(self.pause);
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    impl Write for Silent {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A device in memory: its link runs on every read; a read with nothing to
    /// send waits `pause` and times out.
    struct Device {
        store: EventStore<SimFlash, 16>,
        link: DeviceLink,
        out: Vec<u8>,
        pause: Duration,
    }

    impl Write for Device {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.link.receive(&mut self.store, b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Read for Device {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            let mut f = [0u8; MAX_FRAME_LEN];
            loop {
                let n = self.link.poll_transmit(&mut self.store, &mut f);
                if n == 0 {
                    break;
                }
                self.out.extend_from_slice(&f[..n]);
            }
            if self.out.is_empty() {
                std::thread::sleep(self.pause);
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = b.len().min(self.out.len());
            b[..n].copy_from_slice(&self.out[..n]);
            self.out.drain(..n);
            Ok(n)
        }
    }

    fn opts(connect_timeout: Option<Duration>) -> ConsumeOptions {
        ConsumeOptions {
            credit: 8,
            json: false,
            defer: false,
            count: None,
            until_idle: true,
            status: false,
            connect_timeout,
            peer: "peer".into(),
        }
    }

    /// A peer that never says Hello: `consume` gives up after the connect
    /// timeout (within one read timeout of it) with one line and exit code 1,
    /// having greeted it more than once meanwhile.
    #[test]
    fn silent_peer_times_out_with_one_line() {
        let mut peer = Silent {
            pause: Duration::from_millis(20),
            written: 0,
        };
        let start = Instant::now();
        let e = consume(
            &mut peer,
            &opts(Some(Duration::from_millis(300))),
            &mut Vec::new(),
        )
        .unwrap_err();
        let took = start.elapsed();
        assert_eq!(e.code, crate::error::EXIT_USAGE);
        assert!(
            e.message
                .starts_with("peer: no monitor-events device answered within 0.3 s"),
            "{e}"
        );
        assert_eq!(e.message.lines().count(), 1, "{e}");
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
        let mut once = Silent {
            pause: Duration::ZERO,
            written: 0,
        };
        let _ = consume(&mut once, &opts(Some(Duration::ZERO)), &mut Vec::new());
        assert!(once.written > 0, "the greeting goes out before any read");
        assert!(
            peer.written > once.written,
            "greeted again on read timeouts until the deadline"
        );
    }

    /// I1, I2 with the deadline lifted once connected: a device that answers at
    /// once and then goes quiet for longer than the connect timeout delivers
    /// every event; each is acked and the store ends empty.
    #[test]
    fn connect_timeout_ends_with_the_hello() {
        let mut store =
            EventStore::<SimFlash, 16>::open(SimFlash::new(GEO), Config::new(GEO, MAX_ENCODED_LEN))
                .unwrap();
        store.no_updates_in_flight();
        for i in 0..5u8 {
            let channel = ChannelId([i; 32]);
            store
                .push(&MonitorEvent::CommitmentTxConfirmed { channel })
                .unwrap();
        }
        let mut device = Device {
            store,
            link: DeviceLink::new(),
            out: Vec::new(),
            pause: Duration::from_millis(40),
        };
        let mut out = Vec::new();
        let connect_timeout = Some(Duration::from_millis(30));
        let summary = consume(&mut device, &opts(connect_timeout), &mut out).unwrap();
        assert_eq!(summary.events, 5);
        assert_eq!(summary.acked, 5);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 5);
        assert_eq!(device.store.pending_count(), 0, "I2: every ack landed");
    }
}
