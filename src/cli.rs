//! Command-line flags, in the Prometheus exporter convention (`--web.listen-address`, ...).

use std::net::SocketAddr;

use clap::{Parser, Subcommand, ValueEnum};

use crate::model::{DEFAULT_SLO_THRESHOLD_SECS, WorkloadKind};
use crate::selection::{Selection, WorkloadPattern};
use crate::shard::Sharding;
use crate::wait::{Goal, Target};

/// The default port. The exporter port range 9100-9999 of the Prometheus wiki is fully
/// allocated, so this one lies outside it, where it collides with none of the exporters listed
/// there (nor with kube-state-metrics' 8080/8081).
pub const DEFAULT_PORT: u16 = 10360;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Where this exporter's shard comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardSource {
    /// `--shard` and `--total-shards` (by default, the one shard of one).
    Flags(Sharding),
    /// Automatic sharding (`--pod`, `--pod-namespace`): the ordinal of this pod of a StatefulSet
    /// and the StatefulSet's replicas, which only the API server knows.
    StatefulSetPod { pod: String, namespace: String },
}

/// The Kubernetes rollout lifecycle as Prometheus metrics: terminating pods per workload, drain
/// durations, time to ready and to fully complete, stuck terminations.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "kube-rollout-exporter",
    version,
    about,
    max_term_width = 100,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// Without a subcommand, the exporter runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Run against a built-in simulated cluster (a few Deployments rolling out now and then)
    /// instead of a real one.
    #[arg(long)]
    pub demo: bool,

    /// Kubeconfig file. Without it: $KUBECONFIG, ~/.kube/config, then the in-cluster service
    /// account.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,

    /// Kubeconfig context to use instead of the current one.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Watch only this namespace (repeatable). Default: all namespaces.
    #[arg(long = "namespace", short = 'n', value_name = "NS")]
    pub namespaces: Vec<String>,

    /// The workload kinds to measure, comma-separated: deployment, statefulset, daemonset
    /// (kubectl's short forms deploy, sts, ds too). Dropping a kind drops its watches.
    #[arg(
        long,
        value_name = "KIND,...",
        value_delimiter = ',',
        value_parser = parse_kind,
        default_value = "deployment,statefulset,daemonset"
    )]
    pub kinds: Vec<WorkloadKind>,

    /// Label selector for workloads (e.g. `team=payments,tier!=batch`); their ReplicaSets,
    /// ControllerRevisions and pods follow by ownership.
    #[arg(long, short = 'l', value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Address to listen on for HTTP: `host:port`, or `:port` for every interface.
    #[arg(long = "web.listen-address", value_name = "ADDR", default_value_t = format!(":{DEFAULT_PORT}"), value_parser = parse_listen_address)]
    pub listen_address: String,

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics", value_parser = parse_path)]
    pub telemetry_path: String,

    /// Objects per page of the lists that start (and restart) every watch.
    #[arg(long = "watch.page-size", value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,

    /// A watch that fails for this long without any successful list or watch makes /readyz
    /// answer 503 (and `kube_rollout_exporter_synced` 0).
    #[arg(long = "watch.failure-timeout", value_name = "DURATION", default_value = "1m", value_parser = parse_duration_secs)]
    pub failure_timeout_secs: u64,

    /// Exporter-toolkit web configuration (YAML) enabling TLS, client certificates and basic
    /// authentication on the listener.
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config_file: Option<std::path::PathBuf>,

    /// A second, plain-HTTP listener serving only /healthz and /readyz, for kubelet probes when
    /// the main listener requires TLS client certificates or authentication.
    #[arg(long = "web.probe-listen-address", value_name = "ADDR", value_parser = parse_listen_address)]
    pub probe_listen_address: Option<String>,

    /// Maximum number of concurrent scrapes; 0 disables the limit.
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = 40)]
    pub max_requests: usize,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Deploy-duration SLO threshold (repeatable): a rollout still in flight at this age counts in
    /// `kube_rollout_slow_total{threshold_seconds}`. Seconds, or with a unit: 900, 900s, 15m, 1h.
    #[arg(long = "slo-threshold", value_name = "DURATION", value_parser = parse_duration_secs)]
    pub slo_thresholds: Vec<u64>,

    /// This exporter's shard, from 0 to --total-shards minus 1. A workload (a Deployment with its
    /// ReplicaSets and Pods) always lands in one shard.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub shard: u64,

    /// Number of shards the workloads are split across.
    #[arg(long = "total-shards", value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub total_shards: u64,

    /// Automatic sharding: the name of this pod of a StatefulSet; the shard is its ordinal and the
    /// total its StatefulSet's replicas (needs get on pods and statefulsets in its namespace).
    #[arg(long, value_name = "NAME", requires = "pod_namespace", conflicts_with_all = ["shard", "total_shards"])]
    pub pod: Option<String>,

    /// The namespace of --pod.
    #[arg(long = "pod-namespace", value_name = "NS", requires = "pod")]
    pub pod_namespace: Option<String>,

    /// Export only workloads matching this `namespace/name` pattern (`*` wildcards; repeatable;
    /// default: all). A pattern without `/` matches the name in every namespace.
    #[arg(long = "workloads.allow", value_name = "PATTERN", value_parser = WorkloadPattern::parse)]
    pub allow: Vec<WorkloadPattern>,

    /// Never export workloads matching this `namespace/name` pattern (repeatable; wins over
    /// --workloads.allow).
    #[arg(long = "workloads.deny", value_name = "PATTERN", value_parser = WorkloadPattern::parse)]
    pub deny: Vec<WorkloadPattern>,

    /// Histograms per namespace instead of per workload: the `workload` label of the three
    /// histograms is empty and their series are summed over the namespace's workloads (gauges
    /// and counters stay per workload).
    #[arg(long = "histograms.per-namespace")]
    pub histograms_per_namespace: bool,

    /// Histogram bucket upper bounds in seconds, comma-separated, replacing the defaults (each
    /// SLO threshold is always added).
    #[arg(long, value_name = "SECONDS,...", value_delimiter = ',', value_parser = parse_bucket)]
    pub buckets: Vec<f64>,

    /// No live board: `/` is a page of links and /api/v1/rollouts is not served (metrics only).
    #[arg(long = "web.disable-board")]
    pub disable_board: bool,

    /// Do not tell why overdue pods are stuck: no GET of overdue pods and their nodes (the
    /// `reason` is then `finalizers` for a finished pod held by finalizers, else `unknown`).
    #[arg(long = "no-stuck-reasons")]
    pub no_stuck_reasons: bool,
}

/// What the binary does besides exporting.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Block until rollouts are really complete: ready (kubectl's test) and every old pod gone.
    /// Exit 0 when every workload reached the milestone, 1 when any did not (timeout, a
    /// Deployment past its progress deadline, not found or deleted, the API server unreachable,
    /// -l or --all matching nothing), 2 for bad usage.
    Wait(WaitArgs),
}

/// The output of `wait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// `wait`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub struct WaitArgs {
    /// Workloads as KIND/NAME (KIND: deployment, statefulset, daemonset, or deploy, sts, ds);
    /// with -l or --all, a bare KIND limits the kinds picked.
    #[arg(value_name = "KIND/NAME", value_parser = parse_target)]
    pub targets: Vec<Target>,

    /// Namespace of the workloads. Default: the kubeconfig context's.
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,

    /// Every workload (of the kinds given, else all three) matching this label selector.
    #[arg(long, short = 'l', value_name = "SELECTOR", conflicts_with = "all")]
    pub selector: Option<String>,

    /// Every workload (of the kinds given, else all three) in the namespace.
    #[arg(long)]
    pub all: bool,

    /// The milestone: complete (ready, and every old pod gone) or ready (kubectl's moment).
    #[arg(long = "for", value_enum, default_value_t = Goal::Complete)]
    pub goal: Goal,

    /// Give up after this long (900, 900s, 15m, 1h). kubectl's own default is no timeout; this
    /// one's is 10m, so a stuck pod cannot hold a pipeline forever.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration_secs)]
    pub timeout: u64,

    /// Progress and summary as text, or one JSON document on stdout at the end
    /// (docs/wait-output.schema.json; live lines then go to stderr, on a terminal only).
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// Kubeconfig file. Without it: $KUBECONFIG, ~/.kube/config, then the in-cluster service
    /// account.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,

    /// Kubeconfig context to use instead of the current one.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl WaitArgs {
    /// What clap cannot express: named workloads, or -l / --all with at most bare kinds.
    pub fn validate(&self) -> Result<(), String> {
        let named = self.targets.iter().any(|t| matches!(t, Target::Named(..)));
        let picking = self.selector.is_some() || self.all;
        if picking && named {
            return Err(
                "name workloads (KIND/NAME) or pick them with -l or --all, not both".into(),
            );
        }
        if !picking && !named {
            return Err(
                "nothing to wait for: name workloads as KIND/NAME (e.g. deploy/web) or use -l or --all"
                    .into(),
            );
        }
        if !picking
            && let Some(Target::Kind(k)) =
                self.targets.iter().find(|t| matches!(t, Target::Kind(_)))
        {
            return Err(format!(
                "'{}' names no workload: use {}/NAME, or -l or --all",
                k.as_str(),
                k.as_str()
            ));
        }
        Ok(())
    }
}

/// `deploy/web` → a named workload; `deploy` → a kind (for -l and --all).
fn parse_target(s: &str) -> Result<Target, String> {
    match s.split_once('/') {
        Some((kind, name)) if !name.is_empty() && !name.contains('/') => {
            Ok(Target::Named(parse_kind(kind)?, name.to_string()))
        }
        Some(_) => Err(format!("'{s}' is not KIND/NAME (e.g. deploy/web)")),
        None => parse_kind(s).map(Target::Kind),
    }
}

impl Args {
    /// Checks what clap cannot express: the shard lies within the total; `wait`'s targets.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(Command::Wait(w)) = &self.command {
            return w.validate();
        }
        if self.shard >= self.total_shards {
            return Err(format!(
                "--shard {} is out of range: shards are numbered 0 to {} for --total-shards {}",
                self.shard,
                self.total_shards - 1,
                self.total_shards
            ));
        }
        Ok(())
    }

    /// Where the shard comes from: the flags, or the API server (automatic sharding).
    pub fn shard_source(&self) -> ShardSource {
        match (&self.pod, &self.pod_namespace) {
            (Some(pod), Some(namespace)) => ShardSource::StatefulSetPod {
                pod: pod.clone(),
                namespace: namespace.clone(),
            },
            // clap lets --pod through only with --pod-namespace.
            _ => ShardSource::Flags(Sharding {
                shard: self.shard,
                total: self.total_shards,
            }),
        }
    }

    /// The workloads this exporter watches and keeps, from the flags, in `sharding` (the
    /// [`shard_source`](Self::shard_source)'s, once known): the one place the flags become a
    /// [`Selection`], which the watches and the shared state are then handed.
    pub fn selection(&self, sharding: Sharding) -> Selection {
        Selection {
            namespaces: self.namespaces.clone(),
            selector: self.selector.clone(),
            sharding,
            allow: self.allow.clone(),
            deny: self.deny.clone(),
        }
    }

    /// The workload kinds measured, sorted and deduplicated.
    pub fn kinds(&self) -> Vec<WorkloadKind> {
        let mut kinds = self.kinds.clone();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// The SLO thresholds in seconds, the default when none is given.
    pub fn slo_thresholds(&self) -> Vec<u64> {
        if self.slo_thresholds.is_empty() {
            vec![DEFAULT_SLO_THRESHOLD_SECS]
        } else {
            self.slo_thresholds.clone()
        }
    }

    /// The socket address to bind.
    pub fn listen_socket(&self) -> SocketAddr {
        socket(&self.listen_address)
    }

    /// The probe listener's address, when configured.
    pub fn probe_socket(&self) -> Option<SocketAddr> {
        self.probe_listen_address.as_deref().map(socket)
    }
}

/// A validated listen address; `:port` means every IPv4 interface.
fn socket(addr: &str) -> SocketAddr {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    full.parse()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)))
}

fn parse_listen_address(s: &str) -> Result<String, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse::<SocketAddr>()
        .map(|_| s.to_string())
        .map_err(|_| {
            format!(
                "'{s}' is not host:port or :port (e.g. 127.0.0.1:{DEFAULT_PORT} or :{DEFAULT_PORT})"
            )
        })
}

fn parse_path(s: &str) -> Result<String, String> {
    if s.starts_with('/')
        && !s.contains(char::is_whitespace)
        && !matches!(s, "/" | "/healthz" | "/readyz")
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' must start with '/' and not be /, /healthz or /readyz"
        ))
    }
}

/// `900`, `900s`, `15m`, `1h`, `1h30m` → seconds.
pub fn parse_duration_secs(s: &str) -> Result<u64, String> {
    let err = || format!("'{s}' is not a duration (e.g. 900, 900s, 15m, 1h)");
    if let Ok(n) = s.parse::<u64>() {
        return (n > 0).then_some(n).ok_or_else(err);
    }
    let mut total = 0u64;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().map_err(|_| err())?;
        digits.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(err()),
        };
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(err)?)
            .ok_or_else(err)?;
    }
    if !digits.is_empty() || total == 0 {
        return Err(err());
    }
    Ok(total)
}

fn parse_kind(s: &str) -> Result<WorkloadKind, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" => Ok(WorkloadKind::Deployment),
        "statefulset" | "statefulsets" | "sts" => Ok(WorkloadKind::StatefulSet),
        "daemonset" | "daemonsets" | "ds" => Ok(WorkloadKind::DaemonSet),
        _ => Err(format!(
            "'{s}' is not a workload kind: use deployment, statefulset or daemonset"
        )),
    }
}

fn parse_bucket(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_a_subcommand_and_the_exporter_stays_the_default() {
        let parse =
            |args: &[&str]| Args::try_parse_from(std::iter::once("x").chain(args.iter().copied()));
        let a = parse(&[
            "wait",
            "deploy/web",
            "sts/pg",
            "-n",
            "shop",
            "--for",
            "ready",
            "--timeout",
            "2m",
            "-o",
            "json",
        ])
        .expect("valid");
        let Some(Command::Wait(w)) = &a.command else {
            panic!("wait expected");
        };
        assert_eq!(
            w.targets,
            [
                Target::Named(WorkloadKind::Deployment, "web".into()),
                Target::Named(WorkloadKind::StatefulSet, "pg".into())
            ]
        );
        assert_eq!(
            (w.namespace.as_deref(), w.goal, w.timeout, w.output),
            (Some("shop"), Goal::Ready, 120, Output::Json)
        );
        assert!(a.validate().is_ok());
        let d = parse(&["wait", "ds", "-l", "app=x"]).expect("valid");
        assert!(d.validate().is_ok());
        let Some(Command::Wait(w)) = &d.command else {
            panic!("wait expected");
        };
        assert_eq!((w.goal, w.timeout), (Goal::Complete, 600));
        assert!(
            parse(&["wait"]).expect("parses").validate().is_err(),
            "nothing to wait for"
        );
        assert!(
            parse(&["wait", "deploy/web", "--all"])
                .expect("parses")
                .validate()
                .is_err()
        );
        assert!(
            parse(&["wait", "deploy"])
                .expect("parses")
                .validate()
                .is_err()
        );
        assert!(parse(&["wait", "cronjob/x"]).is_err());
        assert!(parse(&["wait", "-l", "a=b", "--all"]).is_err());
        assert!(
            parse(&["--demo", "wait", "deploy/web"]).is_err(),
            "exporter flags are not wait's"
        );
        assert!(parse(&["--demo"]).expect("the exporter").command.is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("900"), Ok(900));
        assert_eq!(parse_duration_secs("15m"), Ok(900));
        assert_eq!(parse_duration_secs("1h30m"), Ok(5400));
        assert!(parse_duration_secs("0").is_err());
        assert!(parse_duration_secs("15x").is_err());
        assert!(parse_duration_secs("m").is_err());
        assert!(parse_duration_secs("").is_err());
    }

    #[test]
    fn kinds_default_to_all_three_and_take_kubectl_s_short_forms() {
        let all = [
            WorkloadKind::Deployment,
            WorkloadKind::StatefulSet,
            WorkloadKind::DaemonSet,
        ];
        let parse = |args: &[&str]| {
            Args::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
                .map(|a| a.kinds())
        };
        assert_eq!(parse(&[]).ok(), Some(all.to_vec()));
        assert_eq!(
            parse(&["--kinds", "sts,deploy,sts"]).ok(),
            Some(vec![WorkloadKind::Deployment, WorkloadKind::StatefulSet])
        );
        assert_eq!(
            parse(&["--kinds=ds"]).ok(),
            Some(vec![WorkloadKind::DaemonSet])
        );
        let err = parse(&["--kinds", "cronjob"]).expect_err("not a kind");
        assert!(
            err.to_string()
                .contains("use deployment, statefulset or daemonset")
        );
    }

    #[test]
    fn flags_in_the_exporter_convention() {
        let a = Args::try_parse_from([
            "x",
            "--web.listen-address",
            "127.0.0.1:1234",
            "--namespace",
            "a",
            "-n",
            "b",
            "--slo-threshold",
            "10m",
            "--slo-threshold",
            "1h",
            "--buckets",
            "1,5,30",
            "--log.format",
            "json",
        ])
        .expect("valid flags");
        assert_eq!(a.listen_socket().to_string(), "127.0.0.1:1234");
        assert_eq!(a.namespaces, ["a", "b"]);
        assert_eq!(a.slo_thresholds(), [600, 3600]);
        assert_eq!(a.buckets, [1.0, 5.0, 30.0]);
        assert_eq!(a.log_format, LogFormat::Json);
        let d = Args::try_parse_from(["x"]).expect("defaults");
        assert_eq!(d.listen_socket().port(), DEFAULT_PORT);
        assert_eq!(d.telemetry_path, "/metrics");
        assert_eq!(d.slo_thresholds(), [900]);
        let sharded =
            Args::try_parse_from(["x", "--shard", "3", "--total-shards", "3"]).expect("parses");
        assert!(sharded.validate().is_err(), "shard 3 of 3 is out of range");
        assert!(
            Args::try_parse_from(["x", "--pod", "e-1"]).is_err(),
            "--pod needs --pod-namespace"
        );
        assert!(
            Args::try_parse_from(["x", "--pod", "e-1", "--pod-namespace", "m", "--shard", "1"])
                .is_err()
        );
        for bad in [
            vec!["x", "--total-shards", "0"],
            vec!["x", "--web.listen-address", "nope"],
            vec!["x", "--web.telemetry-path", "metrics"],
            vec!["x", "--slo-threshold", "soon"],
            vec!["x", "--buckets", "1,-2"],
            vec!["x", "--log.level", "loud"],
        ] {
            assert!(Args::try_parse_from(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_selection_and_the_shard_come_from_the_flags() {
        let a = Args::try_parse_from([
            "x",
            "-n",
            "shop",
            "-l",
            "team=a",
            "--shard",
            "1",
            "--total-shards",
            "3",
            "--workloads.allow",
            "shop/*",
            "--workloads.deny",
            "*-canary",
        ])
        .expect("valid flags");
        let sharding = Sharding { shard: 1, total: 3 };
        assert_eq!(a.shard_source(), ShardSource::Flags(sharding));
        let s = a.selection(sharding);
        assert_eq!(
            (s.namespaces, s.selector.as_deref(), s.sharding),
            (vec!["shop".to_string()], Some("team=a"), sharding)
        );
        assert_eq!(
            (s.allow, s.deny),
            (
                vec![WorkloadPattern::parse("shop/*").expect("pattern")],
                vec![WorkloadPattern::parse("*-canary").expect("pattern")]
            )
        );
        let auto = Args::try_parse_from(["x", "--pod", "e-2", "--pod-namespace", "mon"])
            .expect("valid flags");
        assert_eq!(
            auto.shard_source(),
            ShardSource::StatefulSetPod {
                pod: "e-2".into(),
                namespace: "mon".into()
            }
        );
        assert_eq!(
            Args::try_parse_from(["x"])
                .expect("defaults")
                .shard_source(),
            ShardSource::Flags(Sharding::default())
        );
    }
}
