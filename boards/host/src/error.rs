//! The CLI's errors: one line for the user and an exit code.

/// An error the CLI reports on one line of stderr before exiting with `code`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliError {
    /// The process exit code.
    pub code: u8,
    /// What is wrong and what to do.
    pub message: String,
}

/// Exit code: the file cannot be used (missing, wrong size, not a store) or the
/// arguments are wrong.
pub const EXIT_USAGE: u8 = 1;
/// Exit code: the store is damaged or of a newer format (`verify` fails), or
/// `simulate` found a violation.
pub const EXIT_INTEGRITY: u8 = 2;
/// Exit code: a bug (the library panicked).
pub const EXIT_INTERNAL: u8 = 3;

impl CliError {
    /// A mistake of the user: exit code 1.
    pub fn usage(message: String) -> Self {
        CliError {
            code: EXIT_USAGE,
            message,
        }
    }

    /// A damaged or unreadable store: exit code 2.
    pub fn integrity(message: String) -> Self {
        CliError {
            code: EXIT_INTEGRITY,
            message,
        }
    }

    /// A bug: exit code 3.
    pub fn internal(message: String) -> Self {
        CliError {
            code: EXIT_INTERNAL,
            message,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}
