//! The report log: what `run` saw returned, one line per fact, appended to a host
//! file with one `SYS_WRITE` per line before `run` goes on; read back by `verify`.
//!
//! | line | written |
//! |---|---|
//! | `B <next_id> <pending>` | after `open`, at every boot of `run` |
//! | `P <id> <len>` | after `push` returned `id` for a body of `len` bytes |
//! | `a <id>` | before `ack(id)` is called (the ack may or may not be durable) |
//! | `A <id>` | after `ack(id)` returned |
//! | `C <last push> <max id>` | by `verify carry=...`: the highest `P` id and the highest id of any line so far, after a `P` line for every id still expected pending |
//!
//! Every run starts by writing a lone newline, so a line torn by a cut ends there
//! and is counted as torn instead of running into the next line.

use crate::host::{HostError, HostFile, Mode};

/// The appending side.
pub struct Report {
    file: HostFile,
}

impl Report {
    /// Opens (or creates) `path` for appending and ends any torn last line.
    ///
    /// QEMU 7.2 opens the `"ab"` mode without `O_APPEND` (the file position
    /// starts at 0 and the first write would overwrite the log), so the position
    /// is moved to the end first; where the host appends anyway this changes
    /// nothing.
    pub fn open(path: &str) -> Result<Self, HostError> {
        let mut file = HostFile::open(path, Mode::Append)?;
        let end = file.len()?;
        file.seek(end)?;
        let mut r = Report { file };
        r.file.write(b"\n")?;
        Ok(r)
    }

    /// Creates (or truncates) `path` for a carried-over log.
    pub fn create(path: &str) -> Result<Self, HostError> {
        Ok(Report {
            file: HostFile::open(path, Mode::Create)?,
        })
    }

    /// Appends `<tag> <a>[ <b>]\n` in one write.
    pub fn line(&mut self, tag: u8, a: u64, b: Option<u64>) -> Result<(), HostError> {
        let mut buf = Line::new();
        buf.push(tag);
        buf.push(b' ');
        buf.number(a);
        if let Some(b) = b {
            buf.push(b' ');
            buf.number(b);
        }
        buf.push(b'\n');
        self.file.write(buf.as_bytes())
    }
}

/// A short line built on the stack.
pub struct Line {
    buf: [u8; 96],
    len: usize,
}

impl Line {
    /// Empty.
    pub const fn new() -> Self {
        Line {
            buf: [0; 96],
            len: 0,
        }
    }

    /// Appends a byte (dropped if full).
    pub fn push(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    /// Appends text.
    pub fn text(&mut self, s: &str) {
        for &b in s.as_bytes() {
            self.push(b);
        }
    }

    /// Appends `n` in decimal.
    pub fn number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &d in &digits[i..] {
            self.push(d);
        }
    }

    /// The bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// One parsed line of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum Fact {
    /// `B`: a boot of `run`.
    Boot {
        /// The journal's next id at boot.
        next_id: u64,
    },
    /// `P`: a push returned.
    Pushed {
        /// The id.
        id: u64,
        /// The body length.
        len: u64,
    },
    /// `a`: an ack was asked for.
    AckAsked {
        /// The id.
        id: u64,
    },
    /// `A`: an ack returned.
    Acked {
        /// The id.
        id: u64,
    },
    /// `C`: what a carried-over log summarises of the lines it replaces.
    Carry {
        /// The highest `P` id.
        last_push: u64,
        /// The highest id of any line.
        max_id: u64,
    },
    /// An empty line (every run starts with one).
    Blank,
    /// Anything else: a line torn by a cut.
    Torn,
}

/// Parses one line (without its newline).
pub fn parse(line: &[u8]) -> Fact {
    if line.is_empty() {
        return Fact::Blank;
    }
    let mut words = line.split(|&b| b == b' ');
    let tag = words.next().unwrap_or(b"");
    let mut nums = [0u64; 2];
    let mut count = 0;
    for w in words {
        if count == 2 {
            return Fact::Torn;
        }
        match number(w) {
            Some(n) => nums[count] = n,
            None => return Fact::Torn,
        }
        count += 1;
    }
    match (tag, count) {
        (b"B", 2) => Fact::Boot { next_id: nums[0] },
        (b"P", 2) => Fact::Pushed {
            id: nums[0],
            len: nums[1],
        },
        (b"a", 1) => Fact::AckAsked { id: nums[0] },
        (b"A", 1) => Fact::Acked { id: nums[0] },
        (b"C", 2) => Fact::Carry {
            last_push: nums[0],
            max_id: nums[1],
        },
        _ => Fact::Torn,
    }
}

fn number(w: &[u8]) -> Option<u64> {
    if w.is_empty() || w.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &c in w {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    Some(n)
}

/// Reads a host file line by line through a fixed buffer.
pub struct LineReader {
    file: HostFile,
    buf: [u8; 2048],
    start: usize,
    end: usize,
    eof: bool,
}

impl LineReader {
    /// Opens `path` for reading.
    pub fn open(path: &str) -> Result<Self, HostError> {
        let mut file = HostFile::open(path, Mode::Read)?;
        file.seek(0)?;
        Ok(LineReader {
            file,
            buf: [0; 2048],
            start: 0,
            end: 0,
            eof: false,
        })
    }

    /// The next line without its newline (a last line without one too), `None` at
    /// the end. A line longer than the buffer comes back in pieces (each then
    /// parses as torn).
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, HostError> {
        loop {
            if let Some(p) = self.buf[self.start..self.end]
                .iter()
                .position(|&b| b == b'\n')
            {
                let line = self.start..self.start + p;
                self.start += p + 1;
                return Ok(Some(&self.buf[line]));
            }
            if self.eof || (self.start == 0 && self.end == self.buf.len()) {
                if self.start == self.end {
                    return Ok(None);
                }
                let line = self.start..self.end;
                self.start = self.end;
                return Ok(Some(&self.buf[line]));
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let n = self.file.read(&mut self.buf[self.end..])?;
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
        }
    }
}
