//! Whether one request is mirrored to the shadow, and the shadow's budget in this worker.
//!
//! Owns: `Mirror` (a route's shadow settings and its count of shadows in flight), `Decision`
//! and `SkipReason`: a method not listed or a request not sampled is left alone (`Pass`); a
//! request that should be mirrored but would exceed the in-flight bound, or whose body is
//! spooled to a file or larger than `max_body`, is `Skip`ped with its reason (and counted by
//! the caller), never queued; otherwise `Mirror` with a `Permit` held until the shadow is
//! done. Must not touch: running the shadow or comparing (`server::shadow`, `compare`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::Method;

use crate::config::ShadowConfig;
use crate::spool::SpooledBody;

/// A route's shadow settings and how many of its shadows run in this worker now.
pub struct Mirror {
    pub config: ShadowConfig,
    in_flight: Arc<AtomicUsize>,
}

/// What to do with one request.
pub enum Decision {
    Pass,
    Skip(SkipReason),
    Mirror(Permit),
}

/// Why a request that should have been mirrored was not (counted per reason in the store, so
/// a report tells a shadow that is too slow from a server that is too busy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The route's shadows in flight were at `max_in_flight`.
    InFlight,
    /// The worker's event loop was saturated (`server::loop_pressure`).
    LoopBusy,
    /// The request could not be copied: its body was spooled to a file or over `max_body`,
    /// or its head could not be rebuilt for the shadow.
    Uncopyable,
    /// Mirrored, but the answers could not be compared: the client left before the primary's
    /// body ended, or a body was over `max_body`.
    Uncomparable,
}

impl SkipReason {
    pub const ALL: [SkipReason; 4] = [
        SkipReason::InFlight,
        SkipReason::LoopBusy,
        SkipReason::Uncopyable,
        SkipReason::Uncomparable,
    ];

    /// The name in the store and in `wsrun migrate report --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::InFlight => "in_flight",
            SkipReason::LoopBusy => "loop_busy",
            SkipReason::Uncopyable => "uncopyable",
            SkipReason::Uncomparable => "uncomparable",
        }
    }

    /// The words in the text report.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::InFlight => "shadows in flight at the bound",
            SkipReason::LoopBusy => "event loop saturated",
            SkipReason::Uncopyable => "request not copyable",
            SkipReason::Uncomparable => "client gone or body too large to compare",
        }
    }
}

/// One shadow's place in the in-flight count; given back when dropped.
pub struct Permit(Arc<AtomicUsize>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Mirror {
    pub fn new(config: ShadowConfig) -> Mirror {
        Mirror {
            config,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn decide(&self, method: &Method, body: &SpooledBody) -> Decision {
        let listed = self.config.methods.iter().any(|m| m == method.as_str());
        if !listed || !sampled(self.config.sample) {
            return Decision::Pass;
        }
        let copyable = match body {
            SpooledBody::Empty => true,
            SpooledBody::Memory(b) => b.len() as u64 <= self.config.max_body,
            SpooledBody::File { .. } => false,
        };
        if !copyable {
            return Decision::Skip(SkipReason::Uncopyable);
        }
        let taken = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let permit = Permit(self.in_flight.clone());
        if taken >= self.config.max_in_flight {
            return Decision::Skip(SkipReason::InFlight);
        }
        Decision::Mirror(permit)
    }
}

fn sampled(sample: f64) -> bool {
    sample >= 1.0 || (sample > 0.0 && fastrand::f64() < sample)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteTarget;

    fn mirror(max_in_flight: usize, methods: &[&str]) -> Mirror {
        Mirror::new(ShadowConfig {
            target: RouteTarget::Wasm {
                file: "x.wasm".into(),
            },
            methods: methods.iter().map(|m| m.to_string()).collect(),
            sample: 1.0,
            ignore_paths: Vec::new(),
            ignore_headers: Vec::new(),
            timeout: std::time::Duration::from_secs(1),
            max_in_flight,
            max_body: 4,
        })
    }

    #[test]
    fn unlisted_methods_pass_and_the_bound_skips() {
        let m = mirror(1, &["GET"]);
        assert!(matches!(
            m.decide(&Method::POST, &SpooledBody::Empty),
            Decision::Pass
        ));
        let first = m.decide(&Method::GET, &SpooledBody::Empty);
        assert!(matches!(first, Decision::Mirror(_)));
        assert!(matches!(
            m.decide(&Method::GET, &SpooledBody::Empty),
            Decision::Skip(SkipReason::InFlight)
        ));
        drop(first);
        assert!(matches!(
            m.decide(&Method::GET, &SpooledBody::Empty),
            Decision::Mirror(_)
        ));
        let big = SpooledBody::Memory(bytes::Bytes::from_static(b"12345"));
        assert!(matches!(
            m.decide(&Method::GET, &big),
            Decision::Skip(SkipReason::Uncopyable)
        ));
    }
}
