//! A layer on the kube client that records every successful API response per watched resource.
//!
//! A watch that restarts quietly (a dropped connection resumed from the last resourceVersion in a
//! cluster where nothing changes) yields no event, so events alone cannot tell a recovered watch
//! from a failing one. The HTTP answer can: a list or a watch that got a 2xx response is a
//! success, and readiness is computed from those. Every answer is also counted by verb and status
//! code (`kube_rollout_exporter_api_requests_total`), which is where dropped watch connections
//! (resumed without an error) and throttling show.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::{Request, Response, Uri};
use tower::{Layer, Service};

use crate::model::Resource;
use crate::state::Shared;

use super::FINISHED_PODS;

/// Which watched resource a request to the API server is for.
pub fn resource_of(uri: &Uri) -> Option<Resource> {
    let path = uri.path();
    let finished = uri.query().is_some_and(|q| {
        q.split('&').any(|kv| {
            kv.strip_prefix("fieldSelector=")
                .is_some_and(|v| crate::sim::percent_decode_pub(v) == FINISHED_PODS)
        })
    });
    if path.ends_with("/deployments") {
        Some(Resource::Deployments)
    } else if path.ends_with("/replicasets") {
        Some(Resource::ReplicaSets)
    } else if path.ends_with("/pods") {
        Some(if finished {
            Resource::FinishedPods
        } else {
            Resource::Pods
        })
    } else {
        None
    }
}

fn is_watch(uri: &Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

/// The layer: wraps the client's HTTP service.
#[derive(Clone, Debug)]
pub struct ApiHealthLayer {
    shared: Arc<Shared>,
}

impl ApiHealthLayer {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl<S> Layer<S> for ApiHealthLayer {
    type Service = ApiHealth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiHealth {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service the layer makes.
#[derive(Clone, Debug)]
pub struct ApiHealth<S> {
    inner: S,
    shared: Arc<Shared>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<Request<B>> for ApiHealth<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    RB: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let resource = resource_of(req.uri());
        let verb = if is_watch(req.uri()) { "watch" } else { "list" };
        let shared = self.shared.clone();
        let response = self.inner.call(req);
        Box::pin(async move {
            let result = response.await;
            if let Some(r) = resource {
                let stats = shared.watch(r);
                match &result {
                    Ok(resp) => {
                        stats.request(verb, resp.status().as_u16());
                        if resp.status().is_success() {
                            stats.success(Instant::now());
                        }
                    }
                    Err(_) => stats.request(verb, 0),
                }
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_their_resource() {
        let uri = |s: &str| s.parse::<Uri>().expect("uri");
        assert_eq!(
            resource_of(&uri("/apis/apps/v1/deployments?watch=true")),
            Some(Resource::Deployments)
        );
        assert_eq!(
            resource_of(&uri("/apis/apps/v1/namespaces/a/replicasets")),
            Some(Resource::ReplicaSets)
        );
        assert_eq!(
            resource_of(&uri("/api/v1/pods?limit=500")),
            Some(Resource::Pods)
        );
        let finished = format!(
            "/api/v1/namespaces/a/pods?fieldSelector={}&watch=true",
            FINISHED_PODS
                .replace('=', "%3D")
                .replace(',', "%2C")
                .replace('!', "%21")
        );
        assert_eq!(resource_of(&uri(&finished)), Some(Resource::FinishedPods));
        assert_eq!(resource_of(&uri("/api/v1/namespaces/a/pods/p1")), None);
    }
}
