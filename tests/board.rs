//! The live board in a real browser: headless Chromium (Debian's `chromium`, which the test
//! command installs) loads `/` from the real binary running `--demo`, and the rendered DOM must
//! show the seed rollout draining, then its completion; screenshots (desktop, dark, phone) are
//! saved as test artifacts. The JSON endpoint and the gzip of both are checked over raw HTTP.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use common::exporter::Exporter;
use common::http;

const MINUTE: Duration = Duration::from_secs(60);

/// Debian's Chromium; `CHROMIUM` overrides. Missing is a failure, not a skip: the test command
/// installs it.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} not found: install Debian's chromium (scripts/test does)",
        path.display()
    );
    path
}

/// Runs headless Chromium once on `url` with `extra` flags (each run with a fresh profile, no
/// network beyond loopback), and answers its stdout; killed after 60 s.
fn chromium_run(url: &str, extra: &[&str]) -> String {
    let profile = TempDir::new("chromium");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + MINUTE;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within a minute on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap_or_default()
}

/// The DOM after the page loaded and its script ran.
fn dom(url: &str) -> String {
    chromium_run(url, &["--dump-dom"])
}

/// A screenshot of `url` at `size` into `path`; checks it is a PNG.
fn screenshot(url: &str, path: &Path, size: &str, extra: &[&str]) {
    let mut args = vec![
        format!("--screenshot={}", path.display()),
        format!("--window-size={size}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    chromium_run(url, &args);
    let png = std::fs::read(path).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is a PNG",
        path.display()
    );
    assert!(png.len() > 10_000, "{} has content", path.display());
}

/// The `<section id=..>` of a page, up to its end.
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("section {id} in {dom}"));
    let rest = &dom[start..];
    &rest[..rest.find("</section>").map_or(rest.len(), |e| e + 10)]
}

/// The `<tr>` of `namespace/name` in a section, if any.
fn row<'a>(section: &'a str, namespace: &str, name: &str) -> Option<&'a str> {
    let key = format!("data-namespace=\"{namespace}\" data-workload=\"{name}\"");
    let start = section.find(&key)?;
    let rest = &section[start..];
    Some(&rest[..rest.find("</tr>").unwrap_or(rest.len())])
}

/// Loads the board in Chromium until `check` passes on its DOM (at most a minute).
async fn wait_dom(url: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + MINUTE * 2;
    loop {
        let url2 = url.to_string();
        let d = tokio::task::spawn_blocking(move || dom(&url2))
            .await
            .expect("chromium run");
        if check(&d) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last DOM:\n{d}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_shows_the_demo_rollout_draining_then_complete_in_a_real_browser() {
    let demo = Exporter::demo(&[]);
    let url = format!("http://{}/", demo.addr);
    // The seed case: shop/web to revision 2 with 8 s drains, kubectl's ready before its old pods
    // are gone.
    let draining = wait_dom(&url, "shop/web draining", |d| {
        d.contains("<section id=\"in-flight\"")
            && row(section(d, "in-flight"), "shop", "web")
                .is_some_and(|r| r.contains("data-phase=\"draining\""))
    })
    .await;
    let web = row(section(&draining, "in-flight"), "shop", "web").expect("row");
    assert!(web.contains("rev 2"), "{web}");
    assert!(
        web.contains("(oldest "),
        "old pods terminating, with the oldest's age: {web}"
    );
    assert!(web.contains("registry.local/web:v2"), "the images: {web}");
    assert!(
        draining.contains("<title>Rollouts"),
        "the board, not the landing page"
    );
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("board");
    std::fs::create_dir_all(&artifacts).expect("artifact dir");
    screenshot(&url, &artifacts.join("board-draining.png"), "1200,700", &[]);

    let done = wait_dom(&url, "shop/web revision 2 complete", |d| {
        row(section(d, "recent"), "shop", "web").is_some_and(|r| r.contains("rev 2"))
            && row(section(d, "in-flight"), "shop", "web").is_none()
    })
    .await;
    let web = row(section(&done, "recent"), "shop", "web").expect("row");
    // Ready after about 3 s, complete after the 8 s drains: a drain tail of several seconds.
    assert!(!web.contains("unknown"), "every milestone known: {web}");
    assert!(web.contains(" ago"), "{web}");

    screenshot(&url, &artifacts.join("board.png"), "1200,900", &[]);
    screenshot(
        &url,
        &artifacts.join("board-dark.png"),
        "1200,900",
        &[
            "--force-dark-mode",
            "--blink-settings=preferredColorScheme=0",
        ],
    );
    screenshot(&url, &artifacts.join("board-phone.png"), "390,844", &[]);
    eprintln!("screenshots in {}", artifacts.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_json_and_html_are_filtered_gzipped_and_can_be_turned_off() {
    let demo = Exporter::demo(&[]);
    let addr = demo.addr;
    // The JSON, filtered to one namespace, as a script reads it.
    let deadline = Instant::now() + MINUTE;
    let json = loop {
        let r = http::get(addr, "/api/v1/rollouts?namespace=shop", "application/json").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        if v["recent"]["total"].as_u64().unwrap_or(0) > 0 {
            break v;
        }
        assert!(Instant::now() < deadline, "a completion in shop: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(json["namespace"], "shop");
    for section in ["in_flight", "recent", "overdue"] {
        for row in json[section]["rows"].as_array().expect("rows") {
            assert_eq!(row["namespace"], "shop", "{section}: filtered");
        }
    }
    // A bad filter says what is accepted.
    let bad = http::get(addr, "/?kind=pod", "text/html").await;
    assert_eq!(bad.status, 400);
    assert!(String::from_utf8_lossy(&bad.body).contains("deployment, statefulset or daemonset"));
    // Both gzipped when asked, decompressing to a page and to JSON.
    for path in ["/", "/api/v1/rollouts"] {
        let r = http::get_with(addr, path, &[("accept-encoding", "gzip")]).await;
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{path}");
        let mut body = String::new();
        flate2::read::GzDecoder::new(r.body.as_slice())
            .read_to_string(&mut body)
            .expect("gzip");
        assert!(body.contains("\"in_flight\"") || body.contains("<main id=\"board\">"));
    }
    drop(demo);

    // --web.disable-board: `/` is the page of links, and the API is not there.
    let off = Exporter::demo(&["--web.disable-board"]);
    let page = http::get(off.addr, "/", "text/html").await;
    let page = String::from_utf8_lossy(&page.body);
    assert!(
        page.contains("/metrics") && !page.contains("id=\"board\""),
        "{page}"
    );
    assert_eq!(
        http::get(off.addr, "/api/v1/rollouts", "*/*").await.status,
        404
    );
}
