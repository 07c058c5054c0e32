//! `wsrun.toml`'s route tables: `[[route]]` and `[[tenant]]` with its `[[tenant.route]]`s.
//!
//! Owns: which keys a route or tenant table takes, the one-target rule (`python`, `static` or
//! `wasm`), the static keys (`STATIC_KEYS`, on static routes only), the WASM keys (`WASM_KEYS`: limits, capabilities, quotas; allowed on wasm routes
//! and tenants only; `TENANT_ONLY_KEYS` on tenants only), duplicate prefixes, and tenant host
//! ownership (a host belongs to one tenant and no plain route). Must not touch: `[server]`
//! (`toml_file`) or
//! the typed readers (`toml_values`). Routes are named `route[N]`, tenant routes
//! `tenant[T].route[N]`, both counted from 1 in file order.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::model::Config;
use super::route::{RouteConfig, RouteTarget, StaticOptions, TenantConfig};
use super::setting_kinds::Switch;
use super::settings::Setting;
use super::toml_migrate::MigrateDraft;
use super::toml_values::{in_order, At, Doc, Key, Res, Value};
use super::units::{normalize_host, normalize_prefix, parse_python_target};
use super::wasm_settings::WasmSettings;
use super::wasm_settings::{
    check_env_name, parse_origin, MAX_MEMORY, MAX_REQUESTS_PER_INSTANCE, MAX_RESOURCES,
};

/// A route table's own keys; a wasm route also takes `WASM_KEYS`.
const ROUTE_KEYS: &[&str] = &[
    "prefix",
    "hosts",
    "python",
    "static",
    "wasm",
    "max_body_size",
    "compress",
    "shadow",
    "canary",
];
/// A static route's own keys.
const STATIC_KEYS: &[&str] = &["max_age", "precompressed", "listing", "hidden"];
/// The WASM keys: limits, capabilities, quotas; on wasm routes and tenants only.
const WASM_KEYS: &[&str] = &[
    "memory",
    "timeout",
    "max_concurrency",
    "allow_outbound",
    "env",
    "max_resources",
    "max_jobs",
    "max_job_bytes",
    "max_timers",
    "min_timer_period",
    "max_attempts",
    "cpu_time",
    "log_bytes",
    "log_lines",
    "log_rate",
    "outbound_per_request",
    "max_outbound",
    "connect_timeout",
    "requests_per_instance",
];
/// The job and timer quotas: a tenant's (on `[[tenant]]`, not its routes) or a plain route's.
const QUOTA_KEYS: &[&str] = &[
    "max_jobs",
    "max_job_bytes",
    "max_timers",
    "min_timer_period",
    "max_attempts",
];
/// WASM keys a `[[tenant]]` takes and its routes do not (tenant-wide budgets).
const TENANT_ONLY_KEYS: &[&str] = &["memory_total"];
/// A tenant table's own keys; it also takes `WASM_KEYS` and `TENANT_ONLY_KEYS`.
const TENANT_KEYS: &[&str] = &["name", "hosts", "route", "tls_cert", "tls_key"];

/// Every key of a table made of these groups, for an unknown-key message.
fn known(groups: &[&[&'static str]]) -> Vec<&'static str> {
    groups.concat()
}

/// Where a route table sits: top level, or inside tenant `index`.
struct RouteScope<'a> {
    /// `route` or `tenant[T].route`.
    name: String,
    tenant: Option<(usize, &'a [String])>,
}

impl Doc<'_> {
    /// `[[route]]`: returns the line of the first route at `/` (for any hosts), if there is one.
    pub(super) fn routes(&self, k: &Key, value: &Value, config: &mut Config) -> Res<Option<usize>> {
        let scope = RouteScope {
            name: "route".to_string(),
            tenant: None,
        };
        let first = config.routes.len();
        let spans = self.route_array(k, value, &scope, &mut config.routes)?;
        let root = config.routes[first..].iter().position(|r| r.prefix == "/");
        Ok(root.map(|i| self.line(spans[i].start)))
    }

    /// An array of route tables in `scope`, appended to `routes`; returns each prefix's span.
    fn route_array(
        &self,
        k: &Key,
        value: &Value,
        scope: &RouteScope,
        routes: &mut Vec<RouteConfig>,
    ) -> Res<Vec<Range<usize>>> {
        let items = match value.get_ref() {
            DeValue::Array(items) => items,
            DeValue::Table(_) => {
                let msg = format!(
                    "write routes as [[{0}]] (an array of tables), not [{0}]",
                    scope.name
                );
                return Err(self.err(k.span(), &scope.name, msg));
            }
            _ => {
                return Err(self
                    .at(scope.name.clone(), value)
                    .type_err("[[route]] tables"))
            }
        };
        let mut spans: Vec<Range<usize>> = Vec::new();
        let first = routes.len();
        for (i, item) in items.iter().enumerate() {
            let n = i + 1;
            let DeValue::Table(table) = item.get_ref() else {
                return Err(self
                    .at(format!("{}[{n}]", scope.name), item)
                    .type_err("a table"));
            };
            let (route, span) = self.route(n, item.span(), table, scope)?;
            for (j, old) in routes[first..].iter().enumerate() {
                // Same prefix, and either both for any host or for at least one common host.
                let clash = old.prefix == route.prefix
                    && old.hosts.is_empty() == route.hosts.is_empty()
                    && (old.hosts.is_empty() || route.hosts.iter().any(|h| old.hosts.contains(h)));
                if clash {
                    let (p, line) = (&route.prefix, self.line(spans[j].start));
                    let msg = format!(
                        "duplicate route: `{p}` for the same host(s) is already {}[{}] (line {line})",
                        scope.name,
                        j + 1
                    );
                    return Err(self.err(span, &format!("{}[{n}].prefix", scope.name), msg));
                }
            }
            routes.push(route);
            spans.push(span);
        }
        Ok(spans)
    }

    /// One route table; also returns its prefix's span.
    fn route(
        &self,
        n: usize,
        at_header: Range<usize>,
        table: &DeTable,
        scope: &RouteScope,
    ) -> Res<(RouteConfig, Range<usize>)> {
        let name_n = format!("{}[{n}]", scope.name);
        let mut prefix = None;
        let mut hosts: Vec<String> = scope.tenant.map(|(_, h)| h.to_vec()).unwrap_or_default();
        let mut target: Option<(RouteTarget, &str)> = None;
        let mut max_body_size = None;
        let mut wasm = WasmSettings::default();
        let mut first_wasm_key: Option<(String, Range<usize>)> = None;
        let mut static_options = StaticOptions::default();
        let mut first_static_key: Option<(String, Range<usize>)> = None;
        let mut compress = true;
        let mut migrate = MigrateDraft::default();
        for (k, v) in in_order(table) {
            let name: &str = k.get_ref();
            let at = self.at(format!("{name_n}.{name}"), v);
            match name {
                "prefix" => {
                    let p = normalize_prefix(at.string()?).map_err(|m| at.err(m))?;
                    prefix = Some((p, v.span()));
                }
                "hosts" if scope.tenant.is_some() => {
                    let msg =
                        "a tenant route answers the tenant's hosts; set `hosts` on the [[tenant]]";
                    return Err(at.err_at(k.span(), msg));
                }
                "hosts" => hosts = self.hosts(&at)?,
                "python" | "static" | "wasm" => {
                    if let Some((_, other)) = &target {
                        let msg = format!("a route takes exactly one of `python`, `static` or `wasm`, and `{other}` is already set");
                        return Err(at.err_at(k.span(), msg));
                    }
                    let t = match name {
                        "python" if scope.tenant.is_some() => {
                            let msg = "tenant routes run untrusted code: use `wasm` (or `static`), not `python`";
                            return Err(at.err_at(k.span(), msg));
                        }
                        "python" => parse_python_target(at.string()?).map_err(|m| at.err(m))?,
                        "static" => RouteTarget::Static { root: at.dir()? },
                        _ => RouteTarget::Wasm { file: at.file()? },
                    };
                    target = Some((t, name));
                }
                "max_body_size" => max_body_size = Some(at.size()?),
                "compress" => compress = Switch::from_toml(&at)?,
                "shadow" | "canary" => migrate.read(&at, k, name, scope.tenant.is_some())?,
                _ if STATIC_KEYS.contains(&name) => {
                    static_key(&at, name, &mut static_options)?;
                    first_static_key.get_or_insert((at.key.clone(), k.span()));
                }
                _ if QUOTA_KEYS.contains(&name) && scope.tenant.is_some() => {
                    let msg = "a tenant's job and timer quotas are set on its [[tenant]] table";
                    return Err(at.err_at(k.span(), msg));
                }
                _ if WASM_KEYS.contains(&name) => {
                    wasm_key(&at, name, &mut wasm)?;
                    first_wasm_key.get_or_insert((at.key.clone(), k.span()));
                }
                _ => {
                    let keys = known(&[ROUTE_KEYS, STATIC_KEYS, WASM_KEYS]);
                    return Err(at.unknown(k, &keys, &[]));
                }
            }
        }
        let Some((prefix, span)) = prefix else {
            let msg = "is required, e.g. prefix = \"/\"";
            return Err(self.err(at_header, &format!("{name_n}.prefix"), msg));
        };
        let Some((target, _)) = target else {
            let msg =
                "needs a target: python = \"module:app\", static = \"dir\" or wasm = \"file.wasm\"";
            return Err(self.err(at_header, &name_n, msg));
        };
        if let Some((key, key_span)) = first_wasm_key {
            if !matches!(target, RouteTarget::Wasm { .. }) {
                let msg = "applies to wasm routes only";
                return Err(self.err(key_span, &key, msg));
            }
        }
        if let Some((key, key_span)) = first_static_key {
            if !matches!(target, RouteTarget::Static { .. }) {
                let msg = "applies to static routes only";
                return Err(self.err(key_span, &key, msg));
            }
        }
        let mut route = RouteConfig::new(prefix, hosts, target);
        route.max_body_size = max_body_size;
        route.static_options = static_options;
        route.compress = compress;
        route.wasm = wasm;
        route.tenant = scope.tenant.map(|(i, _)| i);
        route.migrate = migrate.finish(self, &route.target)?;
        Ok((route, span))
    }

    fn hosts(&self, at: &At) -> Res<Vec<String>> {
        let items = at.strings()?;
        if items.is_empty() {
            return Err(at.err("is empty; omit `hosts` to match any host"));
        }
        let mut hosts = Vec::new();
        for (s, span) in items {
            let h = normalize_host(s).map_err(|m| at.err_at(span, m))?;
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        Ok(hosts)
    }

    /// `[[tenant]]` tables: each owns its hosts, sets default limits, lists its routes.
    pub(super) fn tenants(&self, k: &Key, value: &Value, config: &mut Config) -> Res<()> {
        let DeValue::Array(items) = value.get_ref() else {
            let msg = "write tenants as [[tenant]] (an array of tables)";
            return Err(self.err(k.span(), "tenant", msg));
        };
        for item in items {
            let t = config.tenants.len() + 1;
            let DeValue::Table(table) = item.get_ref() else {
                return Err(self.at(format!("tenant[{t}]"), item).type_err("a table"));
            };
            self.tenant(t, item.span(), table, config)?;
        }
        Ok(())
    }

    fn tenant(
        &self,
        t: usize,
        header: Range<usize>,
        table: &DeTable,
        config: &mut Config,
    ) -> Res<()> {
        let mut name = None;
        let mut hosts = Vec::new();
        let mut defaults = WasmSettings::default();
        let mut routes_entry = None;
        let (mut tls_cert, mut tls_key) = (None, None);
        for (k, v) in in_order(table) {
            let key: &str = k.get_ref();
            let at = self.at(format!("tenant[{t}].{key}"), v);
            match key {
                "name" => name = Some(self.tenant_name(&at, config)?),
                "hosts" => hosts = self.tenant_hosts(&at, config)?,
                "route" => routes_entry = Some((k, v)),
                "tls_cert" => tls_cert = Some(at.tls_file()?),
                "tls_key" => tls_key = Some(at.tls_file()?),
                _ if WASM_KEYS.contains(&key) || TENANT_ONLY_KEYS.contains(&key) => {
                    wasm_key(&at, key, &mut defaults)?
                }
                _ => {
                    let keys = known(&[TENANT_KEYS, WASM_KEYS, TENANT_ONLY_KEYS]);
                    return Err(at.unknown(k, &keys, &[]));
                }
            }
        }
        let Some(name) = name else {
            return Err(self.err(header, &format!("tenant[{t}].name"), "is required"));
        };
        if hosts.is_empty() {
            let msg = "is required: the Host names this tenant answers";
            return Err(self.err(header, &format!("tenant[{t}].hosts"), msg));
        }
        let Some((k, v)) = routes_entry else {
            let msg = "declares no [[tenant.route]]";
            return Err(self.err(header, &format!("tenant[{t}]"), msg));
        };
        let index = config.tenants.len();
        let scope = RouteScope {
            name: format!("tenant[{t}].route"),
            tenant: Some((index, &hosts)),
        };
        self.route_array(k, v, &scope, &mut config.routes)?;
        config.tenants.push(TenantConfig {
            name,
            hosts,
            defaults,
            tls_cert,
            tls_key,
        });
        Ok(())
    }

    fn tenant_name(&self, at: &At, config: &Config) -> Res<String> {
        let name = at.string()?.trim();
        if name.is_empty() {
            return Err(at.err("is empty"));
        }
        // The name is part of the tenant's timer keys and log lines: no `/` or spaces.
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if let Some(bad) = name.chars().find(|&c| !allowed(c)) {
            return Err(at.err(format!(
                "tenant name `{name}` has {bad:?}: use letters, digits, `.`, `_` and `-` only"
            )));
        }
        if config.tenants.iter().any(|t| t.name == name) {
            return Err(at.err(format!("tenant `{name}` is declared twice")));
        }
        Ok(name.to_string())
    }

    /// A tenant's hosts: none may be another tenant's or listed by a plain route.
    fn tenant_hosts(&self, at: &At, config: &Config) -> Res<Vec<String>> {
        let hosts = self.hosts(at)?;
        for host in &hosts {
            if let Some(other) = config.tenants.iter().find(|t| t.hosts.contains(host)) {
                let msg = format!("host `{host}` already belongs to tenant `{}`", other.name);
                return Err(at.err(msg));
            }
            let plain = config
                .routes
                .iter()
                .any(|r| r.tenant.is_none() && r.hosts.contains(host));
            if plain {
                let msg = format!(
                    "host `{host}` is already listed by a [[route]]; a tenant's hosts are its own"
                );
                return Err(at.err(msg));
            }
        }
        Ok(hosts)
    }
}

/// Reads one of `STATIC_KEYS` into `options`.
fn static_key(at: &At, name: &str, options: &mut StaticOptions) -> Res<()> {
    match name {
        "max_age" => options.max_age = Some(at.duration()?.as_secs()),
        "precompressed" => options.precompressed = Switch::from_toml(at)?,
        "listing" => options.listing = Switch::from_toml(at)?,
        _ => options.hidden = Switch::from_toml(at)?,
    }
    Ok(())
}

/// Reads one WASM key into `settings`.
fn wasm_key(at: &At, name: &str, settings: &mut WasmSettings) -> Res<()> {
    match name {
        "allow_outbound" | "outbound_per_request" | "max_outbound" | "connect_timeout" => {
            outbound_key(at, name, settings)
        }
        "log_bytes" | "log_lines" | "log_rate" => log_key(at, name, settings),
        "env" => env_key(at, settings),
        _ if QUOTA_KEYS.contains(&name) => quota_key(at, name, settings),
        _ => instance_key(at, name, settings),
    }
}

/// `memory`, `timeout`, `max_concurrency`, `memory_total`, `max_resources`,
/// `requests_per_instance`, `cpu_time`.
fn instance_key(at: &At, name: &str, settings: &mut WasmSettings) -> Res<()> {
    match name {
        "memory" => {
            let bytes = at.size()?;
            if !(64 * 1024..=MAX_MEMORY).contains(&bytes) {
                return Err(at.err("must be between 64KiB and 4GiB"));
            }
            settings.memory = Some(bytes);
        }
        "timeout" => settings.timeout = Some(nonzero_duration(at)?),
        "max_concurrency" => settings.max_concurrency = Some(at.count()?),
        "memory_total" => {
            let bytes = at.size()?;
            if bytes < 64 * 1024 {
                return Err(at.err("must be at least 64KiB"));
            }
            settings.memory_total = Some(bytes);
        }
        "max_resources" => {
            let n = at.count()?;
            if !(16..=MAX_RESOURCES).contains(&n) {
                return Err(at.err(format!("must be between 16 and {MAX_RESOURCES}")));
            }
            settings.max_resources = Some(n);
        }
        "requests_per_instance" => {
            let n = at.count()?;
            let n = u32::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_REQUESTS_PER_INSTANCE).contains(n))
                .ok_or_else(|| {
                    at.err(format!("must be between 1 and {MAX_REQUESTS_PER_INSTANCE}"))
                })?;
            settings.requests_per_instance = Some(n);
        }
        _ => settings.cpu_time = Some(nonzero_duration(at)?),
    }
    Ok(())
}

/// `allow_outbound`, `outbound_per_request`, `max_outbound`, `connect_timeout`.
fn outbound_key(at: &At, name: &str, settings: &mut WasmSettings) -> Res<()> {
    match name {
        "outbound_per_request" => settings.outbound_per_request = Some(at.count()?),
        "max_outbound" => settings.max_outbound = Some(at.count()?),
        "connect_timeout" => settings.connect_timeout = Some(nonzero_duration(at)?),
        _ => {
            let mut origins = Vec::new();
            for (s, span) in at.strings()? {
                origins.push(parse_origin(s).map_err(|m| at.err_at(span, m))?);
            }
            settings.allow_outbound = Some(origins);
        }
    }
    Ok(())
}

/// The job and timer quotas (`QUOTA_KEYS`).
fn quota_key(at: &At, name: &str, settings: &mut WasmSettings) -> Res<()> {
    match name {
        "max_jobs" => settings.max_jobs = Some(at.count()? as u64),
        "max_job_bytes" => {
            let bytes = at.size()?;
            if bytes == 0 {
                return Err(at.err("must be more than zero"));
            }
            settings.max_job_bytes = Some(bytes);
        }
        "max_timers" => settings.max_timers = Some(at.count()? as u64),
        "min_timer_period" => settings.min_timer_period = Some(at.duration()?),
        _ => {
            let max = u32::try_from(at.count()?).map_err(|_| at.err("is too large"))?;
            settings.max_attempts = Some(max);
        }
    }
    Ok(())
}

/// `log_bytes`, `log_lines`, `log_rate`.
fn log_key(at: &At, name: &str, settings: &mut WasmSettings) -> Res<()> {
    match name {
        "log_bytes" => settings.log_bytes = Some(at.size()?),
        "log_lines" => settings.log_lines = Some(at.count()? as u64),
        _ => settings.log_rate = Some(at.count()? as u64),
    }
    Ok(())
}

/// `env`: the guest's whole environment.
fn env_key(at: &At, settings: &mut WasmSettings) -> Res<()> {
    let mut env = Vec::new();
    for (key, value) in at.string_table()? {
        check_env_name(&key).map_err(|m| at.err(m))?;
        env.push((key, value));
    }
    settings.env = Some(env);
    Ok(())
}

/// A duration that must be more than zero.
fn nonzero_duration(at: &At) -> Res<std::time::Duration> {
    let duration = at.duration()?;
    if duration.is_zero() {
        return Err(at.err("must be more than zero"));
    }
    Ok(duration)
}
