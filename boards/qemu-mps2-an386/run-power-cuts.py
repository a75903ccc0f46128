#!/usr/bin/env python3
"""Power-cut loop for the mps2-an386 firmware under QEMU.

Builds the firmware (release, feature `async`), runs `selftest` (its phase 6
through the async store too: the decoded log must hold its `selftest (async):
... ok` line, which needs defmt-print), checks that an injected medium
failure panics (I7: `run fail_at=K` must exit 1, naming the failed operation, and
`verify` must pass on what it left), then N cycles on the plain journal and
AUTH_CYCLES (default 10) on the authenticated one (`auth=on`: HMAC tags, ack
records, its own image and log) of:

  1. start `run` on the same flash image (QEMU's stdout to a file, never a pipe);
  2. SIGKILL QEMU after a random delay (seeded): a power cut, since every program
     and erase of the firmware's flash has been written to the host image file;
  3. run `verify`, which recovers the image read-only and checks it against the
     report log `run` appended to (every returned push present and byte-identical
     unless an ack was asked for, no returned ack resurrected, ids never reused);
     on a pass the log is replaced by the carried-over summary verify wrote.

Prints exactly three lines on stdout:

  selftest (async): W1 100000 events, fingerprint 0x..., ... ok
  qemu power cuts: N, lost: L, resurrected: R, reused ids: U
  qemu power cuts (auth): M, lost: L, resurrected: R, reused ids: U

and exits non-zero if an L, R or U is not zero or any step failed (details on
stderr). Usage: run-power-cuts.py [CYCLES] [--auth-cycles M] [--seed S]
[--acks inplace|record]
"""

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time

BOARD = os.path.dirname(os.path.abspath(__file__))
TARGET = "thumbv7em-none-eabihf"
BIN = "monitor-events-qemu"
QEMU = [
    "qemu-system-arm", "-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic",
    "-semihosting-config", "enable=on,target=native", "-kernel",
]
SELFTEST_TIMEOUT = 120
VERIFY_TIMEOUT = 60


def err(*args):
    print(*args, file=sys.stderr, flush=True)


def decode(elf, path, lines=30):
    """The last lines of a defmt capture, decoded if defmt-print is installed."""
    if not shutil.which("defmt-print"):
        return f"(install defmt-print to decode {path})"
    with open(path, "rb") as f:
        r = subprocess.run(["defmt-print", "-e", elf], stdin=f, capture_output=True, timeout=60)
    out = r.stdout.decode(errors="replace").splitlines()
    return "\n".join(out[-lines:])


def qemu(elf, append, out_path):
    """The command line and an open file for QEMU's stdout and stderr."""
    return QEMU + [elf, "-append", append], open(out_path, "wb")


def run_to_end(elf, append, out_path, cwd, timeout):
    """Runs QEMU to its semihosting exit; returns the exit status (None on timeout)."""
    cmd, out = qemu(elf, append, out_path)
    with out:
        try:
            return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  cwd=cwd, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            return None


def read_verdict(path):
    """Findings (kind -> set of ids) and counts (name -> int) of a verify.txt."""
    findings = {"LOST": set(), "RESURRECTED": set(), "REUSED": set(), "CORRUPT": set()}
    counts = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 2 or not parts[1].isdigit():
                    continue
                if parts[0] in findings:
                    findings[parts[0]].add(int(parts[1]))
                else:
                    counts[parts[0]] = int(parts[1])
    except FileNotFoundError:
        pass
    return findings, counts


class Cuts:
    """The power-cut cycles of one journal kind, and what their verifies found."""

    def __init__(self, label, failures):
        self.label = label
        self.failures = failures
        self.cuts = 0
        self.lost, self.resurrected, self.reused = set(), set(), set()

    def bad(self):
        return bool(self.lost or self.resurrected or self.reused)

    def print(self):
        print(f"qemu power cuts{self.label}: {self.cuts}, lost: {len(self.lost)}, "
              f"resurrected: {len(self.resurrected)}, reused ids: {len(self.reused)}", flush=True)

    def cycles(self, a, elf, work, rng, flags, image, log, history_name, cycles=None, tag=""):
        """Runs `cycles` (default a.cycles) cut-and-verify cycles on `image` and `log`."""
        cycles = a.cycles if cycles is None else cycles
        lost, resurrected, reused = self.lost, self.resurrected, self.reused
        failures = self.failures
        history = open(os.path.join(work, history_name), "ab")
        last_push = -1
        for cycle in range(1, cycles + 1):
            delay = rng.uniform(a.min_delay, a.max_delay)
            run_out = os.path.join(work, f"{tag}run-{cycle:03}.defmt")
            cmd, out = qemu(elf, f"run image={image} log={log} {flags}", run_out)
            with out:
                p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work)
                try:
                    rc = p.wait(timeout=delay)
                    failures.append(f"{tag}cycle {cycle}: run exited by itself with status {rc} before the cut")
                    err(decode(elf, run_out))
                    break
                except subprocess.TimeoutExpired:
                    p.send_signal(signal.SIGKILL)
                    p.wait()
                    self.cuts += 1

            # Independent of the firmware: the P ids of the whole history increase.
            log_path = os.path.join(work, log)
            with open(log_path, "rb") as f:
                data = f.read()
            run_part = data[data.find(b"\nB ") if b"\nB " in data else 0:]
            history.write(run_part)
            for line in run_part.split(b"\n"):
                w = line.split()
                if len(w) == 3 and w[0] == b"P" and w[1].isdigit():
                    pid = int(w[1])
                    if pid <= last_push:
                        reused.add(pid)
                    last_push = pid

            verify_out = os.path.join(work, f"{tag}verify-{cycle:03}.defmt")
            verdict = os.path.join(work, "verify.txt")
            carry = os.path.join(work, "events.carry")
            for path in (verdict, carry):
                if os.path.exists(path):
                    os.remove(path)
            rc = run_to_end(elf, f"verify image={image} log={log} out=verify.txt carry=events.carry {flags}",
                            verify_out, work, VERIFY_TIMEOUT)
            findings, counts = read_verdict(verdict)
            lost |= findings["LOST"] | findings["CORRUPT"]
            resurrected |= findings["RESURRECTED"]
            reused |= findings["REUSED"]
            if a.verbose:
                err(f"{tag}cycle {cycle}: cut after {delay:.2f} s; verify {rc}: " +
                    ", ".join(f"{k} {v}" for k, v in counts.items()))
            if rc != 0 or counts.get("RESULT_PASS") != 1:
                failures.append(f"{tag}cycle {cycle}: verify exit status {rc}")
                err(decode(elf, verify_out))
                if os.path.exists(verdict):
                    shutil.copy(verdict, os.path.join(work, f"{tag}verify-{cycle:03}.txt"))
                break
            os.replace(carry, log_path)
        history.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cycles", nargs="?", type=int, default=30, help="power cuts (default 30)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the kill delays (default 1)")
    ap.add_argument("--min-delay", type=float, default=0.2)
    ap.add_argument("--max-delay", type=float, default=1.5)
    ap.add_argument("--acks", choices=["inplace", "record"], default="inplace",
                    help="in-place acks (multiwrite medium) or ack records")
    ap.add_argument("--auth-cycles", type=int, default=10,
                    help="power cuts of the authenticated journal (default 10)")
    ap.add_argument("--no-build", action="store_true", help="use the firmware already built")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per cycle on stderr")
    a = ap.parse_args()

    failures = []

    def summary(*runs):
        if not runs:
            runs = (Cuts("", failures), Cuts(" (auth)", failures))
        for r in runs:
            r.print()
        if failures:
            err(f"FAILED (seed {a.seed}): " + "; ".join(failures))
        return 1 if failures or any(r.bad() for r in runs) else 0

    if shutil.which("qemu-system-arm") is None:
        failures.append("qemu-system-arm not found (apt-get install -y --no-install-recommends qemu-system-arm)")
        return summary()
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(BOARD, "target"))
    elf = os.path.join(target_dir, TARGET, "release", BIN)
    if not a.no_build:
        r = subprocess.run(["cargo", "build", "--release", "--quiet", "--features", "async"], cwd=BOARD,
                           stdin=subprocess.DEVNULL, stdout=sys.stderr)
        if r.returncode != 0:
            failures.append("cargo build --release --features async failed")
            return summary()

    work = os.path.join(target_dir, "power-cuts")
    os.makedirs(work, exist_ok=True)
    for name in os.listdir(work):
        os.remove(os.path.join(work, name))

    t0 = time.monotonic()
    rc = run_to_end(elf, "selftest image=selftest.img", os.path.join(work, "selftest.defmt"), work,
                    SELFTEST_TIMEOUT)
    if rc != 0:
        failures.append(f"selftest exit status {rc}")
        err(decode(elf, os.path.join(work, "selftest.defmt")))
        return summary()
    if a.verbose:
        err(f"selftest passed in {time.monotonic() - t0:.1f} s")
    # Phase 6, the async path: its summary line must be in the log.
    if not shutil.which("defmt-print"):
        failures.append("defmt-print not found (cargo install defmt-print): cannot read the selftest's async line")
        return summary()
    log = decode(elf, os.path.join(work, "selftest.defmt"), lines=100)
    line = next((l for l in log.splitlines() if "selftest (async):" in l and l.endswith(": ok")), None)
    if line is None:
        failures.append("selftest: no `selftest (async): ... ok` line (built without the feature `async`?)")
        err(log)
        return summary()
    print(line[line.index("selftest (async):"):], flush=True)

    rng = random.Random(a.seed)
    acks = f"acks={a.acks}"

    # I7: a failing program or erase panics; nothing promised before it is lost.
    fail_at = rng.randrange(1, 2000)
    i7_out = os.path.join(work, "i7-run.defmt")
    rc = run_to_end(elf, f"run image=i7.img log=i7.log fail_at={fail_at} {acks}", i7_out, work, VERIFY_TIMEOUT)
    text = decode(elf, i7_out, lines=5)
    if rc != 1 or (shutil.which("defmt-print") and "failed: Injected" not in text):
        failures.append(f"I7: run with fail_at={fail_at} exited {rc} instead of panicking")
        err(text)
        return summary()
    rc = run_to_end(elf, f"verify image=i7.img log=i7.log out=i7-verify.txt {acks}",
                    os.path.join(work, "i7-verify.defmt"), work, VERIFY_TIMEOUT)
    if rc != 0:
        failures.append(f"I7: verify after the injected failure exited {rc}")
        err(decode(elf, os.path.join(work, "i7-verify.defmt")))
        return summary()
    if a.verbose:
        err(f"I7: operation {fail_at} failed and panicked: {text.splitlines()[-1] if text else ''}")
    plain = Cuts("", failures)
    plain.cycles(a, elf, work, rng, acks, "flash.img", "events.log", "events-history.log")
    auth = Cuts(" (auth)", failures)
    if not failures:
        auth.cycles(a, elf, work, rng, "auth=on", "flash-auth.img", "events-auth.log",
                    "events-auth-history.log", cycles=a.auth_cycles, tag="auth-")
    if a.verbose:
        err(f"total {time.monotonic() - t0:.1f} s")
    return summary(plain, auth)


if __name__ == "__main__":
    sys.exit(main())
