//! The one error type a handler returns.
//!
//! Owns [`Error`]: a boxed error that any `std::error::Error` converts into with
//! `?`, plus [`Error::msg`] for ad-hoc messages. It carries details for the
//! server log only; turning an error into the client's `500 internal error` is
//! the job of `export`, never of this module, and no detail reaches the client.

use std::fmt;

/// An error from a handler or from the SDK itself.
///
/// Any type implementing `std::error::Error + Send + Sync + 'static` (for
/// example `std::io::Error` or `std::num::ParseIntError`) converts into it, so
/// `?` works in a handler. When a handler returns an `Error` the client gets a
/// bare `500 internal error` and the error's text goes to stderr (the server log).
pub struct Error {
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl Error {
    /// An error carrying just a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            inner: message.to_string().into(),
        }
    }

    /// The underlying error, for inspection or downcasting.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }
}

impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(err: E) -> Self {
        Self {
            inner: Box::new(err),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)?;
        let mut source = self.inner.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    fn parse(text: &str) -> Result<u32, Error> {
        Ok(text.parse::<u32>()?)
    }

    #[test]
    fn question_mark_converts() {
        let err = parse("x").unwrap_err();
        assert_eq!(err.to_string(), "invalid digit found in string");
        assert!(err.inner().is::<std::num::ParseIntError>());
    }

    #[test]
    fn msg_and_io() {
        assert_eq!(Error::msg("bad thing").to_string(), "bad thing");
        let io = std::io::Error::other("disk");
        assert_eq!(Error::from(io).to_string(), "disk");
    }
}
