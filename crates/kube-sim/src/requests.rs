//! The requests an endpoint served, so a test can prove what a client asked for and what it did
//! not (the exporter GETs a terminating pod only once it is overdue). One record per request,
//! pushed when the response starts, never one per object served: the scale bench's lists of
//! 100,000 pods cost one record each.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::store::Kind;

/// Records kept per endpoint; older ones are dropped, so a long `--demo` run stays bounded.
const KEPT: usize = 100_000;

/// What a request asked the API server to do, as its authorizer names the verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// One object by name.
    Get,
    List,
    /// `watch=true`.
    Watch,
}

impl Verb {
    /// The verb as RBAC spells it (`get`, `list`, `watch`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
        }
    }
}

/// One request an endpoint answered.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiRequest {
    /// When it arrived, in Unix seconds.
    pub at: f64,
    /// `GET`, or whatever else a client sent (answered 405).
    pub method: String,
    /// The path, e.g. `/api/v1/namespaces/shop/pods/web-1`.
    pub path: String,
    /// The raw query string, without `?` (empty when there is none).
    pub query: String,
    /// What a `GET` of a served resource asked for; `None` for another method or an unknown path.
    pub verb: Option<Verb>,
    /// The resource addressed, `None` for an unknown path.
    pub kind: Option<Kind>,
    /// The namespace in the path, if any.
    pub namespace: Option<String>,
    /// The object's name, for a single-object request.
    pub name: Option<String>,
    /// The HTTP status answered (200 for a watch, whatever its stream carries later).
    pub status: u16,
}

/// An endpoint's request log, shared by its listeners across offline periods.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestLog(Arc<Mutex<VecDeque<ApiRequest>>>);

impl RequestLog {
    pub(crate) fn push(&self, request: ApiRequest) {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() >= KEPT {
            log.pop_front();
        }
        log.push_back(request);
    }

    /// A copy of the records, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<ApiRequest> {
        let log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
