//! The soak: continuous churn against the real exporter for a bounded number of minutes, with
//! its resident memory and open file descriptors sampled every 10 s. One command:
//!
//! ```sh
//! cargo run --release --example soak -- --minutes 10 --deployments 20
//! ```
//!
//! It builds the release binary, starts the simulated cluster in-process, starts the exporter
//! against it, rolls every Deployment over and over (2 s drains), and at the end prints a table
//! and whether memory and descriptors stayed flat (last sample within 10% + 4 MiB of the sample
//! taken after the first minute; descriptors within 4). Exit status 1 if not.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube_sim::{SimCluster, SimConfig, SimDeployment};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn resources(pid: u32) -> (u64, usize) {
    let p = kube_rollout_exporter::process::read_pid(pid).unwrap_or_default();
    (p.resident_bytes, p.open_fds as usize)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let minutes = arg("--minutes", 5);
    let deployments = arg("--deployments", 20) as usize;
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "kube-rollout-exporter"])
        .status()?;
    if !status.success() {
        return Err("building the exporter failed".into());
    }
    let binary = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/release/kube-rollout-exporter");

    let sim = SimCluster::start(SimConfig::default()).await?;
    for i in 0..deployments {
        sim.create_deployment(
            &SimDeployment::new("soak", &format!("app-{i}"))
                .drain_seconds(2.0)
                .start_seconds(0.2),
        )?;
    }
    let dir = std::env::temp_dir().join(format!("kre-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;
    let mut child = Command::new(&binary)
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
            "--log.level",
            "warn",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let pid = child.id();
    // Keep draining the exporter's log so it never blocks on a full pipe.
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    }

    println!(
        "soak: {minutes} min, {deployments} Deployments x 3 pods, 2 s drains, exporter pid {pid}"
    );
    println!(
        "{:>8} {:>10} {:>8} {:>14}",
        "time_s", "rss_mib", "fds", "pod_lifecycles"
    );
    let start = Instant::now();
    let end = start + Duration::from_secs(minutes * 60);
    let mut version = 2u64;
    let mut lifecycles = 0u64;
    let mut samples = Vec::new();
    let mut next_sample = start;
    while Instant::now() < end {
        for i in 0..deployments {
            sim.set_image(
                "soak",
                &format!("app-{i}"),
                &format!("registry.local/app:v{version}"),
            )?;
        }
        version += 1;
        lifecycles += 3 * deployments as u64;
        // One round: new pods start (0.2 s each, one at a time) and old ones drain (2 s).
        tokio::time::sleep(Duration::from_secs(4)).await;
        if Instant::now() >= next_sample {
            let (rss, fds) = resources(pid);
            let t = start.elapsed().as_secs();
            println!(
                "{t:>8} {:>10.1} {fds:>8} {lifecycles:>14}",
                rss as f64 / 1048576.0
            );
            samples.push((t, rss, fds));
            next_sample += Duration::from_secs(10);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let baseline = samples
        .iter()
        .find(|s| s.0 >= 60)
        .or(samples.first())
        .copied();
    let last = samples.last().copied();
    let (Some((_, rss0, fds0)), Some((_, rss1, fds1))) = (baseline, last) else {
        return Err("no samples".into());
    };
    let flat = rss1 <= rss0 + rss0 / 10 + 4 * 1048576 && fds1 <= fds0 + 4;
    println!(
        "baseline {:.1} MiB / {fds0} fds, end {:.1} MiB / {fds1} fds, {lifecycles} pod lifecycles: {}",
        rss0 as f64 / 1048576.0,
        rss1 as f64 / 1048576.0,
        if flat { "flat" } else { "NOT flat" }
    );
    if flat {
        Ok(())
    } else {
        Err("memory or descriptors grew".into())
    }
}
