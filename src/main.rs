//! The binary: parses flags, builds the client, starts the watches and the HTTP server, and
//! stops cleanly on SIGTERM or SIGINT. Errors end here as one line on stderr and an exit code:
//! 0 after a clean shutdown, 1 for a startup error (kubeconfig, listen address), 2 for bad flags.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use kube_rollout_exporter::cli::{Args, Command, LogFormat, Output, ShardSource, WaitArgs};
use kube_rollout_exporter::model::{DEFAULT_BUCKETS, Model, ModelConfig};
use kube_rollout_exporter::shard::{self, Sharding};
use kube_rollout_exporter::shared::Shared;
use kube_rollout_exporter::web_config::WebConfig;
use kube_rollout_exporter::{demo, http, inspect, metrics, wait, watch};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // clap prints its own message; help and version are not errors.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // What clap cannot check (the shard within the total) is a usage error like any other.
    if let Err(e) = args.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if let Some(Command::Wait(w)) = &args.command {
        return run_wait(w);
    }
    init_logging(&args);
    // One worker: the async work is light I/O (the watches and the HTTP server), and one thread
    // keeps each watch's connection task and decoding task together, without cross-thread
    // wake-ups (BENCHMARKS.md, CPU per event). Scrape rendering and password checks, the CPU-heavy
    // parts, run on the blocking pool, so a scrape never holds up the watches.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(args: &Args) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "warn,kube_rollout_exporter={level},kube_sim=warn",
            level = args.log_level.as_str()
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Whether log lines carry ANSI colour: only on a terminal, and never when `NO_COLOR` is set to
/// anything but the empty string (no-color.org), so a log file or a pipe gets plain text.
fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// `wait`: its own small runtime, errors as one line on stderr, its exit code (0 all reached,
/// 1 any did not, or the configuration is unusable).
fn run_wait(w: &WaitArgs) -> ExitCode {
    // No log lines unless RUST_LOG asks: failed requests are retried until the timeout, and what
    // went wrong is the one verdict line on stderr.
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(wait_for(w)) {
        Ok(outcome) => {
            if let Some(line) = outcome.message {
                eprintln!("{line}");
            }
            ExitCode::from(outcome.code)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for(w: &WaitArgs) -> Result<wait::Outcome> {
    let config = client_config(w.kubeconfig.as_deref(), w.context.as_deref()).await?;
    let namespace = w
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::client::ClientBuilder::try_from(config)
        .context("cannot build a Kubernetes client from the configuration")?
        .build();
    let request = wait::Request {
        targets: w.targets.clone(),
        namespace,
        selector: w.selector.clone(),
        all: w.all,
        goal: w.goal,
        timeout_secs: w.timeout,
        json: w.output == Output::Json,
    };
    Ok(wait::run(client, request).await?)
}

/// The Kubernetes client configuration: `--kubeconfig` wins, then kube's inference
/// (KUBECONFIG, ~/.kube/config, in-cluster).
async fn client_config(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<Config> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    if let Some(path) = kubeconfig {
        let kubeconfig = Kubeconfig::read_from(path).with_context(|| {
            format!(
                "cannot read kubeconfig {}: check the path given to --kubeconfig",
                path.display()
            )
        })?;
        return Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .with_context(|| format!("kubeconfig {} is not usable", path.display()));
    }
    if context.is_some() {
        return Config::from_kubeconfig(&options)
            .await
            .context("cannot use --context: no usable kubeconfig in KUBECONFIG or ~/.kube/config");
    }
    Config::infer().await.map_err(|e| {
        anyhow!(
            "no usable Kubernetes configuration ({e}): pass --kubeconfig PATH, set KUBECONFIG, run in a cluster, or try --demo"
        )
    })
}

async fn run(args: Args) -> Result<()> {
    let listen = args.listen_socket();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!("cannot listen on {listen}: choose another --web.listen-address")
        })?;
    let listen = listener.local_addr().unwrap_or(listen);
    let web = match &args.web_config_file {
        Some(path) => WebConfig::load(path).context("--web.config.file")?,
        None => WebConfig::default(),
    };
    let probe_listener = match args.probe_socket() {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr}: choose another --web.probe-listen-address")
        })?),
        None => None,
    };
    let probe_addr = probe_listener.as_ref().and_then(|l| l.local_addr().ok());

    // The demo cluster lives as long as `run`; dropping it stops its server and tasks.
    let (config, demo_cluster) = if args.demo {
        let sim = Arc::new(
            demo::start()
                .await
                .context("cannot start the demo cluster")?,
        );
        let url = sim.url().parse().context("demo cluster URL")?;
        let scenario = {
            let sim = sim.clone();
            tokio::spawn(async move { demo::run_scenario(&sim).await })
        };
        warn!(api = %sim.url(), "--demo: watching a simulated cluster, not a real one");
        (Config::new(url), Some((sim, scenario)))
    } else {
        (
            client_config(args.kubeconfig.as_deref(), args.context.as_deref()).await?,
            None,
        )
    };
    let server_url = config.cluster_url.to_string();

    let base_buckets = if args.buckets.is_empty() {
        DEFAULT_BUCKETS.to_vec()
    } else {
        args.buckets.clone()
    };
    let model_config = ModelConfig::with_buckets(&base_buckets, &args.slo_thresholds())
        .with_namespaces(&args.namespaces)
        .with_kinds(&args.kinds())
        .with_stuck_reasons(!args.no_stuck_reasons);
    let shared = Arc::new(Shared::with_failure_timeout(
        Model::new(model_config),
        std::time::Duration::from_secs(args.failure_timeout_secs),
    ));
    // Retries go through the watchers' backoff rather than kube's client-level retry of
    // 429/503/504, so every answer the API server gives reaches the health observer and the
    // self-metrics: throttling is visible, not absorbed.
    let mut config = config;
    config.default_retry = false;
    let client = kube::client::ClientBuilder::try_from(config)
        .context("cannot build a Kubernetes client from the configuration")?
        .build();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let registry = Arc::new(metrics::registry(
        shared.clone(),
        args.histograms_per_namespace,
    ));
    let scrapes =
        (args.max_requests > 0).then(|| Arc::new(tokio::sync::Semaphore::new(args.max_requests)));
    let server = Arc::new(http::Server {
        shared: shared.clone(),
        registry: registry.clone(),
        telemetry_path: args.telemetry_path.clone(),
        web: web.clone(),
        scrapes: scrapes.clone(),
        probes_only: false,
        board: !args.disable_board,
        slo_threshold_secs: args.slo_thresholds().into_iter().min().unwrap_or(900),
    });
    let mut servers = vec![tokio::spawn(http::serve(listener, server, stopped.clone()))];
    if let Some(probes) = probe_listener {
        let server = Arc::new(http::Server {
            shared: shared.clone(),
            registry,
            telemetry_path: args.telemetry_path.clone(),
            web: WebConfig::default(),
            scrapes,
            probes_only: true,
            board: false,
            slo_threshold_secs: 0,
        });
        servers.push(tokio::spawn(http::serve(probes, server, stopped)));
    }

    // Watches start once the shard is known; automatic sharding asks the API server, which may
    // not be up yet: the HTTP server already answers (not ready) meanwhile.
    let watches = {
        let (shared, args) = (shared.clone(), args.clone());
        tokio::spawn(async move {
            let sharding = match args.shard_source() {
                ShardSource::Flags(sharding) => sharding,
                ShardSource::StatefulSetPod { pod, namespace } => {
                    discover_shard(&client, &pod, &namespace).await
                }
            };
            let selection = Arc::new(args.selection(sharding));
            let _ = shared.sharding.set(selection.sharding);
            let config = watch::Config {
                selection,
                page_size: args.page_size,
                kinds: args.kinds(),
            };
            let mut tasks = watch::spawn(client.clone(), &config, shared.clone());
            // With --no-stuck-reasons it still notes overdue pods and logs them, asking nothing.
            tasks.push(tokio::spawn(inspect::run(client, shared)));
            futures::future::join_all(tasks).await;
        })
    };
    info!(
        version = metrics::VERSION,
        listen = %listen,
        tls = web.tls.is_some(),
        basic_auth = !web.users.is_empty(),
        probe_listen = ?probe_addr,
        api_server = %server_url,
        namespaces = ?args.namespaces,
        "kube-rollout-exporter started"
    );

    shutdown_signal().await;
    info!("shutting down");
    let _ = stop.send(true);
    watches.abort();
    if let Some((_, scenario)) = &demo_cluster {
        scenario.abort();
    }
    for s in servers {
        let _ = s.await;
    }
    Ok(())
}

/// Automatic sharding: the shard is this pod's StatefulSet ordinal, the total its StatefulSet's
/// replicas. Retries with backoff until the API server answers; a pod that is not part of a
/// StatefulSet is a configuration error that retrying will not fix, so it is logged and retried
/// slowly too (the exporter stays not ready, which the rollout of the exporter itself shows).
async fn discover_shard(client: &Client, pod: &str, namespace: &str) -> Sharding {
    let mut delay = std::time::Duration::from_millis(500);
    loop {
        match try_discover_shard(client, pod, namespace).await {
            Ok(s) => {
                info!(shard = s.shard, total = s.total, "automatic sharding");
                return s;
            }
            Err(e) => {
                warn!(error = %format!("{e:#}"), "automatic sharding: retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

async fn try_discover_shard(client: &Client, pod: &str, namespace: &str) -> Result<Sharding> {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::Pod;
    let p = kube::Api::<Pod>::namespaced(client.clone(), namespace)
        .get(pod)
        .await
        .with_context(|| format!("cannot get pod {namespace}/{pod} (--pod)"))?;
    let owner = p
        .metadata
        .owner_references
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.controller == Some(true) && r.kind == "StatefulSet")
        .ok_or_else(|| {
            anyhow!(
                "pod {namespace}/{pod} is not part of a StatefulSet: use --shard and --total-shards"
            )
        })?;
    let sts = kube::Api::<StatefulSet>::namespaced(client.clone(), namespace)
        .get(&owner.name)
        .await
        .with_context(|| format!("cannot get statefulset {namespace}/{}", owner.name))?;
    let total = sts.spec.and_then(|s| s.replicas).unwrap_or(1).max(1) as u64;
    let shard = shard::ordinal_of(pod).ok_or_else(|| anyhow!("pod name {pod} has no ordinal"))?;
    if shard >= total {
        return Err(anyhow!(
            "ordinal {shard} of {pod} is not below the StatefulSet's {total} replicas"
        ));
    }
    Ok(Sharding { shard, total })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(super::colour(true, None));
        assert!(
            super::colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
        assert!(!super::colour(true, Some(OsStr::new("1"))));
        assert!(!super::colour(false, None), "a file or a pipe");
    }
}
