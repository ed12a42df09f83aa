//! One workload's series in a scrape, by namespace, name and kind, for the end-to-end tests of
//! every workload kind.

use kube_sim::Kind;

use super::exporter::Scrape;

/// One workload's series: namespace, name and kind.
#[derive(Clone, Copy)]
pub struct W(pub &'static str, pub &'static str, pub &'static str);

impl W {
    pub fn get(self, s: &Scrape, metric: &str, more: &[(&str, &str)]) -> Option<f64> {
        let mut labels = vec![
            ("namespace", self.0),
            ("workload", self.1),
            ("workload_type", self.2),
        ];
        labels.extend_from_slice(more);
        s.get(metric, &labels)
    }

    pub fn phase(self, s: &Scrape) -> Option<&'static str> {
        ["waiting", "progressing", "draining", "complete"]
            .into_iter()
            .find(|p| self.get(s, "kube_rollout_phase", &[("phase", p)]) == Some(1.0))
    }

    pub fn started(self, s: &Scrape) -> f64 {
        self.get(s, "kube_rollout_started_total", &[])
            .unwrap_or(-1.0)
    }

    pub fn count(self, s: &Scrape, metric: &str, more: &[(&str, &str)]) -> f64 {
        self.get(s, &format!("{metric}_count"), more).unwrap_or(0.0)
    }

    pub fn sum(self, s: &Scrape, metric: &str, more: &[(&str, &str)]) -> f64 {
        self.get(s, &format!("{metric}_sum"), more).unwrap_or(0.0)
    }

    pub fn completes(self, s: &Scrape) -> f64 {
        self.count(s, "kube_rollout_duration_seconds", COMPLETE)
    }

    pub fn terminations(self, s: &Scrape) -> f64 {
        self.count(s, "kube_rollout_pod_termination_duration_seconds", &[])
    }

    pub fn kind(self) -> Kind {
        match self.2 {
            "statefulset" => Kind::StatefulSet,
            "daemonset" => Kind::DaemonSet,
            _ => Kind::Deployment,
        }
    }
}

pub const READY: &[(&str, &str)] = &[("milestone", "ready")];
pub const COMPLETE: &[(&str, &str)] = &[("milestone", "complete")];
