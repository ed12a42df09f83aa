//! The Prometheus rules in `alerts/`: valid for promtool, covered by its unit tests, in step with
//! their generator, and complete (every alert has a severity, a summary, a templated description
//! and a runbook section that exists).
//!
//! Needs `promtool` (Debian's `prometheus` package, which `./scripts/test` installs) and `python3`
//! (the generator). A missing tool fails these tests; it never skips them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RUNBOOK_BASE: &str =
    "https://github.com/kube-rollout-exporter/kube-rollout-exporter/blob/main/docs/runbooks.md#";
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `*.yaml` files directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.yaml in {}", dir.display());
    files
}

/// Runs a tool from the repository root; a tool that is not installed fails the test with how to
/// get it.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}`: {e}. Run ./scripts/test, which installs promtool \
                 (Debian package `prometheus`); the generator needs python3."
            )
        })
}

/// Runs a tool and panics with its whole output unless it succeeds; returns stdout and stderr.
fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    text
}

fn path_args(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

fn rule_files() -> Vec<PathBuf> {
    yaml_files(&repo().join("alerts"))
}

fn test_files() -> Vec<PathBuf> {
    yaml_files(&repo().join("alerts/tests"))
}

/// One rule of a generated rule file.
#[derive(Debug, Default)]
struct Rule {
    file: String,
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    r#for: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

impl Rule {
    fn name(&self) -> &str {
        self.alert
            .as_deref()
            .or(self.record.as_deref())
            .unwrap_or("?")
    }
}

/// Parses the YAML subset that `alerts/generate.py` writes (its `render`): groups of rules, each
/// with a literal-block `expr`, an optional `for`, and labels and annotations whose values are
/// JSON strings. Any other line is an error: the files are generated, and the generator test
/// keeps them so.
fn parse_rules(path: &Path) -> Vec<Rule> {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = fs::read_to_string(path).unwrap();
    let mut rules: Vec<Rule> = Vec::new();
    let mut section: Option<&str> = None;
    let mut in_expr = false;
    for (n, line) in text.lines().enumerate() {
        let fail = |why: &str| -> ! {
            panic!(
                "{file}:{}: {why}: {line:?} (regenerate with alerts/generate.py)",
                n + 1
            )
        };
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if in_expr && indent >= 10 {
            let rule = rules.last_mut().unwrap();
            rule.expr.push_str(&line[10..]);
            rule.expr.push('\n');
            continue;
        }
        in_expr = false;
        if line.trim_start().starts_with('#') {
            continue;
        }
        let (key, value) = match line.trim().split_once(':') {
            Some((k, v)) => (k.trim_start_matches("- "), v.trim()),
            None => fail("not `key: value`"),
        };
        match (indent, key) {
            (0, "groups") | (4, "rules") | (4, "interval") => {}
            (2, "name") if line.starts_with("  - ") => section = None,
            (6, "alert" | "record") if line.starts_with("      - ") => {
                let mut rule = Rule {
                    file: file.clone(),
                    ..Rule::default()
                };
                if key == "alert" {
                    rule.alert = Some(value.to_string());
                } else {
                    rule.record = Some(value.to_string());
                }
                rules.push(rule);
                section = None;
            }
            (8, "expr") if value == "|" => in_expr = true,
            (8, "for") => rules.last_mut().unwrap().r#for = Some(value.to_string()),
            (8, "labels" | "annotations") if value.is_empty() => section = Some(key),
            (10, _) if section.is_some() => {
                let value: String = serde_json::from_str(value)
                    .unwrap_or_else(|e| fail(&format!("value is not a JSON string ({e})")));
                let rule = rules.last_mut().unwrap();
                let map = match section {
                    Some("labels") => &mut rule.labels,
                    _ => &mut rule.annotations,
                };
                assert!(
                    map.insert(key.to_string(), value).is_none(),
                    "{file}: duplicate {key}"
                );
            }
            _ => fail("unexpected line"),
        }
    }
    for rule in &rules {
        assert!(
            !rule.expr.trim().is_empty(),
            "{file}: {} has no expr",
            rule.name()
        );
    }
    rules
}

fn all_rules() -> Vec<Rule> {
    rule_files().iter().flat_map(|f| parse_rules(f)).collect()
}

/// GitHub's anchor for a Markdown heading: lowercase, spaces to hyphens, other punctuation gone.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn runbook_anchors() -> BTreeSet<String> {
    let text = fs::read_to_string(repo().join("docs/runbooks.md")).expect("docs/runbooks.md");
    text.lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(anchor)
        .collect()
}

/// Links inside docs/runbooks.md (`](#anchor)`, e.g. to a stuck reason's subsection) lead to a
/// heading of any level.
#[test]
fn runbook_links_within_the_page_resolve() {
    let text = fs::read_to_string(repo().join("docs/runbooks.md")).expect("docs/runbooks.md");
    let headings: BTreeSet<String> = text
        .lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect();
    let mut links = 0;
    for (at, _) in text.match_indices("](#") {
        let target: String = text[at + 3..].chars().take_while(|&c| c != ')').collect();
        assert!(
            headings.contains(&target),
            "docs/runbooks.md links to #{target}, which no heading has"
        );
        links += 1;
    }
    assert!(
        links > 0,
        "the stuck reasons are linked from their alert's section"
    );
}

#[test]
fn promtool_check_rules_is_clean() {
    let files = path_args(&rule_files());
    let mut args = vec!["check", "rules"];
    args.extend(files.iter().map(String::as_str));
    let out = run_ok("promtool", &args);
    assert!(
        !out.contains("WARNING"),
        "promtool check rules warns:\n{out}"
    );
    for file in &files {
        assert!(
            out.contains(&format!("Checking {file}")),
            "{file} not checked:\n{out}"
        );
    }
}

#[test]
fn promtool_unit_tests_pass() {
    let files = path_args(&test_files());
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let out = run_ok("promtool", &args);
    assert_eq!(
        out.matches("SUCCESS").count(),
        files.len(),
        "every test file must succeed:\n{out}"
    );
}

#[test]
fn committed_rules_are_the_generators_default_output() {
    let out = run("python3", &["alerts/generate.py", "--check"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every parameter changes the rules, and the result is still valid for promtool.
#[test]
fn generator_parameters_give_valid_rules() {
    let dir = std::env::temp_dir().join(format!("kube-rollout-rules-{}", std::process::id()));
    let dir_arg = dir.display().to_string();
    run_ok(
        "python3",
        &[
            "alerts/generate.py",
            "--out-dir",
            &dir_arg,
            "--slo-threshold",
            "600",
            "--slo-objective",
            "99.5",
            "--slo-by",
            "namespace",
            "--job-selector",
            "job=\"rollouts\",namespace=\"monitoring\"",
            "--rollout-too-long-seconds",
            "3600",
            "--grace-exhausted-ratio",
            "0.8",
            "--grace-exhausted-min-terminations",
            "10",
        ],
    );
    let files = yaml_files(&dir);
    let text: String = files
        .iter()
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    for expected in [
        "kube_rollout_slow_total{threshold_seconds=\"600\"}",
        "vector(0.995)",
        "(14.4 * 0.005)",
        "sum by (namespace) (rate(kube_rollout_started_total[1h]))",
        // ceil(1 / (14.4 * 0.005)) = 14 rollouts before the 1h window may page.
        "sum by (namespace) (increase(kube_rollout_started_total[1h])) >= 14",
        "In namespace {{ $labels.namespace }}, ",
        "up{job=\"rollouts\",namespace=\"monitoring\"} == 0",
        "(kube_rollout_in_progress_seconds) > 3600",
        "longer than 1h.",
        "took longer than 10m",
        "namespace_workload:kube_rollout_pod_termination_grace_exhausted:ratio1h >= 0.8",
        "* 3600 >= 10",
        "(at least 10 terminations)",
    ] {
        assert!(text.contains(expected), "generated rules lack {expected:?}");
    }
    let args = path_args(&files);
    let mut check = vec!["check", "rules"];
    check.extend(args.iter().map(String::as_str));
    run_ok("promtool", &check);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_alert_is_complete_and_has_a_runbook_section() {
    let anchors = runbook_anchors();
    let rules = all_rules();
    let alerts: Vec<&Rule> = rules.iter().filter(|r| r.alert.is_some()).collect();
    assert!(
        alerts.len() >= 10,
        "expected at least 10 alert rules, found {}",
        alerts.len()
    );
    let mut linked = BTreeSet::new();
    for rule in &alerts {
        let name = rule.name();
        let at = format!("{} {name}", rule.file);
        let severity = rule.labels.get("severity").map(String::as_str);
        assert!(
            severity.is_some_and(|s| SEVERITIES.contains(&s)),
            "{at}: severity must be one of {SEVERITIES:?}, is {severity:?}"
        );
        assert!(
            rule.r#for.is_some(),
            "{at}: no `for`: one bad evaluation would notify"
        );
        for key in ["summary", "description", "runbook_url"] {
            let value = rule.annotations.get(key).map(String::as_str).unwrap_or("");
            assert!(
                !value.trim().is_empty(),
                "{at}: annotation {key} missing or empty"
            );
        }
        // absent() has no series to describe: its labels are the selector's.
        assert!(
            rule.annotations["description"].contains("{{ $") || rule.expr.starts_with("absent("),
            "{at}: the description must say which object and value \
             ({{{{ $labels.… }}}}, {{{{ $value }}}})"
        );
        // Per-workload alerts name the workload and give the value.
        if rule.expr.contains("by (namespace, workload") {
            for needed in ["$labels.namespace", "$labels.workload", "$value"] {
                assert!(
                    rule.annotations["description"].contains(needed),
                    "{at}: description lacks {needed}"
                );
            }
        }
        let url = &rule.annotations["runbook_url"];
        let fragment = url
            .strip_prefix(RUNBOOK_BASE)
            .unwrap_or_else(|| panic!("{at}: runbook_url {url} is not under {RUNBOOK_BASE}"));
        assert!(
            anchors.contains(fragment),
            "{at}: docs/runbooks.md has no heading with anchor #{fragment} (headings: {anchors:?})"
        );
        linked.insert(fragment.to_string());
    }
    let unlinked: Vec<_> = anchors.difference(&linked).collect();
    assert!(
        unlinked.is_empty(),
        "runbook sections no alert links to: {unlinked:?}"
    );
}

/// Each alert name, with whether some promtool test expects it firing and some expects it
/// silent (`exp_alerts: []`).
fn alert_test_coverage() -> BTreeMap<String, (bool, bool)> {
    let mut coverage: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for file in test_files() {
        let text = fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if let Some(name) = line.strip_prefix("alertname: ") {
                let next = lines[i + 1..]
                    .iter()
                    .find(|l| !l.is_empty() && !l.starts_with('#'));
                let entry = coverage.entry(name.to_string()).or_default();
                match next {
                    Some(&"exp_alerts: []") => entry.1 = true,
                    Some(&"exp_alerts:") => entry.0 = true,
                    other => panic!("{}: alertname {name} followed by {other:?}", file.display()),
                }
            }
        }
    }
    coverage
}

#[test]
fn every_alert_has_firing_and_silent_unit_tests() {
    let coverage = alert_test_coverage();
    for rule in all_rules().iter().filter(|r| r.alert.is_some()) {
        let name = rule.name();
        let (fires, silent) = coverage.get(name).copied().unwrap_or_default();
        assert!(
            fires,
            "no promtool test in alerts/tests/ expects {name} to fire"
        );
        assert!(
            silent,
            "no promtool test in alerts/tests/ expects {name} to stay silent"
        );
    }
}

#[test]
fn every_recording_rule_is_unit_tested() {
    let tests: String = test_files()
        .iter()
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    for rule in all_rules().iter().filter(|r| r.record.is_some()) {
        let name = rule.name();
        assert!(
            tests.contains(&format!("expr: {name}"))
                || tests.contains(&format!("({name}"))
                || tests.contains(&format!("expr: {name}{{")),
            "no promql_expr_test in alerts/tests/ queries {name}"
        );
    }
}

/// The exporter writes `le` as a float (`le="900.0"`, OpenMetrics via prometheus-client), and
/// Prometheus 3 normalises every `le` to that form: `le="900"` would match nothing.
#[test]
fn le_matchers_use_the_float_form() {
    for file in rule_files().iter().chain(test_files().iter()) {
        let text = fs::read_to_string(file).unwrap();
        for (at, _) in text.match_indices("le=\"") {
            let value: String = text[at + 4..].chars().take_while(|&c| c != '"').collect();
            assert!(
                value == "+Inf" || (value.contains('.') && value.parse::<f64>().is_ok()),
                "{}: le=\"{value}\" must be written as a float, e.g. le=\"900.0\"",
                file.display()
            );
        }
    }
}
