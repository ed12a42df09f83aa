//! One listener of the simulated API server over the shared cluster. A cluster starts with one;
//! tests add more, each with its own faults, and take them offline and back to simulate an API
//! server that disappears while the cluster goes on.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::SimError;
use super::api::{self, ApiConfig};
use super::controllers::World;
use super::faults::FaultSwitch;
use super::requests::{ApiRequest, RequestLog};

/// A serving listener: its shutdown switch and its accept task.
struct Serving {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// A listener of the simulated API server. Dropping it stops serving.
pub struct Endpoint {
    addr: SocketAddr,
    world: Arc<Mutex<World>>,
    config: ApiConfig,
    faults: FaultSwitch,
    drop_watches: watch::Sender<u64>,
    serving: Mutex<Option<Serving>>,
    /// Response body bytes sent, across offline periods.
    served: Arc<AtomicU64>,
    /// The requests served, across offline periods.
    requests: RequestLog,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.go_offline();
    }
}

impl Endpoint {
    pub(crate) async fn start(
        world: Arc<Mutex<World>>,
        config: ApiConfig,
        addr: SocketAddr,
    ) -> Result<Self, SimError> {
        let listener = TcpListener::bind(addr).await.map_err(SimError::Bind)?;
        let addr = listener.local_addr().map_err(SimError::Bind)?;
        let (drop_watches, _) = watch::channel(0);
        let endpoint = Self {
            addr,
            world,
            config,
            faults: FaultSwitch::default(),
            drop_watches,
            serving: Mutex::new(None),
            served: Arc::new(AtomicU64::new(0)),
            requests: RequestLog::default(),
        };
        endpoint.serve(listener);
        Ok(endpoint)
    }

    fn serve(&self, listener: TcpListener) {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = Arc::new(api::ApiState {
            world: self.world.clone(),
            config: self.config.clone(),
            shutdown: shutdown_rx.clone(),
            faults: self.faults.clone(),
            drop_watches: self.drop_watches.subscribe(),
            served: self.served.clone(),
            requests: self.requests.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, state, shutdown_rx));
        *self.serving.lock().unwrap_or_else(|p| p.into_inner()) = Some(Serving { shutdown, task });
    }

    /// The address this endpoint listens on (kept across offline periods).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig pointing at this endpoint.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {}\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    user: sim\ncurrent-context: sim\nusers:\n- name: sim\n  user: {{}}\n",
            self.url()
        )
    }

    /// Writes [`Self::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SimError> {
        std::fs::write(path, self.kubeconfig()).map_err(|source| SimError::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Response body bytes this endpoint has sent so far: what its clients read from the API
    /// server (lists, watch events, errors), without HTTP framing.
    pub fn bytes_served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// The requests this endpoint served, oldest first, across offline periods (the last
    /// 100,000): one record per request, fault answers included. Each endpoint keeps its own, so
    /// a test reads the log of the endpoint its client talks to.
    pub fn requests(&self) -> Vec<ApiRequest> {
        self.requests.snapshot()
    }

    /// Forgets the requests served so far: a test's window starts here.
    pub fn clear_requests(&self) {
        self.requests.clear();
    }

    /// The faults this endpoint injects.
    pub fn faults(&self) -> &FaultSwitch {
        &self.faults
    }

    /// Ends every open watch stream now; clients resume from their last resourceVersion.
    pub fn drop_watches(&self) {
        self.drop_watches.send_modify(|n| *n += 1);
    }

    /// Stops listening and closes every connection; the cluster behind goes on.
    pub fn go_offline(&self) {
        if let Some(s) = self
            .serving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = s.shutdown.send(true);
            s.task.abort();
        }
    }

    /// Listens again on the same address after [`Self::go_offline`].
    pub async fn come_back(&self) -> Result<(), SimError> {
        let listener = TcpListener::bind(self.addr).await.map_err(SimError::Bind)?;
        self.serve(listener);
        Ok(())
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<api::ApiState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = shutdown.changed() => return,
        };
        let state = state.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| api::handle(state.clone(), req));
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}
