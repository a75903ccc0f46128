//! [`FileMedium`]: the [`Medium`] port on a preallocated file.
//!
//! | port operation | system call | notes |
//! |---|---|---|
//! | `read(offset, buf)` | `pread` (`read_exact_at`) | bounds checked |
//! | `program(offset, data)` | `pwrite` (`write_all_at`) of `data` as given | bounds and `write_size` alignment checked |
//! | `erase(sector)` | `pwrite` of one sector of `0xFF` | |
//! | `sync()` | `fdatasync` (`File::sync_data`) | a failure is reported, never retried: the journal panics |
//!
//! `program` writes the bytes as given instead of AND-ing them with what is there:
//! the journal only ever programs erased units, or a unit it has just read and in
//! which it only clears bits, so the result is the same without a read per write.

use crate::error::{FileError, MediumError, MediumOp};
#[cfg(feature = "_test-faults")]
use crate::fault::FaultPlan;
use monitor_events::{Geometry, Medium};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes written per call while filling a new file with `0xFF`.
const FILL_CHUNK: usize = 64 * 1024;

/// A [`Medium`] on a preallocated file of exactly `geometry.size()` bytes, held
/// under an exclusive advisory lock (`flock(LOCK_EX | LOCK_NB)`) for as long as the
/// value lives.
///
/// The lock is per open file description: a second `FileMedium` on the same file,
/// in this process or another, gets [`FileError::Locked`]. The kernel drops it when
/// the file is closed, also when the process is killed.
pub struct FileMedium {
    file: File,
    path: PathBuf,
    geometry: Geometry,
    size: u32,
    /// One sector of `0xFF`, written by `erase`.
    erased: Box<[u8]>,
    #[cfg(feature = "_test-faults")]
    faults: FaultPlan,
}

impl core::fmt::Debug for FileMedium {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileMedium")
            .field("path", &self.path)
            .field("geometry", &self.geometry)
            .finish()
    }
}

impl FileMedium {
    /// Creates a store file at `path` of `geometry.size()` bytes, all `0xFF` (the
    /// erased state), mode `0600`, locked.
    ///
    /// The file is built under a temporary name in the same directory
    /// (`.NAME.creating.PID.K`), filled, fsynced, then linked to `path` (which
    /// fails if anything is there) and the directory fsynced: `path` never names a
    /// half-made file. A crash can leave the temporary name behind; it is safe to
    /// delete.
    ///
    /// Fails with [`FileError::Exists`] if `path` exists, [`FileError::BadGeometry`]
    /// for a geometry no file can have, [`FileError::Io`] otherwise.
    pub fn create(path: impl AsRef<Path>, geometry: Geometry) -> Result<Self, FileError> {
        let path = path.as_ref();
        let size = check_geometry(geometry)?;
        if path.symlink_metadata().is_ok() {
            return Err(FileError::Exists {
                path: path.to_owned(),
            });
        }
        let dir = parent_dir(path);
        let tmp = temp_name(path)?;
        let guard = RemoveOnDrop(Some(tmp.clone()));
        let file = create_new_0600(&tmp)?;
        lock(&file, &tmp)?;
        let chunk = vec![0xFF; FILL_CHUNK.min(size as usize)];
        let mut at = 0u64;
        while at < u64::from(size) {
            let n = (u64::from(size) - at).min(chunk.len() as u64) as usize;
            file.write_all_at(&chunk[..n], at)
                .map_err(io_err("fill with 0xFF", &tmp))?;
            at += n as u64;
        }
        // fsync, not fdatasync: the size must be durable too.
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(FileError::Exists {
                    path: path.to_owned(),
                });
            }
            Err(e) => {
                return Err(FileError::Io {
                    op: "link",
                    path: path.to_owned(),
                    source: e,
                })
            }
        }
        drop(guard); // unlinks the temporary name
        fsync_dir(&dir)?;
        Ok(Self::new(file, path.to_owned(), geometry, size))
    }

    /// Opens an existing store file, locked. Modifies nothing.
    ///
    /// Fails with [`FileError::Locked`] if another handle holds it,
    /// [`FileError::WrongSize`] if its size is not `geometry.size()`,
    /// [`FileError::NotAFile`], [`FileError::BadGeometry`], or [`FileError::Io`]
    /// (a missing file is `Io` with `ErrorKind::NotFound`).
    pub fn open(path: impl AsRef<Path>, geometry: Geometry) -> Result<Self, FileError> {
        let path = path.as_ref();
        let size = check_geometry(geometry)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err("open", path))?;
        lock(&file, path)?;
        let meta = file.metadata().map_err(io_err("stat", path))?;
        if !meta.is_file() {
            return Err(FileError::NotAFile {
                path: path.to_owned(),
            });
        }
        if meta.len() != u64::from(size) {
            return Err(FileError::WrongSize {
                expected: u64::from(size),
                found: meta.len(),
            });
        }
        Ok(Self::new(file, path.to_owned(), geometry, size))
    }

    fn new(file: File, path: PathBuf, geometry: Geometry, size: u32) -> Self {
        FileMedium {
            file,
            path,
            geometry,
            size,
            erased: vec![0xFF; geometry.sector_size as usize].into_boxed_slice(),
            #[cfg(feature = "_test-faults")]
            faults: FaultPlan::none(),
        }
    }

    /// The path the file was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Arms fault injection (tests only).
    #[cfg(feature = "_test-faults")]
    #[doc(hidden)]
    pub fn set_faults(&mut self, plan: FaultPlan) {
        self.faults = plan;
    }

    fn error(&self, op: MediumOp, offset: u32, len: usize, source: io::Error) -> MediumError {
        MediumError {
            op,
            offset,
            len: len as u32,
            path: self.path.clone(),
            source,
        }
    }

    /// The injected error for this call, if any.
    #[allow(unused_variables)]
    fn injected(&mut self, op: MediumOp, offset: u32, len: usize) -> Result<(), MediumError> {
        #[cfg(feature = "_test-faults")]
        if let Some(e) = self.faults.check(op) {
            return Err(self.error(op, offset, len, e));
        }
        Ok(())
    }

    fn check_range(&self, op: MediumOp, offset: u32, len: usize) -> Result<(), MediumError> {
        if u64::from(offset) + len as u64 > u64::from(self.size) {
            let msg = format!("range beyond the file's {} B", self.size);
            return Err(self.error(
                op,
                offset,
                len,
                io::Error::new(io::ErrorKind::InvalidInput, msg),
            ));
        }
        Ok(())
    }
}

impl Medium for FileMedium {
    type Error = MediumError;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// False: the kernel writes dirty pages back in any order, so after the
    /// host loses power a write made since the last `fdatasync` may be there
    /// while an earlier one is not (`Medium::writes_in_order`).
    fn writes_in_order(&self) -> bool {
        false
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), MediumError> {
        self.check_range(MediumOp::Read, offset, buf.len())?;
        self.injected(MediumOp::Read, offset, buf.len())?;
        self.file
            .read_exact_at(buf, u64::from(offset))
            .map_err(|e| self.error(MediumOp::Read, offset, buf.len(), e))
    }

    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), MediumError> {
        let op = MediumOp::Program;
        self.check_range(op, offset, data.len())?;
        let ws = self.geometry.write_size;
        if offset % ws != 0 || data.len() as u32 % ws != 0 {
            let msg = format!("not aligned to the write size of {ws} B");
            return Err(self.error(
                op,
                offset,
                data.len(),
                io::Error::new(io::ErrorKind::InvalidInput, msg),
            ));
        }
        self.injected(op, offset, data.len())?;
        self.file
            .write_all_at(data, u64::from(offset))
            .map_err(|e| self.error(op, offset, data.len(), e))
    }

    fn erase(&mut self, sector: u32) -> Result<(), MediumError> {
        let op = MediumOp::Erase;
        let len = self.erased.len();
        let offset = sector.saturating_mul(self.geometry.sector_size);
        if sector >= self.geometry.sector_count {
            let msg = format!(
                "sector {sector} beyond the {} sectors",
                self.geometry.sector_count
            );
            return Err(self.error(
                op,
                offset,
                len,
                io::Error::new(io::ErrorKind::InvalidInput, msg),
            ));
        }
        self.injected(op, offset, len)?;
        self.file
            .write_all_at(&self.erased, u64::from(offset))
            .map_err(|e| self.error(op, offset, len, e))
    }

    fn sync(&mut self) -> Result<(), MediumError> {
        self.injected(MediumOp::Sync, 0, 0)?;
        // fdatasync(2) on Linux and the BSDs (F_FULLFSYNC on Apple): file data, and
        // the metadata needed to read it back, are on stable storage on return.
        self.file
            .sync_data()
            .map_err(|e| self.error(MediumOp::Sync, 0, 0, e))
    }
}

/// The file size of a geometry, if a file can have it.
fn check_geometry(g: Geometry) -> Result<u32, FileError> {
    let ok = g.sector_size > 0
        && g.sector_count > 0
        && g.write_size.is_power_of_two()
        && g.sector_size % g.write_size == 0;
    match g.sector_size.checked_mul(g.sector_count) {
        Some(size) if ok => Ok(size),
        _ => Err(FileError::BadGeometry(g)),
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FileError + 'a {
    move |source| FileError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Takes the exclusive advisory lock without waiting.
fn lock(file: &File, path: &Path) -> Result<(), FileError> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(FileError::Locked {
            path: path.to_owned(),
        }),
        Err(e) => Err(FileError::Io {
            op: "flock",
            path: path.to_owned(),
            source: e.into(),
        }),
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// A temporary name beside `path`, unique within this process.
fn temp_name(path: &Path) -> Result<PathBuf, FileError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let Some(name) = path.file_name() else {
        return Err(FileError::NotAFile {
            path: path.to_owned(),
        });
    };
    let k = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = format!(
        ".{}.creating.{}.{k}",
        name.to_string_lossy(),
        std::process::id()
    );
    Ok(parent_dir(path).join(tmp))
}

fn create_new_0600(tmp: &Path) -> Result<File, FileError> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)
    };
    match open() {
        // Left by a crashed `create` of a process that had our pid: nobody uses it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(tmp).map_err(io_err("remove stale", tmp))?;
            open().map_err(io_err("create temporary file", tmp))
        }
        r => r.map_err(io_err("create temporary file", tmp)),
    }
}

fn fsync_dir(dir: &Path) -> Result<(), FileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Unlinks a temporary file when dropped.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}
