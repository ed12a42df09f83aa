//! Lints every Grafana dashboard in `dashboards/` against the project's conventions:
//!
//! - classic dashboard JSON, `schemaVersion` 39 or later (Grafana 10 to 12), a unique `uid`;
//! - the data source only through a `datasource` variable of type `datasource` (query
//!   `prometheus`): every `datasource` reference is `${datasource}` or `$datasource`, never a uid;
//! - `namespace`, `workload_type` and `workload` query variables, multi-select with All;
//! - every panel, rows' nested panels included, has a unique id, and a unit
//!   (`fieldConfig.defaults.unit`) unless it is a row or text panel;
//! - every target has a `refId` and an `expr`;
//! - every range in a query is `[$__rate_interval]` (per-point rates and increases) or
//!   `[$__range]` (one number over the whole time range), never a fixed window: fixed windows
//!   belong in recording rules (alerts/);
//! - `le` matchers in the exporter's float form (`le="900.0"`);
//! - every query is valid PromQL (checked by promtool with Grafana's macros substituted), and
//!   every recorded series it reads is recorded by alerts/;
//! - the files are `dashboards/generate.py`'s output.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const DATASOURCE_REFS: [&str; 2] = ["${datasource}", "$datasource"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = repo().join("dashboards");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("dashboards/")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 2,
        "expected the overview and the workload dashboards"
    );
    paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = fs::read_to_string(p).unwrap();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
            (name, json)
        })
        .collect()
}

/// Every panel, with the panels nested in (collapsed) rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().map(Vec::as_slice).unwrap_or_default() {
            out.push(p);
            if let Some(nested) = p.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn variables(dashboard: &Value) -> &[Value] {
    dashboard["templating"]["list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// (where, PromQL) for every panel target, annotation, and query variable (the selector inside
/// `label_values(...)`).
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(dashboard) {
        for t in p["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let at = format!(
                "panel {:?} target {}",
                str_of(p, "title"),
                str_of(t, "refId")
            );
            out.push((at, str_of(t, "expr").to_string()));
        }
    }
    for a in dashboard["annotations"]["list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if let Some(expr) = a.get("expr").and_then(Value::as_str) {
            out.push((
                format!("annotation {:?}", str_of(a, "name")),
                expr.to_string(),
            ));
        }
    }
    for v in variables(dashboard) {
        if str_of(v, "type") != "query" {
            continue;
        }
        let query = match &v["query"] {
            Value::String(q) => q.as_str(),
            other => str_of(other, "query"),
        };
        let at = format!("variable {}", str_of(v, "name"));
        let selector = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(selector, _label)| selector.trim())
            .unwrap_or_else(|| panic!("{at}: expected label_values(selector, label): {query}"));
        out.push((at, selector.to_string()));
    }
    out
}

/// Text of `expr` outside string literals, with the literals blanked.
fn outside_strings(expr: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in expr.chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
            None => {}
        }
        out.push(if quote.is_some() { ' ' } else { c });
    }
    out
}

#[test]
fn committed_dashboards_are_the_generators_output() {
    let out = Command::new("python3")
        .args(["dashboards/generate.py", "--check"])
        .current_dir(repo())
        .output()
        .expect("cannot run python3 (needed by dashboards/generate.py)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn schema_version_title_and_unique_uid() {
    let mut uids = BTreeSet::new();
    for (name, d) in dashboards() {
        let version = d["schemaVersion"].as_u64().unwrap_or(0);
        assert!(version >= 39, "{name}: schemaVersion {version} < 39");
        assert!(!str_of(&d, "title").is_empty(), "{name}: no title");
        let uid = str_of(&d, "uid");
        assert!(!uid.is_empty() && uid.len() <= 40, "{name}: uid {uid:?}");
        assert!(uids.insert(uid.to_string()), "{name}: uid {uid} used twice");
        assert!(
            d.get("__inputs").is_none(),
            "{name}: __inputs would ask for a datasource uid"
        );
    }
}

#[test]
fn datasource_only_through_the_variable() {
    fn check(name: &str, path: &str, v: &Value) {
        match v {
            Value::Object(map) => {
                for (key, child) in map {
                    let here = format!("{path}.{key}");
                    if key == "datasource" {
                        let reference = match child {
                            Value::String(s) => s.as_str(),
                            Value::Object(o) => o.get("uid").and_then(Value::as_str).unwrap_or(""),
                            _ => "",
                        };
                        assert!(
                            DATASOURCE_REFS.contains(&reference),
                            "{name}: {here} is {child}, not the datasource variable"
                        );
                    }
                    check(name, &here, child);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    check(name, &format!("{path}[{i}]"), child);
                }
            }
            _ => {}
        }
    }
    for (name, d) in dashboards() {
        check(&name, "", &d);
        let ds: Vec<&Value> = variables(&d)
            .iter()
            .filter(|v| str_of(v, "type") == "datasource")
            .collect();
        assert!(
            ds.iter()
                .any(|v| str_of(v, "name") == "datasource" && str_of(v, "query") == "prometheus"),
            "{name}: no variable `datasource` of type datasource with query prometheus"
        );
        for p in panels(&d)
            .into_iter()
            .filter(|p| str_of(p, "type") != "row")
        {
            assert!(
                p.get("datasource").is_some(),
                "{name}: panel {:?} has no datasource",
                str_of(p, "title")
            );
        }
    }
}

#[test]
fn namespace_and_workload_variables_are_multi_with_all() {
    for (name, d) in dashboards() {
        for var in ["namespace", "workload_type", "workload"] {
            let v = variables(&d)
                .iter()
                .find(|v| str_of(v, "name") == var)
                .unwrap_or_else(|| panic!("{name}: no variable {var}"));
            assert_eq!(
                str_of(v, "type"),
                "query",
                "{name}: {var} is not a query variable"
            );
            assert_eq!(
                v["multi"],
                Value::Bool(true),
                "{name}: {var} is not multi-select"
            );
            assert_eq!(
                v["includeAll"],
                Value::Bool(true),
                "{name}: {var} has no All"
            );
        }
    }
}

#[test]
fn every_panel_has_a_unique_id_and_a_unit() {
    for (name, d) in dashboards() {
        let mut ids = BTreeSet::new();
        for p in panels(&d) {
            let title = str_of(p, "title");
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: panel {title:?} has no id"));
            assert!(
                ids.insert(id),
                "{name}: panel id {id} used twice ({title:?})"
            );
            let kind = str_of(p, "type");
            if kind == "row" || kind == "text" {
                continue;
            }
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
            assert!(
                !unit.is_empty(),
                "{name}: {kind} panel {title:?} has no unit"
            );
            assert!(!title.is_empty(), "{name}: panel {id} has no title");
        }
    }
}

#[test]
fn every_target_has_a_ref_id_and_an_expr() {
    for (name, d) in dashboards() {
        for p in panels(&d) {
            let title = str_of(p, "title");
            let targets = p["targets"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if str_of(p, "type") != "row" && str_of(p, "type") != "text" {
                assert!(
                    !targets.is_empty(),
                    "{name}: panel {title:?} has no targets"
                );
            }
            let mut refs = BTreeSet::new();
            for t in targets {
                let r = str_of(t, "refId");
                assert!(!r.is_empty(), "{name}: a target of {title:?} has no refId");
                assert!(refs.insert(r), "{name}: refId {r} twice in {title:?}");
                assert!(
                    !str_of(t, "expr").trim().is_empty(),
                    "{name}: target {r} of {title:?} has no expr"
                );
            }
        }
    }
}

/// Every `[...]` range is a Grafana interval macro. `$__rate_interval` is at least four scrape
/// intervals, so a rate always has samples; `$__range` is for single numbers over the whole
/// time range (stat and table panels, instant queries). This also covers every rate(),
/// increase() and irate(), which need a range.
#[test]
fn ranges_use_rate_interval_or_range() {
    for (name, d) in dashboards() {
        for (at, expr) in queries(&d) {
            let code = outside_strings(&expr);
            for (i, _) in code.match_indices('[') {
                let rest = &code[i..];
                assert!(
                    rest.starts_with("[$__rate_interval]") || rest.starts_with("[$__range]"),
                    "{name}: {at}: range {:?} must be [$__rate_interval] or [$__range]: {expr}",
                    rest.split(']').next().unwrap_or(rest)
                );
            }
            for function in ["rate(", "increase(", "irate("] {
                for (i, _) in code.match_indices(function) {
                    let before = code[..i].chars().last();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        continue; // histogram_quantile( etc. are not rate(
                    }
                    assert!(
                        code[i..].contains("[$__rate_interval]")
                            || code[i..].contains("[$__range]"),
                        "{name}: {at}: {function} without a Grafana range: {expr}"
                    );
                }
            }
        }
    }
}

#[test]
fn le_matchers_use_the_float_form() {
    for (name, d) in dashboards() {
        for (at, expr) in queries(&d) {
            for (i, _) in expr.match_indices("le=\"") {
                let value: String = expr[i + 4..].chars().take_while(|&c| c != '"').collect();
                assert!(
                    value == "+Inf" || (value.contains('.') && value.parse::<f64>().is_ok()),
                    "{name}: {at}: le=\"{value}\" must be a float such as le=\"900.0\""
                );
            }
        }
    }
}

/// Recorded series (names with colons) that the dashboards read, and those alerts/ records.
#[test]
fn recorded_series_exist_in_alerts() {
    let mut recorded = BTreeSet::new();
    for entry in fs::read_dir(repo().join("alerts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            for line in fs::read_to_string(&path).unwrap().lines() {
                if let Some(name) = line.trim().strip_prefix("- record: ") {
                    recorded.insert(name.to_string());
                }
            }
        }
    }
    assert!(!recorded.is_empty());
    for (name, d) in dashboards() {
        for (at, expr) in queries(&d) {
            let code = outside_strings(&expr);
            for word in code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
                if word.contains(':') && word.chars().next().is_some_and(char::is_alphabetic) {
                    assert!(
                        recorded.contains(word),
                        "{name}: {at} reads {word}, which no rule in alerts/ records"
                    );
                }
            }
        }
    }
}

/// Substitutes Grafana's macros and variables as Grafana would for a plausible selection.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "2m")
        .replace("$__range", "1d")
        .replace("$__interval", "1m")
        .replace("$namespace", "(shop|pay)")
        // Before `$workload`, which is its prefix.
        .replace("$workload_type", "(deployment|statefulset)")
        .replace("$workload", ".*")
        .replace("$job", "kube-rollout-exporter")
}

/// Every query parses as PromQL: each becomes a recording rule of a temporary rule file that
/// promtool checks.
#[test]
fn queries_are_valid_promql() {
    let mut rules = String::from("groups:\n  - name: dashboard-queries\n    rules:\n");
    let mut index = Vec::new();
    for (name, d) in dashboards() {
        for (at, expr) in queries(&d) {
            rules += &format!(
                "      - record: dashboard_query_{}\n        expr: {}\n",
                index.len(),
                serde_json::to_string(&substitute(&expr)).unwrap()
            );
            index.push(format!("{name}: {at}"));
        }
    }
    let path: PathBuf = std::env::temp_dir().join(format!(
        "kube-rollout-dashboards-{}.yaml",
        std::process::id()
    ));
    fs::write(&path, rules).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): run ./scripts/test, which installs it")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    fs::remove_file(&path).ok();
    let legend: Vec<String> = index
        .iter()
        .enumerate()
        .map(|(i, at)| format!("dashboard_query_{i}: {at}"))
        .collect();
    assert!(
        out.status.success(),
        "{text}\nqueries:\n{}",
        legend.join("\n")
    );
}

/// The annotation queries are unit-tested by promtool in `alerts/tests/dashboard-annotations.yaml`
/// (run by `cargo test --test rules`): every annotation query of every dashboard, substituted as
/// above, is an `expr` there verbatim, so a changed query fails here until its test follows.
#[test]
fn annotation_queries_are_unit_tested_verbatim() {
    let path = repo().join("alerts/tests/dashboard-annotations.yaml");
    let text = fs::read_to_string(&path).expect("alerts/tests/dashboard-annotations.yaml");
    let tested: BTreeSet<String> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- expr: "))
        .map(|value| {
            serde_json::from_str::<String>(value).unwrap_or_else(|e| {
                panic!("{}: expr {value} is not a JSON string: {e}", path.display())
            })
        })
        .collect();
    let mut annotations = 0;
    for (name, d) in dashboards() {
        for a in d["annotations"]["list"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let Some(expr) = a.get("expr").and_then(Value::as_str) else {
                continue;
            };
            annotations += 1;
            let expr = substitute(expr);
            assert!(
                tested.contains(&expr),
                "{name}: annotation {:?} is not tested in {}; its query, substituted:\n{}",
                str_of(a, "name"),
                path.display(),
                serde_json::to_string(&expr).unwrap()
            );
        }
    }
    assert!(
        annotations >= 6,
        "start, ready and complete on both dashboards"
    );
}
