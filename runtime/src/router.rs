//! The router: (Host, path) -> the route that serves it.
//!
//! Owns: matching. A request's Host picks a group first — routes that list that host (exactly,
//! or through a `*.example.com` wildcard) own it completely, like an nginx server block; a host
//! no route lists falls to the routes without `hosts`. Within the group the longest prefix that
//! ends on a segment boundary wins: `/api` matches `/api` and `/api/x`, never `/apix`.
//! `serves` is the one answer to "is this (host, path as a caller writes it) routed?" for
//! start-up checks, timers and jobs: it decodes the path as a request's is (`http_path`).
//! Each route carries its metrics label slot (`label_routes` fills it once, when built).
//! Must not touch: what a handler is or does — the router is generic over it.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use crate::http_path::route_path;

/// One routable entry.
#[derive(Debug)]
pub struct Route<H> {
    /// Normalised prefix: `/` or `/seg/seg` (no trailing slash).
    pub prefix: String,
    pub handler: H,
    pub max_body_size: u64,
    /// Responses may be compressed (`compress = false` turns it off for the route).
    pub compress: bool,
    /// The `[[tenant]]` the route belongs to, by name (for logs).
    pub tenant: Option<String>,
    /// The route's (prefix, tenant) label slot in the metrics segment, resolved once when
    /// the route is built (`0`: the `(other)` slot, also used when metrics are off).
    pub metrics_slot: AtomicU16,
}

impl<H> Route<H> {
    /// The WSGI `SCRIPT_NAME` for this route: the prefix, or `""` for the root.
    pub fn script_name(&self) -> &str {
        if self.prefix == "/" {
            ""
        } else {
            &self.prefix
        }
    }

    /// Its metrics label slot (see `metrics_slot`).
    pub fn metrics_slot(&self) -> u16 {
        self.metrics_slot.load(Ordering::Relaxed)
    }
}

/// A match: the route and where `PATH_INFO` starts in the (decoded) path.
pub struct Matched<'r, H> {
    pub route: &'r Route<H>,
    pub path_info_start: usize,
}

#[derive(Debug)]
pub(crate) enum HostPattern {
    Exact(String),
    /// `*.example.com` stored as `.example.com`.
    Suffix(String),
}

impl HostPattern {
    pub(crate) fn parse(host: &str) -> HostPattern {
        let host = host.to_ascii_lowercase();
        match host.strip_prefix('*') {
            Some(suffix) => HostPattern::Suffix(suffix.to_string()),
            None => HostPattern::Exact(host),
        }
    }

    pub(crate) fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => name.eq_ignore_ascii_case(host),
            HostPattern::Suffix(suffix) => {
                host.len() > suffix.len()
                    && host.as_bytes()[host.len() - suffix.len()..]
                        .eq_ignore_ascii_case(suffix.as_bytes())
            }
        }
    }
}

struct HostGroup<H> {
    patterns: Vec<HostPattern>,
    routes: Vec<Arc<Route<H>>>,
}

/// `(hosts, route)`: the routes a router is built from; empty `hosts` means any host.
pub type Entry<H> = (Vec<String>, Arc<Route<H>>);

/// All routes of a server, ready for matching.
pub struct Router<H> {
    host_groups: Vec<HostGroup<H>>,
    any_host: Vec<Arc<Route<H>>>,
    /// What it was built from, in order (for `rebuilt`).
    entries: Vec<Entry<H>>,
}

impl<H> Router<H> {
    /// Builds a router from `(hosts, route)` pairs; an empty `hosts` means any host.
    pub fn new(entries: Vec<(Vec<String>, Route<H>)>) -> Router<H> {
        let entries = entries
            .into_iter()
            .map(|(hosts, route)| (hosts, Arc::new(route)))
            .collect();
        Router::from_entries(entries)
    }

    /// A new router from this one's entries after `change` (for routes added and removed at
    /// run time); routes keep their identity, so requests holding one are unaffected.
    pub fn rebuilt(&self, change: impl FnOnce(&mut Vec<Entry<H>>)) -> Router<H> {
        let mut entries = self.entries.clone();
        change(&mut entries);
        Router::from_entries(entries)
    }

    /// The same table without handlers: enough to answer "is this path routed?" from any
    /// thread (the handlers themselves stay with the worker).
    pub fn shape(&self) -> Router<()> {
        let entries = self
            .entries
            .iter()
            .map(|(hosts, route)| {
                let shape = Route {
                    prefix: route.prefix.clone(),
                    handler: (),
                    max_body_size: route.max_body_size,
                    compress: route.compress,
                    tenant: route.tenant.clone(),
                    metrics_slot: AtomicU16::new(route.metrics_slot.load(Ordering::Relaxed)),
                };
                (hosts.clone(), Arc::new(shape))
            })
            .collect();
        Router::from_entries(entries)
    }

    fn from_entries(entries: Vec<Entry<H>>) -> Router<H> {
        let mut router = Router {
            host_groups: Vec::new(),
            any_host: Vec::new(),
            entries: entries.clone(),
        };
        for (hosts, route) in entries {
            if hosts.is_empty() {
                router.any_host.push(route);
                continue;
            }
            let patterns: Vec<HostPattern> = hosts.iter().map(|h| HostPattern::parse(h)).collect();
            let key: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
            match router
                .host_groups
                .iter_mut()
                .find(|g| same_hosts(&g.patterns, &key))
            {
                Some(group) => group.routes.push(route),
                None => router.host_groups.push(HostGroup {
                    patterns,
                    routes: vec![route],
                }),
            }
        }
        for group in &mut router.host_groups {
            sort_longest_first(&mut group.routes);
        }
        sort_longest_first(&mut router.any_host);
        router
    }

    /// Finds the route for `host` (no port, any case) and the percent-decoded `path`.
    pub fn find<'r>(&'r self, host: &str, path: &[u8]) -> Option<Matched<'r, H>> {
        let group = self
            .host_groups
            .iter()
            .find(|g| g.patterns.iter().any(|p| p.matches(host)))
            .map(|g| &g.routes)
            .unwrap_or(&self.any_host);
        group.iter().find_map(|route| {
            prefix_match(&route.prefix, path).map(|start| Matched {
                route,
                path_info_start: start,
            })
        })
    }

    /// Whether a request to `host` for `path` as a caller writes it (percent-encoded, maybe
    /// with a query) would be routed: the same decoding as a client request, then `find`.
    pub fn serves(&self, host: &str, path: &str) -> bool {
        self.find(host, &route_path(path)).is_some()
    }

    /// The `max_body_size` of the route `serves` finds, if any.
    pub fn max_body_size(&self, host: &str, path: &str) -> Option<u64> {
        self.find(host, &route_path(path))
            .map(|m| m.route.max_body_size)
    }

    /// Gives every route still on slot 0 the slot `claim(prefix, tenant)` returns.
    pub fn label_routes(&self, claim: impl Fn(&str, Option<&str>) -> u16) {
        for route in self.routes().filter(|r| r.metrics_slot() == 0) {
            let slot = claim(&route.prefix, route.tenant.as_deref());
            route.metrics_slot.store(slot, Ordering::Relaxed);
        }
    }

    /// Every route, host groups first.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route<H>>> {
        self.host_groups
            .iter()
            .flat_map(|g| g.routes.iter())
            .chain(self.any_host.iter())
    }
}

fn same_hosts(patterns: &[HostPattern], hosts: &[String]) -> bool {
    patterns.len() == hosts.len()
        && patterns.iter().zip(hosts).all(|(p, h)| match p {
            HostPattern::Exact(name) => name == h,
            HostPattern::Suffix(suffix) => h.strip_prefix('*') == Some(suffix.as_str()),
        })
}

fn sort_longest_first<H>(routes: &mut [Arc<Route<H>>]) {
    routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
}

/// Where PATH_INFO starts if `prefix` matches `path` on a segment boundary.
fn prefix_match(prefix: &str, path: &[u8]) -> Option<usize> {
    if prefix == "/" {
        return Some(0);
    }
    let prefix = prefix.as_bytes();
    if !path.starts_with(prefix) {
        return None;
    }
    match path.get(prefix.len()) {
        None | Some(b'/') => Some(prefix.len()),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str, name: &'static str) -> Route<&'static str> {
        Route {
            prefix: prefix.to_string(),
            handler: name,
            max_body_size: 10,
            compress: true,
            tenant: None,
            metrics_slot: AtomicU16::new(0),
        }
    }

    fn router() -> Router<&'static str> {
        Router::new(vec![
            (vec![], route("/", "root")),
            (vec![], route("/api", "api")),
            (vec![], route("/api/v2", "v2")),
            (vec!["acme.test".into()], route("/", "acme")),
            (vec!["*.wild.test".into()], route("/w", "wild")),
        ])
    }

    fn find(r: &Router<&'static str>, host: &str, path: &str) -> Option<(&'static str, usize)> {
        r.find(host, path.as_bytes())
            .map(|m| (m.route.handler, m.path_info_start))
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let r = router();
        assert_eq!(find(&r, "x", "/api/v2/users"), Some(("v2", 7)));
        assert_eq!(find(&r, "x", "/api/v2"), Some(("v2", 7)));
        assert_eq!(find(&r, "x", "/api/v20"), Some(("api", 4)));
        assert_eq!(find(&r, "x", "/apix"), Some(("root", 0)));
        assert_eq!(find(&r, "x", "/"), Some(("root", 0)));
    }

    #[test]
    fn host_groups_own_their_hosts() {
        let r = router();
        assert_eq!(find(&r, "ACME.test", "/api"), Some(("acme", 0)));
        assert_eq!(find(&r, "a.wild.test", "/w/x"), Some(("wild", 2)));
        assert_eq!(find(&r, "a.wild.test", "/other"), None);
        assert_eq!(find(&r, "wild.test", "/w"), Some(("root", 0)));
    }

    #[test]
    fn written_paths_are_decoded_before_matching() {
        let r = Router::new(vec![(vec![], route("/caf\u{e9}", "cafe"))]);
        assert!(r.find("x", b"/caf%C3%A9").is_none());
        assert!(r.serves("x", "/caf%C3%A9/menu?lang=fr"));
        assert!(r.serves("x", "/caf\u{e9}"));
        assert!(!r.serves("x", "/cafe"));
    }

    #[test]
    fn no_root_route_means_404() {
        let r = Router::new(vec![(vec![], route("/api", "api"))]);
        assert!(r.find("x", b"/").is_none());
        assert_eq!(r.routes().count(), 1);
        assert_eq!(r.routes().next().map(|r| r.script_name()), Some("/api"));
    }
}
