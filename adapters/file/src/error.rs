//! The two error types: [`FileError`] for opening and creating a store file (a
//! value the host handles), [`MediumError`] for a failed operation on an open one
//! (only ever printed in the journal's panic message: invariant I7).

use monitor_events::journal::OpenError;
use monitor_events::Geometry;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a store file could not be created or opened. Nothing was modified.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileError {
    /// `create` found something at the path already.
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// Another handle, in this process or another one, holds the file's lock.
    Locked {
        /// The path.
        path: PathBuf,
    },
    /// The file's size is not the geometry's size: it is not a store of this
    /// geometry (or a `create` was interrupted before it finished).
    WrongSize {
        /// `geometry.size()`.
        expected: u64,
        /// The file's size.
        found: u64,
    },
    /// The path names something other than a regular file.
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The geometry cannot describe a file: a zero size, a write size that is not
    /// a power of two dividing the sector size, or a region of 4 GiB or more.
    BadGeometry(Geometry),
    /// The journal refused the content (`NotAStore`, `Corrupted`, ...): see
    /// [`OpenError`].
    Journal(OpenError),
    /// A system call failed.
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Exists { path } => write!(f, "{} already exists", path.display()),
            FileError::Locked { path } => {
                write!(
                    f,
                    "{} is locked by another handle (this or another process)",
                    path.display()
                )
            }
            FileError::WrongSize { expected, found } => {
                write!(
                    f,
                    "the file holds {found} B where the geometry needs {expected} B"
                )
            }
            FileError::NotAFile { path } => write!(f, "{} is not a regular file", path.display()),
            FileError::BadGeometry(g) => write!(
                f,
                "geometry {}x{} B (write {} B) cannot describe a file",
                g.sector_count, g.sector_size, g.write_size
            ),
            FileError::Journal(e) => write!(f, "the journal refused the file: {e}"),
            FileError::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileError::Journal(e) => Some(e),
            FileError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<OpenError> for FileError {
    fn from(e: OpenError) -> Self {
        FileError::Journal(e)
    }
}

/// The operation of the [`Medium`](monitor_events::Medium) port that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediumOp {
    /// `read`: `pread`.
    Read,
    /// `program`: `pwrite`.
    Program,
    /// `erase`: `pwrite` of `0xFF` over a sector.
    Erase,
    /// `sync`: `fdatasync`.
    Sync,
}

impl MediumOp {
    fn syscall(self) -> &'static str {
        match self {
            MediumOp::Read => "pread",
            MediumOp::Program => "pwrite",
            MediumOp::Erase => "pwrite (erase)",
            MediumOp::Sync => "fdatasync",
        }
    }
}

/// A failed operation on an open [`FileMedium`](crate::FileMedium): the
/// operation, where, and the `std::io::Error`.
///
/// The journal never hands it to its caller: it panics with it (invariant I7).
/// Its `Debug` form, which is what the panic message shows, reads as a sentence:
/// `pwrite of 144 B at file offset 0x1040 of /var/lib/x/events failed: Input/output error (os error 5)`.
pub struct MediumError {
    pub(crate) op: MediumOp,
    pub(crate) offset: u32,
    pub(crate) len: u32,
    pub(crate) path: PathBuf,
    pub(crate) source: io::Error,
}

impl MediumError {
    /// The operation.
    pub fn op(&self) -> MediumOp {
        self.op
    }
    /// The byte offset in the file (the sector's first byte for an erase; 0 for a sync).
    pub fn offset(&self) -> u32 {
        self.offset
    }
    /// The number of bytes (0 for a sync).
    pub fn len(&self) -> u32 {
        self.len
    }
    /// Whether the operation covered no bytes (a sync).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The system's error.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for MediumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match self.op {
            MediumOp::Sync => write!(f, "fdatasync of {path} failed: {}", self.source),
            op => write!(
                f,
                "{} of {} B at file offset {:#x} of {path} failed: {}",
                op.syscall(),
                self.len,
                self.offset,
                self.source
            ),
        }
    }
}

impl fmt::Debug for MediumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for MediumError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
