//! `monitor-events`: the emulator (`simulate`), the store tools (`inspect`,
//! `verify`) and the link's reference consumer (`consume`). See the crate README.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use monitor_events::AckMode;
use monitor_events_flash::sim::Profile;
use monitor_events_host::consume::{
    consume, open_serial, open_tcp, ConsumeOptions, DEFAULT_CONNECT_TIMEOUT_SECS,
};
use monitor_events_host::error::{CliError, EXIT_INTEGRITY, EXIT_INTERNAL, EXIT_USAGE};
use monitor_events_host::image::inspect::{inspect, verify};
use monitor_events_host::image::load::GeometryFlags;
use monitor_events_host::sim::config::{
    Scenario, SimConfig, AUTH_SECTOR_SIZE, BROWNOUT_MAX_BURST, DEFAULT_MAX_CUTS_IN_A_ROW,
};
use monitor_events_host::sim::run::{run, SimFailure};

/// Lightning channel-monitor events kept durable on the device until acked: an
/// emulator of a monitor device with power cuts, and tools for store images.
#[derive(Debug, Parser)]
#[command(name = "monitor-events", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Emulate a monitor device on simulated NOR flash with random power cuts and
    /// check every invariant after each recovery.
    Simulate(SimulateArgs),
    /// Decode a flash image or a store file: geometry, sectors, pending events.
    Inspect(ImageArgs),
    /// Check a flash image or a store file; exit 0 when it is intact, 2 when not.
    Verify(ImageArgs),
    /// Consume a device's events over the link (TCP or serial): print each event
    /// and ack it.
    Consume(ConsumeArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("peer").required(true).args(["tcp", "serial"])))]
struct ConsumeArgs {
    /// The device's TCP address (QEMU's serial bridged to a socket), HOST:PORT.
    #[arg(long, value_name = "ADDR")]
    tcp: Option<String>,
    /// The device's serial port (a USB CDC-ACM or UART adapter), e.g. /dev/ttyACM0.
    #[arg(long, value_name = "PATH")]
    serial: Option<String>,
    /// Baud rate of the serial port.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// One JSON object per event.
    #[arg(long)]
    json: bool,
    /// Hold each ack in an ack barrier until the line goes quiet, as a consumer
    /// whose acks wait for a follow-up event does.
    #[arg(long)]
    defer: bool,
    /// Events the device may send ahead of their acks.
    #[arg(long, default_value_t = 8)]
    credit: u32,
    /// Read timeout in milliseconds: a quiet line this long makes the consumer
    /// resume and re-send unconfirmed acks.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    timeout_ms: u64,
    /// Seconds to wait for the connection and the device's Hello before giving
    /// up with exit code 1 (0: wait forever).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_CONNECT_TIMEOUT_SECS)]
    connect_timeout: u64,
    /// Stop after N events, once their acks are confirmed.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop once the line is quiet and every ack is confirmed.
    #[arg(long)]
    until_idle: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProfileArg {
    /// nRF52840 internal flash (NVMC).
    Nrf52840,
    /// W25Q-class SPI NOR flash.
    W25qSpi,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScenarioArg {
    /// Steady traffic on eight channels, the consumer always there.
    Steady,
    /// One channel force-closes while the consumer is away: 483 HTLC resolutions
    /// pushed at once into a store of room for 512 (128 sectors of 4 KiB,
    /// w25q-spi), then acked in random order.
    ForceClose,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AckModeArg {
    /// Clear the ack byte in the event's record (multiwrite NOR flash).
    InPlace,
    /// Append ack records (flash with one program per word, such as ECC flash).
    Record,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// What the monitor and the consumer do.
    #[arg(long, value_enum, default_value_t = ScenarioArg::Steady)]
    scenario: ScenarioArg,
    /// Device-time profile of the flash (default nrf52840; w25q-spi for
    /// force-close).
    #[arg(long, value_enum)]
    profile: Option<ProfileArg>,
    /// Seed of the workload, the cut points and the torn writes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Events to push (default 20000; for force-close the HTLC resolutions of the
    /// burst, 483).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    events: Option<u64>,
    /// Random power cuts to inject, brown-out bursts included (default 200; 60
    /// for force-close).
    #[arg(long)]
    cuts: Option<u64>,
    /// Pending events the store has room for, its `N` (default 16; 512 for
    /// force-close; 4096 for thousands, with `--sectors 256` on 4 KiB sectors).
    #[arg(long, value_name = "N", value_parser = ["16", "64", "512", "4096"])]
    pending: Option<String>,
    /// Brown-outs: the chance in percent that a power cut is followed by another
    /// within the first 1 to 6 program or erase operations after the restart
    /// (bursts of up to 20 cuts in a row).
    #[arg(long, value_name = "PERCENT", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    brownout: u32,
    /// Most power cuts in a row before the store completes a push or an ack
    /// (default 3, the journal's spare sectors; 20 with --brownout).
    #[arg(long, value_name = "N")]
    max_cuts_in_a_row: Option<u32>,
    /// Clean restarts (reboots with power intact; default 50, 3 for force-close,
    /// the first at the peak).
    #[arg(long)]
    restarts: Option<u64>,
    /// How acks are made durable (default in-place; record with --auth).
    #[arg(long, value_enum)]
    ack_mode: Option<AckModeArg>,
    /// Authenticated journal: every record and sector header carries an HMAC tag
    /// under a device key derived from the seed; acks are records.
    #[arg(long)]
    auth: bool,
    /// Number of journal sectors (default 16; 128 for force-close).
    #[arg(long, value_name = "N")]
    sectors: Option<u32>,
    /// Journal sector size in bytes (default 4096; 8192 with --auth in the steady
    /// scenario). Larger sectors group erase blocks (see --erase-block).
    #[arg(long, value_name = "BYTES")]
    sector_size: Option<u32>,
    /// Erase block of the flash in bytes: a journal sector groups several
    /// (default: the sector size; 4096 for force-close).
    #[arg(long, value_name = "BYTES")]
    erase_block: Option<u32>,
    /// Program unit in bytes, a power of two up to 32 (default 4; 1 for
    /// force-close on w25q-spi).
    #[arg(long, value_name = "BYTES")]
    write_size: Option<u32>,
    /// Write the final flash image to this file (for `inspect` and `verify`).
    #[arg(long, value_name = "PATH")]
    image: Option<PathBuf>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Print every power cut and recovery to stderr.
    #[arg(long)]
    trace: bool,
}

#[derive(Debug, Args)]
struct ImageArgs {
    /// A raw flash image (a device dump, `simulate --image`) or a store file.
    path: PathBuf,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// Sector size in bytes (default: from the sector headers).
    #[arg(long, value_name = "BYTES")]
    sector_size: Option<u32>,
    /// Number of sectors (default: from the sector headers).
    #[arg(long, value_name = "N")]
    sectors: Option<u32>,
    /// Program unit in bytes (default: from the sector headers).
    #[arg(long, value_name = "BYTES")]
    write_size: Option<u32>,
}

impl ImageArgs {
    fn flags(&self) -> GeometryFlags {
        GeometryFlags {
            sector_size: self.sector_size,
            sectors: self.sectors,
            write_size: self.write_size,
        }
    }
}

/// Prints to stdout; a closed pipe (`| head`) is not an error.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn fail(e: &CliError) -> ExitCode {
    eprintln!("monitor-events: {}", e.message);
    ExitCode::from(e.code)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| CliError::internal(format!("cannot encode JSON: {e}")))
}

fn simulate(a: &SimulateArgs) -> ExitCode {
    let ack_mode =
        match (a.ack_mode, a.auth) {
            (Some(AckModeArg::InPlace), true) => return fail(&CliError::usage(
                "an authenticated journal acks with records: drop --ack-mode in-place or --auth"
                    .into(),
            )),
            (Some(AckModeArg::InPlace), false) | (None, false) => AckMode::InPlace,
            (Some(AckModeArg::Record), _) | (None, true) => AckMode::Record,
        };
    let base = match a.scenario {
        ScenarioArg::Steady => SimConfig::default(),
        ScenarioArg::ForceClose => SimConfig::force_close(),
    };
    let sector_size = a
        .sector_size
        .unwrap_or(if a.auth && base.scenario == Scenario::Steady {
            AUTH_SECTOR_SIZE
        } else {
            base.sector_size
        });
    let cfg = SimConfig {
        scenario: base.scenario,
        pending: a
            .pending
            .as_deref()
            .and_then(|n| n.parse().ok())
            .unwrap_or(base.pending),
        profile: match a.profile {
            None => base.profile,
            Some(ProfileArg::Nrf52840) => Profile::Nrf52840,
            Some(ProfileArg::W25qSpi) => Profile::W25qSpi,
        },
        seed: a.seed,
        events: a.events.unwrap_or(base.events),
        cuts: a.cuts.unwrap_or(base.cuts),
        restarts: a.restarts.unwrap_or(base.restarts),
        max_cuts_in_a_row: a.max_cuts_in_a_row.unwrap_or(if a.brownout > 0 {
            BROWNOUT_MAX_BURST
        } else {
            DEFAULT_MAX_CUTS_IN_A_ROW
        }),
        brownout: a.brownout,
        auth: a.auth,
        sectors: a.sectors.unwrap_or(base.sectors),
        sector_size,
        erase_block: a.erase_block.unwrap_or(match base.scenario {
            Scenario::Steady => sector_size,
            Scenario::ForceClose => base.erase_block,
        }),
        // The force-close flash is SPI NOR (1 B unit); the nRF52840 programs words.
        write_size: a.write_size.unwrap_or(
            if base.scenario == Scenario::ForceClose
                && matches!(a.profile, Some(ProfileArg::Nrf52840))
            {
                4
            } else {
                base.write_size
            },
        ),
        trace: a.trace,
        ack_mode,
    };
    // Find out now, not after the run, that the image cannot be written.
    if let Some(path) = &a.image {
        if let Err(e) = std::fs::File::create(path) {
            return fail(&CliError::usage(format!(
                "cannot write the image to {}: {e}",
                path.display()
            )));
        }
    }
    // The bar appears only once a run has taken a second.
    let bar = ProgressBar::with_draw_target(Some(cfg.events), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("simulate [{wide_bar}] {pos}/{len} events ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut shown = false;
    let show = !a.quiet && !a.json;
    let result = run(&cfg, |n| {
        if show && !shown && started.elapsed() > Duration::from_secs(1) {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            shown = true;
        }
        bar.set_position(n);
    });
    bar.finish_and_clear();
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            if let (Some(path), Some(image)) = (&a.image, e.image()) {
                if std::fs::write(path, image).is_ok() {
                    eprintln!(
                        "monitor-events: the flash image at the failure is in {}",
                        path.display()
                    );
                }
            }
            let code = match e {
                SimFailure::Panic { .. } => EXIT_INTERNAL,
                SimFailure::Config(_) | SimFailure::Pending(_) | SimFailure::EraseBlock { .. } => {
                    EXIT_USAGE
                }
                _ => EXIT_INTEGRITY,
            };
            eprintln!(
                "monitor-events: simulate (seed {}): {e}; rerun with --seed {} to reproduce",
                a.seed, a.seed
            );
            return ExitCode::from(code);
        }
    };
    if let Some(path) = &a.image {
        if let Err(e) = std::fs::write(path, &outcome.image) {
            return fail(&CliError::usage(format!(
                "cannot write the image to {}: {e}",
                path.display()
            )));
        }
    }
    let s = &outcome.summary;
    if a.json {
        match to_json(s) {
            Ok(j) => out(&j),
            Err(e) => return fail(&e),
        }
    } else {
        out(&s.render());
        if let Some(path) = &a.image {
            out(&format!(
                "flash image written to {} (see `monitor-events inspect {}`)\n",
                path.display(),
                path.display()
            ));
        }
    }
    if !a.json {
        out(&format!("{}\n", s.verdict()));
    }
    if s.ok() {
        ExitCode::SUCCESS
    } else {
        for d in &s.violation_counts.details {
            eprintln!("violation: {d}");
        }
        if let Some(h) = &s.halted {
            eprintln!("monitor-events: simulate (seed {}): {h}", a.seed);
        }
        eprintln!(
            "monitor-events: simulate (seed {}): {} invariant violations, {} bricked, {} open failures; rerun with --seed {} to reproduce",
            a.seed, s.violations, s.bricked, s.open_failures, a.seed
        );
        ExitCode::from(EXIT_INTEGRITY)
    }
}

fn inspect_cmd(a: &ImageArgs) -> ExitCode {
    let report = match inspect(&a.path, &a.flags()) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if a.json {
        match to_json(&report) {
            Ok(j) => out(&j),
            Err(e) => return fail(&e),
        }
    } else {
        out(&report.render());
    }
    match &report.error {
        None => ExitCode::SUCCESS,
        Some(e) => {
            eprintln!("monitor-events: {}: {e}", a.path.display());
            ExitCode::from(EXIT_INTEGRITY)
        }
    }
}

fn verify_cmd(a: &ImageArgs) -> ExitCode {
    let result = verify(&a.path, &a.flags());
    if a.json {
        let value = match &result {
            Ok(line) => serde_json::json!({ "ok": true, "message": line }),
            Err(e) => serde_json::json!({ "ok": false, "message": e.message, "exit_code": e.code }),
        };
        out(&format!("{value}\n"));
    }
    match result {
        Ok(line) => {
            if !a.json {
                out(&format!("{line}\n"));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn consume_cmd(a: &ConsumeArgs) -> ExitCode {
    let connect_timeout = (a.connect_timeout > 0).then(|| Duration::from_secs(a.connect_timeout));
    let opts = ConsumeOptions {
        credit: a.credit,
        json: a.json,
        defer: a.defer,
        count: a.count,
        until_idle: a.until_idle,
        status: true,
        connect_timeout,
        peer: a
            .tcp
            .clone()
            .or_else(|| a.serial.clone())
            .unwrap_or_default(),
    };
    let timeout = Duration::from_millis(a.timeout_ms.max(1));
    let mut out = std::io::stdout().lock();
    let result = match (&a.tcp, &a.serial) {
        (Some(addr), _) => {
            open_tcp(addr, timeout, connect_timeout).and_then(|s| consume(s, &opts, &mut out))
        }
        (_, Some(path)) => {
            open_serial(path, a.baud, timeout).and_then(|s| consume(s, &opts, &mut out))
        }
        _ => Err(CliError::usage("give --tcp ADDR or --serial PATH".into())),
    };
    match result {
        Ok(s) => {
            eprintln!(
                "consume: {} events, {} acked, {} frames dropped",
                s.events, s.acked, s.dropped_frames
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn main() -> ExitCode {
    // Wrong arguments are a user mistake like the others: exit code 1.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match &cli.command {
        Command::Simulate(a) => simulate(a),
        Command::Inspect(a) => inspect_cmd(a),
        Command::Verify(a) => verify_cmd(a),
        Command::Consume(a) => consume_cmd(a),
    }
}
