//! Renders `harness report`'s page in headless Chromium, opening with the summary table as
//! `harness report` writes it: the DOM Chromium built holds the table first and the charts (not
//! merely the text we wrote), and a screenshot shows every bar and every label whole, for
//! programs whose costs differ by six orders of magnitude.

use harness::report::html::{render, CHART_FRAME, PALETTE};
use harness::report::summary;
use harness::results::schema::{ProgramResult, RunResult, Summary};
use harness::results::store::StoredRun;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn chromium() -> Option<PathBuf> {
    let find = || {
        ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
            let out = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().ok()?;
            out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
    };
    if let Some(path) = find() {
        return Some(path);
    }
    // As root on Debian, install it (as .ci/run does) rather than skip.
    if unsafe { libc::geteuid() } == 0 && Path::new("/usr/bin/apt-get").exists() {
        eprintln!("chromium is missing: installing it with apt-get (Debian packages chromium, chromium-driver)");
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    find()
}

fn chromium_or_skip() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        eprintln!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             SKIPPED: chromium is not installed and could not be installed; the report\n\
             was NOT checked in a browser. Install it: apt-get install chromium chromium-driver\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
    }
    found
}

/// Sets each sample of program `id` in a variant to `cost`.
fn set_cost(run: &mut RunResult, variant: usize, id: &str, cost: u64) {
    let p = run.variants[variant].programs.iter_mut().find(|p| p.id == id).expect("the program is in the run");
    p.samples = vec![cost; 5];
    p.summary = Summary::of(&p.samples);
}

/// The stored baseline run with a second variant, `exception-unwind`, which costs 5% more, and
/// programs costing from 60 to 6,000,000.
fn two_variants(date: &str) -> RunResult {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/simple-baseline.json"))
            .unwrap();
    let mut run: RunResult = serde_json::from_str(&text).unwrap();
    run.provenance.date = date.into();
    let mut patched = run.variants[0].clone();
    patched.name = "exception-unwind".into();
    run.variants.push(patched);
    let costs = [("empty_tc", 60), ("empty_syscall", 6_000), ("task_ref_tc", 600_000), ("task_ref_syscall", 6_000_000)];
    for (id, cost) in costs {
        set_cost(&mut run, 0, id, cost);
        set_cost(&mut run, 1, id, cost + cost / 20);
    }
    run
}

/// Scenario `simple`, stored twice, whose newest run adds to the patched variant a series with a
/// long id holding 1 to 8 references at up to 98,765,424 (long y-axis labels); and scenario
/// `single`, stored once.
fn runs() -> Vec<StoredRun> {
    let old = two_variants("2026-11-21T20:49:39+00:00");
    let mut new = two_variants("2026-11-22T00:00:00+00:00");
    set_cost(&mut new, 1, "task_ref_tc", 640_000);
    let template = new.variants[1].programs[0].clone();
    for n in [1, 2, 4, 8] {
        let id = format!("throw_through_four_nested_subprogram_frames_refs{n}");
        new.variants[1].programs.push(ProgramResult { id: id.clone(), ..template.clone() });
        set_cost(&mut new, 1, &id, 12_345_678 * n);
    }
    let mut single = two_variants("2026-11-22T00:00:00+00:00");
    single.scenario.name = "single".into();
    vec![
        StoredRun { path: "results/simple/a.json".into(), run: old },
        StoredRun { path: "results/simple/b.json".into(), run: new },
        StoredRun { path: "results/single/a.json".into(), run: single },
    ]
}

/// The page `harness report` writes for `runs`: the summary first, a column for each shipped
/// variant (those without a run `missing`).
fn page(runs: &[StoredRun]) -> String {
    let known = ["baseline", "exception-unwind", "fast-execute", "runtime-tracking"].map(String::from);
    render(runs, Some(&summary::html(&summary::build(runs, &known))))
}

/// Runs Chromium headless on the report of `runs()`, with `args` after the usual ones.
fn browse(chromium: &Path, dir: &Path, args: &[&str]) -> Output {
    let page_path = dir.join("report.html");
    std::fs::write(&page_path, page(&runs())).unwrap();
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .arg(format!("file://{}", page_path.display()))
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn report_renders_its_charts_in_headless_chromium() {
    let Some(chromium) = chromium_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let dom = String::from_utf8(browse(&chromium, dir.path(), &["--dump-dom"]).stdout).unwrap();
    let count = |html: &str, needle: &str| html.matches(needle).count();
    // The page opens with the summary: right after the title, the first table.
    let (_, below_title) = dom.split_once("</h1>").expect("a title");
    let first_table = below_title.find("<table").expect("a table");
    assert!(below_title[..first_table].trim().is_empty(), "something before the summary:\n{below_title}");
    assert!(below_title[first_table..].starts_with("<table class=\"summary\">"), "{below_title}");
    assert!(below_title.contains("<th>runtime-tracking</th>"), "a column per shipped variant");
    let (simple, single) = dom.split_once("<section id=\"scenario-single\"").expect("a section per scenario");
    assert_eq!(count(&dom, "class=\"chart side-by-side\""), 2, "one per scenario");
    assert_eq!(count(simple, "class=\"chart refs\""), 1, "one refs series:\n{dom}");
    // Four programs in both runs of `simple`; the series only in the newest.
    assert_eq!(count(simple, "class=\"chart history\""), 4, "{dom}");
    assert!(simple.contains("without history: throw_through_four_nested_subprogram_frames_refs1,"));
    assert_eq!(count(single, "class=\"chart history\""), 0, "one run, no history:\n{single}");
    assert!(single.contains("One stored run so far"));
    // Side by side: 4 programs with 2 bars in each scenario, the series' 4 with 1.
    assert_eq!(count(&dom, "<rect"), 2 * 8 + 4, "{dom}");
    assert!(dom.contains("exception-unwind") && dom.contains("held references"));
}

/// A screenshot's pixels, RGB.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

impl Image {
    fn decode(path: &Path) -> Image {
        let mut decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let channels = info.color_type.samples();
        assert!(channels >= 3, "a colour screenshot: {:?}", info.color_type);
        let rgb = buf[..info.buffer_size()].chunks(channels).map(|c| [c[0], c[1], c[2]]).collect();
        Image { width: info.width as usize, height: info.height as usize, rgb }
    }

    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.rgb[y * self.width + x]
    }

    /// Solid blocks of `colour`, as (width, height), at least 16 px wide and 6 tall: bars, not
    /// legend swatches (10 px) nor lines (2 px).
    fn blocks(&self, colour: [u8; 3]) -> Vec<(usize, usize)> {
        let mut seen = vec![false; self.rgb.len()];
        let mut out = Vec::new();
        for y in 0..self.height {
            for x in 0..self.width {
                if seen[y * self.width + x] || self.at(x, y) != colour {
                    continue;
                }
                let (mut x1, mut y1) = (x, y);
                while x1 + 1 < self.width && self.at(x1 + 1, y) == colour {
                    x1 += 1;
                }
                while y1 + 1 < self.height && self.at(x, y1 + 1) == colour {
                    y1 += 1;
                }
                for yy in y..=y1 {
                    for xx in x..=x1 {
                        seen[yy * self.width + xx] = true;
                    }
                }
                if x1 - x + 1 >= 16 && y1 - y + 1 >= 6 {
                    out.push((x1 - x + 1, y1 - y + 1));
                }
            }
        }
        out
    }

    /// Vertical runs of `colour` at least `min_h` tall: the left and right sides of chart frames,
    /// as (x, first row, last row).
    fn vertical_runs(&self, colour: [u8; 3], min_h: usize) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for x in 0..self.width {
            let mut y = 0;
            while y < self.height {
                let start = y;
                while y < self.height && self.at(x, y) == colour {
                    y += 1;
                }
                if y - start >= min_h {
                    out.push((x, start, y - 1));
                }
                y += 1;
            }
        }
        out
    }
}

fn rgb(hex: &str) -> [u8; 3] {
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
    [byte(1), byte(3), byte(5)]
}

#[test]
fn report_screenshot_shows_every_bar_and_whole_labels() {
    let Some(chromium) = chromium_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("report.png");
    browse(
        &chromium,
        dir.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,4000",
            "--force-device-scale-factor=1",
            "--force-color-profile=srgb",
            "--hide-scrollbars",
        ],
    );
    let image = Image::decode(&shot);
    let background = image.at(0, 0);
    assert!(
        (0..image.width).all(|x| image.at(x, image.height - 1) == background),
        "the page fits the window, so the screenshot holds all of it"
    );
    // Nothing, the summary table included, is cut at the left or right edge of the page.
    for x in [0, image.width - 1] {
        let ink: Vec<usize> = (0..image.height).filter(|&y| image.at(x, y) != background).collect();
        assert!(ink.is_empty(), "ink at the page's edge x={x}, rows {ink:?}");
    }

    // Every bar of the newest runs shows and is long enough to see, whether its program costs
    // 60 or 98,765,424: on one scale for all programs, those up to 6,000 would be under 1 px.
    let runs = runs();
    for (v, colour) in PALETTE.iter().enumerate().take(2) {
        let expected: usize = [&runs[1].run, &runs[2].run]
            .iter()
            .map(|run| run.variants[v].programs.iter().filter(|p| p.summary.is_some()).count())
            .sum();
        let bars = image.blocks(rgb(colour));
        assert_eq!(bars.len(), expected, "bars of variant {v} ({colour}), as (width, height): {bars:?}");
        assert!(bars.iter().all(|&(w, _)| w >= 40), "every bar is plainly long: {bars:?}");
    }

    // Nothing in a chart touches its frame: a label cut at a chart's edge would.
    let frames = image.vertical_runs(rgb(CHART_FRAME), 40);
    // Side by side in each scenario, one refs series, four histories.
    let charts = 2 + 1 + 4;
    assert_eq!(frames.len(), 2 * charts, "a left and a right side per chart: {frames:?}");
    let white = [255, 255, 255];
    for &(x, y0, y1) in &frames {
        // Rows y0 and y1 are the frame's top and bottom sides.
        let ink: Vec<(usize, usize)> =
            (y0 + 1..y1).flat_map(|y| [(x - 1, y), (x + 1, y)]).filter(|&(x, y)| image.at(x, y) != white).collect();
        assert!(ink.is_empty(), "ink beside the chart frame at x={x}: {ink:?}");
    }
}
