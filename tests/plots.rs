//! Plots and reports, from real runs: every chart is a valid PNG and SVG showing the series the
//! data has, report.html renders in headless Chromium with every image loaded, and
//! `backlog-lab plot DIR` re-renders run and comparison folders and refuses what it cannot read.
// See: issue #4

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::util::{self, summary};

/// Where this module's runs live: under target/tmp, so the screenshot can be looked at after a
/// test run.
fn home() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plots-tests")
}

/// The storm both shared runs use: 600 connections at 1000/s against listen(8), bounded by a
/// 1.5 s connect timeout and a 1 s response timeout.
const STORM: &[&str] = &[
    "server.backlog=8",
    "client.rate=1000",
    "client.connections=600",
    "client.duration=600ms",
    "client.connect_timeout=1500ms",
    "client.response_timeout=1s",
    "expect=",
];

/// Runs the bundled Envoy scenario with [`STORM`] and `server` settings into `home()/name`, once
/// per test process, under the lab lock.
fn shared_run(cell: &'static OnceLock<PathBuf>, name: &str, server: &[&str]) -> &'static Path {
    cell.get_or_init(|| {
        let _lab = util::lab();
        let dir = home().join(name);
        let _ = fs::remove_dir_all(&dir);
        let sets: Vec<&str> = STORM.iter().chain(server).copied().collect();
        let o = util::run("envoy-somaxconn-128", &dir, &sets);
        assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
        dir
    })
}

/// A slow server (200 accepts/s): the accept queue fills, SYNs are dropped and retried after
/// 1 s, some clients give up at 1.5 s. About 3 s.
fn overflow_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    shared_run(&RUN, "overflow", &["server.accept_rate=200"])
}

/// The same storm against a server that accepts at once, with room for a stall of the shared
/// VM (listen(1024) holds a second of arrivals): every connection ok.
fn fast_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    shared_run(
        &RUN,
        "fast",
        &[
            "server.accept=fast",
            "server.accept_rate=",
            "server.backlog=1024",
            "server.sysctl.net.core.somaxconn=4096",
        ],
    )
}

const RUN_PLOTS: &[&str] = &[
    "connect-latency-cdf",
    "outcomes-over-time",
    "queue-occupancy",
    "counter-rates",
];

/// `backlog-lab plot DIR`, under the lab lock: drawing takes a core, and a storm running at the
/// same time on this 2-core machine would be measured on a busy machine.
fn plot(dir: &Path) -> Output {
    let _lab = util::lab();
    util::bin()
        .arg("plot")
        .arg(dir)
        .output()
        .expect("run backlog-lab plot")
}

/// Checks `path` is a PNG (signature, then a real decode) and returns its size.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    // A chart is not a blank canvas: many pixels differ from the background.
    let distinct: BTreeSet<&[u8]> = buf.chunks(info.line_size / info.width as usize).collect();
    assert!(distinct.len() > 10, "{} looks blank", path.display());
    (info.width, info.height)
}

/// Parses `path` as SVG; returns every text it shows and the strokes of its multi-point lines.
fn svg_texts_and_lines(path: &Path) -> (String, Vec<String>) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    let lines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter(|n| {
            n.attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .count()
                > 4
        })
        .filter_map(|n| n.attribute("stroke").map(str::to_string))
        .collect();
    (texts.join("\n"), lines)
}

fn thousands(n: u64) -> String {
    backlog_lab::plots::thousands(n)
}

/// Every chart of a real overflowing run is a decodable PNG and a parseable SVG, and the SVG
/// carries the series the data has (legend text and drawn lines) and names the ones it has not.
#[test]
fn every_plot_of_a_real_run_is_a_valid_png_and_svg_with_its_series() {
    let dir = overflow_run();
    let s = summary(dir);
    for name in RUN_PLOTS {
        let png = dir.join("plots").join(format!("{name}.png"));
        assert_eq!(png_size(&png), (1000, 600), "{}", png.display());
        svg_texts_and_lines(&dir.join("plots").join(format!("{name}.svg")));
    }
    let svg = |name: &str| svg_texts_and_lines(&dir.join("plots").join(format!("{name}.svg")));

    // The latency CDF: a line per outcome that connected, the retransmission marks.
    let (text, lines) = svg("connect-latency-cdf");
    let ok = s["outcomes"]["ok"].as_u64().unwrap();
    assert!(
        ok > 0 && s["outcomes"]["connect_timeout"].as_u64().unwrap() > 0,
        "{s}"
    );
    assert!(text.contains(&format!("ok ({})", thousands(ok))), "{text}");
    assert!(text.contains("all (600)"), "{text}");
    assert!(
        text.contains("never connected"),
        "connect_timeout has no line: {text}"
    );
    assert!(text.contains("client SYN retransmissions"), "{text}");
    assert!(text.contains("1s"), "the 1 s mark is labelled: {text}");
    assert!(
        lines.iter().any(|c| c == "#2CA02C"),
        "an ok line: {lines:?}"
    );
    assert!(
        lines.iter().any(|c| c == "#000000"),
        "the all line: {lines:?}"
    );

    // Outcomes over time: every outcome that happened is in the legend with its count.
    let (text, _) = svg("outcomes-over-time");
    for (name, n) in s["outcomes"].as_object().unwrap() {
        let n = n.as_u64().unwrap();
        if n > 0 {
            assert!(
                text.contains(&format!("{name} ({})", thousands(n))),
                "{name}: {text}"
            );
        }
    }
    assert!(text.contains("100 ms bins"), "{text}");

    // The queues against their capacity (backlog 8: the kernel holds 9).
    let (text, lines) = svg("queue-occupancy");
    assert!(text.contains("accept queue length"), "{text}");
    // On 6.14 and later both queues hold backlog + 1: one line, named for both (issue #7, item 10).
    assert!(text.contains("both queues' capacity 9"), "{text}");
    assert!(!text.contains("SYN queue capacity 9 "), "{text}");
    assert!(text.contains("SYN_RECV"), "{text}");
    assert!(
        text.contains("accept queue full"),
        "the queue filled: {text}"
    );
    assert_eq!(s["listen"]["accept_queue_capacity"], 9);
    assert!(!lines.is_empty(), "queue lines drawn");

    // Counter rates: ListenOverflows moved, with its total in the legend.
    let (text, lines) = svg("counter-rates");
    let overflows = util::counter(&s, "server", "TcpExt.ListenOverflows") as u64;
    assert!(overflows > 0);
    assert!(
        text.contains(&format!(
            "ListenOverflows ({} in all)",
            thousands(overflows)
        )),
        "{text}"
    );
    assert!(text.contains("client RetransSegs"), "{text}");
    assert!(
        text.contains("did not move"),
        "some key counter stayed at 0: {text}"
    );
    assert!(lines.len() >= 2, "{lines:?}");

    // The reports name the plots.
    let md = fs::read_to_string(dir.join("report.md")).unwrap();
    for name in RUN_PLOTS {
        assert!(md.contains(&format!("(plots/{name}.png)")), "{md}");
    }
    assert!(md.contains("## What happened"), "{md}");
    assert!(md.contains("ListenOverflows"), "{md}");
}

fn chromium() -> &'static str {
    for c in ["chromium", "chromium-browser"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c;
        }
    }
    panic!(
        "headless Chromium is required for the report test: apt-get install chromium \
         (.ci/run installs it)"
    );
}

/// Runs headless Chromium on `page` with `args`, bounded in time, in a fresh profile.
pub(crate) fn headless(page: &Path, args: &[&str]) -> Output {
    // Chromium takes both cores for a moment: never beside a storm (see `plot`).
    let _lab = util::lab();
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    Command::new("timeout")
        .arg("60")
        .arg(chromium())
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
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium")
}

/// report.html is self-contained, renders in a real browser, and every one of its images loads;
/// a screenshot of it is left in the run folder.
#[test]
fn report_html_renders_in_headless_chromium_with_every_image_loaded() {
    let dir = overflow_run();
    let page = dir.join("report.html");
    let html = fs::read_to_string(&page).unwrap();
    // No fetches: nothing the page loads comes from elsewhere (a link in the text, such as the
    // incident's article, is not a fetch).
    for fetch in ["src=\"http", "url(http", "<link", "<script src"] {
        assert!(!html.contains(fetch), "a fetch: {fetch}");
    }
    assert_eq!(html.matches("<img src=\"data:image/png;base64,").count(), 4);

    let o = headless(&page, &["--virtual-time-budget=5000", "--dump-dom"]);
    assert!(o.status.success(), "chromium: {}", util::stderr(&o));
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(dom.contains("What happened"), "rendered DOM: {dom:.500}");
    assert!(
        dom.contains("data-images-loaded=\"4/4\""),
        "every image loaded: {}",
        dom.lines()
            .find(|l| l.contains("<body"))
            .unwrap_or("no <body>")
    );

    let shot = dir.join("report-screenshot.png");
    let _ = fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    let o = headless(&page, &[&arg, "--window-size=1280,4000"]);
    assert!(o.status.success(), "chromium: {}", util::stderr(&o));
    assert_eq!(png_size(&shot), (1280, 4000));
}

/// Copies the files a run wrote (not its plots or reports) into `to`.
fn copy_run(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for f in [
        "connections.csv",
        "timeseries.csv",
        "counters.csv",
        "summary.json",
        "environment.json",
        "scenario.toml",
    ] {
        fs::copy(from.join(f), to.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

/// `plot DIR` draws everything again from the files alone.
#[test]
fn plot_rerenders_a_run_folder_from_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("copy");
    copy_run(overflow_run(), &dir);
    let o = plot(&dir);
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("wrote 4 plots"));
    for name in RUN_PLOTS {
        png_size(&dir.join("plots").join(format!("{name}.png")));
    }
    // Same data, same explanation as the one written at the end of the run.
    let section = |p: &Path| {
        let md = fs::read_to_string(p.join("report.md")).unwrap();
        let start = md.find("## What happened").unwrap();
        md[start..md[start..].find("## Plots").unwrap() + start].to_string()
    };
    assert_eq!(section(&dir), section(overflow_run()));
}

/// A comparison folder (comparison.json plus one run folder per combination) gets its two
/// comparison charts and report at the top, and each run its own in its subfolder.
#[test]
fn plot_draws_a_comparison_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let cmp = tmp.path();
    copy_run(overflow_run(), &cmp.join("rate-200"));
    copy_run(fast_run(), &cmp.join("fast"));
    fs::write(
        cmp.join("comparison.json"),
        r#"{"scenario": "envoy-somaxconn-128", "axes": ["server.accept"],
            "runs": [
              {"label": "accept=rate 200/s", "settings": {"server.accept": "rate"}, "dir": "rate-200"},
              {"label": "accept=fast", "settings": {"server.accept": "fast"}, "dir": "fast"}
            ]}"#,
    )
    .unwrap();
    let o = plot(cmp);
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    for name in [
        "comparison-outcome-shares",
        "comparison-latency-percentiles",
    ] {
        let png = cmp.join("plots").join(format!("{name}.png"));
        assert_eq!(png_size(&png).0, 1000);
        let (text, _) = svg_texts_and_lines(&cmp.join("plots").join(format!("{name}.svg")));
        assert!(text.contains("accept=rate 200/s"), "{name}: {text}");
        assert!(text.contains("accept=fast"), "{name}: {text}");
    }
    let (text, _) = svg_texts_and_lines(&cmp.join("plots/comparison-outcome-shares.svg"));
    assert!(text.contains("100.0%"), "the fast run is all ok: {text}");
    for sub in ["rate-200", "fast"] {
        for name in RUN_PLOTS {
            png_size(&cmp.join(sub).join("plots").join(format!("{name}.png")));
        }
        assert!(cmp.join(sub).join("report.html").is_file());
    }
    let html = fs::read_to_string(cmp.join("report.html")).unwrap();
    assert!(
        html.contains("href=\"rate-200/report.html\""),
        "{html:.300}"
    );
    assert_eq!(html.matches("<img src=\"data:image/png").count(), 2);
    let md = fs::read_to_string(cmp.join("report.md")).unwrap();
    // The terminal's rows (runs as columns): the fast run's 600 are all ok.
    assert!(
        md.lines()
            .any(|l| l.starts_with("| ok |") && l.ends_with("| 600 |")),
        "{md}"
    );
}

/// A result folder `plot` cannot write into (here a read-only mount) is the user's input to
/// fix: exit 2, before anything is drawn. See: issue #7, item 3.
#[test]
fn plot_refuses_a_folder_it_cannot_write_as_input() {
    util::require_root();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    fs::create_dir(&dir).unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results/reset-by-peer");
    for f in fs::read_dir(&fixture).unwrap().flatten() {
        if f.path().is_file() {
            fs::copy(f.path(), dir.join(f.file_name())).unwrap();
        }
    }
    // Read-only in a private mount table of the command's own: root cannot write there either.
    let script = format!(
        "mount --bind {d} {d} && mount -o remount,bind,ro {d} && exec {bin} plot {d}",
        d = dir.display(),
        bin = env!("CARGO_BIN_EXE_backlog-lab")
    );
    let o = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", util::stderr(&o));
    assert!(
        util::stderr(&o).contains("cannot write the plots"),
        "{}",
        util::stderr(&o)
    );
    assert!(!dir.join("plots").exists());
}

/// Bad folders are bad input (exit 2) with the file, line and column named; nothing is needed
/// from a real run for these.
#[test]
fn plot_refuses_what_it_cannot_read() {
    let tmp = tempfile::tempdir().unwrap();
    let err = |dir: &Path| {
        let o = plot(dir);
        assert_eq!(o.status.code(), Some(2), "{}", util::stderr(&o));
        util::stderr(&o)
    };
    assert!(err(&tmp.path().join("nope")).contains("no such folder"));
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert!(err(&empty).contains("not a backlog-lab result folder"));

    let run = tmp.path().join("run");
    fs::create_dir(&run).unwrap();
    fs::write(run.join("summary.json"), "{\"scenario\": \"x\"}").unwrap();
    assert!(err(&run).contains("connections.csv: missing"));
    fs::write(
        run.join("connections.csv"),
        "id,scheduled_us,started_us,connected_us,first_byte_us,finished_us,outcome,errno,retransmits,local_port,bytes\n\
         0,0,10,20,30,40,ok,,0,1024,128\n\
         1,abc,10,20,30,40,ok,,0,1025,128\n",
    )
    .unwrap();
    fs::write(run.join("timeseries.csv"), "t_us,accept_queue\n0,0\n").unwrap();
    let e = err(&run);
    assert!(
        e.contains("connections.csv: line 3, column `scheduled_us`: `abc` is not a whole number"),
        "{e}"
    );
    fs::write(
        run.join("connections.csv"),
        "id,scheduled_us,started_us,connected_us,first_byte_us,finished_us,outcome\n0,0,10,20,30,40,lost\n",
    )
    .unwrap();
    assert!(err(&run).contains("line 2, column `outcome`: `lost` is not an outcome"));
    fs::write(run.join("connections.csv"), "id,scheduled_us\n0,0\n").unwrap();
    assert!(err(&run).contains("no column `finished_us`"));
    fs::write(run.join("summary.json"), "{\"scenario\": ").unwrap();
    assert!(err(&run).contains("summary.json: line 1: not valid JSON"));

    let cmp = tmp.path().join("cmp");
    fs::create_dir(&cmp).unwrap();
    fs::write(cmp.join("comparison.json"), "{\"runs\": 3}").unwrap();
    assert!(err(&cmp).contains("comparison.json: line 1"));
    fs::write(
        cmp.join("comparison.json"),
        r#"{"scenario": "s", "runs": [{"label": "a", "dir": "gone"}]}"#,
    )
    .unwrap();
    let e = err(&cmp);
    assert!(e.contains("run `a`") && e.contains("no such folder"), "{e}");
}

/// `plot --help` says what it reads, what it writes and how to call it.
#[test]
fn plot_help_teaches() {
    let o = util::bin().args(["plot", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "connections.csv",
        "report.html",
        "queue-occupancy",
        "comparison.json",
        "without rerunning",
        "Examples:",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}

/// A sysctl set on one side only renders in the report, with `-` for the side that lacks it
/// (it used to panic the report and `plot` alike). See: issue #6, item 5.
#[test]
fn a_one_sided_sysctl_renders_its_report() {
    let lab = util::lab();
    let (_tmp, out) = util::out_dir();
    let o = util::run(
        "envoy-somaxconn-128",
        &out,
        &[
            "client.connections=50",
            "client.duration=100ms",
            "server.sysctl.net.ipv4.tcp_fastopen=3",
            "expect=",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let md = fs::read_to_string(out.join("report.md")).expect("report.md written");
    assert!(md.contains("| net.ipv4.tcp_fastopen | 3 | - |"), "{md}");
    drop(lab); // `plot` takes the lab lock itself
    let o = plot(&out);
    assert!(o.status.success(), "{}", util::stderr(&o));
}

/// `(label, values)` rows of a terminal comparison table: a label, then one right-aligned value
/// per run, two spaces or more between cells. Section headings (no values) are skipped.
fn terminal_rows(text: &str, runs: usize) -> Vec<(String, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l
                .trim()
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            (cells.len() == runs + 1).then(|| {
                (
                    cells[0].to_string(),
                    cells[1..].iter().map(|c| c.to_string()).collect(),
                )
            })
        })
        .collect()
}

/// The same from `report.md`'s tables (`| label | v1 | v2 |`).
fn markdown_rows(text: &str, runs: usize) -> Vec<(String, Vec<String>)> {
    text.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("|---"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells.len() == runs + 1).then(|| {
                (
                    cells[0].to_string(),
                    cells[1..].iter().map(|c| c.to_string()).collect(),
                )
            })
        })
        .collect()
}

/// A comparison's terminal table, `report.md` and `comparison.csv` carry the same numbers for
/// the same rows, parsed from each and compared, and the table names the queues users size
/// backlogs by. See: issue #7, item 5.
#[test]
fn a_comparisons_table_report_and_csv_agree() {
    let _lab = util::lab();
    let (_tmp, out) = util::out_dir();
    let o = util::bin()
        .args(["run", "reset-by-peer", "--out"])
        .arg(&out)
        .args(["--set", "server.sysctl.net.ipv4.tcp_abort_on_overflow=0,1"])
        .args(["--set", "expect="])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let terminal = terminal_rows(&String::from_utf8_lossy(&o.stdout), 2);
    let report = markdown_rows(&fs::read_to_string(out.join("report.md")).unwrap(), 2);
    let mut csv = csv::Reader::from_path(out.join("comparison.csv")).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(str::to_string).collect();
    let records: Vec<Vec<String>> = csv
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(records.len(), 2);
    for label in [
        "accept queue limit (after somaxconn)",
        "accept queue max seen",
        "SYN-RECV max seen",
        "connect ms p99, from scheduled start",
        "server TcpExt.ListenOverflows",
        "expectations held",
    ] {
        assert!(
            terminal.iter().any(|(l, _)| l == label),
            "{label} not in the terminal table"
        );
    }
    assert!(
        terminal.len() >= 15 && terminal.len() <= 40,
        "{} rows",
        terminal.len()
    );
    for (label, values) in &terminal {
        let in_report = report.iter().find(|(l, _)| l == label);
        assert_eq!(
            in_report.map(|(_, v)| v),
            Some(values),
            "report.md row `{label}`"
        );
        let col = header.iter().position(|h| h == label);
        let col = col.unwrap_or_else(|| panic!("comparison.csv has no column `{label}`"));
        let in_csv: Vec<&String> = records.iter().map(|r| &r[col]).collect();
        assert_eq!(
            in_csv,
            values.iter().collect::<Vec<_>>(),
            "comparison.csv `{label}`"
        );
    }
    let limit = terminal
        .iter()
        .find(|(l, _)| l == "accept queue limit (after somaxconn)")
        .unwrap();
    assert_eq!(
        limit.1,
        vec!["128", "128"],
        "listen(511) under somaxconn 128"
    );
}
