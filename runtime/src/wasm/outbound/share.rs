//! The caps on outgoing requests in flight: per instance, per route and per tenant.
//!
//! Owns: `OutboundShare` (a route's `max_outbound` permits and, for a tenant's route, the
//! tenant-wide permits shared by all its routes), `TenantCap`, `OutboundPermit` (what one
//! outgoing request holds until its response body is finished or dropped) and `Full` (which
//! cap refused). Try-acquire only: a request over a cap is refused at once, never queued.
//! Sits below `route_info` (which holds a share), so must not import it, nor touch the
//! network or the log.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A tenant's `max_outbound`: permits shared by all of the tenant's routes in one worker.
#[derive(Debug)]
pub struct TenantCap {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl TenantCap {
    pub fn new(limit: usize) -> Arc<TenantCap> {
        Arc::new(TenantCap {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        })
    }
}

/// The outgoing-request caps of one route, shared by every instance it runs.
#[derive(Debug)]
pub struct OutboundShare {
    route: Arc<Semaphore>,
    route_limit: usize,
    tenant: Option<Arc<TenantCap>>,
}

/// Which cap refused an outgoing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Instance(usize),
    Route(usize),
    Tenant(usize),
}

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Full::Instance(n) => write!(f, "outbound_per_request of {n}"),
            Full::Route(n) => write!(f, "the route's max_outbound of {n}"),
            Full::Tenant(n) => write!(f, "the tenant's max_outbound of {n}"),
        }
    }
}

/// Held by one outgoing request in flight; dropping it frees its slots.
#[derive(Debug)]
pub struct OutboundPermit {
    instance: Arc<AtomicUsize>,
    _route: OwnedSemaphorePermit,
    _tenant: Option<OwnedSemaphorePermit>,
}

impl Drop for OutboundPermit {
    fn drop(&mut self) {
        self.instance.fetch_sub(1, Ordering::AcqRel);
    }
}

impl OutboundShare {
    /// A route's caps: `route_limit` of its own, and its tenant's when it has one.
    pub fn new(route_limit: usize, tenant: Option<Arc<TenantCap>>) -> Arc<OutboundShare> {
        Arc::new(OutboundShare {
            route: Arc::new(Semaphore::new(route_limit)),
            route_limit,
            tenant,
        })
    }

    /// A slot under the instance's (`in_flight` of at most `per_instance`), the route's and
    /// the tenant's caps, or the first cap that is full.
    pub fn try_acquire(
        &self,
        in_flight: &Arc<AtomicUsize>,
        per_instance: usize,
    ) -> Result<OutboundPermit, Full> {
        if in_flight.fetch_add(1, Ordering::AcqRel) >= per_instance {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Full::Instance(per_instance));
        }
        // From here the permit's drop gives the instance's slot back on every path.
        let route = self.route.clone().try_acquire_owned();
        let instance = in_flight.clone();
        let Ok(route) = route else {
            instance.fetch_sub(1, Ordering::AcqRel);
            return Err(Full::Route(self.route_limit));
        };
        let tenant = match &self.tenant {
            Some(cap) => match cap.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    instance.fetch_sub(1, Ordering::AcqRel);
                    return Err(Full::Tenant(cap.limit));
                }
            },
            None => None,
        };
        Ok(OutboundPermit {
            instance,
            _route: route,
            _tenant: tenant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_refuse_in_order_and_free_on_drop() {
        let tenant = TenantCap::new(3);
        let a = OutboundShare::new(2, Some(tenant.clone()));
        let b = OutboundShare::new(5, Some(tenant));
        let (one, two) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let first = a.try_acquire(&one, 1).unwrap();
        assert_eq!(a.try_acquire(&one, 1).unwrap_err(), Full::Instance(1));
        let second = a.try_acquire(&two, 4).unwrap();
        assert_eq!(a.try_acquire(&two, 4).unwrap_err(), Full::Route(2));
        let third = b.try_acquire(&two, 4).unwrap();
        assert_eq!(b.try_acquire(&two, 4).unwrap_err(), Full::Tenant(3));
        assert_eq!(two.load(Ordering::Acquire), 2);
        drop((first, second, third));
        assert_eq!(one.load(Ordering::Acquire), 0);
        assert_eq!(two.load(Ordering::Acquire), 0);
        assert!(b.try_acquire(&two, 4).is_ok());
    }
}
