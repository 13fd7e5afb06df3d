//! Two small hand-written SVG plots (no plotting package): a line plot
//! with logarithmic axes and a bar chart, each point a median with a
//! min–max whisker.
use std::fmt::Write;

use super::stats::Figure;

/// A bar: a median with its min–max whisker, or, when the run did not
/// resolve it, no bar but the words "not resolved" and the range.
pub struct Bar {
    pub label: String,
    pub figure: Figure,
    pub resolved: bool,
}

/// A named series of (x, figure) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, Figure)>,
}

const W: f64 = 640.0;
const H: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

fn header(out: &mut String, title: &str) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(out, r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#, W / 2.0, escape(title));
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn decades(lo: f64, hi: f64) -> (f64, f64) {
    (lo.max(1e-9).log10().floor(), hi.max(1e-9).log10().ceil().max(lo.max(1e-9).log10().floor() + 1.0))
}

fn label(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// A line plot, both axes logarithmic (decades).
pub fn log_log(title: &str, xlabel: &str, ylabel: &str, series: &[Series]) -> String {
    let all: Vec<&(f64, Figure)> = series.iter().flat_map(|s| &s.points).collect();
    let (x0, x1) = decades(all.iter().map(|p| p.0).fold(f64::MAX, f64::min), all.iter().map(|p| p.0).fold(0.0, f64::max));
    let (y0, y1) = decades(all.iter().map(|p| p.1.min).fold(f64::MAX, f64::min), all.iter().map(|p| p.1.max).fold(0.0, f64::max));
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let px = |x: f64| LEFT + (x.max(1e-9).log10() - x0) / (x1 - x0) * pw;
    let py = |y: f64| TOP + ph - (y.max(1e-9).log10() - y0) / (y1 - y0) * ph;
    let mut out = String::new();
    header(&mut out, title);
    let _ = writeln!(out, r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##);
    for d in x0 as i32..=x1 as i32 {
        let x = px(10f64.powi(d));
        let _ = writeln!(out, r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/>"##, TOP + ph);
        let _ = writeln!(out, r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#, TOP + ph + 16.0, label(10f64.powi(d)));
    }
    for d in y0 as i32..=y1 as i32 {
        let y = py(10f64.powi(d));
        let _ = writeln!(out, r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##, LEFT + pw);
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#, LEFT - 6.0, y + 4.0, label(10f64.powi(d)));
    }
    let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#, LEFT + pw / 2.0, H - 12.0, escape(xlabel));
    let _ = writeln!(
        out,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        escape(ylabel)
    );
    for (i, s) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let pts: Vec<String> = s.points.iter().map(|(x, f)| format!("{:.1},{:.1}", px(*x), py(f.median))).collect();
        let _ = writeln!(out, r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#, pts.join(" "));
        for (x, f) in &s.points {
            let (cx, lo, hi) = (px(*x), py(f.min), py(f.max));
            let _ = writeln!(out, r#"<line x1="{cx:.1}" y1="{lo:.1}" x2="{cx:.1}" y2="{hi:.1}" stroke="{c}"/>"#);
            let _ = writeln!(out, r#"<circle cx="{cx:.1}" cy="{:.1}" r="3" fill="{c}"/>"#, py(f.median));
        }
        let ly = TOP + 10.0 + 18.0 * i as f64;
        let lx = LEFT + pw + 10.0;
        let _ = writeln!(out, r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="2"/>"#, lx + 18.0);
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, lx + 24.0, ly + 4.0, escape(&s.name));
    }
    out.push_str("</svg>\n");
    out
}

/// Grouped bars (one group per category, one bar per series) on a linear
/// axis from 0; an unresolved bar is drawn as text, not as a bar.
pub fn bars(title: &str, ylabel: &str, groups: &[(String, Vec<Bar>)]) -> String {
    let top = groups.iter().flat_map(|g| &g.1).filter(|b| b.resolved).map(|b| b.figure.max).fold(0.0, f64::max).max(1e-9) * 1.1;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let py = |y: f64| TOP + ph - y / top * ph;
    let mut out = String::new();
    header(&mut out, title);
    let _ = writeln!(out, r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##);
    for i in 0..=5 {
        let v = top * f64::from(i) / 5.0;
        let y = py(v);
        let _ = writeln!(out, r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##, LEFT + pw);
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v:.2}</text>"#, LEFT - 6.0, y + 4.0);
    }
    let _ = writeln!(
        out,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        escape(ylabel)
    );
    let gw = pw / groups.len().max(1) as f64;
    let mut legend: Vec<String> = Vec::new();
    for (g, (name, bars)) in groups.iter().enumerate() {
        let bw = gw * 0.8 / bars.len().max(1) as f64;
        let gx = LEFT + gw * g as f64 + gw * 0.1;
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#, gx + gw * 0.4, TOP + ph + 16.0, escape(name));
        for (b, Bar { label, figure: f, resolved }) in bars.iter().enumerate() {
            let k = legend.iter().position(|l| l == label).unwrap_or_else(|| {
                legend.push(label.clone());
                legend.len() - 1
            });
            let c = COLORS[k % COLORS.len()];
            let x = gx + bw * b as f64;
            if !resolved {
                let (cx, cy) = (x + bw * 0.45, TOP + ph - 8.0);
                let _ = writeln!(
                    out,
                    r##"<text x="{cx:.1}" y="{cy:.1}" text-anchor="start" font-size="10" fill="{c}" transform="rotate(-90 {cx:.1} {cy:.1})">not resolved ({:.3}–{:.3})</text>"##,
                    f.min, f.max
                );
                continue;
            }
            let _ = writeln!(
                out,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{c}"/>"#,
                py(f.median),
                bw * 0.9,
                ph - (py(f.median) - TOP)
            );
            let cx = x + bw * 0.45;
            let _ = writeln!(out, r##"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="#000"/>"##, py(f.min), py(f.max));
            let _ =
                writeln!(out, r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10">{:.3}</text>"#, py(f.max) - 4.0, f.median);
        }
    }
    for (i, l) in legend.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let (lx, ly) = (LEFT + pw + 10.0, TOP + 10.0 + 18.0 * i as f64);
        let _ = writeln!(out, r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{c}"/>"#, ly - 6.0);
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, lx + 18.0, ly + 4.0, escape(l));
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(m: f64) -> Figure {
        Figure { median: m, min: m * 0.9, max: m * 1.1, runs: 7, unit: "ms".into() }
    }

    #[test]
    fn plots_are_well_formed() {
        let s = vec![Series { name: "sync".into(), points: vec![(1.0, fig(100.0)), (1000.0, fig(120.0))] }];
        let svg = log_log("switch <latency>", "tasks", "ms", &s);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n") && svg.contains("&lt;latency&gt;") && svg.contains("<polyline"));
        let bar = |l: &str, m: f64, resolved: bool| Bar { label: l.into(), figure: fig(m), resolved };
        let svg = bars("t", "ratio", &[("nginx".into(), vec![bar("none", 1.0, true), bar("docker", 0.98, true)])]);
        assert_eq!(svg.matches("<rect").count(), 2 + 2 + 2);
        // An unresolved ratio is no bar: its legend entry and the words.
        let svg = bars("t", "ratio", &[("nginx".into(), vec![bar("none", 1.0, true), bar("docker", 0.98, false)])]);
        assert_eq!(svg.matches("<rect").count(), 2 + 1 + 2);
        assert!(svg.contains("not resolved (0.882–1.078)"));
    }
}
