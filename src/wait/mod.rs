//! `kube-rollout-exporter wait`: blocks until rollouts are really complete (or ready, kubectl's
//! moment), for deploy pipelines, with the exporter's own model and so the same numbers.
//!
//! [`decide`] is pure (where a workload stands, the drains seen, what is shown, the exit code),
//! with time passed in; [`run`] is the thin adapter: it finds the workloads, starts the
//! exporter's list-and-watch loops on exactly what each needs ([`crate::watch::spawn_workload`]),
//! each feeding a private [`crate::model::Model`], and prints.

pub mod decide;
pub mod run;

pub use decide::Goal;
pub use run::{Outcome, Request, Target, WaitError, run};
