#!/usr/bin/env python3
"""Firmware size report: what monitor-events adds to a firmware.

For each board (QEMU mps2-an386, nRF52840, RP2040) builds the firmware twice with
its release profile (opt-level "s", fat LTO, one codegen unit):

  store     the default features: the journal, its medium and the board's demo;
  baseline  --no-default-features: the same runtime, HAL and defmt logging, the
            store compiled out;

and a second nRF52840 row, nrf52840-min, whose store variant is the feature
`store-min`: the same demo on the library without preimage hashing (SHA-256),
authentication or its defmt impls;

and a peer row, nrf52840-peer: the same boot (replay, push, out-of-order acks)
on the same nRF52840 partition through sequential-storage's queue instead of
monitor-events (feature `peer`), printed next to ours and never gated;

and a second RP2040 row, rp2040-async: the binary monitor-events-rp2040-async
(feature `async`), the same demo through the async store on embassy-rp's async
flash driver under an embassy executor, against the same binary with the store
off (`--no-default-features --features async`: the executor and the HAL);

and prints .text, .rodata, .data and .bss of each, the difference, and the
`size_of` figures the store variant embeds (symbol MONITOR_EVENTS_SIZES).
The ELF is parsed here: no binutils needed.

With --symbols BOARD it builds both variants of BOARD and lists instead where the
added bytes are: every function and object of the store build's .text and .rodata
whose name the baseline lacks, or that is larger than in the baseline, largest
first, then the same bytes summed per crate. A large function of the firmware
itself (`main`, into which LTO inlines much of the library) is split by
outermost inlined call, from the DWARF inline tree, when pyelftools is installed
(`pip install pyelftools`; without it that step is skipped with a note). Names
are demangled with `rustfilt` when it is on the PATH, else by the built-in
demangler (legacy `_ZN...E` and v0 `_R...` names). The per-symbol hash
(`::h0123...`) is dropped before names are compared, so a symbol whose crate
metadata differs between the two builds still matches.

A size gate: with --check FILE the report ends with one line per board
comparing what the store adds (.text + .rodata of the "added" row) with the
committed baseline FILE, and the script exits with 1 if any board grew by more
than 3 % over it (or has no baseline). --update FILE measures and rewrites FILE:
per board the added .text and .rodata, with the date and the commit they were
taken at. A change that grows the library on purpose updates the baseline in
the same commit and says why in its message.

With --stack (after the other options) it also runs the QEMU store build's
selftest under qemu-system-arm (the runner of boards/qemu-mps2-an386/.cargo/
config.toml, the ELF just measured, its image in $CARGO_TARGET_DIR/size/stack/,
a 300 s limit), decodes its defmt log with defmt-print and prints the stack
high-water lines of its phase 5: the deepest stack of open, push, ack and
release_next, with `over budget` for a figure above the 2048 B budget. An
over-budget figure is reported, not a failure; a selftest that fails or prints
no figures is.

Usage: boards/size.py [BOARD ...]                 (default: all boards)
       boards/size.py --check FILE [BOARD ...]    (the report, then the gate)
       boards/size.py --update FILE [BOARD ...]   (the report, then FILE rewritten)
       boards/size.py --symbols BOARD [--top N]    (default N: 40)
       boards/size.py [--check FILE | --update FILE] [BOARD ...] --stack

The builds go to $CARGO_TARGET_DIR if set (one directory for every board, the
ELF of each variant copied to $CARGO_TARGET_DIR/size/), else to each board's
own target/. Each build remaps the checkout's path to `monitor-events` and
Cargo's home to `cargo` (rustc's --remap-path-prefix, added to the board's
rustflags): the firmware embeds the source path of each panic location, so
without it the figures would change with where the repository is checked out
and where Cargo's home is (a clone at /work/a and one at /work/abc differed by
4 to 8 bytes of .rodata per row).

Cargo's profile variables apply to both variants, so an option can be measured
without editing a manifest, e.g.
  CARGO_PROFILE_RELEASE_OPT_LEVEL=z boards/size.py nrf52840
"""

import datetime
import json
import os
import re
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Report row: (firmware directory, target, binary, cargo arguments of the store
# variant[, cargo arguments of the baseline variant]). The baseline variant is
# the directory's --no-default-features unless the row names its own.
BOARDS = {
    "qemu-mps2-an386": ("qemu-mps2-an386", "thumbv7em-none-eabihf", "monitor-events-qemu", []),
    "nrf52840": ("nrf52840", "thumbv7em-none-eabihf", "monitor-events-nrf52840", []),
    # The minimal store: no preimage hashing, no authentication, no defmt impls.
    "nrf52840-min": ("nrf52840", "thumbv7em-none-eabihf", "monitor-events-nrf52840",
                     ["--no-default-features", "--features", "store-min"]),
    "rp2040": ("rp2040", "thumbv6m-none-eabi", "monitor-events-rp2040", []),
    # The async store: the same demo's steps on embassy-rp's async flash driver,
    # against the same binary and executor without the store.
    "rp2040-async": ("rp2040", "thumbv6m-none-eabi", "monitor-events-rp2040-async",
                     ["--features", "async", "--bin", "monitor-events-rp2040-async"],
                     ["--no-default-features", "--features", "async", "--bin", "monitor-events-rp2040-async"]),
    # The peer: the same boot on the same partition through sequential-storage's
    # queue (boards/nrf52840/src/peer.rs), against the same baseline firmware.
    "nrf52840-peer": ("nrf52840", "thumbv7em-none-eabihf", "monitor-events-nrf52840",
                      ["--no-default-features", "--features", "peer"]),
}
# Rows whose first variant is a peer store instead of monitor-events: printed
# next to the rows they compare with, never gated. Row: (the peer's name, the
# monitor-events rows to compare with).
PEERS = {
    "nrf52840-peer": ("sequential-storage 8.0.2 queue, no cache", ("nrf52840", "nrf52840-min")),
}
# The gate: what the store adds may grow by this fraction over the baseline file.
TOLERANCE = 0.03
COLUMNS = (".text", ".rodata", ".data", ".bss")
SIZE_FIGURES = ("journal", "medium", "MonitorEvent", "MAX_ENCODED_LEN", "N")
SHF_ALLOC = 0x2
SHT_NOBITS = 8
SHT_SYMTAB = 2
STT_OBJECT = 1
STT_FUNC = 2


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


def functions(elf):
    """{name: (address, size)} of the sized functions (Thumb bit cleared)."""
    data, secs, raw = sections(elf)
    out = {}
    for _name, typ, _flags, _addr, off, size, link in secs:
        if typ != SHT_SYMTAB:
            continue
        strtab = raw[link]
        for k in range(size // 16):
            st_name, value, st_size, info, _other, _shndx = struct.unpack_from("<IIIBBH", data, off + k * 16)
            if st_size and info & 0xF == STT_FUNC:
                start = strtab[4] + st_name
                out[data[start:data.index(b"\0", start)].decode(errors="replace")] = (value & ~1, st_size)
    return out


def symbols(elf):
    """{name: (section, bytes)} of the sized functions and objects in .text and
    .rodata (.vector_table counts as .text); sizes of equal names are summed."""
    data, secs, raw = sections(elf)
    out = {}
    for _name, typ, _flags, _addr, off, size, link in secs:
        if typ != SHT_SYMTAB:
            continue
        strtab = raw[link]
        for k in range(size // 16):
            st_name, value, st_size, info, _other, shndx = struct.unpack_from("<IIIBBH", data, off + k * 16)
            if st_size == 0 or info & 0xF not in (STT_FUNC, STT_OBJECT) or shndx >= len(secs):
                continue
            section = secs[shndx][0]
            if section == ".vector_table":
                section = ".text"
            if section not in (".text", ".rodata"):
                continue
            start = strtab[4] + st_name
            name = data[start:data.index(b"\0", start)].decode(errors="replace")
            sec = secs[shndx]
            if name.startswith(".Lanon") and sec[1] != SHT_NOBITS:
                # An unnamed constant: show its first bytes (a 1028-byte one whose
                # second word is 00000000 and third 03836bf2 is crc's Crc<u32>
                # for CRC-32C: a pointer, then the 256-entry table).
                at = sec[4] + value - sec[3]
                name += " [" + data[at:at + min(st_size, 12)].hex(" ", 4) + " ...]"
            _, had = out.get(name, (section, 0))
            out[name] = (section, had + st_size)
    return out


LEGACY_ESCAPES = {"$SP$": "@", "$BP$": "*", "$RF$": "&", "$LT$": "<", "$GT$": ">",
                  "$LP$": "(", "$RP$": ")", "$C$": ",", "..": "::"}


def demangle_legacy(name):
    """Rust's legacy mangling (`_ZN` length-prefixed parts `E`), without the
    trailing hash part; None if it is not one."""
    m = re.match(r"^_?_ZN(.*)E(\.llvm\.\d+)?$", name)
    if not m:
        return None
    rest, parts = m.group(1), []
    while rest:
        n = re.match(r"^(\d+)", rest)
        if not n:
            return None
        size = int(n.group(1))
        part, rest = rest[len(n.group(1)):][:size], rest[len(n.group(1)) + size:]
        if len(part) != size:
            return None
        parts.append(part)
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    out = []
    for part in parts:
        if part.startswith("_$"):
            part = part[1:]
        part = re.sub(r"\$u([0-9a-f]+)\$", lambda u: chr(int(u.group(1), 16)), part)
        for esc, rep in LEGACY_ESCAPES.items():
            part = part.replace(esc, rep)
        out.append(part)
    return "::".join(out)


V0_BASIC = {"a": "i8", "b": "bool", "c": "char", "d": "f64", "e": "str", "f": "f32", "h": "u8",
            "i": "isize", "j": "usize", "l": "i32", "m": "u32", "n": "i128", "o": "u128",
            "s": "i16", "t": "u16", "u": "()", "v": "...", "x": "i64", "y": "u64", "z": "!",
            "p": "_"}


class V0:
    """Rust's v0 mangling (`_R...`, RFC 2603), the subset rustc emits, printed
    like rustfilt without crate disambiguators and the instantiating crate."""

    def __init__(self, s, base):
        self.s, self.i, self.base = s, base, base

    def peek(self):
        return self.s[self.i] if self.i < len(self.s) else ""

    def eat(self, c):
        if self.peek() == c:
            self.i += 1
            return True
        return False

    def b62(self):
        if self.eat("_"):
            return 0
        v = 0
        while True:
            c = self.peek()
            self.i += 1
            if c == "_":
                return v + 1
            if c.isdigit():
                v = v * 62 + ord(c) - 48
            elif "a" <= c <= "z":
                v = v * 62 + ord(c) - 87
            elif "A" <= c <= "Z":
                v = v * 62 + ord(c) - 29
            else:
                raise ValueError("base-62")

    def disambiguator(self):
        return self.b62() if self.eat("s") else 0

    def ident(self):
        self.disambiguator()
        puny = self.eat("u")
        m = re.match(r"\d+", self.s[self.i:])
        if not m:
            raise ValueError("identifier")
        self.i += len(m.group(0))
        n = int(m.group(0))
        self.eat("_")
        text = self.s[self.i:self.i + n]
        self.i += n
        return ("punycode{" + text + "}") if puny else text

    def backref(self, parse):
        at = self.base + self.b62()
        saved, self.i = self.i, at
        out = parse()
        self.i = saved
        return out

    def path(self):
        c = self.peek()
        self.i += 1
        if c == "C":
            return self.ident()
        if c == "N":
            ns = self.peek()
            self.i += 1
            prefix = self.path()
            name = self.ident()
            if ns.isupper():
                kind = {"C": "closure", "S": "shim"}.get(ns, ns)
                return f"{prefix}::{{{kind}:{name}}}" if name else f"{prefix}::{{{kind}}}"
            return f"{prefix}::{name}" if name else prefix
        if c == "M":
            self.disambiguator()
            self.path()
            return f"<{self.type_()}>"
        if c == "X":
            self.disambiguator()
            self.path()
            t = self.type_()
            return f"<{t} as {self.path()}>"
        if c == "Y":
            t = self.type_()
            return f"<{t} as {self.path()}>"
        if c == "I":
            p = self.path()
            args = []
            while not self.eat("E"):
                args.append(self.generic_arg())
            return f"{p}::<{', '.join(args)}>"
        if c == "B":
            return self.backref(self.path)
        raise ValueError(f"path {c!r}")

    def generic_arg(self):
        if self.eat("L"):
            self.b62()
            return "'_"
        if self.eat("K"):
            return self.const()
        return self.type_()

    def const(self):
        if self.eat("B"):
            return self.backref(self.const)
        if self.eat("p"):
            return "_"
        t = self.peek()
        self.i += 1
        neg = self.eat("n")
        m = re.match(r"[0-9a-f]*_", self.s[self.i:])
        if not m:
            raise ValueError("const")
        self.i += len(m.group(0))
        v = int(m.group(0)[:-1] or "0", 16)
        if t == "b":
            return "true" if v else "false"
        if t == "c":
            return repr(chr(v))
        return f"{'-' if neg else ''}{v}"

    def binder(self):
        if self.eat("G"):
            self.b62()

    def type_(self):
        c = self.peek()
        if c in V0_BASIC:
            self.i += 1
            return V0_BASIC[c]
        self.i += 1
        if c == "A":
            t = self.type_()
            return f"[{t}; {self.const()}]"
        if c == "S":
            return f"[{self.type_()}]"
        if c in "RQ":
            if self.eat("L"):
                self.b62()
            return f"&{'mut ' if c == 'Q' else ''}{self.type_()}"
        if c in "PO":
            return f"*{'mut' if c == 'O' else 'const'} {self.type_()}"
        if c == "T":
            ts = []
            while not self.eat("E"):
                ts.append(self.type_())
            return f"({', '.join(ts)}{',' if len(ts) == 1 else ''})"
        if c == "F":
            self.binder()
            unsafe = self.eat("U")
            abi = ""
            if self.eat("K"):
                abi = "C" if self.eat("C") else self.ident()
                abi = f'extern "{abi}" '
            args = []
            while not self.eat("E"):
                args.append(self.type_())
            ret = self.type_()
            return f"{'unsafe ' if unsafe else ''}{abi}fn({', '.join(args)})" + ("" if ret == "()" else f" -> {ret}")
        if c == "D":
            self.binder()
            traits = []
            while not self.eat("E"):
                t = self.path()
                while self.eat("p"):
                    name = self.ident()
                    t += f"<{name} = {self.type_()}>"
                traits.append(t)
            if self.eat("L"):
                self.b62()
            return "dyn " + " + ".join(traits)
        if c == "B":
            return self.backref(self.type_)
        self.i -= 1
        return self.path()


def demangle_v0(name):
    """A v0 symbol (`_R...`) demangled; None if it is not one or does not parse."""
    m = re.match(r"^_?_R", name)
    if not m:
        return None
    body = name.split(".llvm.")[0]
    p = V0(body, m.end())
    try:
        if p.peek().isdigit():  # encoding version
            while p.peek().isdigit():
                p.i += 1
        return p.path()
    except (ValueError, IndexError, RecursionError):
        return None


def demangle(name):
    """A readable name without the hash: legacy or v0 Rust, else unchanged."""
    return demangle_legacy(name) or demangle_v0(name) or name


def demangler():
    """A function from raw names to readable ones: rustfilt if installed (hash
    dropped), else the built-in demangle."""
    tool = shutil.which("rustfilt")
    if tool is None:
        return lambda names: {n: demangle(n) for n in names}

    def run(names):
        names = list(names)
        r = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True, text=True)
        lines = r.stdout.splitlines()
        if r.returncode != 0 or len(lines) != len(names):
            return {n: demangle(n) for n in names}
        return {n: re.sub(r"::h[0-9a-f]{16}$", "", d) for n, d in zip(names, lines)}

    return run


C_RUNTIME = ("__aeabi_", "__udiv", "__umod", "__div", "__mod", "__ashl", "__lshr", "__ashr", "__mul",
             "mem", "__gnu_", "__clz", "__ctz")


def crate_of(name):
    """The crate a demangled symbol belongs to: the first path segment; for
    `<T as Trait>::f` that of T, or of Trait when T is a primitive or a generic
    parameter; for `<T>::f` that of T (core for a primitive); the compiler's C
    runtime names as compiler_builtins; LLVM's anonymous constants as one group; a
    switch table or a linker thunk as its function."""
    if name.startswith(".Lswitch.table."):
        return crate_of(demangle(name[len(".Lswitch.table."):]))
    thunk = re.match(r"^__\w+?Thunk_(.+)$", name)
    if thunk:
        return crate_of(demangle(thunk.group(1)))
    if name.startswith((".L", "anon.")):
        return "(anonymous constants)"
    if name.startswith(C_RUNTIME):
        return "compiler_builtins"
    if name.startswith("_defmt_"):
        return "defmt"
    if name.startswith("<"):
        depth, close, as_at = 0, len(name), None
        for i, ch in enumerate(name):
            if ch == "<":
                depth += 1
            elif ch == ">":
                depth -= 1
                if depth == 0:
                    close = i
                    break
            elif depth == 1 and name.startswith(" as ", i):
                as_at = i
        inner = name[1:close]
        self_type = re.sub(r"^(?:&mut |&|\*const |\*mut )*", "", inner[:as_at - 1] if as_at else inner)
        if "::" not in self_type.split("<")[0]:
            # A primitive, a slice, a tuple or a generic parameter.
            return crate_of(inner[as_at + 3:]) if as_at else "core"
        return crate_of(self_type)
    head = re.split(r"::|<| |>|,", name, maxsplit=1)[0]
    return head or name


def inlined(elf, lo, hi, own):
    """Bytes of the function at [lo, hi) per outermost inlined call whose origin is
    not in the crate `own` (the firmware's), from the DWARF inline tree; None
    without pyelftools (`pip install pyelftools`)."""
    try:
        from elftools.elf.elffile import ELFFile
    except ImportError:
        return None

    def name_of(die):
        for _ in range(6):
            a = die.attributes
            if "DW_AT_linkage_name" in a:
                return demangle(a["DW_AT_linkage_name"].value.decode())
            nxt = next((die.get_DIE_from_attribute(k) for k in ("DW_AT_abstract_origin", "DW_AT_specification")
                        if k in a), None)
            if nxt is None:
                parts, d = [a["DW_AT_name"].value.decode() if "DW_AT_name" in a else "?"], die.get_parent()
                while d is not None and d.tag in ("DW_TAG_namespace", "DW_TAG_structure_type",
                                                  "DW_TAG_enumeration_type", "DW_TAG_union_type"):
                    parts.insert(0, d.attributes["DW_AT_name"].value.decode() if "DW_AT_name" in d.attributes else "?")
                    d = d.get_parent()
                return "::".join(parts)
            die = nxt
        return "?"

    def ranges(die, cu, dwarf):
        a = die.attributes
        if "DW_AT_low_pc" in a and "DW_AT_high_pc" in a:
            low = a["DW_AT_low_pc"].value
            high = a["DW_AT_high_pc"].value
            return [(low, high if a["DW_AT_high_pc"].form == "DW_FORM_addr" else low + high)]
        if "DW_AT_ranges" not in a:
            return []
        top = cu.get_top_DIE().attributes.get("DW_AT_low_pc")
        base, out = top.value if top else 0, []
        for e in dwarf.range_lists().get_range_list_at_offset(a["DW_AT_ranges"].value, cu=cu):
            if hasattr(e, "base_address"):
                base = e.base_address
            elif getattr(e, "is_absolute", False):
                out.append((e.begin_offset, e.end_offset))
            else:
                out.append((base + e.begin_offset, base + e.end_offset))
        return out

    with open(elf, "rb") as f:
        dwarf = ELFFile(f).get_dwarf_info()
        owner = {}

        def walk(die, cu, chain):
            for child in die.iter_children():
                if child.tag == "DW_TAG_inlined_subroutine":
                    here = chain + [name_of(child)]
                    for x, y in ranges(child, cu, dwarf):
                        for at in range(max(x, lo), min(y, hi), 2):
                            owner[at] = here
                    walk(child, cu, here)
                elif child.tag == "DW_TAG_lexical_block":
                    walk(child, cu, chain)

        for cu in dwarf.iter_CUs():
            for die in cu.iter_DIEs():
                if die.tag == "DW_TAG_subprogram" and any(x <= lo < y for x, y in ranges(die, cu, dwarf)):
                    walk(die, cu, [])
    out = {}
    for at in range(lo, hi, 2):
        chain = owner.get(at, [])
        pick = next((n for n in chain if not n.lstrip("<").startswith(own)), None)
        if pick is None:
            pick = f"(the firmware's own code{': ' + chain[-1] if chain else ''})"
        out[pick] = out.get(pick, 0) + 2
    return sorted(out.items(), key=lambda kv: -kv[1])


def symbol_report(board, top):
    """The symbol breakdown of what the store adds to BOARD."""
    target, binary = BOARDS[board][1:3]
    store_elf = build(board, True)
    base_elf = build(board, False)
    store, base = symbols(store_elf), symbols(base_elf)
    names = demangler()(set(store) | set(base))
    # Compare by demangled, hash-free name; sizes of equal names summed.
    def by_name(syms):
        out, count = {}, {}
        for raw, (section, size) in syms.items():
            key = (names[raw], section)
            out[key] = out.get(key, 0) + size
            count[key] = count.get(key, 0) + 1
        return out, count
    (s, count), (b, _) = by_name(store), by_name(base)
    rows = []
    for key, size in s.items():
        had = b.get(key, 0)
        if size > had:
            how = "new" if had == 0 else f"+{size - had} of {size}"
            if count[key] > 1:
                # Several instances of one generic (or one name in several scopes).
                how += f", x{count[key]}"
            rows.append((size - had, key[1], how, key[0]))
    rows.sort(key=lambda r: (-r[0], r[3]))
    gone = sum(size for key, size in b.items() if key not in s)
    added = {sec: sum(r[0] for r in rows if r[1] == sec) for sec in (".text", ".rodata")}
    sec_store, sec_base = measure(store_elf)[0], measure(base_elf)[0]
    print(f"{board}: symbols of the store build the baseline lacks or has smaller "
          f"(.text +{added['.text']} B, .rodata +{added['.rodata']} B in {len(rows)} symbols; "
          f"{gone} B of baseline symbols not in the store build; the sections grew by "
          f".text {sec_store['.text'] - sec_base['.text']:+} B, .rodata "
          f"{sec_store['.rodata'] - sec_base['.rodata']:+} B: the rest is padding, symbols that "
          f"shrank, and constants without a symbol)")
    print(f"{'bytes':>7}  {'section':<8} {'':<20} symbol (xN: N symbols of that name)")
    for size, section, how, name in rows[:top]:
        print(f"{size:>7}  {section:<8} {how:<20} {name[:160]}")
    if len(rows) > top:
        rest = rows[top:]
        print(f"{sum(r[0] for r in rest):>7}  {'':<8} {'':<20} ... {len(rest)} more")
    # LTO inlines much of the library into the firmware's own functions (main):
    # split the largest of them by inlined call.
    own = binary.replace("-", "_")
    funcs = {names[raw]: at for raw, at in functions(store_elf).items() if raw in names}
    base_funcs = {names[raw]: at for raw, at in functions(base_elf).items() if raw in names}
    split = {}
    for size, section, _how, name in rows[:top]:
        if section != ".text" or size < 1024 or not name.startswith(own + "::") or name not in funcs:
            continue
        lo, length = funcs[name]
        # The demo crate is the firmware's code too (shared by the boards): look
        # through it for the library call it inlines.
        parts = inlined(store_elf, lo, lo + length, (own, "monitor_events_demo"))
        if parts is None:
            print(f"({name} holds inlined library code: install pyelftools to split it by inlined call)")
            break
        had = {}
        if name in base_funcs:
            blo, blen = base_funcs[name]
            had = dict(inlined(base_elf, blo, blo + blen, (own, "monitor_events_demo")))
        grown = sorted(((part, n - had.get(part, 0)) for part, n in parts), key=lambda kv: -kv[1])
        split[name] = grown
        print(f"{board}: what {name} gained, by outermost inlined call outside {own} and the demo (the baseline's "
              f"{sum(had.values())} B of it subtracted per call)")
        for part, bytes_ in grown[:top]:
            if abs(bytes_) >= 16:
                print(f"{bytes_:>7}  {part[:150]}")
    crates = {}
    for size, section, _how, name in rows:
        if name in split and section == ".text":
            for part, bytes_ in split[name]:
                crate = own if part.startswith("(the firmware") else crate_of(part)
                c = crates.setdefault(crate, {".text": 0, ".rodata": 0})
                c[".text"] += bytes_
            continue
        c = crates.setdefault(crate_of(name), {".text": 0, ".rodata": 0})
        c[section] += size
    print(f"{board}: the same bytes per crate" + (" (inlined calls counted in their own crate)" if split else ""))
    print(f"{'.text':>7} {'.rodata':>8}  crate")
    for crate, c in sorted(crates.items(), key=lambda kv: -(kv[1][".text"] + kv[1][".rodata"])):
        if c[".text"] or c[".rodata"]:
            print(f"{c['.text']:>7} {c['.rodata']:>8}  {crate}")


def remap(target):
    """The `--config` arguments that add, to the board's rustflags for `target`
    (Cargo joins the arrays), the remapping of the checkout's and Cargo's home's
    paths to fixed names: the panic locations a firmware embeds then read the
    same, and take the same bytes, wherever the repository and Cargo's home are."""
    root = os.path.dirname(HERE)
    cargo_home = os.environ.get("CARGO_HOME") or os.path.join(os.path.expanduser("~"), ".cargo")
    flags = [f"--remap-path-prefix={root}=monitor-events",
             f"--remap-path-prefix={os.path.abspath(cargo_home)}=cargo"]
    return ["--config", f"target.{target}.rustflags = {json.dumps(flags)}"]


def build(board, store):
    """Builds one variant of a report row and copies its ELF aside; returns the
    copy's path."""
    directory, target, binary, store_args = BOARDS[board][:4]
    baseline_args = BOARDS[board][4] if len(BOARDS[board]) > 4 else ["--no-default-features"]
    cwd = os.path.join(HERE, directory)
    cmd = (["cargo", "build", "--release", "--quiet"] + remap(target)
           + (store_args if store else baseline_args))
    r = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=sys.stderr)
    if r.returncode != 0:
        raise SystemExit(f"{board}: {' '.join(cmd)} failed")
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(cwd, "target"))
    elf = os.path.join(target_dir, target, "release", binary)
    kept = os.path.join(target_dir, "size", f"{board}-{'store' if store else 'baseline'}.elf")
    os.makedirs(os.path.dirname(kept), exist_ok=True)
    shutil.copyfile(elf, kept)
    return kept


def commit():
    """The commit the working tree is at, with `-dirty` if it differs from it;
    `unknown` outside a git checkout."""
    r = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40"], cwd=HERE,
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "unknown"


def gate(path, added):
    """Compares ADDED ({board: {".text": n, ".rodata": n}}) with the baseline file;
    prints one line per board; returns whether every board passes."""
    try:
        with open(path) as f:
            base = json.load(f)
    except (OSError, ValueError) as e:
        print(f"size gate: cannot read the baseline {path}: {e}")
        return False
    ok = True
    print(f"size gate: what the store adds (.text + .rodata) against {os.path.basename(path)} "
          f"(taken {base.get('date', '?')} at {base.get('commit', '?')}), at most +{TOLERANCE:.0%}:")
    for board, now in added.items():
        total = now[".text"] + now[".rodata"]
        had = base.get("boards", {}).get(board)
        if had is None:
            print(f"  FAIL {board}: {total} B, no baseline for it (boards/size.py --update {path})")
            ok = False
            continue
        was = had["text"] + had["rodata"]
        limit = int(was * (1 + TOLERANCE))
        change = (total - was) / was if was else 0.0
        verdict = "ok  " if total <= limit else "FAIL"
        ok &= total <= limit
        print(f"  {verdict} {board}: {total} B (.text {now['.text']}, .rodata {now['.rodata']}), "
              f"baseline {was} B, {change:+.1%}, limit {limit} B")
    return ok


def update(path, added):
    """Rewrites the baseline file with ADDED, keeping the boards not measured."""
    try:
        with open(path) as f:
            boards = json.load(f).get("boards", {})
    except (OSError, ValueError):
        boards = {}
    for board, now in added.items():
        boards[board] = {"text": now[".text"], "rodata": now[".rodata"]}
    out = {
        "what": "bytes the store adds over the baseline firmware (boards/size.py, added row)",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "tolerance": TOLERANCE,
        "boards": dict(sorted(boards.items())),
    }
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(f"size gate: baseline {path} rewritten for {', '.join(added)}")


STACK_BOARD = "qemu-mps2-an386"
# The selftest's limit (it takes about 10 s).
STACK_TIMEOUT = 300


def stack_report(elf):
    """Runs the QEMU firmware ELF's selftest and prints its stack high-water
    lines; returns whether the selftest passed and printed them."""
    import tomllib
    with open(os.path.join(HERE, BOARDS[STACK_BOARD][0], ".cargo", "config.toml"), "rb") as f:
        runner = tomllib.load(f)["target"][BOARDS[STACK_BOARD][1]]["runner"].split()
    if not shutil.which(runner[0]) or not shutil.which("defmt-print"):
        print(f"stack high-water: cannot measure: needs {runner[0]} and defmt-print on the PATH")
        return False
    work = os.path.join(os.path.dirname(elf), "stack")
    os.makedirs(work, exist_ok=True)
    log = os.path.join(work, "selftest.defmt")
    # QEMU writes to a file, never to a pipe that could close early (QEMU 7.2
    # then spins); stdin is /dev/null.
    with open(log, "wb") as out:
        try:
            rc = subprocess.run(runner + [elf], cwd=work, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, timeout=STACK_TIMEOUT).returncode
        except subprocess.TimeoutExpired:
            rc = None
    with open(log, "rb") as f:
        decoded = subprocess.run(["defmt-print", "-e", elf], stdin=f, capture_output=True,
                                 timeout=60).stdout.decode(errors="replace")
    lines = [re.sub(r"^\s*(INFO|WARN|ERROR)\s+", "", line) for line in decoded.splitlines()]
    figures = [line for line in lines if line.startswith("stack high-water") or line.startswith("stack: ")]
    print(f"stack high-water marks ({STACK_BOARD} selftest phase 5, Cortex-M4 under QEMU; the bytes "
          f"below the caller's stack pointer each call wrote, maximum over all calls):")
    for line in figures:
        print("  " + line)
    passed = rc == 0 and any("selftest: PASS" in line for line in lines)
    if not passed or not any(line.startswith("stack high-water:") for line in figures):
        status = "timed out" if rc is None else f"exit {rc}"
        print(f"stack high-water: the selftest failed ({status}); its log, {log}, ends:")
        for line in lines[-10:]:
            print("  " + line)
        return False
    return True


def main():
    args = sys.argv[1:]
    mode = None
    stack = "--stack" in args
    if stack:
        args = [a for a in args if a != "--stack"]
    if args and args[0] in ("--check", "--update"):
        if len(args) < 2:
            raise SystemExit(f"usage: boards/size.py {args[0]} FILE [BOARD ...]")
        mode, path, args = args[0], args[1], args[2:]
    if args and args[0] == "--symbols":
        top = 40
        if len(args) == 4 and args[2] == "--top":
            top = int(args[3])
        elif len(args) != 2:
            raise SystemExit("usage: boards/size.py --symbols BOARD [--top N]")
        if args[1] not in BOARDS:
            raise SystemExit(f"unknown board {args[1]}; known: {', '.join(BOARDS)}")
        symbol_report(args[1], top)
        return
    boards = args or list(BOARDS)
    for b in boards:
        if b not in BOARDS:
            raise SystemExit(f"unknown board {b}; known: {', '.join(BOARDS)}")
    header = f"{'board':<17}{'variant':<10}" + "".join(f"{c:>9}" for c in COLUMNS) + f"{'flash':>9}{'ram':>9}"
    overrides = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                         if k.startswith("CARGO_PROFILE_RELEASE_"))
    print("firmware size in bytes (opt-level \"s\", fat LTO; flash = .text + .rodata + .data, "
          "ram = .data + .bss)" + (f"; overridden: {overrides}" if overrides else ""))
    print(header)
    figures_lines = []
    added = {}
    elfs = {}
    for b in boards:
        rows = {}
        for store in (True, False):
            elfs[(b, store)] = build(b, store)
            rows[store], figs = measure(elfs[(b, store)])
            if store and figs:
                figures_lines.append(f"{b:<17}" + ", ".join(f"{n} {v}" for n, v in zip(SIZE_FIGURES, figs)))
        delta = {c: rows[True][c] - rows[False][c] for c in COLUMNS}
        added[b] = delta
        first = "peer" if b in PEERS else "store"
        for label, row in ((first, rows[True]), ("baseline", rows[False]), ("added", delta)):
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
    for peer, (name, ours) in PEERS.items():
        if peer not in added:
            continue
        theirs = added[peer][".text"] + added[peer][".rodata"]
        print(f"peer: {name} adds {theirs} B (.text + .rodata) to the same nRF52840 firmware "
              f"(opaque payloads: no event types, no hashing, no ids across restarts)")
        for b in ours:
            if b in added:
                mine = added[b][".text"] + added[b][".rodata"]
                print(f"  monitor-events {b}: {mine} B, {mine / theirs:.2f}x the peer")
    if "rp2040" in added and "nrf52840" in added:
        rp, nrf = (added[b][".text"] + added[b][".rodata"] for b in ("rp2040", "nrf52840"))
        print(f"rp2040 against nrf52840 (the same demo, Thumb-1 against Thumb-2): {rp} B against "
              f"{nrf} B, {rp / nrf - 1:+.1%} (target: within +10%)")
    # Peers are reported, not gated.
    added = {b: d for b, d in added.items() if b not in PEERS}
    ok = True
    if stack:
        ok = stack_report(elfs.get((STACK_BOARD, True)) or build(STACK_BOARD, True))
    if mode == "--update":
        update(path, added)
    elif mode == "--check" and not gate(path, added):
        sys.exit(1)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
