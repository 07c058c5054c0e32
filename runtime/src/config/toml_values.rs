//! The reading side of `wsrun.toml`: a parsed document with its source, and typed access to
//! one `key = value` at a time, every error located by file, 1-based line and dotted key.
//!
//! Owns: `Doc` (file name, source text, base directory for relative paths), `At` (one entry:
//! strings, sizes, durations, counts, paths, tables of strings) and the "did you mean" hint for
//! unknown keys. Must not touch: which keys exist where (`toml_file`, `toml_routes`) or the value
//! grammars themselves (`units`, `wasm_settings`).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

use super::error::ConfigError;
use super::tls::TlsFile;
use super::units::{parse_duration, parse_size};

pub(super) type Key<'i> = Spanned<DeString<'i>>;
pub(super) type Value<'i> = Spanned<DeValue<'i>>;
pub(super) type Res<T> = Result<T, ConfigError>;

pub(super) struct Doc<'a> {
    pub(super) file: &'a str,
    pub(super) src: &'a str,
    pub(super) base: &'a Path,
}

/// One `key = value` entry being read: where it is and what to call it in errors.
pub(super) struct At<'d, 'v, 'i> {
    pub(super) doc: &'d Doc<'d>,
    pub(super) key: String,
    pub(super) v: &'v Value<'i>,
}

impl<'d> Doc<'d> {
    pub(super) fn at<'v, 'i>(&'d self, key: String, v: &'v Value<'i>) -> At<'d, 'v, 'i> {
        At { doc: self, key, v }
    }

    pub(super) fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.src.len());
        1 + self.src.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    pub(super) fn err(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(self.file, Some(self.line(span.start)), Some(key), message)
    }
}

impl<'v> At<'_, 'v, '_> {
    /// `k` is not a key of this table (`known`), or one that later work adds (`later`).
    pub(super) fn unknown(&self, k: &Key, known: &[&str], later: &[&str]) -> ConfigError {
        let name: &str = k.get_ref();
        let message = if later.contains(&name) {
            format!("`{name}` is not supported yet by this build")
        } else if let Some(s) = suggest(name, known) {
            format!("unknown key; did you mean `{s}`?")
        } else {
            format!("unknown key (known: {})", known.join(", "))
        };
        self.err_at(k.span(), message)
    }

    pub(super) fn err(&self, message: impl Into<String>) -> ConfigError {
        self.err_at(self.v.span(), message)
    }

    pub(super) fn err_at(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        self.doc.err(span, &self.key, message)
    }

    pub(super) fn type_err(&self, expected: &str) -> ConfigError {
        self.err(format!(
            "expected {expected}, found {}",
            self.v.get_ref().type_str()
        ))
    }

    pub(super) fn string(&self) -> Res<&'v str> {
        match self.v.get_ref() {
            DeValue::String(s) => Ok(s.as_ref()),
            _ => Err(self.type_err("a string")),
        }
    }

    /// A path, resolved against the file's directory.
    pub(super) fn path(&self) -> Res<PathBuf> {
        match self.string()? {
            "" => Err(self.err("is an empty path")),
            s => Ok(self.doc.base.join(s)),
        }
    }

    /// A path that must name an existing directory.
    pub(super) fn dir(&self) -> Res<PathBuf> {
        let dir = self.path()?;
        if !dir.is_dir() {
            return Err(self.err(format!("`{}` is not a directory", dir.display())));
        }
        Ok(dir)
    }

    /// A path that must name an existing file.
    pub(super) fn file(&self) -> Res<PathBuf> {
        let file = self.path()?;
        if !file.is_file() {
            return Err(self.err(format!("`{}` is not a file", file.display())));
        }
        Ok(file)
    }

    /// A TLS certificate or key file, remembered with this entry's file, line and key.
    pub(super) fn tls_file(&self) -> Res<TlsFile> {
        Ok(TlsFile {
            path: self.path()?,
            source: self.doc.file.to_string(),
            line: Some(self.doc.line(self.v.span().start)),
            key: self.key.clone(),
        })
    }

    /// A table of string values (`{ MODE = "prod" }`), in file order.
    pub(super) fn string_table(&self) -> Res<Vec<(String, String)>> {
        let DeValue::Table(table) = self.v.get_ref() else {
            return Err(self.type_err("a table of strings, e.g. { MODE = \"prod\" }"));
        };
        let mut entries = Vec::new();
        for (k, v) in in_order(table) {
            let DeValue::String(s) = v.get_ref() else {
                let at = self.doc.at(format!("{}.{}", self.key, k.get_ref()), v);
                return Err(at.type_err("a string"));
            };
            entries.push((k.get_ref().to_string(), s.to_string()));
        }
        Ok(entries)
    }

    /// A string, or an array of strings; each with its span.
    pub(super) fn strings(&self) -> Res<Vec<(&'v str, Range<usize>)>> {
        match self.v.get_ref() {
            DeValue::String(s) => Ok(vec![(s.as_ref(), self.v.span())]),
            DeValue::Array(items) => items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::String(s) => Ok((s.as_ref(), item.span())),
                    _ => Err(self
                        .doc
                        .at(self.key.clone(), item)
                        .type_err("strings in the array")),
                })
                .collect(),
            _ => Err(self.type_err("a string or an array of strings")),
        }
    }

    /// A non-negative integer (`None` when the value is not an integer at all).
    pub(super) fn uint(&self) -> Res<Option<u64>> {
        let DeValue::Integer(i) = self.v.get_ref() else {
            return Ok(None);
        };
        if i.as_str().starts_with('-') {
            return Err(self.err("must not be negative"));
        }
        let n = u64::from_str_radix(i.as_str(), i.radix()).map_err(|_| self.err("is too large"))?;
        Ok(Some(n))
    }

    pub(super) fn count(&self) -> Res<usize> {
        let negative =
            matches!(self.v.get_ref(), DeValue::Integer(i) if i.as_str().starts_with('-'));
        match if negative { Some(0) } else { self.uint()? } {
            Some(0) => Err(self.err("must be at least 1")),
            Some(n) => usize::try_from(n).map_err(|_| self.err("is too large")),
            None => Err(self.type_err("a whole number")),
        }
    }

    /// A size string (`"10MiB"`) or a number of bytes.
    pub(super) fn size(&self) -> Res<u64> {
        if let Some(n) = self.uint()? {
            return Ok(n);
        }
        match self.v.get_ref() {
            DeValue::String(s) => parse_size(s).map_err(|m| self.err(m)),
            _ => Err(self.type_err("a size such as \"10MiB\" or a number of bytes")),
        }
    }

    /// A duration string (`"2s"`, `"250ms"`) or a number of seconds (integer or float).
    pub(super) fn duration(&self) -> Res<Duration> {
        if let Some(n) = self.uint()? {
            return Ok(Duration::from_secs(n));
        }
        let text = match self.v.get_ref() {
            DeValue::String(s) => s.as_ref(),
            DeValue::Float(f) => f.as_str(),
            _ => return Err(self.type_err("a duration such as \"2s\" or \"250ms\"")),
        };
        parse_duration(text).map_err(|m| self.err(m))
    }
}

/// A table's entries in file order (the parsed map is sorted by name).
pub(super) fn in_order<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Key<'i>, &'t Value<'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

/// The known key closest to `name`, if it is a plausible typo (edit distance <= 2).
fn suggest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    };
    let best = known
        .iter()
        .map(|k| (distance(name, k), *k))
        .min_by_key(|(d, _)| *d);
    best.filter(|(d, _)| *d <= 2).map(|(_, k)| k)
}
