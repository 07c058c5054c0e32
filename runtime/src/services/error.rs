//! What can go wrong in a job store, by kind, so a caller can act on it.
//!
//! Owns: `StoreError` and the one mapping from SQLite's result codes to its kinds.
//! Must not touch: SQL statements (`journal`), threads (`store`) or what a caller does about
//! an error (the hosts turn it into a Python exception or a WIT `unavailable`).

use std::path::Path;

/// A store failure. Every kind names the store (for SQLite, the journal file) and keeps the
/// underlying message, so its text reads as before: `job journal FILE: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Another connection held the lock for longer than the busy handler waits.
    #[error("job journal {store}: {detail}")]
    Busy { store: String, detail: String },
    /// The disk (or the database's size limit) is full.
    #[error("job journal {store}: {detail}")]
    Full { store: String, detail: String },
    /// The file is not a database, or its contents are damaged.
    #[error("job journal {store}: {detail}")]
    Corrupt { store: String, detail: String },
    /// The operating system refused a read, write, open or lock.
    #[error("job journal {store}: {detail}")]
    Io { store: String, detail: String },
    /// There is no store yet (`wsrun jobs` on a state directory no server has used).
    #[error("no job journal at {store} (has the server run with this state_dir?)")]
    Missing { store: String },
    /// Storing it would pass a quota of its account (`job::Quota`); the message names it.
    #[error("{0}")]
    OverQuota(String),
    /// The store has been shut down (e.g. the master's, before the fork).
    #[error("the job journal is closed")]
    Closed,
    /// Anything else, with what was being done.
    #[error("{context}: {detail}")]
    Other { context: String, detail: String },
}

impl StoreError {
    /// The kind of a SQLite error on the journal at `file`: the only place that reads
    /// SQLite's result codes.
    pub fn sqlite(file: &Path, err: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode as Code;
        let store = file.display().to_string();
        let detail = err.to_string();
        let (code, extended) = match &err {
            rusqlite::Error::SqliteFailure(failure, _) => {
                (Some(failure.code), failure.extended_code)
            }
            _ => (None, 0),
        };
        match code {
            // The extended code tells which lock it was (a recovery, a snapshot, a checkpoint).
            Some(Code::DatabaseBusy | Code::DatabaseLocked) => StoreError::Busy {
                store,
                detail: format!("{detail} (SQLite extended code {extended})"),
            },
            Some(Code::DiskFull | Code::TooBig) => StoreError::Full { store, detail },
            Some(Code::DatabaseCorrupt | Code::NotADatabase) => {
                StoreError::Corrupt { store, detail }
            }
            Some(
                Code::SystemIoFailure
                | Code::CannotOpen
                | Code::FileLockingProtocolFailed
                | Code::PermissionDenied
                | Code::ReadOnly,
            ) => StoreError::Io { store, detail },
            _ => StoreError::Other {
                context: format!("job journal {store}"),
                detail,
            },
        }
    }

    /// A failure outside SQLite (a directory, a thread), with what was being done.
    pub fn other(context: impl Into<String>, detail: impl ToString) -> StoreError {
        StoreError::Other {
            context: context.into(),
            detail: detail.to_string(),
        }
    }

    /// Whether trying again later may succeed (the store was busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Busy { .. })
    }
}

/// What a store call gives back.
pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn sqlite_codes_map_to_kinds_and_keep_the_message() {
        let file = Path::new("/s/jobs.sqlite3");
        let kind = |code| StoreError::sqlite(file, failure(code));
        assert!(matches!(
            kind(rusqlite::ffi::SQLITE_BUSY),
            StoreError::Busy { .. }
        ));
        assert!(matches!(
            kind(rusqlite::ffi::SQLITE_LOCKED),
            StoreError::Busy { .. }
        ));
        assert!(matches!(
            kind(rusqlite::ffi::SQLITE_FULL),
            StoreError::Full { .. }
        ));
        assert!(matches!(
            kind(rusqlite::ffi::SQLITE_CORRUPT),
            StoreError::Corrupt { .. }
        ));
        assert!(matches!(
            kind(rusqlite::ffi::SQLITE_NOTADB),
            StoreError::Corrupt { .. }
        ));
        assert!(matches!(
            kind(rusqlite::ffi::SQLITE_IOERR),
            StoreError::Io { .. }
        ));
        assert!(matches!(
            kind(rusqlite::ffi::SQLITE_MISUSE),
            StoreError::Other { .. }
        ));
        assert!(kind(rusqlite::ffi::SQLITE_BUSY).is_transient());
        assert!(!kind(rusqlite::ffi::SQLITE_FULL).is_transient());
        let busy = kind(rusqlite::ffi::SQLITE_BUSY_RECOVERY).to_string();
        assert!(busy.ends_with("(SQLite extended code 261)"), "{busy}");
        let text = kind(rusqlite::ffi::SQLITE_FULL).to_string();
        assert!(text.starts_with("job journal /s/jobs.sqlite3: "), "{text}");
    }
}
