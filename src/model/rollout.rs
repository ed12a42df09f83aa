//! One rollout of one workload: its start, its milestones, how it ended, and the phase it shows.

use super::{Timestamp, WorkloadKind};

/// The `phase` label of `kube_rollout_phase`; the first that applies wins, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Progressing=False with reason ProgressDeadlineExceeded (Deployments).
    Stalled,
    /// `spec.paused` (Deployments).
    Paused,
    /// An OnDelete rollout in flight with nothing terminating and every pod ready: it waits for
    /// people to delete the old pods.
    Waiting,
    /// A rollout in flight that has not reached ready.
    Progressing,
    /// A rollout in flight that is ready: old pods are still terminating or running.
    Draining,
    /// Nothing in flight.
    Complete,
}

impl Phase {
    /// The phases a workload of `kind` can show, in the order the metric lists them: `stalled`
    /// and `paused` are Deployment conditions; `waiting` needs OnDelete, which Deployments lack.
    pub fn of(kind: WorkloadKind) -> &'static [Phase] {
        match kind {
            WorkloadKind::Deployment => &[
                Phase::Stalled,
                Phase::Paused,
                Phase::Progressing,
                Phase::Draining,
                Phase::Complete,
            ],
            WorkloadKind::StatefulSet | WorkloadKind::DaemonSet => &[
                Phase::Waiting,
                Phase::Progressing,
                Phase::Draining,
                Phase::Complete,
            ],
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Stalled => "stalled",
            Phase::Paused => "paused",
            Phase::Waiting => "waiting",
            Phase::Progressing => "progressing",
            Phase::Draining => "draining",
            Phase::Complete => "complete",
        }
    }
}

/// A milestone of a rollout. `Reached(None)` is reached at a time nobody can know: recovered after
/// an exporter restart from a Deployment without a Progressing condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Milestone {
    NotReached,
    Reached(Option<Timestamp>),
}

impl Milestone {
    pub fn is_reached(self) -> bool {
        matches!(self, Milestone::Reached(_))
    }

    pub fn time(self) -> Option<Timestamp> {
        match self {
            Milestone::Reached(t) => t,
            Milestone::NotReached => None,
        }
    }
}

/// How a rollout stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutState {
    /// From start until complete, superseded or the workload's deletion.
    InFlight,
    /// Ready, and no old pod left (the time is when that was observed).
    Complete(Timestamp),
    /// A newer revision started before this one completed.
    Superseded(Timestamp),
    /// The workload was deleted before the rollout completed.
    Abandoned(Timestamp),
}

/// The most recent rollout of a workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollout {
    /// The update revision's number, once the controller wrote it (after the start).
    pub revision: Option<u64>,
    /// Receive time of the workload event that changed its pod template with its generation (or
    /// of the fallback's generation increase); after an exporter restart, the update revision's
    /// creationTimestamp (server clock); `None` when that cannot be known.
    pub start: Option<Timestamp>,
    /// When the exporter first knew of this rollout: the lower bound of its age when `start` is
    /// unknown.
    pub known_since: Timestamp,
    pub ready: Milestone,
    pub state: RolloutState,
    /// An OnDelete rollout: its durations are not observed and it is never slow.
    pub waits_for_people: bool,
    /// For each configured SLO threshold (same order), whether `kube_rollout_slow_total` already
    /// counted this rollout.
    pub slow_counted: Vec<bool>,
}

impl Rollout {
    pub fn in_flight(&self) -> bool {
        self.state == RolloutState::InFlight
    }

    /// Age of a rollout in flight at `now`: from its start, or from when the exporter first knew of
    /// it when the start is unknown (a lower bound). Paused time counts.
    pub fn age(&self, now: Timestamp) -> f64 {
        now.seconds_since(self.start.unwrap_or(self.known_since))
            .max(0.0)
    }
}
