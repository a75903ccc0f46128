#!/usr/bin/env python3
"""The link end to end: the mps2-an386 firmware in `link` mode under QEMU, its UART0
bridged to a TCP socket, and the reference consumer `monitor-events consume --tcp
ADDR --json` on the host, both killed at random.

Builds the firmware (release, feature `link`) and the `monitor-events` binary
(release, from boards/host), then, until at least CUTS device power cuts,
RESTARTS host restarts and EVENTS delivered events:

  1. boots QEMU in `link` mode on the same flash image (`-serial
     tcp:127.0.0.1:PORT,server=on,wait=off`) and waits for its boot line;
  2. starts `monitor-events consume` on the port (deferring its acks through the
     ack barrier in half of the runs, `--defer`), and SIGKILLs and restarts it at
     random moments (host restarts);
  3. SIGKILLs QEMU after a random life (a power cut: the flash is the host file);
     the consumer sees the line close and exits.

Then it drains: boots with `events=0` (no more pushes) and runs `consume
--until-idle` to the end, and boots once more to read how many events are still
pending (none may be). It checks, from what each consumer run printed and from
the device's report log (`B`, `K`, `P`, `R`, `E`, `A`, `X` lines; see src/link.rs):

  - lost: every event the device made durable (a `P` line, or a `K` line: pending
    at a boot) reached the host at least once (I1);
  - redelivered after ack: no consumer run printed an event whose ack the device
    had made durable (`A`) before the run started, no run printed an id twice
    (the consumer forgets an id only on its `AckResult`), and the device never
    sent an `Event` of an id after its `AckResult` (I2);
  - ids strictly increase within a release pass on the wire (the `E` lines between
    two `B`/`R` lines), and the pushed ids never repeat (I3, I4);
  - every delivery of an id carries the same event; every ack the device made
    durable is of an event some run printed; no ack was refused.

Prints exactly one line on stdout,

  link: events E, device power cuts C, host restarts H, lost 0, redelivered after ack 0, duplicates seen D

(E distinct events delivered, D deliveries beyond the first) and exits non-zero on
any violation or failed step, with details on stderr. Usage: run-link.py [--cuts C]
[--restarts H] [--events E] [--seed S] [--consume PATH] [--no-build] [-v]
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

BOARD = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(BOARD))
TARGET = "thumbv7em-none-eabihf"
BIN = "monitor-events-qemu"
QEMU = [
    "qemu-system-arm", "-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic", "-monitor", "none",
    "-semihosting-config", "enable=on,target=native",
]
# A bound no run reaches: push for as long as the device lives.
NO_BOUND = 1 << 40
BOOT_TIMEOUT = 10
DRAIN_TIMEOUT = 90


def err(*args):
    print(*args, file=sys.stderr, flush=True)


def decode(elf, path, lines=20):
    """The last lines of a defmt capture, decoded if defmt-print is installed."""
    if not shutil.which("defmt-print"):
        return f"(install defmt-print to decode {path})"
    with open(path, "rb") as f:
        r = subprocess.run(["defmt-print", "-e", elf], stdin=f, capture_output=True, timeout=60)
    return "\n".join(r.stdout.decode(errors="replace").splitlines()[-lines:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DeviceLog:
    """The device's report log, read as it grows (complete lines only)."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.lines = []  # (tag, numbers) in order
        self.boots = []  # (next_id, pending) per B line
        self.acked = set()

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.offset += end + 1
        for raw in data[:end].split(b"\n"):
            w = raw.split()
            if not w or not all(x.isdigit() for x in w[1:]):
                continue  # the blank line each boot starts with, or a line torn by a cut
            tag, nums = w[0].decode(), [int(x) for x in w[1:]]
            self.lines.append((tag, nums))
            if tag == "B" and len(nums) == 2:
                self.boots.append((nums[0], nums[1]))
            elif tag == "A" and len(nums) == 1:
                self.acked.add(nums[0])


class Consumer:
    """One run of `monitor-events consume`."""

    def __init__(self, n, cmd, work, acked_before, boot):
        self.out = os.path.join(work, f"consume-{n:03}.jsonl")
        self.err = os.path.join(work, f"consume-{n:03}.err")
        self.acked_before = acked_before
        self.boot = boot
        self.cmd = cmd
        with open(self.out, "wb") as out, open(self.err, "wb") as e:
            self.p = subprocess.Popen(cmd, stdout=out, stderr=e, stdin=subprocess.DEVNULL)
        self.killed = False

    def kill(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        self.killed = True

    def stderr_text(self):
        with open(self.err, "rb") as f:
            return f.read().decode(errors="replace").replace("\r", "\n").strip()

    def refused_connection(self):
        return self.p.poll() not in (None, 0) and "cannot connect" in self.stderr_text()

    def deliveries(self):
        """(id, event text) per printed line; a last line cut short by SIGKILL is skipped."""
        with open(self.out, "rb") as f:
            lines = f.read().split(b"\n")
        got = []
        for i, line in enumerate(lines):
            if not line:
                continue
            try:
                v = json.loads(line)
            except ValueError:
                if i == len(lines) - 1:
                    continue
                raise
            got.append((v["id"], v["event"]))
        return got


class Run:
    def __init__(self, a, elf, consume_bin, work):
        self.a, self.elf, self.consume_bin, self.work = a, elf, consume_bin, work
        self.rng = random.Random(a.seed)
        self.log = DeviceLog(os.path.join(work, "link.log"))
        self.failures = []
        self.consumers = []
        self.boots = 0
        self.cuts = 0
        self.restarts = 0
        self.qemu = None
        self.port = None

    def boot(self, events):
        """Boots QEMU in link mode; waits for its B line. False on failure."""
        for _ in range(5):
            self.boots += 1
            self.port = free_port()
            capture = os.path.join(self.work, f"boot-{self.boots:03}.defmt")
            cmd = QEMU + ["-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=off", "-kernel", self.elf,
                          "-append", f"link image=link.img log=link.log events={events}"]
            booted = len(self.log.boots)
            with open(capture, "wb") as out:
                self.qemu = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             cwd=self.work)
            deadline = time.monotonic() + BOOT_TIMEOUT
            while time.monotonic() < deadline and self.qemu.poll() is None:
                self.log.update()
                if len(self.log.boots) > booted:
                    return True
                time.sleep(0.01)
            rc = self.qemu.poll()
            if rc is None:
                self.qemu.kill()
                self.qemu.wait()
            with open(capture, "rb") as f:
                if b"Address already in use" in f.read():
                    continue  # another process took the port first: try another one
            self.failures.append(f"boot {self.boots}: no boot line (QEMU status {rc})")
            err(decode(self.elf, capture))
            return False
        self.failures.append("no free port for QEMU")
        return False

    def power_cut(self):
        self.qemu.send_signal(signal.SIGKILL)
        self.qemu.wait()
        self.qemu = None

    def consume(self, defer, extra=()):
        credit = self.rng.choice([4, 8, 8, 16])
        cmd = [self.consume_bin, "consume", "--tcp", f"127.0.0.1:{self.port}", "--json",
               "--timeout-ms", str(self.a.timeout_ms), "--credit", str(credit)]
        if defer:
            cmd.append("--defer")
        cmd += list(extra)
        self.log.update()
        c = Consumer(len(self.consumers) + 1, cmd, self.work, set(self.log.acked), self.boots)
        self.consumers.append(c)
        return c

    def delivered(self):
        ids = set()
        for c in self.consumers:
            ids.update(i for i, _ in c.deliveries())
        return ids

    def chaos(self):
        """Boots, host restarts and power cuts until the counts are reached."""
        a, rng = self.a, self.rng
        max_boots = 4 * max(a.cuts, 10)
        while True:
            events = len(self.delivered())
            if self.cuts >= a.cuts and self.restarts >= a.restarts and events >= a.events:
                return True
            if self.boots >= max_boots:
                self.failures.append(f"only {events} events, {self.cuts} cuts and {self.restarts} host restarts "
                                     f"after {self.boots} boots")
                return False
            if not self.boot(NO_BOUND):
                return False
            t0 = time.monotonic()
            life = rng.uniform(a.min_life, a.max_life)
            kills = sorted(rng.uniform(0.2, life) for _ in range(rng.choice([0, 1, 1, 2])))
            c = self.consume(rng.random() < 0.5)
            while time.monotonic() - t0 < life:
                if c.p.poll() is not None:
                    if c.refused_connection():
                        time.sleep(0.05)
                        c = self.consume(rng.random() < 0.5)
                        continue
                    self.failures.append(f"consumer run {len(self.consumers)} exited with {c.p.returncode} while "
                                         f"the device was up: {c.stderr_text()[-300:]}")
                    self.power_cut()
                    return False
                if kills and time.monotonic() - t0 >= kills[0]:
                    kills.pop(0)
                    c.kill()
                    self.restarts += 1
                    time.sleep(rng.uniform(0.0, 0.2))
                    c = self.consume(rng.random() < 0.5)
                time.sleep(0.01)
            self.power_cut()
            self.cuts += 1
            try:
                c.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                c.kill()
                self.failures.append(f"consumer run {len(self.consumers)} did not stop after the device's power cut")
                return False
            if a.verbose:
                err(f"boot {self.boots}: life {life:.2f} s, {len(self.delivered())} events delivered so far, "
                    f"{self.cuts} cuts, {self.restarts} host restarts")

    def drain(self):
        """No more pushes: one consumer acks everything; a last boot must find nothing pending."""
        if not self.boot(0):
            return False
        c = self.consume(self.rng.random() < 0.5, ["--until-idle"])
        try:
            c.p.wait(timeout=DRAIN_TIMEOUT)
        except subprocess.TimeoutExpired:
            c.kill()
        self.power_cut()
        if c.p.returncode != 0:
            self.failures.append(f"drain: consume exited {c.p.returncode}: {c.stderr_text()[-300:]}")
            return False
        if not self.boot(0):
            return False
        self.power_cut()
        next_id, pending = self.log.boots[-1]
        if pending != 0:
            self.failures.append(f"drain: {pending} events still pending after the consumer acked everything")
        return True

    def check(self):
        """The checks; returns (events, lost, redelivered, duplicates)."""
        self.log.update()
        fail = self.failures
        pushed, kept, acked = [], set(), set()
        after_ack = set()
        order = 0
        last = None
        for tag, nums in self.log.lines:
            if tag in ("B", "R"):
                last = None
            elif tag == "P":
                pushed.append(nums[0])
            elif tag == "K":
                kept.add(nums[0])
            elif tag == "E":
                if nums[0] in acked and nums[0] not in after_ack:
                    if len(after_ack) < 5:
                        err(f"device: Event {nums[0]} sent after its AckResult")
                    after_ack.add(nums[0])
                if last is not None and nums[0] <= last:
                    order += 1
                    if order <= 5:
                        err(f"order: Event {nums[0]} after {last} in one release pass")
                last = nums[0]
            elif tag == "A":
                acked.add(nums[0])
            elif tag == "X":
                fail.append(f"the device refused the ack of {nums[0]} (status {nums[1]})")
        reused = [b for a_, b in zip(pushed, pushed[1:]) if b <= a_]
        if reused:
            fail.append(f"pushed ids not increasing (I3): {reused[:5]}")
        if order:
            fail.append(f"{order} Events out of id order within a release pass (I4)")

        seen = {}
        prints = 0
        host_order = 0
        for n, c in enumerate(self.consumers, 1):
            run_ids = set()
            prev = -1
            for i, text in c.deliveries():
                prints += 1
                if seen.setdefault(i, text) != text:
                    fail.append(f"event {i} delivered with different contents")
                if i in run_ids or i in c.acked_before:
                    if i not in after_ack and len(after_ack) < 5:
                        err(f"consumer run {n}: event {i} delivered after its ack was durable")
                    after_ack.add(i)
                if i <= prev:
                    host_order += 1
                run_ids.add(i)
                prev = i
        final_next = self.log.boots[-1][0] if self.log.boots else 0
        phantom = [i for i in seen if i >= final_next]
        if phantom:
            fail.append(f"delivered ids the device never assigned: {sorted(phantom)[:5]}")
        lost = (set(pushed) | kept) - set(seen)
        if lost:
            err(f"lost (durable, never delivered): {sorted(lost)[:10]}")
        never = acked - set(seen)
        if never:
            fail.append(f"acks of events never delivered: {sorted(never)[:5]}")
        if self.a.verbose:
            gaps = set(range(final_next)) - set(seen)
            err(f"device: {len(pushed)} pushes logged, next id {final_next}, {len(acked)} acks; consumer runs "
                f"{len(self.consumers)}, {prints} deliveries, {host_order} id decreases within a run, "
                f"ids below the next id never delivered (a cut during their push): {sorted(gaps)[:10]}")
        return len(seen), len(lost), len(after_ack), prints - len(seen)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cuts", type=int, default=20, help="device power cuts at least (default 20)")
    ap.add_argument("--restarts", type=int, default=20, help="host restarts at least (default 20)")
    ap.add_argument("--events", type=int, default=2000, help="distinct events delivered at least (default 2000)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the lives, kills and consumer options (default 1)")
    ap.add_argument("--min-life", type=float, default=0.8, help="shortest life of a device boot, s")
    ap.add_argument("--max-life", type=float, default=3.0, help="longest life of a device boot, s")
    ap.add_argument("--timeout-ms", type=int, default=100, help="the consumer's read timeout")
    ap.add_argument("--consume", help="the monitor-events binary (default: build it from boards/host)")
    ap.add_argument("--no-build", action="store_true", help="use the firmware already built (with --features link)")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per boot on stderr")
    a = ap.parse_args()

    def summary(events=0, cuts=0, restarts=0, lost=0, redelivered=0, duplicates=0, failures=()):
        print(f"link: events {events}, device power cuts {cuts}, host restarts {restarts}, lost {lost}, "
              f"redelivered after ack {redelivered}, duplicates seen {duplicates}", flush=True)
        bad = list(failures)
        if events < a.events or cuts < a.cuts or restarts < a.restarts:
            bad.append(f"fewer than {a.events} events, {a.cuts} cuts or {a.restarts} host restarts")
        if bad or lost or redelivered:
            err(f"FAILED (seed {a.seed}): " + "; ".join(bad or ["violations above"]))
            return 1
        return 0

    if shutil.which("qemu-system-arm") is None:
        return summary(failures=["qemu-system-arm not found (apt-get install -y --no-install-recommends "
                                 "qemu-system-arm)"])
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(BOARD, "target"))
    elf = os.path.join(target_dir, TARGET, "release", BIN)
    if not a.no_build:
        r = subprocess.run(["cargo", "build", "--release", "--quiet", "--features", "link"], cwd=BOARD,
                           stdin=subprocess.DEVNULL, stdout=sys.stderr)
        if r.returncode != 0:
            return summary(failures=["cargo build --release --features link (firmware) failed"])
    consume_bin = a.consume
    if consume_bin is None:
        host_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        consume_bin = os.path.join(host_dir, "release", "monitor-events")
        r = subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "monitor-events-host"], cwd=ROOT,
                           stdin=subprocess.DEVNULL, stdout=sys.stderr)
        if r.returncode != 0:
            return summary(failures=["cargo build --release -p monitor-events-host failed"])

    work = os.path.join(target_dir, "link-e2e")
    os.makedirs(work, exist_ok=True)
    for name in os.listdir(work):
        os.remove(os.path.join(work, name))

    t0 = time.monotonic()
    run = Run(a, elf, consume_bin, work)
    try:
        if run.chaos():
            run.drain()
    finally:
        if run.qemu is not None:
            run.power_cut()
        for c in run.consumers:
            if c.p.poll() is None:
                c.kill()
    events, lost, redelivered, duplicates = run.check()
    if a.verbose:
        err(f"total {time.monotonic() - t0:.1f} s, {run.boots} boots, work directory {work}")
    return summary(events, run.cuts, run.restarts, lost, redelivered, duplicates, run.failures)


if __name__ == "__main__":
    sys.exit(main())
