//! Faults the simulated API server can inject, switchable at any time, per endpoint: the
//! resilience tests run one exporter through a faulty endpoint and one through a clean endpoint of
//! the same cluster, and compare.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::Kind;

/// An HTTP error to answer instead of serving, for the next `remaining` requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorFault {
    /// 429, 500, 503...
    pub code: u16,
    /// Seconds for a `Retry-After` header, if any.
    pub retry_after: Option<u64>,
    pub remaining: u32,
}

/// An error answered for the requests of one resource only, the others served: what a client
/// whose RBAC lacks one resource sees (a namespaced service account may read pods but not
/// nodes). A 403 is answered with the authorizer's `Forbidden` Status, naming the resource, the
/// verb and the object as the real API server does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindFault {
    pub kind: Kind,
    pub error: ErrorFault,
}

/// What is currently broken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every watch that resumes from a resourceVersion gets HTTP 200 and the 410 `ERROR` event,
    /// as if the version had been compacted: the client must relist.
    pub expire_watch_resumes: bool,
    /// Every `continue` token is answered with HTTP 410 Expired.
    pub expire_continue_tokens: bool,
    /// Answer requests with an error status.
    pub error: Option<ErrorFault>,
    /// Answer requests for one resource with an error status, each fault counting its own uses
    /// (the first that matches and has uses left answers). [`Self::error`] comes first.
    pub kind_errors: Vec<KindFault>,
    /// Wait this long before answering every request.
    pub delay: Option<Duration>,
    /// Cut the next N list responses in half (truncated JSON).
    pub truncate_lists: u32,
    /// Send the next N watch events as malformed JSON: those events are lost.
    pub garble_watch_events: u32,
}

/// A shared, switchable set of faults.
#[derive(Clone, Debug, Default)]
pub struct FaultSwitch(Arc<Mutex<Faults>>);

impl FaultSwitch {
    /// Changes the faults.
    pub fn set(&self, f: impl FnOnce(&mut Faults)) {
        let mut faults = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut faults);
    }

    /// Clears every fault.
    pub fn clear(&self) {
        self.set(|f| *f = Faults::default());
    }

    /// A copy of the current faults.
    pub fn get(&self) -> Faults {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes one use of the error fault, if any remains.
    pub(crate) fn take_error(&self) -> Option<ErrorFault> {
        let mut faults = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let e = faults.error.as_mut().filter(|e| e.remaining > 0)?;
        e.remaining -= 1;
        Some(*e)
    }

    /// Refuses every request for `kind` with 403 Forbidden, until cleared: RBAC without that
    /// resource.
    pub fn deny(&self, kind: Kind) {
        self.set(|f| {
            f.kind_errors.push(KindFault {
                kind,
                error: ErrorFault {
                    code: 403,
                    retry_after: None,
                    remaining: u32::MAX,
                },
            });
        });
    }

    /// Takes one use of the first error fault for `kind` that has uses left, if any.
    pub(crate) fn take_kind_error(&self, kind: Kind) -> Option<ErrorFault> {
        let mut faults = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let e = faults
            .kind_errors
            .iter_mut()
            .find(|f| f.kind == kind && f.error.remaining > 0)?;
        e.error.remaining -= 1;
        Some(e.error)
    }

    /// Takes one use of a counted fault.
    pub(crate) fn take(&self, which: fn(&mut Faults) -> &mut u32) -> bool {
        let mut faults = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = which(&mut faults);
        if *n > 0 {
            *n -= 1;
            true
        } else {
            false
        }
    }
}
