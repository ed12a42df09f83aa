//! The board from plain values: sections, order, filters, the cap, the JSON and the escaping.

use super::*;
use crate::metrics::example_workload;
use crate::model::{CompletedRollout, WorkloadKey};

const NOW: f64 = 1_800_000_000.0;

fn rolling(ns: &str, name: &str, phase: Phase, age: f64, overdue: u64) -> WorkloadMetrics {
    let mut m = example_workload(ns, name, &[]);
    m.phase = phase;
    m.in_progress_seconds = age;
    m.terminating_pods = overdue + 1;
    m.terminating_pods_overdue = overdue;
    m.overdue_by_reason[StuckReason::Finalizers.index()] = overdue;
    m.new_pods = Some((1, 3));
    m
}

fn completed(ns: &str, name: &str, ago: f64) -> WorkloadMetrics {
    let mut m = example_workload(ns, name, &[]);
    m.terminating_pods = 0;
    m.last_rollout = Some(CompletedRollout {
        completed_at: NOW - ago,
        ready_seconds: Some(20.0),
        complete_seconds: Some(95.0),
        drain_tail_seconds: Some(75.0),
    });
    m
}

fn names<T>(rows: &[T], name: impl Fn(&T) -> &str) -> Vec<String> {
    rows.iter().map(|r| name(r).to_string()).collect()
}

#[test]
fn rollouts_in_flight_come_first_by_what_needs_attention() {
    let workloads = vec![
        rolling("a", "young", Phase::Progressing, 10.0, 0),
        rolling("a", "old", Phase::Draining, 600.0, 0),
        rolling("a", "slow", Phase::Progressing, 1000.0, 0),
        rolling("a", "stuck", Phase::Draining, 30.0, 2),
        rolling("a", "stalled", Phase::Stalled, 5.0, 0),
        completed("a", "done", 60.0),
    ];
    let b = build(&workloads, NOW, 900, &Query::parse(None).expect("query"));
    assert_eq!(
        names(&b.in_flight.rows, |r| &r.workload.name),
        ["stalled", "stuck", "slow", "old", "young"]
    );
    let slow = &b.in_flight.rows[2];
    assert!(slow.slow && !b.in_flight.rows[3].slow);
    assert_eq!((slow.new_ready, slow.new_wanted), (Some(1), Some(3)));
    assert_eq!(names(&b.overdue.rows, |r| &r.workload.name), ["stuck"]);
    assert_eq!(
        b.overdue.rows[0].overdue_reasons,
        BTreeMap::from([("finalizers", 2)])
    );
    assert_eq!(names(&b.recent.rows, |r| &r.workload.name), ["done"]);
}

#[test]
fn recent_completions_are_the_last_hours_newest_first() {
    let workloads = vec![
        completed("a", "earlier", 1800.0),
        completed("a", "latest", 10.0),
        completed("a", "yesterday", 86_400.0),
    ];
    let b = build(&workloads, NOW, 900, &Query::parse(None).expect("query"));
    assert_eq!(
        names(&b.recent.rows, |r| &r.workload.name),
        ["latest", "earlier"]
    );
    let r = &b.recent.rows[0];
    assert_eq!(
        (r.ready_seconds, r.complete_seconds, r.drain_tail_seconds),
        (Some(20.0), Some(95.0), Some(75.0))
    );
}

#[test]
fn filters_by_namespace_and_kind_from_the_url() {
    let mut sts = rolling("db", "pg", Phase::Progressing, 10.0, 0);
    sts.key = WorkloadKey::new(WorkloadKind::StatefulSet, "db", "pg");
    let workloads = vec![
        sts,
        rolling("db", "api", Phase::Progressing, 10.0, 0),
        rolling("shop", "web", Phase::Progressing, 10.0, 0),
    ];
    let q = Query::parse(Some("namespace=db&kind=StatefulSet")).expect("query");
    let b = build(&workloads, NOW, 900, &q);
    assert_eq!(names(&b.in_flight.rows, |r| &r.workload.name), ["pg"]);
    let q = Query::parse(Some("namespace=db")).expect("query");
    assert_eq!(build(&workloads, NOW, 900, &q).in_flight.total, 2);
    for bad in ["kind=pod", "limit=0", "limit=10001", "limit=x"] {
        assert!(Query::parse(Some(bad)).is_err(), "{bad}");
    }
    let q = Query::parse(Some("namespace=a%20b&unknown=1&limit=5")).expect("query");
    assert_eq!((q.namespace.as_deref(), q.limit), (Some("a b"), 5));
}

#[test]
fn ten_thousand_workloads_are_capped_and_the_page_says_so() {
    let workloads: Vec<_> = (0..10_000)
        .map(|i| rolling("big", &format!("w{i:05}"), Phase::Progressing, i as f64, 0))
        .collect();
    let q = Query::parse(None).expect("query");
    let b = build(&workloads, NOW, 900, &q);
    assert_eq!(b.in_flight.total, 10_000);
    assert_eq!(b.in_flight.rows.len(), DEFAULT_LIMIT);
    assert_eq!(
        b.in_flight.rows[0].workload.name, "w09999",
        "the oldest first"
    );
    let page = render(&b, &q, "test", "/metrics");
    assert!(page.contains(&format!("Showing {DEFAULT_LIMIT} of 10000")));
    assert_eq!(page.matches("<tr data-namespace").count(), DEFAULT_LIMIT);
    let all = Query::parse(Some("limit=10000")).expect("query");
    assert_eq!(
        build(&workloads, NOW, 900, &all).in_flight.rows.len(),
        10_000
    );
}

#[test]
fn hostile_names_images_and_filters_are_escaped_everywhere() {
    let evil = r#"<script>alert("x")</script>'&"#;
    let mut m = rolling(
        "ns\"><img src=x onerror=alert(1)>",
        evil,
        Phase::Draining,
        5.0,
        1,
    );
    m.revision_info = Some(crate::model::RevisionInfo {
        revision: Some(2),
        images: "<b>img</b>:1".into(),
    });
    let q = Query::parse(Some("namespace=%3C%2Fform%3E%3Cscript%3E")).expect("query");
    let b = build(&[m], NOW, 900, &Query::parse(None).expect("query"));
    let page = render(&b, &q, "<v>", "/metrics\"x");
    for raw in [
        "<script>alert",
        "<img",
        "<b>img",
        "</form><script>",
        "<v>",
        "/metrics\"x",
    ] {
        assert!(!page.contains(raw), "{raw} must not appear raw");
    }
    assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;"));
    assert!(page.contains("&lt;b&gt;img&lt;/b&gt;:1"));
    // One <script>: the page's own refresh.
    assert_eq!(page.matches("<script>").count(), 1);
    assert_eq!(
        escape("a<b>&\"c'"),
        "a&lt;b&gt;&amp;&quot;c&#39;",
        "every special character"
    );
    // JSON: serde escapes; the values come back exactly.
    let json = serde_json::to_value(&b).expect("json");
    assert_eq!(json["in_flight"]["rows"][0]["name"], evil);
}

#[test]
fn the_json_has_the_documented_fields() {
    let workloads = vec![
        rolling("shop", "web", Phase::Draining, 42.0, 1),
        completed("shop", "api", 30.0),
    ];
    let b = build(&workloads, NOW, 900, &Query::parse(None).expect("query"));
    let json = serde_json::to_value(&b).expect("json");
    let row = &json["in_flight"]["rows"][0];
    for field in [
        "namespace",
        "name",
        "kind",
        "revision",
        "images",
        "phase",
        "age_seconds",
        "slow",
        "new_ready",
        "new_wanted",
        "old_terminating",
        "oldest_termination_seconds",
        "overdue",
        "overdue_reasons",
    ] {
        assert!(row.get(field).is_some(), "in_flight row has {field}");
    }
    assert_eq!(row["phase"], "draining");
    assert_eq!(json["in_flight"]["total"], 1);
    assert_eq!(json["recent"]["rows"][0]["complete_seconds"], 95.0);
    assert_eq!(
        json["overdue"]["rows"][0]["overdue_reasons"]["finalizers"],
        1
    );
    assert_eq!(json["slo_threshold_seconds"], 900);
}
