//! [`FileStore`]: a [`Journal`] on a [`FileMedium`] in one call.
//!
//! Thin by design: the file is created or opened, then handed to
//! [`Journal::open`], which makes every decision (blank, foreign, corrupted, newer
//! format). A refused file is closed (and unlocked) unmodified.

use crate::error::FileError;
use crate::medium::FileMedium;
use core::marker::PhantomData;
use monitor_events::journal::{Config, Journal};
use std::io;
use std::path::Path;

/// Opens and creates journals in files, for a capacity of `N` pending events.
/// It has no values: use its associated functions.
pub struct FileStore<const N: usize> {
    _never: PhantomData<[(); N]>,
}

impl<const N: usize> FileStore<N> {
    /// Creates a store file for `config` at `path` (see [`FileMedium::create`]) and
    /// opens an empty journal on it.
    pub fn create(
        path: impl AsRef<Path>,
        config: Config<N>,
    ) -> Result<Journal<FileMedium, N>, FileError> {
        let medium = FileMedium::create(path, config.geometry())?;
        Ok(Journal::open(medium, config)?)
    }

    /// Opens the journal in the existing store file at `path`, recovering every
    /// pending event. Writes nothing (the first push or ack may repair a torn tail).
    ///
    /// A file that is not a journal is [`FileError::Journal`]`(`[`OpenError::NotAStore`](monitor_events::journal::OpenError::NotAStore)`)`
    /// (or [`FileError::WrongSize`]); damage is `FileError::Journal(Corrupted { .. })`.
    pub fn open(
        path: impl AsRef<Path>,
        config: Config<N>,
    ) -> Result<Journal<FileMedium, N>, FileError> {
        let medium = FileMedium::open(path, config.geometry())?;
        Ok(Journal::open(medium, config)?)
    }

    /// Opens the store file at `path`, creating it first if nothing is there.
    pub fn open_or_create(
        path: impl AsRef<Path>,
        config: Config<N>,
    ) -> Result<Journal<FileMedium, N>, FileError> {
        let path = path.as_ref();
        match Self::open(path, config) {
            Err(FileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                match Self::create(path, config) {
                    // Another process created it in between.
                    Err(FileError::Exists { .. }) => Self::open(path, config),
                    r => r,
                }
            }
            r => r,
        }
    }
}
