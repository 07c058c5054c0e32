//! The value grammars of `[route.shadow]` and `[route.canary]`, and their defaults.
//!
//! Owns: `Sticky` (`cookie:NAME` / `header:NAME`), the JSON-path grammar of `ignore`
//! (`JsonPath`: `$`, `.key`, `[N]`, `[*]`, `['key']`) and the default budgets. The tables
//! themselves (`MigrateConfig`, `ShadowConfig`, `CanaryConfig`) are in `route`. Must not touch:
//! reading TOML (`toml_migrate`) or anything at run time (`crate::migrate`); a leaf.

use std::time::Duration;

/// How long a shadow may take before it counts as failed, unless `timeout` says otherwise.
pub const DEFAULT_SHADOW_TIMEOUT: Duration = Duration::from_secs(5);
/// Shadow requests one worker runs at once before it skips new ones.
pub const DEFAULT_SHADOW_IN_FLIGHT: usize = 32;
/// The largest request or primary response body a shadow copies; beyond it the request is
/// skipped (counted).
pub const DEFAULT_SHADOW_MAX_BODY: u64 = 1024 * 1024;
/// Canary requests the rollback rule looks back over.
pub const DEFAULT_ROLLBACK_WINDOW: usize = 200;
/// The largest `rollback_window` (its ring lives in shared memory).
pub const MAX_ROLLBACK_WINDOW: usize = 100_000;

/// Where a client's stable identity is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sticky {
    Cookie(String),
    /// A lower-case header name.
    Header(String),
}

impl Sticky {
    /// `cookie:NAME` or `header:NAME`.
    pub fn parse(spec: &str) -> Result<Sticky, String> {
        let bad = || format!("`{spec}` is not `cookie:NAME` or `header:NAME`");
        let (kind, name) = spec.split_once(':').ok_or_else(bad)?;
        let name = name.trim();
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(bad());
        }
        match kind.trim() {
            "cookie" => Ok(Sticky::Cookie(name.to_string())),
            "header" => Ok(Sticky::Header(name.to_ascii_lowercase())),
            _ => Err(bad()),
        }
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
    /// `[*]`: every element of an array (or value of an object).
    Any,
}

/// A JSON path such as `$.items[*].id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(pub Vec<Step>);

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let bad =
            |why: &str| format!("`{text}` is not a JSON path ({why}); e.g. \"$.items[*].id\"");
        let mut rest = text
            .strip_prefix('$')
            .ok_or_else(|| bad("start with `$`"))?;
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let key = &after[..end];
                if key.is_empty() {
                    return Err(bad("empty key"));
                }
                steps.push(if key == "*" {
                    Step::Any
                } else {
                    Step::Key(key.to_string())
                });
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').ok_or_else(|| bad("unclosed `[`"))?;
                let inner = &after[..end];
                steps.push(bracket(inner).ok_or_else(|| bad("use [N], [*] or ['key']"))?);
                rest = &after[end + 1..];
            } else {
                return Err(bad("expected `.` or `[`"));
            }
        }
        Ok(JsonPath(steps))
    }
}

fn bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::Any);
    }
    if let Ok(n) = inner.parse::<usize>() {
        return Some(Step::Index(n));
    }
    let quoted = inner
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))?;
    Some(Step::Key(quoted.to_string()))
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("$")?;
        for step in &self.0 {
            match step {
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(i) => write!(f, "[{i}]")?,
                Step::Any => f.write_str("[*]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_parse_and_print() {
        for ok in ["$", "$.a.b", "$.items[*].id", "$[0]", "$['x y'][2]"] {
            assert!(JsonPath::parse(ok).is_ok(), "{ok}");
        }
        let p = JsonPath::parse("$.items[*].id").expect("parses");
        assert_eq!(p.to_string(), "$.items[*].id");
        for bad in ["a.b", "$..a", "$[x", "$[x]", "$a"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sticky_specs() {
        assert_eq!(
            Sticky::parse("cookie:session"),
            Ok(Sticky::Cookie("session".into()))
        );
        assert_eq!(
            Sticky::parse("header:X-User"),
            Ok(Sticky::Header("x-user".into()))
        );
        assert!(Sticky::parse("query:x").is_err());
        assert!(Sticky::parse("cookie:").is_err());
        assert!(Sticky::parse("session").is_err());
    }
}
