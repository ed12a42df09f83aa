//! Why a drain is stuck (`stuck.rs`), and whether a workload's grace period fits its drains:
//! which GETs the model asks for and when, the reason of each overdue pod, its one notice, the
//! grace-exhausted counter, the grace gauge and the revision info.

use super::*;

/// `web-a-1` deleted at 10 s with a 30 s grace: overdue after 40 s.
fn overdue_pod() -> PodState {
    deleting(pod("a", 1), 40.0, Some(30))
}

fn with_finalizer(mut p: PodState) -> PodState {
    p.finalizers = vec!["example.com/hold".into()];
    p
}

fn pod_ref(p: &PodState) -> PodRef {
    PodRef {
        namespace: p.key.namespace.clone(),
        name: p.key.name.clone(),
        uid: p.uid,
    }
}

fn read(node: Option<&str>, finished: bool) -> PodInspection {
    PodInspection::Read {
        node: node.map(str::to_string),
        finished,
    }
}

impl Cluster {
    fn work(&mut self, at: f64) -> StuckWork {
        self.model.stuck_work(t(at))
    }

    /// The pod went overdue and was read as `inspection`; its node (if any) was asked for and
    /// answered `health`. Returns the notices of the pass that settled it.
    fn diagnose(
        &mut self,
        p: &PodState,
        inspection: PodInspection,
        health: Option<NodeHealth>,
    ) -> Vec<OverdueNotice> {
        let work = self.work(41.0);
        assert_eq!(work.pods, vec![pod_ref(p)], "the overdue pod is asked for");
        let node = match &inspection {
            PodInspection::Read { node, .. } => node.clone(),
            _ => None,
        };
        self.model.pod_inspected(&pod_ref(p), inspection, t(41.1));
        let work = self.work(42.0);
        assert_eq!(work.nodes, node.iter().cloned().collect::<Vec<_>>());
        if let (Some(node), Some(health)) = (&node, health) {
            assert!(
                work.notices.is_empty(),
                "no notice before the node answered"
            );
            self.model.node_inspected(node, health);
            return self.work(43.0).notices;
        }
        work.notices
    }

    fn reasons(&mut self, at: f64) -> [u64; 4] {
        self.web(at).overdue_by_reason
    }
}

fn only(reason: StuckReason) -> [u64; 4] {
    let mut counts = [0; 4];
    counts[reason.index()] = 1;
    counts
}

#[test]
fn nothing_is_asked_for_a_pod_before_it_is_overdue_and_an_overdue_pod_is_asked_for_once() {
    let mut c = Cluster::steady_v1();
    c.pod(10.0, overdue_pod());
    for at in [10.0, 20.0, 39.9, 40.0] {
        let work = c.work(at);
        assert!(work.pods.is_empty() && work.notices.is_empty(), "at {at}");
    }
    assert_eq!(c.work(40.5).pods, vec![pod_ref(&overdue_pod())]);
    // Asked and not answered: not asked again until the refresh interval passed.
    assert!(c.work(41.0).pods.is_empty());
    assert!(c.work(40.5 + REFRESH_SECS as f64 - 0.1).pods.is_empty());
    assert_eq!(
        c.work(40.5 + REFRESH_SECS as f64).pods,
        vec![pod_ref(&overdue_pod())]
    );
    // The other two pods never terminated: never asked for.
    assert_eq!(c.web(100.0).terminating_pods, 1);
}

#[test]
fn node_lost_when_the_node_is_not_ready_unresponsive_or_gone_even_with_finalizers() {
    for health in [
        NodeHealth::NotReady,
        NodeHealth::Unresponsive,
        NodeHealth::Gone,
    ] {
        let mut c = Cluster::steady_v1();
        let p = with_finalizer(overdue_pod());
        c.pod(10.0, p.clone()).finished(30.0, &p);
        let notices = c.diagnose(&p, read(Some("n1"), true), Some(health));
        assert_eq!(c.reasons(44.0), only(StuckReason::NodeLost), "{health:?}");
        assert_eq!(notices.len(), 1);
        let n = &notices[0];
        assert_eq!(n.reason, StuckReason::NodeLost);
        assert_eq!(n.workload, WorkloadKey::deployment("shop", "web"));
        assert_eq!(n.pod, "web-a-1");
        assert_eq!(n.node.as_deref(), Some("n1"));
        assert_eq!(n.finalizers, vec!["example.com/hold".to_string()]);
        assert_secs(n.overdue_seconds, 3.0);
    }
}

#[test]
fn finalizers_when_the_containers_finished_and_a_finalizer_keeps_the_object() {
    // Finished according to the phase source, or to the GET.
    for (by_watch, by_get) in [(true, false), (false, true)] {
        let mut c = Cluster::steady_v1();
        let p = with_finalizer(overdue_pod());
        c.pod(10.0, p.clone());
        if by_watch {
            c.finished(35.0, &p);
        }
        let notices = c.diagnose(&p, read(Some("n1"), by_get), Some(NodeHealth::Ready));
        assert_eq!(c.reasons(44.0), only(StuckReason::Finalizers));
        assert_eq!(notices[0].reason, StuckReason::Finalizers);
    }
}

#[test]
fn still_running_on_a_ready_node_whether_or_not_the_containers_stopped() {
    // Containers still running (a kill that fails), or stopped with no finalizer and the object
    // still there (a volume that will not unmount): the kubelet has not finished either way.
    for finished in [false, true] {
        let mut c = Cluster::steady_v1();
        let p = overdue_pod();
        c.pod(10.0, p.clone());
        let notices = c.diagnose(&p, read(Some("n1"), finished), Some(NodeHealth::Ready));
        assert_eq!(c.reasons(44.0), only(StuckReason::StillRunning));
        assert_eq!(notices[0].reason, StuckReason::StillRunning);
        assert!(notices[0].finalizers.is_empty());
    }
}

#[test]
fn unknown_until_the_answers_are_in_and_when_the_pod_or_its_node_cannot_be_read() {
    let mut c = Cluster::steady_v1();
    let p = overdue_pod();
    c.pod(10.0, p.clone());
    assert_eq!(c.work(41.0).pods.len(), 1);
    assert_eq!(
        c.reasons(41.0),
        only(StuckReason::Unknown),
        "asked, not answered"
    );
    // The GET failed: unknown, noticed once, and asked again after the refresh interval.
    c.model
        .pod_inspected(&pod_ref(&p), PodInspection::Failed, t(41.1));
    let work = c.work(42.0);
    assert_eq!(work.notices.len(), 1);
    assert_eq!(work.notices[0].reason, StuckReason::Unknown);
    assert_eq!(work.notices[0].node, None);
    assert!(c.work(43.0).notices.is_empty(), "one notice per pod");
    assert_eq!(c.work(41.1 + REFRESH_SECS as f64).pods.len(), 1);

    // The node cannot be read (a namespaced install): unknown, except a finished pod held by
    // finalizers, which the watches alone tell.
    for (p, reason) in [
        (overdue_pod(), StuckReason::Unknown),
        (with_finalizer(overdue_pod()), StuckReason::Finalizers),
    ] {
        let mut c = Cluster::steady_v1();
        c.pod(10.0, p.clone()).finished(30.0, &p);
        let notices = c.diagnose(&p, read(Some("n1"), true), Some(NodeHealth::Unreadable));
        assert_eq!(c.reasons(44.0), only(reason));
        assert_eq!(notices[0].reason, reason);
    }

    // A pod bound to no node: nothing to ask about a node, unknown.
    let mut c = Cluster::steady_v1();
    let p = overdue_pod();
    c.pod(10.0, p.clone());
    let notices = c.diagnose(&p, read(None, false), None);
    assert_eq!(notices[0].reason, StuckReason::Unknown);
}

#[test]
fn with_stuck_reasons_off_nothing_is_asked_and_the_watches_still_tell_finalizers() {
    let cfg = ModelConfig::default().with_stuck_reasons(false);
    let mut c = Cluster::steady_v1_with(cfg);
    let held = with_finalizer(overdue_pod());
    c.pod(10.0, held.clone()).finished(30.0, &held);
    c.pod(10.0, deleting(pod("a", 2), 40.0, Some(30)));
    let work = c.work(41.0);
    assert!(work.pods.is_empty() && work.nodes.is_empty());
    let mut reasons: Vec<_> = work.notices.iter().map(|n| n.reason).collect();
    reasons.sort();
    assert_eq!(reasons, [StuckReason::Finalizers, StuckReason::Unknown]);
    assert_eq!(c.reasons(41.0), [0, 1, 0, 1]);
    assert!(c.work(100.0).notices.is_empty(), "one notice per pod");
}

#[test]
fn a_node_is_read_again_only_while_it_has_overdue_pods() {
    let mut c = Cluster::steady_v1();
    let (p1, p2) = (overdue_pod(), deleting(pod("a", 2), 40.0, Some(30)));
    c.pod(10.0, p1.clone()).pod(10.0, p2.clone());
    assert_eq!(c.work(41.0).pods.len(), 2);
    c.model
        .pod_inspected(&pod_ref(&p1), read(Some("n1"), false), t(41.1));
    c.model
        .pod_inspected(&pod_ref(&p2), read(Some("n1"), false), t(41.1));
    // One GET for the node both pods run on.
    assert_eq!(c.work(42.0).nodes, vec!["n1".to_string()]);
    c.model.node_inspected("n1", NodeHealth::NotReady);
    assert_eq!(c.work(43.0).notices.len(), 2);
    assert!(c.work(42.0 + REFRESH_SECS as f64 - 0.1).nodes.is_empty());
    assert_eq!(
        c.work(42.0 + REFRESH_SECS as f64).nodes,
        vec!["n1".to_string()]
    );
    // The node came back: the reason follows the fresh answer.
    c.model.node_inspected("n1", NodeHealth::Ready);
    assert_eq!(c.reasons(80.0), [0, 0, 2, 0]);
    // Once its pods are gone, its answer is forgotten: a later overdue pod there asks again.
    c.gone(90.0, p1).gone(90.0, p2);
    assert!(c.work(91.0).nodes.is_empty());
    let p3 = deleting(pod("a", 3), 130.0, Some(30));
    c.pod(100.0, p3.clone());
    assert_eq!(c.work(131.0).pods, vec![pod_ref(&p3)]);
    c.model
        .pod_inspected(&pod_ref(&p3), read(Some("n1"), false), t(131.1));
    assert_eq!(c.work(132.0).nodes, vec!["n1".to_string()]);
    assert_eq!(
        c.reasons(132.0),
        only(StuckReason::Unknown),
        "not answered yet"
    );
}

#[test]
fn a_pod_gone_before_its_answer_leaves_nothing_behind() {
    let mut c = Cluster::steady_v1();
    let p = overdue_pod();
    c.pod(10.0, p.clone());
    assert_eq!(c.work(41.0).pods.len(), 1);
    c.gone(41.05, p.clone());
    c.model
        .pod_inspected(&pod_ref(&p), read(Some("n1"), false), t(41.1));
    let work = c.work(42.0);
    assert!(work.pods.is_empty() && work.nodes.is_empty() && work.notices.is_empty());
    assert!(c.model.stuck.overdue.is_empty() && c.model.stuck.pending.is_empty());
    assert_eq!(c.web(42.0).terminating_pods_overdue, 0);
}

#[test]
fn terminations_that_use_up_their_grace_period_are_counted_within_the_second() {
    let mut c = Cluster::steady_v1();
    // Requested at 10 s (whole seconds), grace 30: a drain measured at 29.5 s ended within its
    // grace, one at 30.2 s did not; a pod first seen at its grace-0 rewrite has no known grace.
    c.pod(10.3, overdue_pod()).gone(39.5, overdue_pod());
    assert_eq!(c.web(40.0).grace_exhausted_total, 0);
    let p2 = deleting(pod("a", 2), 40.0, Some(30));
    c.pod(10.3, p2.clone()).gone(40.2, p2);
    assert_eq!(c.web(41.0).grace_exhausted_total, 1);
    let p3 = deleting(pod("a", 3), 100.0, Some(0));
    c.pod(100.0, p3.clone()).gone(100.1, p3);
    let m = c.web(101.0);
    assert_eq!(m.grace_exhausted_total, 1);
    assert_eq!(count(&m.pod_termination_duration), 2);
}

#[test]
fn a_termination_observed_before_its_replicaset_counts_its_grace_when_it_arrives() {
    let mut c = Cluster::steady_v1();
    // A pod of `web-b`, not seen yet, drains past its grace.
    let p = deleting(pod("b", 1), 40.0, Some(30));
    c.pod(10.0, p.clone()).gone(45.0, p);
    assert_eq!(c.web(46.0).grace_exhausted_total, 0);
    c.rs(50.0, rs("b", 2, 5.0));
    let m = c.web(51.0);
    assert_eq!(m.grace_exhausted_total, 1);
    assert_eq!(count(&m.pod_termination_duration), 1);
}

#[test]
fn the_grace_gauge_is_the_templates_or_30_and_the_info_names_revision_and_images() {
    let mut c = Cluster::steady_v1();
    let m = c.web(1.0);
    assert_eq!(m.grace_period_seconds, Some(30));
    assert_eq!(
        m.revision_info,
        Some(RevisionInfo {
            revision: Some(1),
            images: String::new()
        })
    );
    c.dep(
        10.0,
        DeploymentState {
            termination_grace_seconds: Some(120),
            images: "registry.example/web:2,registry.example/proxy:1".into(),
            ..started(2)
        },
    );
    let m = c.web(11.0);
    assert_eq!(m.grace_period_seconds, Some(120));
    let info = m.revision_info.expect("object known");
    assert_eq!(info.revision, Some(2));
    assert_eq!(
        info.images,
        "registry.example/web:2,registry.example/proxy:1"
    );
}

#[test]
fn joined_images_are_capped_at_a_character_boundary() {
    assert_eq!(joined_images(["a:1", "b:2"]), "a:1,b:2");
    assert_eq!(joined_images([]), "");
    let long = "r.example/".to_string() + &"é".repeat(200);
    let joined = joined_images(["a:1", long.as_str(), "c:3"]);
    assert!(joined.len() <= IMAGES_MAX_LEN, "{}", joined.len());
    assert!(joined.starts_with("a:1,r.example/é"));
    assert!(joined.ends_with("..."));
    // Exactly at the cap: kept whole.
    let exact = "x".repeat(IMAGES_MAX_LEN);
    assert_eq!(joined_images([exact.as_str()]), exact);
    let over = "x".repeat(IMAGES_MAX_LEN + 1);
    assert_eq!(joined_images([over.as_str()]).len(), IMAGES_MAX_LEN);
}

#[test]
fn the_info_pairs_each_revision_with_its_own_images_until_the_controller_writes_the_next() {
    let v1 = DeploymentState {
        images: "web:1".into(),
        ..steady(1)
    };
    let mut c = Cluster::synced(vec![v1.clone()], vec![rs("a", 1, -1000.0)], vec![]);
    // The user's change, before the controller wrote revision 2 (as during a Recreate drain, or
    // while paused): still revision 1 with its images.
    c.dep(
        10.0,
        DeploymentState {
            images: "web:2".into(),
            template: TemplateHash(2),
            generation: 2,
            ..v1
        },
    );
    let info = c.web(10.5).revision_info.expect("known");
    assert_eq!((info.revision, info.images.as_str()), (Some(1), "web:1"));
    c.dep(
        11.0,
        DeploymentState {
            images: "web:2".into(),
            ..started(2)
        },
    );
    let info = c.web(11.5).revision_info.expect("known");
    assert_eq!((info.revision, info.images.as_str()), (Some(2), "web:2"));
}
