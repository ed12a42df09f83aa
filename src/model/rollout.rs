//! One rollout of one workload: its start, its milestones, how it ended, and the phase it shows.

use super::Timestamp;

/// The `phase` label of `kube_rollout_phase`; the first that applies wins, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Progressing=False with reason ProgressDeadlineExceeded.
    Stalled,
    /// `spec.paused`.
    Paused,
    /// A rollout in flight that has not reached ready.
    Progressing,
    /// A rollout in flight that is ready: old pods are still terminating or running.
    Draining,
    /// Nothing in flight.
    Complete,
}

impl Phase {
    /// Every phase, in the order the metric lists them.
    pub const ALL: [Phase; 5] = [
        Phase::Stalled,
        Phase::Paused,
        Phase::Progressing,
        Phase::Draining,
        Phase::Complete,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Stalled => "stalled",
            Phase::Paused => "paused",
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
    /// From start until complete, superseded or the Deployment's deletion.
    InFlight,
    /// Ready, and no old pod left (the time is when that was observed).
    Complete(Timestamp),
    /// A newer revision started before this one completed.
    Superseded(Timestamp),
    /// The Deployment was deleted before the rollout completed.
    Abandoned(Timestamp),
}

/// The most recent rollout of a workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollout {
    pub revision: Option<u64>,
    /// Receive time of the Deployment event that changed the revision; after an exporter restart,
    /// the current ReplicaSet's creationTimestamp (server clock), or `None` when that cannot be known.
    pub start: Option<Timestamp>,
    /// When the exporter first knew of this rollout: the lower bound of its age when `start` is
    /// unknown.
    pub known_since: Timestamp,
    pub ready: Milestone,
    pub state: RolloutState,
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
