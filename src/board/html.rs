//! The board as one HTML page: server-rendered, inline CSS (light and dark, readable on a phone),
//! a few lines of script that refresh the sections in place every 5 s, and a `<noscript>` page
//! refresh instead. Nothing is loaded from elsewhere. Every string that comes from the cluster
//! goes through [`escape`].

use std::fmt::Write;

use super::{Board, Completed, InFlight, Overdue, Query, Workload};
use crate::model::WorkloadKind;

/// Text safe inside an HTML element or a double-quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A duration as people read it: `45s`, `3m05s`, `2h04m`.
fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

fn optional(secs: Option<f64>) -> String {
    secs.map_or_else(|| "unknown".to_string(), duration)
}

/// The query string of the board's filters (for links), `?`-prefixed when not empty.
fn query_string(q: &Query) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    if let Some(ns) = &q.namespace {
        s.append_pair("namespace", ns);
    }
    if let Some(k) = q.kind {
        s.append_pair("kind", k.as_str());
    }
    if q.limit != super::DEFAULT_LIMIT {
        s.append_pair("limit", &q.limit.to_string());
    }
    let s = s.finish();
    if s.is_empty() { s } else { format!("?{s}") }
}

const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#fff;--fg:#1d1f23;--mute:#5f6673;--line:#dde1e6;--warn:#a15c00;--bad:#b3261e;--ok:#1e7b34;--chip:#eef1f4}
@media (prefers-color-scheme:dark){:root{--bg:#121417;--fg:#e6e8eb;--mute:#9aa3ae;--line:#2b3036;--warn:#f0a040;--bad:#ff7b72;--ok:#5bc27a;--chip:#22272e}}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif}
header,main{max-width:1200px;margin:0 auto;padding:0 16px}
header{padding-top:12px}h1{font-size:1.4em;margin:.3em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}
.meta,.more,.empty{color:var(--mute)}form{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:.5em 0}
input,select,button{font:inherit;padding:4px 8px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--mute);font-weight:600;font-size:.9em}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.name{font-weight:600;word-break:break-all}.ns{color:var(--mute)}.images{color:var(--mute);font-size:.85em;word-break:break-all}
.chip{display:inline-block;padding:0 8px;border-radius:10px;background:var(--chip);font-size:.85em;white-space:nowrap}
.stalled,.overdue,.slow{color:var(--bad);font-weight:600}.draining,.waiting,.paused{color:var(--warn)}.complete{color:var(--ok)}
@media (max-width:700px){thead{display:none}table,tbody,tr,td{display:block;width:auto}tr{border-bottom:1px solid var(--line);padding:6px 0}
td{border:0;padding:2px 0}td[data-label]::before{content:attr(data-label) \": \";color:var(--mute)}}
";

/// Refreshes `#board` in place from the same URL every 5 s; the page works without it.
const SCRIPT: &str = "\
(function(){var busy=false;setInterval(function(){if(busy||document.hidden)return;busy=true;
fetch(location.href,{headers:{Accept:'text/html'}}).then(function(r){return r.ok?r.text():null}).then(function(t){
if(!t)return;var n=new DOMParser().parseFromString(t,'text/html').getElementById('board');
var o=document.getElementById('board');if(n&&o)o.replaceWith(n)}).catch(function(){}).then(function(){busy=false})},5000)})();
";

/// The whole page.
pub fn render(board: &Board, q: &Query, version: &str, metrics_path: &str) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let qs = query_string(q);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Rollouts · kube-rollout-exporter</title>\
         <noscript><meta http-equiv=\"refresh\" content=\"10\"></noscript>\
         <style>{STYLE}</style></head>\n<body>\n<header><h1>Rollouts</h1>\
         <form method=\"get\" action=\"/\"><label>namespace <input name=\"namespace\" value=\"{ns}\" \
         placeholder=\"all\" size=\"14\"></label><label>kind <select name=\"kind\">{kinds}</select></label>\
         <button type=\"submit\">filter</button></form>\
         <p class=\"meta\">kube-rollout-exporter {version} · SLO {slo} · refreshed every 5 s · \
         <a href=\"/api/v1/rollouts{qs}\">JSON</a> · <a href=\"{metrics}\">metrics</a></p></header>\n",
        ns = escape(q.namespace.as_deref().unwrap_or("")),
        kinds = kind_options(q.kind),
        version = escape(version),
        slo = duration(board.slo_threshold_seconds as f64),
        qs = escape(&qs),
        metrics = escape(metrics_path),
    );
    h.push_str("<main id=\"board\">\n");
    section(
        &mut h,
        "in-flight",
        "In flight",
        board.in_flight.total,
        &board.in_flight.rows,
        &[
            "Workload",
            "Phase",
            "Age",
            "New pods ready",
            "Old pods terminating",
            "Overdue",
        ],
        |h, r| in_flight_row(h, r, board.slo_threshold_seconds),
        "Nothing is rolling out.",
    );
    section(
        &mut h,
        "overdue",
        "Overdue terminations",
        board.overdue.total,
        &board.overdue.rows,
        &["Workload", "Phase", "Terminating", "Overdue", "Oldest"],
        overdue_row,
        "No pod is past its deletion deadline.",
    );
    section(
        &mut h,
        "recent",
        "Completed in the last hour",
        board.recent.total,
        &board.recent.rows,
        &[
            "Workload",
            "Completed",
            "Ready after",
            "Complete after",
            "Drain tail",
        ],
        |h, r| completed_row(h, r, board.generated_at),
        "No rollout completed in the last hour.",
    );
    h.push_str("</main>\n<script>");
    h.push_str(SCRIPT);
    h.push_str("</script>\n</body></html>\n");
    h
}

fn kind_options(selected: Option<WorkloadKind>) -> String {
    let mut s = format!(
        "<option value=\"\"{}>all</option>",
        if selected.is_none() { " selected" } else { "" }
    );
    for k in WorkloadKind::ALL {
        let _ = write!(
            s,
            "<option{}>{}</option>",
            if selected == Some(k) { " selected" } else { "" },
            k.as_str()
        );
    }
    s
}

#[allow(clippy::too_many_arguments)]
fn section<T>(
    h: &mut String,
    id: &str,
    title: &str,
    total: usize,
    rows: &[T],
    columns: &[&str],
    row: impl Fn(&mut String, &T),
    empty: &str,
) {
    let _ = writeln!(h, "<section id=\"{id}\"><h2>{title} ({total})</h2>");
    if rows.is_empty() {
        let _ = writeln!(h, "<p class=\"empty\">{empty}</p></section>");
        return;
    }
    h.push_str("<table><thead><tr>");
    for c in columns {
        let _ = write!(h, "<th>{c}</th>");
    }
    h.push_str("</tr></thead><tbody>\n");
    for r in rows {
        row(h, r);
    }
    h.push_str("</tbody></table>");
    if total > rows.len() {
        let _ = write!(
            h,
            "<p class=\"more\">Showing {} of {total}: filter by namespace or kind, or raise \
             <code>limit</code>.</p>",
            rows.len()
        );
    }
    h.push_str("</section>\n");
}

/// The workload cell, and the row's opening tag with its data attributes.
fn open_row(h: &mut String, w: &Workload, phase: &str) {
    let _ = write!(
        h,
        "<tr data-namespace=\"{ns}\" data-workload=\"{name}\" data-kind=\"{kind}\" data-phase=\"{phase}\">\
         <td data-label=\"Workload\"><span class=\"ns\">{ns}/</span><span class=\"name\">{name}</span> \
         <span class=\"chip\">{kind}</span>{revision}{images}</td>",
        ns = escape(&w.namespace),
        name = escape(&w.name),
        kind = w.kind,
        revision = w
            .revision
            .map(|r| format!(" <span class=\"chip\">rev {r}</span>"))
            .unwrap_or_default(),
        images = w
            .images
            .as_deref()
            .filter(|i| !i.is_empty())
            .map(|i| format!("<div class=\"images\">{}</div>", escape(i)))
            .unwrap_or_default(),
    );
}

fn reasons(reasons: &std::collections::BTreeMap<&'static str, u64>) -> String {
    if reasons.is_empty() {
        return String::new();
    }
    let list: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
    format!(" <span class=\"reasons\">({})</span>", list.join(", "))
}

fn in_flight_row(h: &mut String, r: &InFlight, slo: u64) {
    open_row(h, &r.workload, r.phase);
    let new = match (r.new_ready, r.new_wanted) {
        (Some(n), Some(m)) => format!("{n}/{m}"),
        _ => "unknown".into(),
    };
    let old = if r.old_terminating == 0 {
        "0".to_string()
    } else {
        format!(
            "{} (oldest {})",
            r.old_terminating,
            duration(r.oldest_termination_seconds)
        )
    };
    let _ = writeln!(
        h,
        "<td data-label=\"Phase\" class=\"{phase}\">{phase}</td>\
         <td data-label=\"Age\" class=\"num{slow}\">{age} / {slo}</td>\
         <td data-label=\"New pods ready\" class=\"num\">{new}</td>\
         <td data-label=\"Old pods terminating\" class=\"num\">{old}</td>\
         <td data-label=\"Overdue\" class=\"{overdue_class}\">{overdue}{reasons}</td></tr>",
        phase = r.phase,
        slow = if r.slow { " slow" } else { "" },
        age = duration(r.age_seconds),
        slo = duration(slo as f64),
        overdue_class = if r.overdue > 0 { "overdue" } else { "num" },
        overdue = r.overdue,
        reasons = reasons(&r.overdue_reasons),
    );
}

fn overdue_row(h: &mut String, r: &Overdue) {
    open_row(h, &r.workload, r.phase);
    let _ = writeln!(
        h,
        "<td data-label=\"Phase\" class=\"{phase}\">{phase}</td>\
         <td data-label=\"Terminating\" class=\"num\">{terminating}</td>\
         <td data-label=\"Overdue\" class=\"overdue\">{overdue}{reasons}</td>\
         <td data-label=\"Oldest\" class=\"num\">{oldest}</td></tr>",
        phase = r.phase,
        terminating = r.terminating,
        overdue = r.overdue,
        reasons = reasons(&r.overdue_reasons),
        oldest = duration(r.oldest_termination_seconds),
    );
}

fn completed_row(h: &mut String, r: &Completed, now: f64) {
    open_row(h, &r.workload, "complete");
    let _ = writeln!(
        h,
        "<td data-label=\"Completed\" class=\"num\">{ago} ago</td>\
         <td data-label=\"Ready after\" class=\"num\">{ready}</td>\
         <td data-label=\"Complete after\" class=\"num\">{complete}</td>\
         <td data-label=\"Drain tail\" class=\"num\">{tail}</td></tr>",
        ago = duration(now - r.completed_at),
        ready = optional(r.ready_seconds),
        complete = optional(r.complete_seconds),
        tail = optional(r.drain_tail_seconds),
    );
}
