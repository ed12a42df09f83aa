#!/usr/bin/env python3
"""Writes the Grafana dashboards of kube-rollout-exporter (classic dashboard JSON).

The JSON files in dashboards/ are this script's output; they are committed so that they can be
imported unchanged. Edit this script and rerun it rather than editing the JSON (or edit in
Grafana, export, and port the change here): `cargo test --test dashboards` fails when the
committed files differ from what this script writes, and lints both.

    python3 dashboards/generate.py           # rewrite dashboards/*.json
    python3 dashboards/generate.py --check   # exit 1 and show a diff if they drifted

Python 3 standard library only. dashboards/README.md lists every panel and its query.

Conventions (tests/dashboards.rs enforces them): datasource only through the `datasource`
variable; every query filters by the `namespace`, `workload_type` and `workload` variables (SEL)
and groups and joins by all three (BY: a StatefulSet and a Deployment may share a name);
every panel has a unit; every range in a query is `$__rate_interval` (per-point rates)
or `$__range` (one number for the whole time range); recorded series from alerts/ where a query
would otherwise read days of raw buckets; `le` matchers in the exporter's float form.
"""

import argparse
import difflib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'namespace=~"$namespace", workload_type=~"$workload_type", workload=~"$workload"'
# What identifies a workload: its namespace, name and kind.
BY = "namespace, workload, workload_type"
WL = "{{workload_type}} {{namespace}}/{{workload}}"
JOB = 'job=~"$job"'
SLO = 'sloth_id="kube-rollout-duration"'
QUANTILES = (("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99"))
# The deploy-duration SLO threshold of alerts/generate.py, for the "within 15m" panels.
SLO_THRESHOLD = 900
WORKLOAD_UID = "kube-rollout-workload"
OVERVIEW_UID = "kube-rollout-overview"
PHASES = (  # value of the phase code in the phase timeline, name, colour
    (0, "complete", "green"),
    (1, "draining", "blue"),
    (2, "progressing", "yellow"),
    (3, "waiting", "light-purple"),  # StatefulSets and DaemonSets (OnDelete)
    (4, "paused", "purple"),  # Deployments
    (5, "stalled", "red"),  # Deployments
)


def target(expr, legend="", ref="A", instant=False, fmt=None, interval=None):
    t = {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "instant": instant,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "refId": ref,
    }
    if fmt:
        t["format"] = fmt
    if interval:
        t["interval"] = interval
    return t


def targets(*specs, **common):
    """targets(("expr", "legend"), ...): refIds A, B, C, ..."""
    return [
        target(expr, legend, ref=chr(ord("A") + i), **common)
        for i, (expr, legend) in enumerate(specs)
    ]


def thresholds(*steps):
    """thresholds("green", (1, "red")): the first colour is the base."""
    out = [{"color": steps[0], "value": None}]
    out += [{"color": color, "value": value} for value, color in steps[1:]]
    return {"mode": "absolute", "steps": out}


def panel(kind, title, unit, tgts, description="", defaults=None, options=None, **extra):
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit, **(defaults or {})}, "overrides": []},
        "options": options or {},
        "targets": tgts,
    }
    p.update(extra)
    return p


def stat(title, unit, expr, description="", steps=("green",), instant=True, legend="",
         decimals=None, **extra):
    defaults = {"color": {"mode": "thresholds"}, "thresholds": thresholds(*steps)}
    if decimals is not None:
        defaults["decimals"] = decimals
    return panel(
        "stat", title, unit, [target(expr, legend, instant=instant)], description,
        defaults=defaults,
        options={
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        },
        **extra,
    )


def timeseries(title, unit, tgts, description="", bars=False, stack=False, threshold=None,
               **extra):
    custom = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 80 if bars else 10,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
    }
    defaults = {"custom": custom, "min": 0}
    if threshold is not None:
        custom["thresholdsStyle"] = {"mode": "line+area" if threshold[2] else "line"}
        defaults["thresholds"] = thresholds("transparent", (threshold[0], threshold[1]))
    return panel(
        "timeseries", title, unit, tgts, description, defaults=defaults,
        options={
            "legend": {"calcs": ["lastNotNull", "max"], "displayMode": "table",
                       "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        **extra,
    )


def table(title, unit, tgts, renames, units, description="", sort=None, links=None):
    overrides = [
        {"matcher": {"id": "byName", "options": field},
         "properties": [{"id": "unit", "value": u}]}
        for field, u in units.items()
    ]
    if links:
        overrides.append({
            "matcher": {"id": "byName", "options": "workload"},
            "properties": [{"id": "links", "value": links}],
        })
    p = panel(
        "table", title, unit, tgts, description,
        defaults={"custom": {"align": "auto", "filterable": True}},
        options={"showHeader": True, "sortBy": [{"desc": True, "displayName": sort}] if sort else []},
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True},
                "indexByName": {},
                "renameByName": renames,
            }},
        ],
    )
    p["fieldConfig"]["overrides"] = overrides
    return p


def heatmap(title, expr, axis, description=""):
    return panel(
        "heatmap", title, "short",
        [target(expr, "{{le}}", fmt="heatmap")],
        description,
        defaults={"custom": {"hideFrom": {"legend": False, "tooltip": False, "viz": False},
                             "scaleDistribution": {"type": "linear"}}},
        options={
            "calculate": False,
            "cellGap": 1,
            "color": {"exponent": 0.5, "fill": "dark-orange", "mode": "scheme", "reverse": False,
                      "scale": "exponential", "scheme": "Oranges", "steps": 64},
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
            "filterValues": {"le": 1e-09},
            "legend": {"show": True},
            "rowsFrame": {"layout": "auto", "value": "count"},
            "showValue": "never",
            "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": True},
            "yAxis": {"axisPlacement": "left", "reverse": False, "unit": "s",
                      "axisLabel": axis},
        },
    )


def quantiles_of(buckets, by=""):
    """p50/p90/p99 of recorded per-workload bucket rates, over the selected workloads."""
    group = f"{by}, le" if by else "le"
    return [
        (f"histogram_quantile({q}, sum by ({group}) ({buckets}{{{SEL}}})) >= 0",
         f"{name} {{{{{by}}}}}" if by else name)
        for q, name in QUANTILES
    ]


def drilldown_link():
    return [{
        "title": "Open the workload dashboard",
        "url": (f"/d/{WORKLOAD_UID}/kube-rollout-workload?var-datasource=${{datasource}}"
                "&var-namespace=${__data.fields.namespace}"
                "&var-workload_type=${__data.fields.workload_type}&var-workload=${__value.raw}"
                "&${__url_time_range}"),
    }]


# --- layout -------------------------------------------------------------------------------------
class Layout:
    """Places panels left to right in rows of 24 units; rows are Grafana row panels."""

    def __init__(self):
        self.panels, self.x, self.y, self.line_h, self.next_id = [], 0, 0, 0, 1
        self.collapsed = None

    def _id(self):
        self.next_id += 1
        return self.next_id - 1

    def _newline(self):
        self.y += self.line_h
        self.x, self.line_h = 0, 0

    def row(self, title, collapsed=False):
        self._newline()
        row = {"type": "row", "title": title, "collapsed": collapsed, "id": self._id(),
               "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []}
        self.panels.append(row)
        self.collapsed = row if collapsed else None
        self.y += 1

    def add(self, p, w, h):
        if self.x + w > 24:
            self._newline()
        p["id"] = self._id()
        p["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        (self.collapsed["panels"] if self.collapsed else self.panels).append(p)
        self.x += w
        self.line_h = max(self.line_h, h)


# --- variables and annotations ---------------------------------------------------------------------
def datasource_variable():
    return {
        "current": {}, "hide": 0, "includeAll": False, "label": "Data source", "multi": False,
        "name": "datasource", "options": [], "query": "prometheus", "refresh": 1, "regex": "",
        "skipUrlSync": False, "type": "datasource",
    }


def query_variable(name, label, query, multi=True, include_all=True):
    v = {
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if include_all else {},
        "datasource": DS, "definition": query, "hide": 0, "includeAll": include_all,
        "label": label, "multi": multi, "name": name, "options": [], "query": query,
        "refresh": 2, "regex": "", "skipUrlSync": False, "sort": 1, "type": "query",
    }
    if include_all:
        v["allValue"] = ".*"
    return v


WORKLOAD_VARIABLES = [
    datasource_variable(),
    query_variable("namespace", "Namespace", "label_values(kube_rollout_phase, namespace)"),
    query_variable(
        "workload_type", "Kind",
        'label_values(kube_rollout_phase{namespace=~"$namespace"}, workload_type)',
    ),
    query_variable(
        "workload", "Workload",
        'label_values(kube_rollout_phase{namespace=~"$namespace", workload_type=~"$workload_type"}, workload)',
    ),
]


# The workload's revision and images (kube_rollout_revision_info, one series per workload) as
# labels of an annotation query's result, for its text.
WITH_REVISION = (
    f"* on ({BY}) group_left (revision, images)\n"
    f"max by ({BY}, revision, images) (kube_rollout_revision_info{{{SEL}}})"
)
STARTED = "kube_rollout_last_started_timestamp_seconds"
COMPLETED = "kube_rollout_last_completed_timestamp_seconds"
READY_COUNT = "kube_rollout_duration_seconds_count"


def annotation(name, expr, color, enable, value_is_time):
    """Grafana makes an event of every step where a series has a value > 0, and merges a
    series' events less than a step apart. With `useValueForTime` the value is the event's
    time in milliseconds: a timestamp gauge sampled at every step is one event at its exact time."""
    return {
        "datasource": DS,
        "enable": enable,
        "expr": expr,
        "iconColor": color,
        "name": name,
        "step": "1m",
        "tagKeys": "namespace,workload_type,workload,revision",
        "textFormat": f"{WL}: revision {{{{revision}}}}, {{{{images}}}}",
        "titleFormat": name,
        "useValueForTime": value_is_time,
    }


def annotations(enable):
    """Rollout start, ready and complete, with the revision and images (dashboards/README.md,
    "Annotations", explains each query)."""
    started = (
        f"max by ({BY}) ({STARTED}{{{SEL}}} > 0)\n"
        f"{WITH_REVISION}\n"
        f"* 1000"
    )
    # Only while the last completion is that of the last start: after the next start,
    # revision_info names the new revision, which must not label the old completion.
    complete = (
        f"(\n"
        f"  max by ({BY}) ({COMPLETED}{{{SEL}}} > 0)\n"
        f"  >= on ({BY})\n"
        f"  max by ({BY}) ({STARTED}{{{SEL}}})\n"
        f")\n"
        f"{WITH_REVISION}\n"
        f"* 1000"
    )
    # Ready has no timestamp gauge: each ready observation adds 1 to the ready histogram's
    # count. With --histograms.per-namespace that count has an empty workload label and no
    # revision to join: the second part marks those per namespace and kind.
    ready = (
        f'max by ({BY}) (increase({READY_COUNT}{{{SEL}, milestone="ready"}}[$__rate_interval]) > 0)\n'
        f"{WITH_REVISION}\n"
        f"or\n"
        f'label_replace(label_replace(\n'
        f'  max by (namespace, workload_type) (increase({READY_COUNT}{{{SEL}, milestone="ready", workload=""}}[$__rate_interval]) > 0),\n'
        f'  "revision", "unknown", "namespace", ".*"),\n'
        f'  "images", "unknown (histograms per namespace)", "namespace", ".*")'
    )
    return {"list": [
        annotation("Rollout started", started, "blue", enable, True),
        annotation("Rollout ready", ready, "yellow", enable, False),
        annotation("Rollout complete", complete, "green", enable, True),
    ]}


def dashboard(uid, title, description, variables, panels, enable_annotations):
    return {
        "annotations": annotations(enable_annotations),
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [{"asDropdown": False, "icon": "external link", "includeVars": True,
                   "keepTime": True, "tags": ["kube-rollout"], "targetBlank": False,
                   "title": "kube-rollout dashboards", "type": "dashboards"}],
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": 39,
        "tags": ["kube-rollout", "kubernetes"],
        "templating": {"list": variables},
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


# The informational table: grace period far above the p99 drain over 7 days. The second part
# is for --histograms.per-namespace (quantiles with an empty workload label): the shortest grace
# period of the namespace's workloads of that kind against their pooled p99.
GRACE_FAR_ABOVE_FACTOR = 4
GRACE = "kube_rollout_termination_grace_period_seconds"
P99_7D = (f'namespace_workload:kube_rollout_pod_termination_duration_seconds:quantile7d'
          f'{{{SEL}, quantile="0.99"}}')
GRACE_FAR_ABOVE = (
    f"max by ({BY}) ({GRACE}{{{SEL}}})\n"
    f"> on ({BY}) {GRACE_FAR_ABOVE_FACTOR} *\n"
    f"max by ({BY}) ({P99_7D})\n"
    f"or\n"
    f"min by (namespace, workload_type) ({GRACE}{{{SEL}}})\n"
    f"> on (namespace, workload_type) {GRACE_FAR_ABOVE_FACTOR} *\n"
    f"max by (namespace, workload_type) ({P99_7D[:-1]}, workload=\"\"}})"
)


# --- the overview ----------------------------------------------------------------------------------
def overview():
    L = Layout()
    L.row("Now")
    L.add(stat("Rollouts in progress", "short",
               f"count(max by ({BY}) (kube_rollout_in_progress_seconds{{{SEL}}}) > 0) or vector(0)",
               "Rollouts in flight: started and not yet complete (ready and every old pod gone) "
               "or superseded. Includes OnDelete rollouts waiting for people."), 4, 4)
    L.add(stat("Stalled rollouts", "short",
               f'sum(max by ({BY}) (kube_rollout_phase{{{SEL}, phase="stalled"}})) or vector(0)',
               "Deployment rollouts past their progress deadline (Progressing=False, "
               "ProgressDeadlineExceeded). StatefulSets and DaemonSets have no progress deadline.",
               steps=("green", (1, "red"))), 3, 4)
    L.add(stat("Waiting rollouts", "short",
               f'sum(max by ({BY}) (kube_rollout_phase{{{SEL}, phase="waiting"}})) or vector(0)',
               "OnDelete StatefulSets and DaemonSets with a new template, nothing terminating and "
               "every pod ready: the controller replaces no pod until people delete the old ones. "
               "Never slow, never alerting."), 3, 4)
    L.add(stat("Terminating pods", "short",
               f"sum(kube_rollout_terminating_pods{{{SEL}}}) or vector(0)",
               "Pods of the selected workloads with a deletionTimestamp that still exist."), 4, 4)
    L.add(stat("Overdue pods", "short",
               f"sum(kube_rollout_terminating_pods_overdue{{{SEL}}}) or vector(0)",
               "Terminating pods past their first observed deletionTimestamp (the deletion "
               "request plus the grace period): stuck.", steps=("green", (1, "red"))), 3, 4)
    L.add(stat("Oldest termination", "s",
               f"max(kube_rollout_oldest_termination_seconds{{{SEL}}}) or vector(0)",
               "Time since the earliest deletion request among the terminating pods.",
               steps=("green", (300, "yellow"), (900, "red"))), 4, 4)
    L.add(stat("Rollouts started", "short",
               f"round(sum(increase(kube_rollout_started_total{{{SEL}}}[$__range])))",
               "Rollouts started in the selected time range."), 3, 4)

    L.add(table(
        "Rollouts in progress", "s",
        [target(
            f"max by ({BY}, phase) (kube_rollout_phase{{{SEL}}} == 1)\n"
            f"* on ({BY}) group_left\n"
            f"max by ({BY}) (kube_rollout_in_progress_seconds{{{SEL}}}) > 0",
            instant=True, fmt="table")],
        {"Value": "age"}, {"age": "s"},
        "Every rollout in flight, with its kind, phase (progressing: not ready yet; draining: "
        "ready, old pods remain; waiting: OnDelete, waits for people to delete old pods; paused; "
        "stalled) and age. Empty when nothing is rolling out.",
        sort="age", links=drilldown_link()), 12, 8)
    L.add(timeseries(
        "Rollout age", "s",
        targets((f"max by ({BY}) (kube_rollout_in_progress_seconds{{{SEL}}}) > 0\n"
                 f"unless on ({BY})\n"
                 f'max by ({BY}) (kube_rollout_phase{{{SEL}, phase="waiting"}}) == 1',
                 WL)),
        f"Age of each rollout in flight, except while it waits for people (phase waiting: an "
        f"OnDelete rollout's age measures people, and it is never slow). The line is the SLO "
        f"threshold ({SLO_THRESHOLD} s).",
        threshold=(SLO_THRESHOLD, "red", False)), 12, 8)

    L.add(timeseries(
        "Terminating pods", "short",
        targets((f"sum by ({BY}) (kube_rollout_terminating_pods{{{SEL}}}) > 0",
                 WL)),
        "Pods with a deletionTimestamp that still exist, per workload; rollouts and scale-downs "
        "both count.", stack=True), 8, 8)
    L.add(timeseries(
        "Overdue pods", "short",
        targets((f"sum by ({BY}) (kube_rollout_terminating_pods_overdue{{{SEL}}}) > 0",
                 WL)),
        "Terminating pods past their deletion deadline. Any for 15 minutes fires "
        "KubeRolloutPodsStuckTerminating.", stack=True), 8, 8)
    L.add(timeseries(
        "Oldest termination", "s",
        targets((f"max by ({BY}) (kube_rollout_oldest_termination_seconds{{{SEL}}}) > 0",
                 WL)),
        "Per workload, the time since the earliest deletion request of its terminating pods."),
        8, 8)
    L.add(timeseries(
        "Overdue pods by reason", "short",
        targets((f"sum by (reason) (kube_rollout_terminating_pods_overdue_by_reason{{{SEL}}})",
                 "{{reason}}")),
        "Overdue pods of the selected workloads, stacked by why they are stuck: node_lost (the "
        "node is NotReady or gone), finalizers (finished, held by finalizers), still_running "
        "(node Ready, the kill or cleanup does not finish), unknown (not read yet, no permission "
        "to read nodes, or --no-stuck-reasons). The runbook has a section per reason.",
        stack=True), 8, 8)
    L.add(table(
        "Overdue pods by workload and reason", "short",
        [target(f"max by ({BY}, reason) (kube_rollout_terminating_pods_overdue_by_reason{{{SEL}}})",
                instant=True, fmt="table")],
        {"Value": "overdue pods"}, {"overdue pods": "short"},
        "Each workload with overdue pods, one row per stuck reason. Empty when nothing is stuck.",
        sort="overdue pods", links=drilldown_link()), 8, 8)
    L.add(table(
        "Grace period far above drains (informational)", "s",
        [target(GRACE_FAR_ABOVE, ref="A", instant=True, fmt="table"),
         target(f"max by ({BY}) ({P99_7D})\nand on ({BY})\n(\n{GRACE_FAR_ABOVE}\n)",
                ref="B", instant=True, fmt="table")],
        {"Value #A": "grace period", "Value #B": "p99 drain, 7 days"},
        {"grace period": "s", "p99 drain, 7 days": "s"},
        f"Informational, not a problem and not alerting: workloads whose "
        f"terminationGracePeriodSeconds is more than {GRACE_FAR_ABOVE_FACTOR} times their p99 "
        "termination time of the last 7 days. A long grace costs nothing while pods exit on "
        "SIGTERM, but a pod that hangs holds its rollout (and node drains) for the whole grace "
        "before it is killed: a grace closer to the real drains bounds that. With "
        "--histograms.per-namespace, per namespace and kind, with the shortest grace period.",
        sort="grace period", links=drilldown_link()), 8, 8)

    L.row("Rollouts and durations")
    L.add(timeseries(
        "Rollouts per day", "short",
        targets(
            (f"sum(increase(kube_rollout_started_total{{{SEL}}}[$__rate_interval]))", "started"),
            (f'sum(increase(kube_rollout_duration_seconds_count{{{SEL}, milestone="complete"}}[$__rate_interval]))',
             "completed"),
            (f"sum(increase(kube_rollout_superseded_total{{{SEL}}}[$__rate_interval]))",
             "superseded"),
            (f"sum by (threshold_seconds) (increase(kube_rollout_slow_total{{{SEL}}}[$__rate_interval]))",
             "slower than {{threshold_seconds}} s"),
        ),
        "Per day (the panel's minimum interval is 1d): rollouts started, completed, superseded "
        "by a newer one before completing, and still in flight at each SLO threshold.",
        bars=True, interval="1d"), 12, 8)
    L.add(timeseries(
        "Time to ready vs. complete", "s",
        targets(*quantiles_of("namespace_workload:kube_rollout_duration_seconds_bucket:rate1d",
                              by="milestone")),
        "Rollout start to ready (kubectl's \"successfully rolled out\") and to complete (every "
        "old pod gone), over the rollouts of the preceding day at each point, across the selected "
        "workloads. The gap between the two is the drain tail: for StatefulSets and DaemonSets "
        "the drains sit before ready, so filter by kind to compare like with like."), 12, 8)

    L.add(table(
        "Per workload over the selected range", "s",
        [
            target(f'histogram_quantile(0.9, sum by ({BY}, le) (increase(kube_rollout_duration_seconds_bucket{{{SEL}, milestone="ready"}}[$__range]))) >= 0',
                   ref="A", instant=True, fmt="table"),
            target(f'histogram_quantile(0.9, sum by ({BY}, le) (increase(kube_rollout_duration_seconds_bucket{{{SEL}, milestone="complete"}}[$__range]))) >= 0',
                   ref="B", instant=True, fmt="table"),
            target(f"histogram_quantile(0.9, sum by ({BY}, le) (increase(kube_rollout_drain_tail_seconds_bucket{{{SEL}}}[$__range]))) >= 0",
                   ref="C", instant=True, fmt="table"),
            target(f"round(sum by ({BY}) (increase(kube_rollout_started_total{{{SEL}}}[$__range])))",
                   ref="D", instant=True, fmt="table"),
            target(f'sum by ({BY}) (increase(kube_rollout_duration_seconds_bucket{{{SEL}, milestone="complete", le="{SLO_THRESHOLD}.0"}}[$__range]))\n'
                   f'/\nsum by ({BY}) (increase(kube_rollout_duration_seconds_count{{{SEL}, milestone="complete"}}[$__range]))',
                   ref="E", instant=True, fmt="table"),
        ],
        {"Value #A": "ready p90", "Value #B": "complete p90", "Value #C": "drain tail p90",
         "Value #D": "rollouts", "Value #E": f"complete within {SLO_THRESHOLD // 60}m"},
        {"ready p90": "s", "complete p90": "s", "drain tail p90": "s", "rollouts": "short",
         f"complete within {SLO_THRESHOLD // 60}m": "percentunit"},
        "Over the dashboard's time range, per workload: p90 of time to ready, time to complete "
        "and drain tail; rollouts started; and the share of completed rollouts that completed "
        f"within {SLO_THRESHOLD // 60} minutes (from the duration histogram).",
        sort="complete p90", links=drilldown_link()), 24, 8)

    L.add(timeseries(
        "Drain tail (complete − ready)", "s",
        targets(*quantiles_of("namespace_workload:kube_rollout_drain_tail_seconds_bucket:rate1d")),
        "How long old pods linger after kubectl reports the rollout finished, over the rollouts "
        "of the preceding day at each point, across the selected workloads. Near 0 for "
        "StatefulSets and DaemonSets: their drains sit inside the rollout."), 12, 8)
    L.add(timeseries(
        "Pod termination duration", "s",
        targets(*quantiles_of(
            "namespace_workload:kube_rollout_pod_termination_duration_seconds_bucket:rate1d")),
        "Deletion request to pod object gone, over the terminations of the preceding day at each "
        "point, across the selected workloads."), 12, 8)

    L.row("Deploy-duration SLO (whole cluster)")
    L.add(stat("SLO compliance, 30 days", "percentunit",
               f"1 - slo:sli_error:ratio_rate30d{{{SLO}}}",
               "Share of the rollouts of the last 30 days that were not still in flight "
               f"{SLO_THRESHOLD // 60} minutes after their start. Objective 99% (alerts/generate.py). "
               "The SLO covers every workload of every kind: the namespace, kind and workload "
               "variables do not apply. OnDelete rollouts count as started, never as slow.",
               steps=("red", (0.99, "green")), decimals=2), 6, 8)
    L.add(stat("Error budget remaining, 30 days", "percentunit",
               f"slo:period_error_budget_remaining:ratio{{{SLO}}}",
               "The share of the 30-day error budget (1% of rollouts may be slow) not yet spent; "
               "negative when overspent.",
               steps=("red", (0, "orange"), (0.25, "green")), decimals=1), 6, 8)
    L.add(timeseries(
        "Error budget remaining", "percentunit",
        targets((f"slo:period_error_budget_remaining:ratio{{{SLO}}}", "remaining")),
        "The 30-day error budget left at each point in time."), 12, 8)

    L.add(timeseries(
        "Slow rollout ratio", "percentunit",
        targets(
            (f"slo:sli_error:ratio_rate1h{{{SLO}}}", "last 1h"),
            (f"slo:sli_error:ratio_rate1d{{{SLO}}}", "last 1d"),
            (f"slo:sli_error:ratio_rate30d{{{SLO}}}", "last 30d"),
            (f"slo:error_budget:ratio{{{SLO}}}", "error budget"),
        ),
        "Slow rollouts (still in flight at the threshold) per rollout started, over three "
        "windows, against the budget. Gaps mean no rollout in the window. Short windows can "
        "exceed 100%: a rollout counts as slow 15 minutes after it counted as started."), 24, 8)
    L.row("Exporter", collapsed=True)
    L.add(timeseries(
        "Synced", "bool_yes_no",
        targets((f"min by (resource) (kube_rollout_exporter_synced{{{JOB}}})", "{{resource}}")),
        "Yes once a resource's first list finished, while its watch is healthy."), 8, 6)
    L.add(timeseries(
        "Watch events", "eps",
        targets((f"sum by (resource) (rate(kube_rollout_exporter_watch_events_total{{{JOB}}}[$__rate_interval]))",
                 "{{resource}}")),
        "Watch events received per second."), 8, 6)
    L.add(timeseries(
        "Watch errors and relists", "short",
        targets(
            (f"sum by (resource) (increase(kube_rollout_exporter_watch_errors_total{{{JOB}}}[$__rate_interval]))",
             "{{resource}} errors"),
            (f"sum by (resource) (increase(kube_rollout_exporter_watch_restarts_total{{{JOB}}}[$__rate_interval]))",
             "{{resource}} relists"),
        ),
        "Watch errors and relists per interval. Persistent errors fire "
        "KubeRolloutExporterWatchErrors."), 8, 6)
    L.add(timeseries(
        "Objects held", "short",
        targets((f"sum by (resource) (kube_rollout_exporter_objects{{{JOB}}})", "{{resource}}")),
        "Objects of each watched resource the exporter holds."), 8, 6)
    L.add(timeseries(
        "Imprecise observations", "short",
        targets(
            (f"sum by (reason) (increase(kube_rollout_exporter_imprecise_observations_total{{{JOB}}}[$__rate_interval]))",
             "{{reason}}"),
            (f"sum(increase(kube_rollout_exporter_unknown_start_rollouts_total{{{JOB}}}[$__rate_interval]))",
             "rollouts with unknown start"),
        ),
        "Observations timed at a relist (watch gaps) or with an unknown deletion request, and "
        "rollouts found in flight at startup whose start is unknown: not observed."), 8, 6)
    L.add(timeseries(
        "Memory and CPU", "bytes",
        targets(
            (f"process_resident_memory_bytes{{{JOB}}}", "{{instance}} memory"),
            (f"rate(process_cpu_seconds_total{{{JOB}}}[$__rate_interval])", "{{instance}} CPU"),
        ),
        "Resident memory (left) and CPU in cores (right) of each exporter instance."), 8, 6)
    cpu = L.collapsed["panels"][-1]
    cpu["fieldConfig"]["overrides"] = [{
        "matcher": {"id": "byFrameRefID", "options": "B"},
        "properties": [{"id": "unit", "value": "short"},
                       {"id": "custom.axisPlacement", "value": "right"}],
    }]
    L.add(stat("Exporter version", "none",
               f"max by (version) (kube_rollout_exporter_build_info{{{JOB}}})",
               "The version label of kube_rollout_exporter_build_info.", legend="{{version}}",
               ), 8, 4)
    L.collapsed["panels"][-1]["options"]["textMode"] = "name"

    variables = WORKLOAD_VARIABLES + [
        query_variable("job", "Exporter job", "label_values(kube_rollout_exporter_build_info, job)"),
    ]
    return dashboard(
        OVERVIEW_UID, "Kubernetes / Rollouts / Overview",
        "Rollouts of every Deployment, StatefulSet and DaemonSet: in flight, their phase and "
        "age, terminating and stuck pods, time to ready vs. complete, drain tails, and the "
        "deploy-duration SLO.",
        variables, L.panels, enable_annotations=False,
    )


# --- the per-workload drill-down -------------------------------------------------------------------
def workload():
    L = Layout()
    L.row("Phase")
    # One code per workload: each phase series times its code, joined with `or` because a kind
    # exports only its own phases (a sum would drop a workload that lacks one of them).
    code = f"max by ({BY}) (\n  " + "\n  or ".join(
        f'{value} * kube_rollout_phase{{{SEL}, phase="{name}"}}'
        for value, name, _ in PHASES if value
    ) + "\n)"
    timeline = panel(
        "state-timeline", "Phase", "none",
        targets((code, WL)),
        "The rollout phase over time: progressing (not ready), draining (ready, old pods "
        "remain), complete; waiting (StatefulSets and DaemonSets with OnDelete: nothing "
        "terminating or unready, the old pods wait for people to delete them); paused and "
        "stalled (Deployments). Annotations mark rollout starts, ready and completions, with revision and images.",
        defaults={
            "color": {"mode": "thresholds"},
            "thresholds": thresholds("green"),
            "mappings": [{"type": "value", "options": {
                str(value): {"text": name, "color": color, "index": value}
                for value, name, color in PHASES}}],
            "custom": {"fillOpacity": 80, "lineWidth": 0},
        },
        options={"alignValue": "left", "mergeValues": True, "rowHeight": 0.9,
                 "showValue": "auto", "legend": {"displayMode": "list", "placement": "bottom",
                                                 "showLegend": True},
                 "tooltip": {"mode": "single", "sort": "none"}},
    )
    L.add(timeline, 24, 7)
    L.add(timeseries(
        "Rollout age", "s",
        targets((f"max by ({BY}) (kube_rollout_in_progress_seconds{{{SEL}}})",
                 WL)),
        f"Age of the rollout in flight; 0 when none. The line is the SLO threshold "
        f"({SLO_THRESHOLD} s). An OnDelete rollout ages while it waits for people (phase "
        f"waiting) but is never slow.", threshold=(SLO_THRESHOLD, "red", False)), 12, 7)
    strategy = table(
        "Update strategy", "none",
        [target(
            f"max by ({BY}, strategy) (\n"
            f"  kube_rollout_workload_info{{{SEL}}}\n"
            f"  * on ({BY}) group_left\n"
            f"  max by ({BY}) (kube_rollout_partition{{{SEL}}})\n"
            f"  or\n"
            f"  -kube_rollout_workload_info{{{SEL}}}\n"
            f")",
            instant=True, fmt="table")],
        {"workload_type": "kind", "Value": "partition"}, {},
        "How the controller replaces pods (kube_rollout_workload_info): RollingUpdate; "
        "Recreate (Deployments: every old pod stops before any new one starts); OnDelete "
        "(StatefulSets and DaemonSets: a pod is replaced only when people delete it, phase "
        "waiting meanwhile). Partition (kube_rollout_partition): a StatefulSet's "
        "rollingUpdate.partition; pods at lower ordinals keep the old revision (a canary); "
        "none where unset.")
    strategy["transformations"][1]["options"]["indexByName"] = {
        "namespace": 0, "workload": 1, "workload_type": 2, "strategy": 3, "Value": 4}
    strategy["fieldConfig"]["overrides"].append({
        "matcher": {"id": "byName", "options": "partition"},
        "properties": [{"id": "mappings", "value": [
            {"type": "value", "options": {"-1": {"text": "none", "index": 0}}}]}],
    })
    L.add(strategy, 12, 7)
    L.add(stat("Revision", "none",
               f"max by ({BY}) (kube_rollout_revision{{{SEL}}})",
               "Deployments: the revision annotation (deployment.kubernetes.io/revision). "
               "StatefulSets and DaemonSets: the `revision` of the update revision's "
               "ControllerRevision.",
               legend=WL), 8, 4)
    L.add(stat("Last rollout started", "dateTimeFromNow",
               f"max by ({BY}) (kube_rollout_last_started_timestamp_seconds{{{SEL}}}) * 1000",
               "When the last rollout started: the template change (a Deployment's resume "
               "event, a StatefulSet canary's promotion).", legend=WL), 8, 4)
    L.add(stat("Last rollout complete", "dateTimeFromNow",
               f"max by ({BY}) (kube_rollout_last_completed_timestamp_seconds{{{SEL}}} > 0) * 1000",
               "When the last rollout completed, as seen by this exporter process.",
               legend=WL), 8, 4)

    L.row("Terminations")
    L.add(timeseries(
        "Terminating and overdue pods", "short",
        targets(
            (f"sum by ({BY}) (kube_rollout_terminating_pods{{{SEL}}})",
             "{{workload_type}}/{{workload}} terminating"),
            (f"sum by ({BY}) (kube_rollout_terminating_pods_overdue{{{SEL}}})",
             "{{workload_type}}/{{workload}} overdue"),
        ),
        "Terminating pods, and those past their deletion deadline."), 12, 8)
    L.add(timeseries(
        "Oldest termination", "s",
        targets((f"max by ({BY}) (kube_rollout_oldest_termination_seconds{{{SEL}}})",
                 "{{workload_type}}/{{workload}}")),
        "Time since the earliest deletion request among the terminating pods."), 12, 8)
    L.add(heatmap(
        "Pod termination duration",
        f"sum by (le) (increase(kube_rollout_pod_termination_duration_seconds_bucket{{{SEL}}}[$__rate_interval]))",
        "deletion request to gone",
        "Pods that finished terminating in each interval, by how long they took from deletion "
        "request to object gone."), 12, 8)
    L.add(timeseries(
        "Termination p90: last hour vs. usual", "s",
        targets(
            (f'namespace_workload:kube_rollout_pod_termination_duration_seconds:quantile1h{{{SEL}, quantile="0.9"}}',
             "{{workload_type}}/{{workload}} last hour"),
            (f'namespace_workload:kube_rollout_pod_termination_duration_seconds:quantile7d{{{SEL}, quantile="0.9"}}',
             "{{workload_type}}/{{workload}} last 7 days"),
        ),
        "The comparison KubeRolloutPodTerminationsSlow makes: the p90 termination time of the "
        "last hour against that of the last 7 days."), 12, 8)
    L.add(timeseries(
        "Overdue pods by reason", "short",
        targets((f"sum by ({BY}, reason) (kube_rollout_terminating_pods_overdue_by_reason{{{SEL}}})",
                 "{{workload_type}}/{{workload}} {{reason}}")),
        "Overdue pods stacked by why they are stuck: node_lost, finalizers, still_running, "
        "unknown (see the runbook of KubeRolloutPodsStuckTerminating, a section per reason).",
        stack=True), 8, 8)
    drain = timeseries(
        "Drain vs. grace period", "s",
        targets(
            (f"max by ({BY}, quantile) (namespace_workload:kube_rollout_pod_termination_duration_seconds:quantile1d{{{SEL}}})",
             "{{workload_type}}/{{workload}} q{{quantile}}"),
            (f"max by ({BY}) ({GRACE}{{{SEL}}})",
             "{{workload_type}}/{{workload}} grace period"),
        ),
        "p50, p90 and p99 of deletion request to pod gone over the preceding day, against the "
        "pod template's terminationGracePeriodSeconds (dashed). Drains at the grace line are "
        "killed mid-drain: see KubeRolloutGracePeriodExhausted's runbook. Quantiles far below "
        "it leave room to shorten it.")
    drain["fieldConfig"]["overrides"] = [{
        "matcher": {"id": "byFrameRefID", "options": "B"},
        "properties": [{"id": "custom.lineStyle", "value": {"dash": [10, 10], "fill": "dash"}},
                       {"id": "color", "value": {"fixedColor": "red", "mode": "fixed"}}],
    }]
    L.add(drain, 8, 8)
    L.add(timeseries(
        "Terminations that used up their grace period", "percentunit",
        targets((f"max by ({BY}) (namespace_workload:kube_rollout_pod_termination_grace_exhausted:ratio1h{{{SEL}}})",
                 "{{workload_type}}/{{workload}} last hour")),
        "Share of the terminations of the last hour that lasted their whole grace period "
        "(killed mid-drain or stuck), what KubeRolloutGracePeriodExhausted reads; the line is "
        "its threshold (50%, with at least 5 terminations in the hour). No line: no "
        "termination in the hour.", threshold=(0.5, "red", False)), 8, 8)

    L.row("Durations")
    L.add(timeseries(
        "Time to ready and complete", "s",
        targets((f'namespace_workload:kube_rollout_duration_seconds:quantile1d{{{SEL}, quantile=~"0.5|0.9"}}',
                 "{{workload_type}}/{{workload}} {{milestone}} q{{quantile}}")),
        "Median and p90 of start to ready and start to complete, over the rollouts of the "
        "preceding day at each point. A StatefulSet's drains sit inside its rollout (each old "
        "pod is gone before its successor starts), so its ready and complete coincide; OnDelete "
        "rollouts are not timed."), 12, 8)
    L.add(timeseries(
        "Drain tail", "s",
        targets((f'namespace_workload:kube_rollout_drain_tail_seconds:quantile1d{{{SEL}, quantile=~"0.5|0.9"}}',
                 "{{workload_type}}/{{workload}} q{{quantile}}")),
        "Median and p90 of complete minus ready, over the rollouts of the preceding day at each "
        "point. Near 0 for StatefulSets and DaemonSets, which count a pod as updated only once "
        "its old pod is gone (a DaemonSet with maxSurge leaves a short tail)."), 12, 8)
    L.add(heatmap(
        "Time to complete",
        f'sum by (le) (increase(kube_rollout_duration_seconds_bucket{{{SEL}, milestone="complete"}}[$__rate_interval]))',
        "start to complete",
        "Rollouts that completed in each interval, by their duration from start to complete."),
        12, 8)
    L.add(timeseries(
        "Rollouts", "short",
        targets(
            (f"sum(increase(kube_rollout_started_total{{{SEL}}}[$__rate_interval]))", "started"),
            (f'sum(increase(kube_rollout_duration_seconds_count{{{SEL}, milestone="complete"}}[$__rate_interval]))',
             "completed"),
            (f"sum(increase(kube_rollout_superseded_total{{{SEL}}}[$__rate_interval]))",
             "superseded"),
            (f"sum by (threshold_seconds) (increase(kube_rollout_slow_total{{{SEL}}}[$__rate_interval]))",
             "slower than {{threshold_seconds}} s"),
        ),
        "Rollouts per interval (at least an hour): started, completed, superseded, slow.",
        bars=True, interval="1h"), 12, 8)
    return dashboard(
        WORKLOAD_UID, "Kubernetes / Rollouts / Workload",
        "One workload's rollouts (Deployment, StatefulSet or DaemonSet): phase timeline, update "
        "strategy and partition, age, terminations (heatmap, stuck pods), time to ready and "
        "complete, drain tail; annotations mark rollout starts, ready and completions with their revision and images.",
        WORKLOAD_VARIABLES, L.panels, enable_annotations=True,
    )


def render(d):
    return json.dumps(d, indent=2, ensure_ascii=False) + "\n"


def files():
    return {
        "kube-rollout-overview.json": render(overview()),
        "kube-rollout-workload.json": render(workload()),
    }


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", default=HERE, help="where to write (default: dashboards/)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 with a diff when the files differ")
    args = parser.parse_args(argv)
    drift = False
    for name, text in files().items():
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
                    fromfile=f"{path} (committed)", tofile=f"{path} (generated)"))
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if drift:
        print("\ndashboards/*.json differ from dashboards/generate.py's output: "
              "run `python3 dashboards/generate.py` and commit the result.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
