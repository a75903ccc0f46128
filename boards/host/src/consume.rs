//! `monitor-events consume`: a reference consumer of a device's events over the
//! link (`monitor-events-link`), on a TCP socket or a serial port. It prints each
//! event and acks it, at once or deferred through an [`AckBarrier`] until the line
//! goes quiet (`--defer`: what a channel manager does when an ack must wait for a
//! follow-up event).
//!
//! Serial ports are opened with the `serialport` crate without its default
//! `libudev` feature: port enumeration is not needed, so nothing but the kernel's
//! tty interface is used and the command builds without system libraries.

use std::io::{IsTerminal, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

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
}

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

/// Connects over TCP to `addr` with a read timeout of `timeout`.
pub fn open_tcp(addr: &str, timeout: Duration) -> Result<TcpStream, CliError> {
    let s = TcpStream::connect(addr)
        .map_err(|e| CliError::usage(format!("cannot connect to {addr}: {e}")))?;
    s.set_read_timeout(Some(timeout))
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
/// event to `out` and acks it. Errors: a device of another protocol version or a
/// peer that is not a monitor-events device (one line, exit code 1), the stream
/// failing or closing.
pub fn consume<T: Read + Write>(
    io: T,
    opts: &ConsumeOptions,
    out: &mut dyn Write,
) -> Result<Summary, CliError> {
    let mut client = LinkClient::connect(io, opts.credit).map_err(link_error)?;
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
