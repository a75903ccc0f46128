#!/usr/bin/env python3
"""Firmware size report: what monitor-events adds to a firmware.

For each board (QEMU mps2-an386, nRF52840, RP2040) builds the firmware twice with
its release profile (opt-level "s", fat LTO, one codegen unit):

  store     the default features: the journal, its medium and the board's demo;
  baseline  --no-default-features: the same runtime, HAL and defmt logging, the
            store compiled out;

and prints .text, .rodata, .data and .bss of each, the difference, and the
`size_of` figures the store variant embeds (symbol MONITOR_EVENTS_SIZES).
The ELF is parsed here: no binutils needed.

Usage: boards/size.py [BOARD ...]   (default: all three)
"""

import os
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BOARDS = {
    "qemu-mps2-an386": ("thumbv7em-none-eabihf", "monitor-events-qemu"),
    "nrf52840": ("thumbv7em-none-eabihf", "monitor-events-nrf52840"),
    "rp2040": ("thumbv6m-none-eabi", "monitor-events-rp2040"),
}
COLUMNS = (".text", ".rodata", ".data", ".bss")
SIZE_FIGURES = ("journal", "medium", "MonitorEvent", "MAX_ENCODED_LEN", "N")
SHF_ALLOC = 0x2
SHT_NOBITS = 8
SHT_SYMTAB = 2


def sections(elf):
    """(name, type, flags, addr, offset, size) of every section of an ELF32 LE file."""
    with open(elf, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise ValueError(f"{elf}: not a little-endian ELF32 file")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
    raw = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = raw[shstrndx]

    def name(off, table):
        start = table[4] + off
        return data[start:data.index(b"\0", start)].decode()

    return data, [(name(s[0], strtab), s[1], s[2], s[3], s[4], s[5], s[6]) for s in raw], raw


def measure(elf):
    """Bytes per column; .vector_table counts as .text, .uninit as .bss; the
    figures of MONITOR_EVENTS_SIZES if present."""
    data, secs, raw = sections(elf)
    out = dict.fromkeys(COLUMNS, 0)
    for name, typ, flags, addr, off, size, _link in secs:
        if not flags & SHF_ALLOC or size == 0:
            continue
        if name in (".text", ".vector_table", ".boot2"):
            out[".text"] += size
        elif name == ".rodata":
            out[".rodata"] += size
        elif name == ".data":
            out[".data"] += size
        elif name in (".bss", ".uninit"):
            out[".bss"] += size
    figures = None
    for name, typ, flags, addr, off, size, link in secs:
        if typ != SHT_SYMTAB:
            continue
        strtab = raw[link]
        for k in range(size // 16):
            st_name, st_value, st_size, _info, _other, _shndx = struct.unpack_from("<IIIBBH", data, off + k * 16)
            start = strtab[4] + st_name
            if data[start:data.index(b"\0", start)] != b"MONITOR_EVENTS_SIZES":
                continue
            for sname, styp, sflags, saddr, soff, ssize, _l in secs:
                if sflags & SHF_ALLOC and styp != SHT_NOBITS and saddr <= st_value < saddr + ssize:
                    at = soff + st_value - saddr
                    figures = struct.unpack_from(f"<{st_size // 4}I", data, at)
    return out, figures


def build(board, target, binary, store):
    """Builds one variant and copies its ELF aside; returns the copy's path."""
    cwd = os.path.join(HERE, board)
    cmd = ["cargo", "build", "--release", "--quiet"] + ([] if store else ["--no-default-features"])
    r = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=sys.stderr)
    if r.returncode != 0:
        raise SystemExit(f"{board}: {' '.join(cmd)} failed")
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(cwd, "target"))
    elf = os.path.join(target_dir, target, "release", binary)
    kept = os.path.join(target_dir, "size", f"{binary}-{'store' if store else 'baseline'}.elf")
    os.makedirs(os.path.dirname(kept), exist_ok=True)
    shutil.copyfile(elf, kept)
    return kept


def main():
    boards = sys.argv[1:] or list(BOARDS)
    for b in boards:
        if b not in BOARDS:
            raise SystemExit(f"unknown board {b}; known: {', '.join(BOARDS)}")
    header = f"{'board':<17}{'variant':<10}" + "".join(f"{c:>9}" for c in COLUMNS) + f"{'flash':>9}{'ram':>9}"
    print("firmware size in bytes (opt-level \"s\", fat LTO; flash = .text + .rodata + .data, "
          "ram = .data + .bss)")
    print(header)
    figures_lines = []
    for b in boards:
        target, binary = BOARDS[b]
        rows = {}
        for store in (True, False):
            rows[store], figs = measure(build(b, target, binary, store))
            if store and figs:
                figures_lines.append(f"{b:<17}" + ", ".join(f"{n} {v}" for n, v in zip(SIZE_FIGURES, figs)))
        delta = {c: rows[True][c] - rows[False][c] for c in COLUMNS}
        for label, row in (("store", rows[True]), ("baseline", rows[False]), ("added", delta)):
            flash = row[".text"] + row[".rodata"] + row[".data"]
            ram = row[".data"] + row[".bss"]
            spec = ">+9" if label == "added" else ">9"
            cells = [row[c] for c in COLUMNS] + [flash, ram]
            print(f"{b:<17}{label:<10}" + "".join(format(v, spec) for v in cells))
    if figures_lines:
        print("size_of in the store builds (bytes; N in events):")
        for line in figures_lines:
            print("  " + line)
    if "qemu-mps2-an386" in boards:
        print("note: the QEMU store build includes its test harness (selftest, run, verify, the mirrored "
              "flash) and 64 KiB of .bss for the simulated flash; the nRF52840 and RP2040 rows are the "
              "library, the flash driver and a small demo.")


if __name__ == "__main__":
    main()
