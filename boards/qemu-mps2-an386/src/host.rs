//! The host side of semihosting: files, the command line, exit.
//!
//! Only the calls the firmware needs, as thin wrappers over the ARM semihosting
//! operations (`SYS_OPEN`, `SYS_SEEK`, `SYS_WRITE`, `SYS_READ`, `SYS_FLEN`,
//! `SYS_CLOSE`, `SYS_GET_CMDLINE`, `SYS_EXIT`). Under QEMU with
//! `-semihosting-config enable=on,target=native` each call is a host system call
//! that has completed when the firmware continues: a byte written through
//! [`HostFile::write`] is in the host's page cache and survives a SIGKILL of
//! QEMU.
//!
//! defmt frames go to the semihosting stdout (defmt-semihosting); nothing here
//! writes to stdout.

#![allow(unsafe_code)]

use cortex_m_semihosting::{debug, nr, syscall};

/// Open modes of `SYS_OPEN` (the index of the ISO C `fopen` mode string).
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum Mode {
    /// `"rb"`: read an existing file.
    Read,
    /// `"r+b"`: read and write an existing file, no truncation.
    ReadWrite,
    /// `"w+b"`: create or truncate, read and write.
    Create,
    /// `"ab"`: create if missing, every write appends.
    Append,
}

impl Mode {
    const fn code(self) -> usize {
        match self {
            Mode::Read => nr::open::R_BINARY,
            Mode::ReadWrite => nr::open::RW_BINARY,
            Mode::Create => nr::open::RW_TRUNC_BINARY,
            Mode::Append => nr::open::W_APPEND_BINARY,
        }
    }
}

/// A semihosting call failed on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum HostError {
    /// `SYS_OPEN` refused the path (missing file, no permission, path too long).
    Open,
    /// `SYS_SEEK` failed.
    Seek {
        /// The position asked for.
        pos: u32,
    },
    /// `SYS_WRITE` wrote fewer bytes than asked.
    Write {
        /// Bytes not written.
        missing: u32,
    },
    /// `SYS_READ` failed or the file is shorter than asked.
    Read {
        /// Bytes not read.
        missing: u32,
    },
    /// `SYS_FLEN` failed.
    Length,
}

/// Longest path, including the terminating NUL.
const MAX_PATH: usize = 96;

/// An open host file.
#[derive(Debug, defmt::Format)]
pub struct HostFile {
    handle: usize,
}

impl HostFile {
    /// Opens `path` in `mode`.
    pub fn open(path: &str, mode: Mode) -> Result<Self, HostError> {
        let mut z = [0u8; MAX_PATH];
        if path.is_empty() || path.len() >= MAX_PATH {
            return Err(HostError::Open);
        }
        z[..path.len()].copy_from_slice(path.as_bytes());
        // SAFETY: SYS_OPEN reads `path.len()` bytes of a NUL-terminated string that
        // lives until the call returns.
        let handle = unsafe { syscall!(OPEN, z.as_ptr(), mode.code(), path.len()) };
        if handle as isize == -1 {
            return Err(HostError::Open);
        }
        Ok(HostFile { handle })
    }

    /// Length of the file in bytes.
    pub fn len(&self) -> Result<u32, HostError> {
        // SAFETY: SYS_FLEN takes the handle only.
        let n = unsafe { syscall!(FLEN, self.handle) };
        if n as isize == -1 {
            return Err(HostError::Length);
        }
        Ok(n as u32)
    }

    /// Moves the file position to `pos` (from the start).
    pub fn seek(&mut self, pos: u32) -> Result<(), HostError> {
        // SAFETY: SYS_SEEK takes the handle and a position.
        let r = unsafe { syscall!(SEEK, self.handle, pos) };
        if r != 0 {
            return Err(HostError::Seek { pos });
        }
        Ok(())
    }

    /// Writes all of `data` at the current position.
    pub fn write(&mut self, data: &[u8]) -> Result<(), HostError> {
        if data.is_empty() {
            return Ok(());
        }
        // SAFETY: SYS_WRITE reads `data.len()` bytes from a live slice.
        let missing = unsafe { syscall!(WRITE, self.handle, data.as_ptr(), data.len()) };
        if missing != 0 {
            return Err(HostError::Write {
                missing: missing as u32,
            });
        }
        Ok(())
    }

    /// Reads up to `buf.len()` bytes at the current position; returns how many
    /// were read (fewer only at the end of the file).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        if buf.is_empty() {
            return Ok(0);
        }
        // SAFETY: SYS_READ writes at most `buf.len()` bytes into a live slice.
        let missing = unsafe { syscall!(READ, self.handle, buf.as_mut_ptr(), buf.len()) };
        if missing > buf.len() {
            return Err(HostError::Read {
                missing: missing as u32,
            });
        }
        Ok(buf.len() - missing)
    }

    /// Fills `buf` from `pos`; an error if the file ends first.
    pub fn read_exact_at(&mut self, pos: u32, buf: &mut [u8]) -> Result<(), HostError> {
        self.seek(pos)?;
        let mut done = 0;
        while done < buf.len() {
            let n = self.read(&mut buf[done..])?;
            if n == 0 {
                return Err(HostError::Read {
                    missing: (buf.len() - done) as u32,
                });
            }
            done += n;
        }
        Ok(())
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        // SAFETY: SYS_CLOSE takes the handle only; it is not used afterwards.
        unsafe {
            syscall!(CLOSE, self.handle);
        }
    }
}

/// The semihosting command line (`SYS_GET_CMDLINE`) copied into `buf`.
///
/// QEMU builds it from `-kernel <elf> -append "<args>"`: the ELF path, a space and
/// the arguments. Empty if the host gives none.
pub fn cmdline(buf: &mut [u8]) -> &str {
    #[repr(C)]
    struct Block {
        ptr: *mut u8,
        len: usize,
    }
    let mut block = Block {
        ptr: buf.as_mut_ptr(),
        len: buf.len(),
    };
    // SAFETY: SYS_GET_CMDLINE writes at most `len` bytes (NUL included) into `buf`
    // and the updated length into the block, both live during the call.
    let r = unsafe {
        cortex_m_semihosting::syscall1(nr::GET_CMDLINE, &mut block as *mut Block as usize)
    };
    if r != 0 || block.len > buf.len() {
        return "";
    }
    core::str::from_utf8(&buf[..block.len]).unwrap_or("")
}

/// Ends the emulation: QEMU exits with status 0 on success, 1 on failure.
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached if the host asks the program to continue.
    loop {
        cortex_m::asm::bkpt();
    }
}
