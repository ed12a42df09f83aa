//! The simulated API server's HTTP side: list, watch and get of Deployments, ReplicaSets, Pods,
//! StatefulSets, DaemonSets and ControllerRevisions (cluster-wide and namespaced) and Nodes
//! (cluster-scoped), in full JSON or metadata-only, as a v1.36 kube-apiserver answers them (see
//! `tests/fixtures/k8s-recordings/README.md` for the facts this mirrors). A GET of the implicit
//! node [`crate::NODE_NAME`] answers it although no list shows it (see `controllers/nodes.rs`).
//! Every request is logged per endpoint (`requests.rs`).

// Handlers return the error response itself as `Err`, so `?` short-circuits to it; its size is
// that of any response.
#![allow(clippy::result_large_err)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::controllers::World;
use super::faults::{ErrorFault, FaultSwitch};
use super::requests::{ApiRequest, RequestLog, Verb};
use super::select::{Field, FieldSelector, LabelSelector};
use super::store::{Change, Encoding, EventType, Kind, Object};
use super::{SimError, clock, percent_decode};

/// Response bodies; a watch stream ends with an error to drop its connection abruptly.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// How the API server behaves beyond its data.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// The longest a watch runs when the client sets no `timeoutSeconds`.
    pub max_watch: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            bookmark_interval: Duration::from_secs(60),
            max_watch: Duration::from_secs(300),
        }
    }
}

/// What the HTTP handlers share.
pub struct ApiState {
    pub world: Arc<Mutex<World>>,
    pub config: ApiConfig,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Faults this endpoint injects.
    pub faults: FaultSwitch,
    /// Bumped to end every open watch stream at once (a dropped connection, as clients see it).
    pub drop_watches: tokio::sync::watch::Receiver<u64>,
    /// Response body bytes this endpoint has sent (what its clients read from the API server).
    pub served: Arc<AtomicU64>,
    /// The requests this endpoint served.
    pub(crate) requests: RequestLog,
}

const META_SINGLE: &str = "as=PartialObjectMetadata;";
const META_LIST: &str = "as=PartialObjectMetadataList";

/// Which objects a request addresses.
#[derive(Debug)]
struct Route {
    kind: Kind,
    namespace: Option<String>,
    name: Option<String>,
}

fn route(path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", "v1", rest @ ..] => (rest, false),
        ["apis", "apps", "v1", rest @ ..] => (rest, true),
        _ => return None,
    };
    let (rest, apps) = rest;
    let kind = |plural: &str| {
        Kind::ALL
            .into_iter()
            .find(|k| k.plural() == plural && (k.api_version() == "apps/v1") == apps)
    };
    // A namespaced kind is addressed under `namespaces/{ns}/` (or across namespaces, without a
    // name); a cluster-scoped one (Node) never is.
    match rest {
        [plural] => Some(Route {
            kind: kind(plural)?,
            namespace: None,
            name: None,
        }),
        [plural, name] => Some(Route {
            kind: kind(plural).filter(|k| !k.namespaced())?,
            namespace: None,
            name: Some(name.to_string()),
        }),
        ["namespaces", ns, plural] => Some(Route {
            kind: kind(plural).filter(|k| k.namespaced())?,
            namespace: Some(ns.to_string()),
            name: None,
        }),
        ["namespaces", ns, plural, name] => Some(Route {
            kind: kind(plural).filter(|k| k.namespaced())?,
            namespace: Some(ns.to_string()),
            name: Some(name.to_string()),
        }),
        _ => None,
    }
}

/// What a `GET` of a route asks for: one object, a list or a watch.
fn verb(route: &Route, q: &HashMap<String, String>) -> Verb {
    if route.name.is_some() {
        Verb::Get
    } else if matches!(q.get("watch").map(String::as_str), Some("true" | "1")) {
        Verb::Watch
    } else {
        Verb::List
    }
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn respond(code: StatusCode, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = code;
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A one-piece body of known length (the API server sends `Content-Length` for errors).
fn full(v: &Value) -> Body {
    Full::new(Bytes::from(v.to_string()))
        .map_err(|never| match never {})
        .boxed()
}

/// A `Status` object.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

fn error(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    respond(code, full(&status(code.as_u16(), reason, message)))
}

impl From<SimError> for Response<Body> {
    fn from(e: SimError) -> Self {
        match e {
            SimError::BadRequest(m) => error(StatusCode::BAD_REQUEST, "BadRequest", &m),
            other => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &other.to_string(),
            ),
        }
    }
}

/// The filters of a list or watch request.
struct Filter {
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// Whether neither a label nor a field selector narrows the request (a namespace does not
    /// count: it is part of the storage key, not a predicate).
    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    fn matches(&self, o: &Object) -> bool {
        let m = o.meta();
        if self.namespace.is_some() && m.namespace != self.namespace {
            return false;
        }
        if !self.labels.matches(m.labels.as_ref()) {
            return false;
        }
        self.fields.matches(|f| match f {
            Field::Name => m.name.clone().unwrap_or_default(),
            Field::Namespace => m.namespace.clone().unwrap_or_default(),
            Field::Phase => match o {
                Object::Pod(Pod { status, .. }) => status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default(),
                _ => String::new(),
            },
        })
    }
}

/// Handles one request, with this endpoint's faults, and logs it.
pub async fn handle(
    state: Arc<ApiState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let at = clock::now();
    let route = route(req.uri().path());
    let q = query(&req);
    let verb = (req.method() == Method::GET)
        .then(|| route.as_ref().map(|r| verb(r, &q)))
        .flatten();
    let mut record = ApiRequest {
        at,
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        verb,
        kind: route.as_ref().map(|r| r.kind),
        namespace: route.as_ref().and_then(|r| r.namespace.clone()),
        name: route.as_ref().and_then(|r| r.name.clone()),
        status: 0,
    };
    if let Some(delay) = state.faults.get().delay {
        tokio::time::sleep(delay).await;
    }
    let fault = state.faults.take_error().or_else(|| {
        route
            .as_ref()
            .and_then(|r| state.faults.take_kind_error(r.kind))
    });
    let resp = match fault {
        Some(e) => injected(e, route.as_ref().zip(verb)),
        None => handle_inner(state.clone(), req, route, &q).unwrap_or_else(|resp| resp),
    };
    record.status = resp.status().as_u16();
    state.requests.push(record);
    let served = state.served.clone();
    Ok(resp.map(|body| Counted { body, served }.boxed()))
}

/// The answer of an injected error: a 403 for a request of a known resource is the
/// authorizer's `Forbidden` Status (see [`forbidden`]); any other is a Status with the reason the
/// API server gives that code, and a `Retry-After` header if the fault has one.
fn injected(e: ErrorFault, target: Option<(&Route, Verb)>) -> Response<Body> {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match (e.code, target) {
        (403, Some((route, verb))) => forbidden(route, verb),
        _ => {
            let reason = match e.code {
                401 => "Unauthorized",
                403 => "Forbidden",
                429 => "TooManyRequests",
                503 => "ServiceUnavailable",
                _ => "InternalError",
            };
            error(code, reason, "injected fault")
        }
    };
    if let Some(secs) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    resp
}

/// The user a refusal names: the simulated server authenticates nobody, and a real one calls an
/// unauthenticated client this.
const ANONYMOUS: &str = "system:anonymous";

/// The 403 of a request RBAC does not allow, as `responsewriters.Forbidden` and
/// `errors.NewForbidden` write it: `nodes "x" is forbidden: User "u" cannot get resource "nodes"
/// in API group "" at the cluster scope` (`in the namespace "ns"` for a namespaced request; no
/// name for a list or watch), `details` naming the object, its group (when it has one) and the
/// resource.
fn forbidden(route: &Route, verb: Verb) -> Response<Body> {
    let plural = route.kind.plural();
    let group = group(route.kind);
    let resource = if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    };
    let object = match &route.name {
        Some(name) => format!("{resource} \"{name}\""),
        None => resource,
    };
    let scope = match &route.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let message = format!(
        "{object} is forbidden: User \"{ANONYMOUS}\" cannot {} resource \"{plural}\" in API group \"{group}\" {scope}",
        verb.as_str()
    );
    let mut details = serde_json::Map::new();
    if let Some(name) = &route.name {
        details.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    details.insert("kind".into(), json!(plural));
    let mut body = status(403, "Forbidden", &message);
    if let Some(map) = body.as_object_mut() {
        map.insert("details".into(), Value::Object(details));
    }
    respond(StatusCode::FORBIDDEN, full(&body))
}

/// A response body that adds the bytes it yields to the endpoint's count, and keeps the size
/// hint (a `Content-Length` where the body has one).
struct Counted {
    body: Body,
    served: Arc<AtomicU64>,
}

impl hyper::body::Body for Counted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.served.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

fn handle_inner(
    state: Arc<ApiState>,
    req: Request<Incoming>,
    route: Option<Route>,
    q: &HashMap<String, String>,
) -> Result<Response<Body>, Response<Body>> {
    let Some(route) = route else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        ));
    };
    if req.method() != Method::GET {
        return Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!(
                "the server does not allow this method on the requested resource ({})",
                req.method()
            ),
        ));
    }
    let accept = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .replace(' ', "");
    let meta_list = accept.contains(META_LIST);
    let meta_single = format!("{accept};").contains(META_SINGLE);
    // A GET of one object takes no selectors (GetOptions has none), so they are not parsed.
    if let Some(name) = &route.name {
        if meta_list && !meta_single {
            return Err(error(
                StatusCode::NOT_ACCEPTABLE,
                "NotAcceptable",
                &format!(
                    "you requested PartialObjectMetadataList, but the requested object is not a list ({})",
                    route.kind.internal_type()
                ),
            ));
        }
        return get(&state, &route, name, meta_single);
    }
    let filter = Filter {
        namespace: route.namespace.clone(),
        labels: LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?,
        fields: FieldSelector::parse(
            q.get("fieldSelector").map_or("", String::as_str),
            route.kind,
        )?,
    };
    let watch = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    if watch {
        return Ok(start_watch(
            state,
            route.kind,
            filter,
            q,
            meta_single || meta_list,
        ));
    }
    if meta_single && !meta_list {
        return Err(error(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            &format!(
                "you requested PartialObjectMetadata, but the requested object is a list ({})",
                route.kind.internal_list_type()
            ),
        ));
    }
    list(&state, route.kind, &filter, q, meta_list)
}

fn get(
    state: &ApiState,
    route: &Route,
    name: &str,
    meta: bool,
) -> Result<Response<Body>, Response<Body>> {
    let world = state.world.lock().map_err(|_| SimError::Poisoned)?;
    let key = (
        route.namespace.clone().unwrap_or_default(),
        name.to_string(),
    );
    let obj = match world.store.get(route.kind, &key) {
        Some(obj) => obj,
        None => match world
            .implicit_node(name)
            .filter(|_| route.kind == Kind::Node)
        {
            Some(node) => Arc::new(Object::Node(node.clone())),
            None => return Err(not_found(route.kind, name)),
        },
    };
    let v = if meta {
        obj.to_meta_json()
    } else {
        obj.to_json()
    };
    Ok(respond(StatusCode::OK, full(&v)))
}

fn group(kind: Kind) -> &'static str {
    match kind.api_version() {
        "v1" => "",
        _ => "apps",
    }
}

/// The 404 of a missing object, as `errors.NewNotFound` writes it: the resource is qualified by
/// its group only when it has one (`pods "x"`, `deployments.apps "x"`), and `details` names it.
fn not_found(kind: Kind, name: &str) -> Response<Body> {
    let (resource, mut details) = match group(kind) {
        "" => (
            kind.plural().to_string(),
            json!({ "name": name, "kind": kind.plural() }),
        ),
        g => (
            format!("{}.{g}", kind.plural()),
            json!({ "name": name, "group": g, "kind": kind.plural() }),
        ),
    };
    let mut body = status(404, "NotFound", &format!("{resource} \"{name}\" not found"));
    if let Some(map) = body.as_object_mut() {
        map.insert("details".into(), details.take());
    }
    respond(StatusCode::NOT_FOUND, full(&body))
}

/// A continue token: the list's resourceVersion and the last key served.
fn continue_token(rv: u64, ns: &str, name: &str) -> String {
    let raw = format!("{rv}/{ns}/{name}");
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn parse_continue(token: &str) -> Option<(u64, String, String)> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let raw = String::from_utf8(bytes?).ok()?;
    let mut parts = raw.splitn(3, '/');
    let rv = parts.next()?.parse().ok()?;
    Some((rv, parts.next()?.to_string(), parts.next()?.to_string()))
}

fn list(
    state: &ApiState,
    kind: Kind,
    filter: &Filter,
    q: &HashMap<String, String>,
    meta: bool,
) -> Result<Response<Body>, Response<Body>> {
    let world = state.world.lock().map_err(|_| SimError::Poisoned)?;
    let store = &world.store;
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|&l| l > 0)
        .unwrap_or(usize::MAX);
    let (list_rv, after) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let Some((rv, ns, name)) = parse_continue(token) else {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "continue key is not valid",
                ));
            };
            if store.is_compacted(rv) || state.faults.get().expire_continue_tokens {
                return Err(error(
                    StatusCode::GONE,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ));
            }
            (rv, Some((ns, name)))
        }
        None => (store.resource_version(), None),
    };
    let mut matching = store
        .list_after(kind, after.as_ref())
        .filter(|o| filter.matches(o));
    let page: Vec<Arc<Object>> = matching.by_ref().take(limit).cloned().collect();
    let remaining = matching.count();
    let mut metadata = json!({ "resourceVersion": list_rv.to_string() });
    if remaining > 0
        && let Some(last) = page.last()
    {
        let (ns, name) = last.key();
        metadata["continue"] = json!(continue_token(list_rv, &ns, &name));
        // The real server counts the rest only when no selector filters it (ListMeta: "If the
        // list request contained label or field selectors, then the number of remaining items
        // is unknown and the field will be left unset").
        if filter.is_empty() {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    // The page is a list of shared, immutable objects: encode it after the lock is released.
    drop(world);
    let (kind_name, api_version) = if meta {
        ("PartialObjectMetadataList", "meta.k8s.io/v1")
    } else {
        (kind.list_kind(), kind.api_version())
    };
    let head = format!(
        r#"{{"kind":"{kind_name}","apiVersion":"{api_version}","metadata":{metadata},"items":"#
    );
    // The real server writes null, not [], for an empty metadata-only list.
    let null_items = meta && page.is_empty();
    if state.faults.take(|f| &mut f.truncate_lists) {
        let mut text = head.into_bytes();
        let chunks = ListChunks::new(page, meta, null_items);
        text.extend(chunks.flat_map(|c| c.to_vec()));
        let cut = Bytes::from(text[..text.len() / 2].to_vec());
        let stream = futures::stream::iter([Ok::<_, std::io::Error>(Frame::data(cut))]);
        return Ok(respond(StatusCode::OK, StreamBody::new(stream).boxed()));
    }
    let chunks = std::iter::once(Bytes::from(head)).chain(ListChunks::new(page, meta, null_items));
    if kind.list_in_one_piece() {
        let body: Vec<u8> = chunks.flat_map(|c| c.to_vec()).collect();
        let body = Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed();
        return Ok(respond(StatusCode::OK, body));
    }
    let stream = futures::stream::iter(chunks.map(|c| Ok::<_, std::io::Error>(Frame::data(c))));
    Ok(respond(StatusCode::OK, StreamBody::new(stream).boxed()))
}

/// The items of a list page and its closing brackets, encoded lazily in chunks of about
/// [`LIST_CHUNK`] bytes as the client reads them: a list of 100,000 pods never exists as one
/// JSON value or one buffer.
struct ListChunks {
    items: std::vec::IntoIter<Arc<Object>>,
    encoding: Encoding,
    /// `items` is `null` rather than `[]`.
    null_items: bool,
    /// Items written so far, for the commas between them.
    written: usize,
    first: bool,
    done: bool,
}

/// Bytes per chunk of a streamed list.
const LIST_CHUNK: usize = 64 * 1024;

impl ListChunks {
    fn new(items: Vec<Arc<Object>>, meta: bool, null_items: bool) -> Self {
        Self {
            items: items.into_iter(),
            encoding: if meta {
                Encoding::Meta
            } else {
                Encoding::ListItem
            },
            null_items,
            written: 0,
            first: true,
            done: false,
        }
    }
}

impl Iterator for ListChunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        if self.null_items {
            self.done = true;
            return Some(Bytes::from_static(b"null}"));
        }
        let mut out = Vec::with_capacity(LIST_CHUNK + 8 * 1024);
        if self.first {
            out.push(b'[');
            self.first = false;
        }
        while out.len() < LIST_CHUNK {
            let Some(o) = self.items.next() else {
                out.extend_from_slice(b"]}");
                self.done = true;
                break;
            };
            if self.written > 0 {
                out.push(b',');
            }
            o.write_json(self.encoding, &mut out);
            self.written += 1;
        }
        Some(Bytes::from(out))
    }
}

fn event_line(event: &str, object: Value) -> Bytes {
    let mut line = json!({ "type": event, "object": object }).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// A watch event line around an object already encoded, as the API server writes it.
fn event_line_raw(event: EventType, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + 32);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(event.as_str().as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// A watch event line for an object, encoded now.
fn event_line_object(event: EventType, o: &Object, meta: bool) -> Bytes {
    let mut object = Vec::with_capacity(4096);
    o.write_json(
        if meta { Encoding::Meta } else { Encoding::Full },
        &mut object,
    );
    event_line_raw(event, &object)
}

/// What a filtered watch shows of one change: a change of match is ADDED or DELETED. An object
/// that stops matching is reported DELETED with its previous content at the change's
/// resourceVersion, as the API server's watch cache does (`cacheWatcher.convertToWatchEvent`):
/// a pod leaving `status.phase=Running` is DELETED showing phase Running.
fn visible<'a>(change: &'a Change, filter: &Filter) -> Option<(EventType, Cow<'a, Object>)> {
    let now = filter.matches(&change.object);
    let before = change.old.as_deref().is_some_and(|o| filter.matches(o));
    let current = || Cow::Borrowed(&*change.object);
    let previous = || {
        let mut old = change.old.as_deref().unwrap_or(&change.object).clone();
        old.set_resource_version(change.rv);
        Cow::Owned(old)
    };
    match change.event {
        EventType::Added if now => Some((EventType::Added, current())),
        // The store's DELETED object already is the last state at the deletion's version.
        EventType::Deleted if before => Some((EventType::Deleted, current())),
        EventType::Modified => match (before, now) {
            (true, true) => Some((EventType::Modified, current())),
            (false, true) => Some((EventType::Added, current())),
            (true, false) => Some((EventType::Deleted, previous())),
            (false, false) => None,
        },
        _ => None,
    }
}

fn start_watch(
    state: Arc<ApiState>,
    kind: Kind,
    filter: Filter,
    q: &HashMap<String, String>,
    meta: bool,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1024);
    let body = StreamBody::new(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (b.map(Frame::data), rx))
    }))
    .boxed();
    let bookmarks = matches!(
        q.get("allowWatchBookmarks").map(String::as_str),
        Some("true" | "1")
    );
    // `timeoutSeconds=0` (or none) means the server's own limit, as in the real API server.
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|&t| t > 0)
        .map(Duration::from_secs)
        .unwrap_or(state.config.max_watch);
    let rv: Option<u64> = q.get("resourceVersion").and_then(|r| r.parse().ok());
    if matches!(q.get("sendInitialEvents").map(String::as_str), Some("true")) {
        // The recorded control plane refuses streaming lists this way.
        let line = event_line(
            "ERROR",
            status(
                500,
                "InternalError",
                "a watch stream was requested by the client but the required storage feature RequestWatchProgress is disabled",
            ),
        );
        let _ = tx.try_send(Ok(line));
        return respond(StatusCode::OK, body);
    }
    if state.faults.get().expire_watch_resumes
        && let Some(requested) = rv.filter(|&r| r > 0)
    {
        let line = event_line(
            "ERROR",
            status(
                410,
                "Expired",
                &format!("too old resource version: {requested} ({})", requested + 1),
            ),
        );
        let _ = tx.try_send(Ok(line));
        return respond(StatusCode::OK, body);
    }
    let start = {
        let Ok(world) = state.world.lock() else {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "store unavailable",
            );
        };
        let from = rv.filter(|&r| r > 0);
        match world.store.watch_from(from) {
            Err(expired) => Err(expired),
            Ok((backlog, live)) => {
                // Without a resourceVersion the watch starts with the current state, as ADDED.
                let initial: Vec<Bytes> = if from.is_none() {
                    world
                        .store
                        .list(kind)
                        .filter(|o| filter.matches(o))
                        .map(|o| event_line_object(EventType::Added, o, meta))
                        .collect()
                } else {
                    Vec::new()
                };
                let last = from.unwrap_or_else(|| world.store.resource_version());
                Ok((initial, backlog, live, last))
            }
        }
    };
    match start {
        Err(expired) => {
            let line = event_line(
                "ERROR",
                status(
                    410,
                    "Expired",
                    &format!(
                        "too old resource version: {} ({})",
                        expired.requested, expired.oldest
                    ),
                ),
            );
            let _ = tx.try_send(Ok(line));
        }
        Ok((initial, backlog, live, last)) => {
            tokio::spawn(stream_watch(
                state, kind, filter, meta, bookmarks, timeout, tx, initial, backlog, live, last,
            ));
        }
    }
    respond(StatusCode::OK, body)
}

/// Most bytes of watch events sent in one write.
const WATCH_BATCH: usize = 256 * 1024;

#[allow(clippy::too_many_arguments)]
async fn stream_watch(
    state: Arc<ApiState>,
    kind: Kind,
    filter: Filter,
    meta: bool,
    bookmarks: bool,
    timeout: Duration,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    initial: Vec<Bytes>,
    backlog: Vec<Arc<Change>>,
    mut live: broadcast::Receiver<Arc<Change>>,
    mut last_rv: u64,
) {
    let mut shutdown = state.shutdown.clone();
    let mut dropped = state.drop_watches.clone();
    dropped.mark_unchanged();
    for line in initial {
        if tx.send(Ok(line)).await.is_err() {
            return;
        }
    }
    let send_change = |change: &Change| -> Option<Bytes> {
        if change.object.kind() != kind {
            return None;
        }
        let (event, object) = visible(change, &filter)?;
        // The change's own object is encoded once for every watch; a previous state shown to a
        // filtered watch is encoded here.
        let line = match object {
            Cow::Borrowed(_) => event_line_raw(event, change.encoded(meta)),
            Cow::Owned(o) => event_line_object(event, &o, meta),
        };
        if state.faults.take(|f| &mut f.garble_watch_events) {
            // Half a line: the client cannot decode it, and the event is lost.
            let mut cut = line[..line.len() / 2].to_vec();
            cut.push(b'\n');
            return Some(Bytes::from(cut));
        }
        Some(line)
    };
    for change in &backlog {
        last_rv = last_rv.max(change.rv);
        if let Some(line) = send_change(change)
            && tx.send(Ok(line)).await.is_err()
        {
            return;
        }
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    // `interval` panics on a zero period; a configured zero means "as often as possible".
    let mut bookmark =
        tokio::time::interval(state.config.bookmark_interval.max(Duration::from_millis(1)));
    bookmark.tick().await;
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = shutdown.changed() => return,
            _ = dropped.changed() => {
                // Abort the response mid-stream: the client sees a broken connection.
                let _ = tx.send(Err(std::io::Error::other("watch dropped (injected fault)"))).await;
                return;
            }
            _ = tx.closed() => return,
            _ = bookmark.tick(), if bookmarks => {
                let object = if meta {
                    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": {"resourceVersion": last_rv.to_string()}})
                } else {
                    json!({"kind": kind.kind(), "apiVersion": kind.api_version(),
                           "metadata": {"resourceVersion": last_rv.to_string()}})
                };
                if tx.send(Ok(event_line("BOOKMARK", object))).await.is_err() {
                    return;
                }
            }
            msg = live.recv() => match msg {
                Ok(change) => {
                    // The changes already waiting go out in the same write, as the API server
                    // flushes a watch only when nothing more is pending: a busy cluster's
                    // events arrive many to a read.
                    let mut batch: Vec<u8> = Vec::new();
                    let mut next = Some(change);
                    let mut ended = false;
                    while let Some(change) = next.take() {
                        if change.rv > last_rv {
                            last_rv = change.rv;
                            if let Some(line) = send_change(&change) {
                                batch.extend_from_slice(&line);
                            }
                        }
                        if batch.len() >= WATCH_BATCH {
                            break;
                        }
                        match live.try_recv() {
                            Ok(c) => next = Some(c),
                            Err(broadcast::error::TryRecvError::Empty) => {}
                            // Fell behind or the server is going away: send what is here, then
                            // end the watch; the client resumes.
                            Err(_) => ended = true,
                        }
                    }
                    if !batch.is_empty() && tx.send(Ok(Bytes::from(batch))).await.is_err() {
                        return;
                    }
                    if ended {
                        return;
                    }
                }
                // Fell behind or the server is going away: end the watch; the client resumes.
                Err(_) => return,
            },
        }
    }
}
