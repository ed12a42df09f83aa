#!/usr/bin/env python3
"""Writes the Prometheus rule files of kube-rollout-exporter from a few parameters.

The rule files in alerts/ are this script's output with the default parameters; they are committed
so that they can be loaded unchanged. Edit this script (or pass parameters) and rerun it rather than
editing the YAML: `cargo test --test rules` fails when the committed files differ from what this
script writes with its defaults.

    python3 alerts/generate.py                        # rewrite alerts/*.yaml with the defaults
    python3 alerts/generate.py --check                # exit 1 and show a diff if they drifted
    python3 alerts/generate.py --out-dir /tmp/rules \\
        --slo-threshold 600 --slo-objective 99.5      # your own SLO, written elsewhere

Python 3 standard library only. Files written (the names are fixed):

    kube-rollout-rules.yaml   recording rules: duration and termination quantiles
    kube-rollout-alerts.yaml  alerts on workloads (need kube-rollout-rules.yaml) and on the exporter
    kube-rollout-slo.yaml     deploy-duration SLO: SLIs, budget, multiwindow multi-burn-rate alerts

Load all three. alerts/README.md explains every rule and parameter.
"""

import argparse
import difflib
import json
import math
import os
import sys
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))

# --- parameters --------------------------------------------------------------------------------
# Every default below is what the committed files were generated with. Each one is a CLI flag too
# (see --help); the flag name is the key with '_' replaced by '-'.
DEFAULTS = {
    # Label matchers that select the exporter's own scrape target: used by the exporter alerts
    # (up, watch errors, sync) only. Change it if your scrape config names the job differently.
    "job_selector": 'job="kube-rollout-exporter"',
    # Where the runbook_url annotations point; each alert appends '#' and its lowercased name.
    "runbook_base_url": "https://github.com/kube-rollout-exporter/kube-rollout-exporter/blob/main/docs/runbooks.md",
    # Deploy-duration SLO: "slo_objective percent of rollouts complete within slo_threshold seconds".
    # The exporter must export kube_rollout_slow_total with this threshold_seconds label value
    # (its default SLO threshold is 900).
    "slo_threshold": 900,
    "slo_objective": 99.0,
    # Labels to compute the SLO by; empty is one SLO for the whole cluster, "namespace" gives each
    # namespace its own SLO and its own burn-rate alerts, "workload_type" each kind (deployment,
    # statefulset, daemonset). Comma-separated.
    "slo_by": "",
    # Minimum rollouts in the long window before a burn-rate alert may page. 0 (the default)
    # derives it per window: the smallest count for which one slow rollout alone stays below the
    # burn-rate threshold, ceil(1 / (factor * error budget)): 7 for 1h, 17 for 6h at 99%.
    "slo_page_min_rollouts": 0,
    # KubeRolloutPodsStuckTerminating: pods past their deletion deadline for this long.
    "stuck_termination_for": "15m",
    # KubeRolloutTakingTooLong: a rollout older than this, neither paused nor stalled (Deployments)
    # nor waiting (OnDelete StatefulSets and DaemonSets waiting for people to delete old pods).
    "rollout_too_long_seconds": 1800,
    # KubeRolloutDrainTailLong: ready but not complete for this long.
    "drain_tail_for": "15m",
    # KubeRolloutPodTerminationsSlow: recent p90 over `ratio` x the usual p90, at least
    # `floor_seconds`, with at least `min_recent` terminations in the last hour and `min_baseline`
    # in the 7 days before.
    "slow_termination_ratio": 3,
    "slow_termination_floor_seconds": 60,
    "slow_termination_min_recent": 3,
    "slow_termination_min_baseline": 20,
    # KubeRolloutGracePeriodExhausted (a ticket): at least `ratio` of the last hour's terminations
    # lasted their whole grace period, with at least `min_terminations` terminations in that hour,
    # for `for`.
    "grace_exhausted_ratio": 0.5,
    "grace_exhausted_min_terminations": 5,
    "grace_exhausted_for": "15m",
}

FILES = ("kube-rollout-rules.yaml", "kube-rollout-alerts.yaml", "kube-rollout-slo.yaml")

# Per-workload aggregation labels; instance/job/pod of the exporter are dropped so that alerts
# survive an exporter restart unchanged.
WORKLOAD = "namespace, workload, workload_type"
QUANTILES = ("0.5", "0.9", "0.99")

# Multiwindow multi-burn-rate alerts (Google SRE workbook, as Sloth and the kubernetes-mixin
# generate them): (long window, short window, burn factor, severity, for).
BURN_WINDOWS = (
    ("1h", "5m", "14.4", "critical", "2m"),
    ("6h", "30m", "6", "critical", "15m"),
    ("1d", "2h", "3", "warning", "1h"),
    ("3d", "6h", "1", "warning", "3h"),
)
SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
SLO_PERIOD = "30d"
SLO_ID = "kube-rollout-duration"
SLO_LABELS = {"sloth_id": SLO_ID, "sloth_service": "kube-rollout", "sloth_slo": "duration"}


def seconds_text(seconds):
    """900 -> '15m', 5400 -> '1h30m', 45 -> '45s': Prometheus duration syntax, also for prose."""
    seconds = int(seconds)
    if seconds <= 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out


def number_text(value):
    """A number as PromQL and as a label value: 900 -> '900', 99.5 -> '99.5'."""
    d = Decimal(str(value)).normalize()
    text = format(d, "f")
    return text


def runbook(cfg, alert):
    return f"{cfg['runbook_base_url']}#{alert.lower()}"


WL = "{{ $labels.workload_type }} {{ $labels.namespace }}/{{ $labels.workload }}"

# The stuck reasons of an alert's workload, read at each evaluation from the by-reason gauge:
# "finalizers: 1, node_lost: 2" (sorted by reason), or "none reported" when the exporter exports
# no by-reason series (an exporter from before reasons). A Go template around Prometheus' `query`
# function; %q quotes the label values as PromQL strings.
REASONS = (
    '{{ with query (printf "max by (reason) (kube_rollout_terminating_pods_overdue_by_reason'
    '{namespace=%q, workload=%q, workload_type=%q})" $labels.namespace $labels.workload '
    '$labels.workload_type) }}'
    '{{ range $i, $r := sortByLabel "reason" . }}{{ if $i }}, {{ end }}'
    '{{ $r.Labels.reason }}: {{ printf "%.0f" $r.Value }}{{ end }}'
    '{{ else }}none reported{{ end }}'
)


def max_by_workload(metric):
    return f"max by ({WORKLOAD}) ({metric})"


def phase(names):
    """kube_rollout_phase for one phase, or several joined with '|'."""
    op = "=~" if "|" in names else "="
    return f'kube_rollout_phase{{phase{op}"{names}"}}'


# --- recording rules -----------------------------------------------------------------------------
def recording_rules(cfg):
    """Quantiles of the duration histograms, per workload and per namespace.

    Each histogram is first aggregated once per workload and window into bucket rates (instance and
    job dropped); the quantiles, and any dashboard query over a selection of workloads, read those.
    Rollouts are rare, so the windows are long: 1d for trends, 1h and 7d for the slow-termination
    alert. A quantile over a window without observations is NaN; `>= 0` drops it, so such a
    workload has no quantile series rather than a NaN one.
    """
    histograms = (
        # (metric, extra labels kept, windows, windows with namespace-level quantiles)
        ("kube_rollout_duration_seconds", ", milestone", ("1d",), ("1d",)),
        ("kube_rollout_drain_tail_seconds", "", ("1d",), ("1d",)),
        ("kube_rollout_pod_termination_duration_seconds", "", ("1h", "1d", "7d"), ("1d",)),
    )
    rules = []
    for metric, extra, windows, ns_windows in histograms:
        for window in windows:
            buckets = f"namespace_workload:{metric}_bucket:rate{window}"
            if window == "7d":
                rules.append(week_of_days(buckets, f"namespace_workload:{metric}_bucket:rate1d"))
            else:
                rules.append({
                    "comment": f"{metric} bucket rates over {window}, per workload.",
                    "record": buckets,
                    "expr": f"sum by ({WORKLOAD}{extra}, le) (\n  rate({metric}_bucket[{window}])\n)",
                })
            for q in QUANTILES:
                rules.append({
                    "record": f"namespace_workload:{metric}:quantile{window}",
                    "expr": f"histogram_quantile({q}, {buckets}) >= 0",
                    "labels": {"quantile": q},
                })
            if window in ns_windows:
                for q in QUANTILES:
                    rules.append({
                        "record": f"namespace:{metric}:quantile{window}",
                        "expr": (
                            f"histogram_quantile({q},\n"
                            f"  sum by (namespace{extra}, le) ({buckets})\n"
                            f") >= 0"
                        ),
                        "labels": {"quantile": q},
                    })
    rules += grace_exhausted_rules()
    return [{"name": "kube-rollout.rules", "rules": rules}]


GRACE_EXHAUSTED = "kube_rollout_pod_termination_grace_exhausted"
EXHAUSTED_RATE_1H = f"namespace_workload:{GRACE_EXHAUSTED}:rate1h"
EXHAUSTED_RATIO_1H = f"namespace_workload:{GRACE_EXHAUSTED}:ratio1h"
TERMINATIONS_RATE_1H = (
    'namespace_workload:kube_rollout_pod_termination_duration_seconds_bucket:rate1h{le="+Inf"}'
)


def grace_exhausted_rules():
    """The share of the last hour's terminations that used up their grace period, per workload.

    Terminations are counted by the termination histogram's +Inf bucket. With
    --histograms.per-namespace that histogram has an empty workload label, so the counter is
    also summed per namespace and kind under an empty workload name, only where such a
    histogram exists: the ratio is then per namespace and kind, like the termination quantiles.
    The counter exists from the first sync but the histogram only from its first observation,
    whose increase a rate over the series' first samples misses: the ratio is capped at 1.
    A window without terminations is 0/0 = NaN and has no series (`>= 0`).
    """
    return [
        {
            "comment": (
                "Terminations that lasted their whole grace period, per second over the last hour;\n"
                "per namespace and kind too where the histograms are (--histograms.per-namespace)."
            ),
            "record": EXHAUSTED_RATE_1H,
            "expr": (
                f"sum by ({WORKLOAD}) (rate({GRACE_EXHAUSTED}_total[1h]))\n"
                f"or\n"
                f"(\n"
                f"  sum by (namespace, workload_type) (rate({GRACE_EXHAUSTED}_total[1h]))\n"
                f"  and on (namespace, workload_type)\n"
                f'  kube_rollout_pod_termination_duration_seconds_count{{workload=""}}\n'
                f")"
            ),
        },
        {
            "comment": "Share of the last hour's terminations that used up their grace period.",
            "record": EXHAUSTED_RATIO_1H,
            "expr": (
                f"clamp_max(\n"
                f"  {EXHAUSTED_RATE_1H}\n"
                f"  / on ({WORKLOAD})\n"
                f"  {TERMINATIONS_RATE_1H},\n"
                f"  1\n"
                f") >= 0"
            ),
        },
    ]


def week_of_days(record, daily):
    """A 7d rate as the mean of seven recorded 1d rates: seven instant lookups instead of a 7d
    read of every raw bucket (which at a 30 s scrape is 20160 samples per series, and runs into
    query.max-samples on large clusters). A day on which a bucket series did not exist counts
    as zero."""
    days = [daily] + [f"({daily} offset {d}d or {daily} * 0)" for d in range(1, 7)]
    return {
        "comment": (
            "Bucket rates over the last 7 days, from the recorded 1d rates of each day; a day\n"
            "without the series counts as no terminations."
        ),
        "record": record,
        "expr": "(\n    " + "\n  + ".join(days) + "\n) / 7",
    }


# --- alerts on workloads and on the exporter ---------------------------------------------------
def workload_alerts(cfg):
    too_long = cfg["rollout_too_long_seconds"]
    term = "namespace_workload:kube_rollout_pod_termination_duration_seconds"
    p90_1h = f'{term}:quantile1h{{quantile="0.9"}}'
    p90_7d = f'{term}:quantile7d{{quantile="0.9"}}'
    count_1h = f'{term}_bucket:rate1h{{le="+Inf"}}'
    count_7d = f'{term}_bucket:rate7d{{le="+Inf"}}'
    ratio = number_text(cfg["slow_termination_ratio"])
    floor = number_text(cfg["slow_termination_floor_seconds"])
    rules = [
        {
            "comment": "Terminating pods that outlived their deletion deadline (grace period).",
            "alert": "KubeRolloutPodsStuckTerminating",
            "expr": (
                f"{max_by_workload('kube_rollout_oldest_termination_seconds')}\n"
                f"and on ({WORKLOAD})\n"
                f"{max_by_workload('kube_rollout_terminating_pods_overdue')} > 0"
            ),
            "for": cfg["stuck_termination_for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Pods are stuck terminating.",
                "description": (
                    f"{WL} has had pods past their deletion deadline for more than "
                    f"{cfg['stuck_termination_for']}; the oldest deletion was requested "
                    "{{ $value | humanizeDuration }} ago. Overdue pods by reason: "
                    f"{REASONS}."
                ),
                "reasons": REASONS,
            },
        },
        {
            "comment": (
                "Most of the last hour's terminations lasted their whole grace period: killed\n"
                "mid-drain (SIGTERM ignored, a preStop hook or drain longer than the grace) or stuck.\n"
                "A ticket, not a page; a minimum count so that one pod does not open it."
            ),
            "alert": "KubeRolloutGracePeriodExhausted",
            "expr": (
                f"{EXHAUSTED_RATIO_1H} >= {number_text(cfg['grace_exhausted_ratio'])}\n"
                f"and on ({WORKLOAD})\n"
                f"{TERMINATIONS_RATE_1H} * 3600 >= {cfg['grace_exhausted_min_terminations']}"
            ),
            "for": cfg["grace_exhausted_for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Pod terminations keep using up their grace period.",
                "description": (
                    f"{{{{ $value | humanizePercentage }}}} of the pod terminations of {WL} in the "
                    "last hour lasted their whole grace period (at least "
                    f"{cfg['grace_exhausted_min_terminations']} terminations): the pods were "
                    "killed mid-drain or stuck. Grace period: {{ with query (printf "
                    '"max(kube_rollout_termination_grace_period_seconds{namespace=%q, '
                    'workload=%q, workload_type=%q})" $labels.namespace $labels.workload '
                    "$labels.workload_type) }}{{ . | first | value | humanizeDuration }}"
                    "{{ else }}unknown{{ end }}."
                ),
            },
        },
        {
            "comment": (
                "The last hour's p90 termination time against the workload's usual one: its p90 over\n"
                "the 7 days before that hour. Guards: enough terminations in both, and an absolute\n"
                "floor so that 2s -> 10s does not alert."
            ),
            "alert": "KubeRolloutPodTerminationsSlow",
            "expr": (
                f"{p90_1h} > {floor}\n"
                f"and\n"
                f"{p90_1h}\n"
                f"  > {ratio} * {p90_7d} offset 1h\n"
                f"and on ({WORKLOAD})\n"
                f"{count_1h} * 3600 >= {cfg['slow_termination_min_recent']}\n"
                f"and on ({WORKLOAD})\n"
                f"{count_7d} offset 1h * 604800 >= {cfg['slow_termination_min_baseline']}"
            ),
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Pods terminate much slower than usual.",
                "description": (
                    f"The p90 pod termination time of {WL} over the last hour is "
                    "{{ $value | humanizeDuration }}, more than "
                    f"{ratio} times its usual p90 (over the 7 days before)."
                ),
            },
        },
        {
            "comment": (
                "A rollout in flight for too long, of any kind. Excluded: paused and stalled\n"
                "Deployments (stalled has its own alert) and OnDelete rollouts waiting for people\n"
                "to delete old pods (phase waiting: their age measures people, not the rollout)."
            ),
            "alert": "KubeRolloutTakingTooLong",
            "expr": (
                f"{max_by_workload('kube_rollout_in_progress_seconds')} > {too_long}\n"
                f"unless on ({WORKLOAD})\n"
                f"{max_by_workload(phase('paused|stalled|waiting'))} == 1"
            ),
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "A rollout is taking too long.",
                "description": (
                    f"The rollout of {WL} has been in progress for "
                    "{{ $value | humanizeDuration }}, longer than "
                    f"{seconds_text(too_long)}."
                ),
            },
        },
        {
            "comment": "Progressing=False with reason ProgressDeadlineExceeded (Deployments only).",
            "alert": "KubeRolloutStalled",
            "expr": (
                f"{max_by_workload('kube_rollout_in_progress_seconds')}\n"
                f"and on ({WORKLOAD})\n"
                f"{max_by_workload(phase('stalled'))} == 1"
            ),
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "A rollout has stalled.",
                "description": (
                    f"The rollout of {WL} has exceeded its progress deadline; it started "
                    "{{ $value | humanizeDuration }} ago."
                ),
            },
        },
        {
            "comment": (
                "Ready (kubectl says done) but old pods still remain: the drain tail. Context only;\n"
                "pods past their deadline alert as KubeRolloutPodsStuckTerminating."
            ),
            "alert": "KubeRolloutDrainTailLong",
            "expr": (
                f"{max_by_workload('kube_rollout_terminating_pods')}\n"
                f"and on ({WORKLOAD})\n"
                f"{max_by_workload(phase('draining'))} == 1"
            ),
            "for": cfg["drain_tail_for"],
            "labels": {"severity": "info"},
            "annotations": {
                "summary": "A rollout is ready but old pods are still draining.",
                "description": (
                    f"{WL} has been ready for more than {cfg['drain_tail_for']} but its rollout "
                    "is not complete: old pods remain ({{ $value }} terminating)."
                ),
            },
        },
    ]
    return {"name": "kube-rollout.alerts", "rules": rules}


def exporter_alerts(cfg):
    sel = cfg["job_selector"]
    rules = [
        {
            "alert": "KubeRolloutExporterDown",
            "expr": f"up{{{sel}}} == 0",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "kube-rollout-exporter cannot be scraped.",
                "description": (
                    "Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) "
                    "for 10 minutes: rollout and termination metrics and alerts are unavailable."
                ),
            },
        },
        {
            "alert": "KubeRolloutExporterAbsent",
            "expr": f"absent(up{{{sel}}})",
            "for": "15m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "kube-rollout-exporter has disappeared from target discovery.",
                "description": (
                    f"Prometheus has had no target matching up{{{sel}}} for 15 minutes: "
                    "rollout and termination metrics and alerts are unavailable."
                ),
            },
        },
        {
            "comment": "Errors on a watch in every 10-minute window for 15 minutes.",
            "alert": "KubeRolloutExporterWatchErrors",
            "expr": f"increase(kube_rollout_exporter_watch_errors_total{{{sel}}}[10m]) > 0",
            "for": "15m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "kube-rollout-exporter keeps failing to watch the API server.",
                "description": (
                    "{{ $labels.instance }} had {{ printf \"%.0f\" $value }} errors watching "
                    "{{ $labels.resource }} in the last 10 minutes, and errors for 15 minutes: "
                    "its view of the cluster may be stale."
                ),
            },
        },
        {
            "alert": "KubeRolloutExporterNotSynced",
            "expr": f"kube_rollout_exporter_synced{{{sel}}} == 0",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "kube-rollout-exporter is not in sync with the API server.",
                "description": (
                    "{{ $labels.instance }} has not been in sync with the {{ $labels.resource }} "
                    "watch for 10 minutes (first list unfinished or watch unhealthy): rollout "
                    "metrics may be missing or stale."
                ),
            },
        },
    ]
    return {"name": "kube-rollout-exporter.alerts", "rules": rules}


# --- deploy-duration SLO -------------------------------------------------------------------------
def slo(cfg):
    """SLI, meta and alert groups in the shape Sloth generates (its names and sloth_* labels, so
    Sloth's dashboards work too), with alerts in the kubernetes-mixin's one-alert-per-window form.

    Bad events: rollouts that passed the threshold age (kube_rollout_slow_total, counted when they
    pass it, not when they start). Total events: rollouts started. No rollout in a window is 0/0 =
    NaN, which compares false: no data never alerts. See alerts/README.md, "Rare events".
    """
    threshold = number_text(cfg["slo_threshold"])
    objective = Decimal(str(cfg["slo_objective"])) / 100
    budget = 1 - objective
    objective_text, budget_text = number_text(objective), number_text(budget)
    by = [label.strip() for label in cfg["slo_by"].split(",") if label.strip()]
    by_list = ", ".join(by)
    sum_by = f"sum by ({by_list}) " if by else "sum"
    bad = f'kube_rollout_slow_total{{threshold_seconds="{threshold}"}}'
    total = "kube_rollout_started_total"
    ids = f'sloth_id="{SLO_ID}"'
    join = "sloth_id, sloth_service, sloth_slo"
    where = "In namespace {{ $labels.namespace }}, " if "namespace" in by else ""
    kind = "{{ $labels.workload_type }} " if "workload_type" in by else ""

    sli = []
    for window in SLI_WINDOWS:
        sli.append({
            "record": f"slo:sli_error:ratio_rate{window}",
            "expr": (
                f"{sum_by}(rate({bad}[{window}]))\n/\n{sum_by}(rate({total}[{window}]))"
            ),
            "labels": {**SLO_LABELS, "sloth_window": window},
        })
    # The period ratio from the 5m rates, summed over the period: cheap (no 30d read of every
    # workload's counters) and NaN-free (averaging the 5m *ratios*, as Sloth does, breaks on rare
    # events: most 5m ratios are 0/0 = NaN). Sums of equally spaced rates are proportional to counts.
    sli += [
        {
            "comment": "Rates of the bad and total events, the building blocks of the period ratio.",
            "record": "slo:kube_rollout_slow:rate5m",
            "expr": f"{sum_by}(rate({bad}[5m]))",
            "labels": dict(SLO_LABELS),
        },
        {
            "record": "slo:kube_rollout_started:rate5m",
            "expr": f"{sum_by}(rate({total}[5m]))",
            "labels": dict(SLO_LABELS),
        },
        {
            "record": f"slo:sli_error:ratio_rate{SLO_PERIOD}",
            "expr": (
                f"sum_over_time(slo:kube_rollout_slow:rate5m{{{ids}}}[{SLO_PERIOD}])\n"
                f"/\n"
                f"sum_over_time(slo:kube_rollout_started:rate5m{{{ids}}}[{SLO_PERIOD}])"
            ),
            "labels": {**SLO_LABELS, "sloth_window": SLO_PERIOD},
        },
    ]
    meta = [
        {"record": "slo:objective:ratio", "expr": f"vector({objective_text})", "labels": dict(SLO_LABELS)},
        {"record": "slo:error_budget:ratio", "expr": f"vector({budget_text})", "labels": dict(SLO_LABELS)},
        {"record": "slo:time_period:days", "expr": f"vector({SLO_PERIOD[:-1]})", "labels": dict(SLO_LABELS)},
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": (
                f"slo:sli_error:ratio_rate5m{{{ids}}}\n"
                f"/ on ({join}) group_left\n"
                f"slo:error_budget:ratio{{{ids}}}"
            ),
            "labels": dict(SLO_LABELS),
        },
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": (
                f"slo:sli_error:ratio_rate{SLO_PERIOD}{{{ids}}}\n"
                f"/ on ({join}) group_left\n"
                f"slo:error_budget:ratio{{{ids}}}"
            ),
            "labels": dict(SLO_LABELS),
        },
        {
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - slo:period_burn_rate:ratio{{{ids}}}",
            "labels": dict(SLO_LABELS),
        },
    ]
    alerts = []
    for long, short, factor, severity, for_ in BURN_WINDOWS:
        limit = f"({factor} * {budget_text})"
        expr = (
            f"(\n"
            f"  max without (sloth_window) (slo:sli_error:ratio_rate{long}{{{ids}}} > {limit})\n"
            f"  and\n"
            f"  max without (sloth_window) (slo:sli_error:ratio_rate{short}{{{ids}}} > {limit})\n"
            f")"
        )
        comment = f"Burning the budget {factor}x too fast over {long} and still over {short}."
        if severity == "critical":
            minimum = cfg["slo_page_min_rollouts"] or math.ceil(
                1 / (Decimal(factor) * budget)
            )
            expr += (
                f"\nand on ({by_list})\n"
                f"{sum_by}(increase({total}[{long}])) >= {minimum}"
            )
            comment += f"\nPages only with at least {minimum} rollouts in {long}"
            comment += (
                ": one slow rollout alone never pages." if not cfg["slo_page_min_rollouts"] else "."
            )
        alerts.append({
            "comment": comment,
            "alert": "KubeRolloutDurationErrorBudgetBurn",
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity, "long": long, "short": short},
            "annotations": {
                "summary": "Rollouts are burning the deploy-duration error budget.",
                "description": (
                    f"{where}{{{{ $value | humanizePercentage }}}} of the {kind}rollouts started in the last "
                    f"{long} took longer than {seconds_text(cfg['slo_threshold'])}, burning the "
                    f"{SLO_PERIOD} error budget of the {number_text(cfg['slo_objective'])}% objective "
                    f"at {factor}x the sustainable rate."
                ),
            },
        })
    return [
        {"name": "kube-rollout-slo-sli-recordings", "rules": sli},
        {"name": "kube-rollout-slo-meta-recordings", "rules": meta},
        {"name": "kube-rollout-slo-alerts", "rules": alerts},
    ]


def add_runbooks(cfg, groups):
    for group in groups:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["annotations"]["runbook_url"] = runbook(cfg, rule["alert"])
    return groups


# --- YAML output -----------------------------------------------------------------------------------
def render(groups, title, cfg):
    """A fixed YAML subset: PromQL in literal blocks, every label and annotation value a JSON
    string (valid YAML). tests/rules.rs parses exactly this form."""
    changed = {k: v for k, v in cfg.items() if v != DEFAULTS[k]}
    lines = [
        f"# {title}",
        "# Generated by alerts/generate.py: do not edit, change the generator and rerun it.",
        f"# Parameters: {'defaults' if not changed else json.dumps(changed, sort_keys=True)}.",
        "groups:",
    ]
    for g, group in enumerate(groups):
        if g:
            lines.append("")
        lines.append(f"  - name: {group['name']}")
        lines.append("    rules:")
        for r, rule in enumerate(group["rules"]):
            if r and ("comment" in rule or "alert" in rule):
                lines.append("")
            for comment in rule.get("comment", "").splitlines():
                lines.append(f"      # {comment}")
            kind = "alert" if "alert" in rule else "record"
            lines.append(f"      - {kind}: {rule[kind]}")
            lines.append("        expr: |")
            for line in rule["expr"].splitlines():
                lines.append(f"          {line}".rstrip())
            if "for" in rule:
                lines.append(f"        for: {rule['for']}")
            for section in ("labels", "annotations"):
                if rule.get(section):
                    lines.append(f"        {section}:")
                    for key, value in rule[section].items():
                        lines.append(f"          {key}: {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def files(cfg):
    return {
        "kube-rollout-rules.yaml": render(
            recording_rules(cfg), "Recording rules of kube-rollout-exporter: duration quantiles.", cfg
        ),
        "kube-rollout-alerts.yaml": render(
            add_runbooks(cfg, [workload_alerts(cfg), exporter_alerts(cfg)]),
            "Alerts of kube-rollout-exporter (needs kube-rollout-rules.yaml).",
            cfg,
        ),
        "kube-rollout-slo.yaml": render(
            add_runbooks(cfg, slo(cfg)),
            "Deploy-duration SLO of kube-rollout-exporter: "
            f"{number_text(cfg['slo_objective'])}% of rollouts complete within "
            f"{seconds_text(cfg['slo_threshold'])}.",
            cfg,
        ),
    }


def main(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Defaults are the committed files' parameters; see alerts/README.md.",
    )
    for key, default in DEFAULTS.items():
        parser.add_argument(
            "--" + key.replace("_", "-"), type=type(default), default=default,
            help=f"default: {default!r}",
        )
    parser.add_argument("--out-dir", default=HERE, help="where to write (default: alerts/)")
    parser.add_argument(
        "--check", action="store_true",
        help="write nothing; exit 1 with a diff when the files in --out-dir differ",
    )
    args = parser.parse_args(argv)
    cfg = {key: getattr(args, key) for key in DEFAULTS}
    if not 0 < cfg["slo_objective"] < 100:
        parser.error("--slo-objective is a percentage between 0 and 100")
    if cfg["slo_threshold"] <= 0:
        parser.error("--slo-threshold must be positive")

    drift = False
    for name, text in files(cfg).items():
        path = os.path.join(args.out_dir, name)
        if args.check:
            try:
                with open(path, encoding="utf-8") as f:
                    current = f.read()
            except FileNotFoundError:
                current = ""
            if current != text:
                drift = True
                sys.stdout.writelines(difflib.unified_diff(
                    current.splitlines(keepends=True), text.splitlines(keepends=True),
                    fromfile=f"{path} (committed)", tofile=f"{path} (generated)",
                ))
        else:
            os.makedirs(args.out_dir, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if drift:
        print("\nalerts/*.yaml differ from alerts/generate.py's output: "
              "run `python3 alerts/generate.py` and commit the result.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
