//! `wsrun.toml`'s `[route.shadow]` and `[route.canary]` sub-tables (also under
//! `[[tenant.route]]`).
//!
//! Owns: which keys each takes, their checks (one target, an existing file, `sample` in 0..1,
//! `percent` in 0..100, a `sticky` spec, JSON paths in `ignore`, methods), and the rule that a
//! static route takes neither. Every error names the file, line and dotted key
//! (`route[2].shadow.sample`). Must not touch: the route's own keys (`toml_routes`, which
//! hands the sub-tables here in one line) or anything at run time.

use std::ops::Range;

use toml::de::DeValue;

use super::migrate::{
    JsonPath, Sticky, DEFAULT_ROLLBACK_WINDOW, DEFAULT_SHADOW_IN_FLIGHT, DEFAULT_SHADOW_MAX_BODY,
    DEFAULT_SHADOW_TIMEOUT, MAX_ROLLBACK_WINDOW,
};
use super::route::{CanaryConfig, MigrateConfig, RouteTarget, ShadowConfig};
use super::toml_values::{in_order, At, Doc, Key, Res};
use super::units::parse_python_target;

const SHADOW_KEYS: &[&str] = &[
    "wasm",
    "python",
    "methods",
    "sample",
    "ignore",
    "timeout",
    "max_in_flight",
    "max_body",
];
const CANARY_KEYS: &[&str] = &[
    "wasm",
    "python",
    "percent",
    "sticky",
    "rollback_5xx_rate",
    "rollback_window",
];
/// Mirrored when `methods` is not given: the safe ones.
const SAFE_METHODS: &[&str] = &["GET", "HEAD", "OPTIONS"];

/// A route's migration tables while its other keys are still being read.
#[derive(Default)]
pub(super) struct MigrateDraft {
    config: MigrateConfig,
    /// The first sub-table's key and span (for "not on a static route").
    first: Option<(String, Range<usize>)>,
}

impl MigrateDraft {
    /// Reads `[route.shadow]` or `[route.canary]` (`name`) at `at`; `tenant`: a tenant route.
    pub(super) fn read(&mut self, at: &At, k: &Key, name: &str, tenant: bool) -> Res<()> {
        self.first.get_or_insert((at.key.clone(), k.span()));
        if name == "shadow" {
            self.config.shadow = Some(Box::new(shadow(at, tenant)?));
        } else {
            self.config.canary = Some(Box::new(canary(at, tenant)?));
        }
        Ok(())
    }

    /// The tables, once the route's own target is known: none on a static route.
    pub(super) fn finish(self, doc: &Doc, target: &RouteTarget) -> Res<MigrateConfig> {
        if let (Some((key, span)), RouteTarget::Static { .. }) = (self.first, target) {
            let msg =
                "applies to python and wasm routes only (a static route has nothing to migrate)";
            return Err(doc.err(span, &key, msg));
        }
        Ok(self.config)
    }
}

/// Each entry of a sub-table, with its dotted name.
fn entries<'a, 'v, 'i>(at: &At<'a, 'v, 'i>) -> Res<Vec<(&'v Key<'i>, At<'a, 'v, 'i>)>> {
    let DeValue::Table(table) = at.v.get_ref() else {
        return Err(at.type_err("a table"));
    };
    Ok(in_order(table)
        .into_iter()
        .map(|(k, v)| {
            let name: &str = k.get_ref();
            (k, at.doc.at(format!("{}.{name}", at.key), v))
        })
        .collect())
}

/// `wasm = "file"` or `python = "module:attr"` (not on a tenant route).
fn target(
    at: &At,
    k: &Key,
    name: &str,
    tenant: bool,
    seen: &Option<RouteTarget>,
) -> Res<RouteTarget> {
    if seen.is_some() {
        return Err(at.err_at(k.span(), "takes exactly one of `wasm` or `python`"));
    }
    if name == "python" {
        if tenant {
            let msg = "tenant routes run untrusted code: use `wasm`, not `python`";
            return Err(at.err_at(k.span(), msg));
        }
        return parse_python_target(at.string()?).map_err(|m| at.err(m));
    }
    Ok(RouteTarget::Wasm { file: at.file()? })
}

fn needs_target(at: &At, t: Option<RouteTarget>) -> Res<RouteTarget> {
    t.ok_or_else(|| at.err("needs a handler: wasm = \"file.wasm\" or python = \"module:app\""))
}

fn shadow(at: &At, tenant: bool) -> Res<ShadowConfig> {
    let mut t = None;
    let mut s = ShadowConfig {
        target: RouteTarget::ScriptPath { index: 0 },
        methods: SAFE_METHODS.iter().map(|m| m.to_string()).collect(),
        sample: 1.0,
        ignore_paths: Vec::new(),
        ignore_headers: Vec::new(),
        timeout: DEFAULT_SHADOW_TIMEOUT,
        max_in_flight: DEFAULT_SHADOW_IN_FLIGHT,
        max_body: DEFAULT_SHADOW_MAX_BODY,
    };
    for (k, e) in entries(at)? {
        let name: &str = k.get_ref();
        match name {
            "wasm" | "python" => t = Some(target(&e, k, name, tenant, &t)?),
            "methods" => s.methods = methods(&e)?,
            "sample" => s.sample = fraction(&e, 1.0)?,
            "ignore" => ignore(&e, &mut s)?,
            "timeout" => {
                s.timeout = e.duration()?;
                if s.timeout.is_zero() {
                    return Err(e.err("must be more than zero"));
                }
            }
            "max_in_flight" => s.max_in_flight = e.count()?,
            "max_body" => s.max_body = e.size()?,
            _ => return Err(e.unknown(k, SHADOW_KEYS, &[])),
        }
    }
    s.target = needs_target(at, t)?;
    Ok(s)
}

fn canary(at: &At, tenant: bool) -> Res<CanaryConfig> {
    let mut t = None;
    let mut c = CanaryConfig {
        target: RouteTarget::ScriptPath { index: 0 },
        percent: 0.0,
        sticky: None,
        rollback_5xx_rate: None,
        rollback_window: DEFAULT_ROLLBACK_WINDOW,
    };
    let mut percent = None;
    for (k, e) in entries(at)? {
        let name: &str = k.get_ref();
        match name {
            "wasm" | "python" => t = Some(target(&e, k, name, tenant, &t)?),
            "percent" => percent = Some(fraction(&e, 100.0)?),
            "sticky" => c.sticky = Some(Sticky::parse(e.string()?).map_err(|m| e.err(m))?),
            "rollback_5xx_rate" => c.rollback_5xx_rate = Some(fraction(&e, 1.0)?),
            "rollback_window" => {
                c.rollback_window = e.count()?;
                if c.rollback_window > MAX_ROLLBACK_WINDOW {
                    return Err(e.err(format!("must be at most {MAX_ROLLBACK_WINDOW}")));
                }
            }
            _ => return Err(e.unknown(k, CANARY_KEYS, &[])),
        }
    }
    c.target = needs_target(at, t)?;
    c.percent = percent.ok_or_else(|| at.err("needs `percent`, e.g. percent = 10"))?;
    Ok(c)
}

/// A number (integer or float) in `0..=max`.
fn fraction(at: &At, max: f64) -> Res<f64> {
    let n = match at.v.get_ref() {
        DeValue::Integer(i) => i.as_str().parse::<f64>().ok(),
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
        _ => return Err(at.type_err("a number")),
    };
    match n {
        Some(n) if (0.0..=max).contains(&n) => Ok(n),
        _ => Err(at.err(format!("must be between 0 and {max}"))),
    }
}

fn methods(at: &At) -> Res<Vec<String>> {
    let mut out = Vec::new();
    for (m, span) in at.strings()? {
        let upper = m.trim().to_ascii_uppercase();
        if upper.is_empty() || !upper.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(at.err_at(span, format!("`{m}` is not an HTTP method")));
        }
        if !out.contains(&upper) {
            out.push(upper);
        }
    }
    Ok(out)
}

/// `ignore`: JSON paths (`$.a`) and headers (`header:NAME`).
fn ignore(at: &At, s: &mut ShadowConfig) -> Res<()> {
    for (item, span) in at.strings()? {
        if let Some(name) = item.strip_prefix("header:") {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(at.err_at(span, format!("`{item}` names no header")));
            }
            s.ignore_headers.push(name);
        } else {
            let path = JsonPath::parse(item)
                .map_err(|m| at.err_at(span, format!("{m}, or header:NAME for a header")))?;
            s.ignore_paths.push(path);
        }
    }
    Ok(())
}
