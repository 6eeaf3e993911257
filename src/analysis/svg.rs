//! Inline SVG plots over a time axis, for the incident report: no scripts,
//! no fonts fetched, nothing outside the file.

use std::fmt::Write;

/// A plot's width and the height of one row, px.
const WIDTH: f64 = 900.0;
const ROW: f64 = 26.0;
const LEFT: f64 = 150.0;

/// A band of one state over time.
pub struct Band {
    /// Start and end, Unix ms.
    pub from: u64,
    /// End, Unix ms.
    pub to: u64,
    /// CSS colour.
    pub colour: &'static str,
    /// Tooltip text.
    pub title: String,
}

/// One labelled row of the plot.
pub struct Row {
    /// The row's label.
    pub label: String,
    /// Coloured stretches.
    pub bands: Vec<Band>,
    /// Points: (Unix ms, value 0..=1, tooltip).
    pub points: Vec<(u64, f64, String)>,
}

/// Renders `rows` between `from` and `to` (Unix ms) with a title.
pub fn plot(title: &str, from: u64, to: u64, rows: &[Row]) -> String {
    let span = (to.saturating_sub(from)).max(1) as f64;
    let x = |t: u64| LEFT + (t.saturating_sub(from)) as f64 / span * (WIDTH - LEFT - 10.0);
    let height = ROW * rows.len() as f64 + 40.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img"><title>{}</title>"#,
        esc(title)
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 10.0 + ROW * i as f64;
        let _ = write!(
            s,
            r##"<text x="4" y="{:.1}" font-size="12" font-family="sans-serif">{}</text><rect x="{LEFT}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#f2f2f2"/>"##,
            y + ROW * 0.6,
            esc(&r.label),
            WIDTH - LEFT - 10.0,
            ROW - 6.0
        );
        for b in &r.bands {
            let (x0, x1) = (x(b.from), x(b.to.max(b.from)));
            let _ = write!(
                s,
                r#"<rect class="band" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
                (x1 - x0).max(1.0),
                ROW - 6.0,
                b.colour,
                esc(&b.title)
            );
        }
        for (t, v, tip) in &r.points {
            let cy = y + (ROW - 6.0) * (1.0 - v.clamp(0.0, 1.0));
            let _ = write!(
                s,
                r##"<circle class="point" cx="{:.1}" cy="{cy:.1}" r="2" fill="#333"><title>{}</title></circle>"##,
                x(*t),
                esc(tip)
            );
        }
    }
    // The time axis: start, middle and end.
    let axis_y = 10.0 + ROW * rows.len() as f64 + 16.0;
    let mid = from + to.saturating_sub(from) / 2;
    for (t, anchor) in [(from, "start"), (mid, "middle"), (to, "end")] {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{axis_y:.1}" font-size="11" font-family="sans-serif" text-anchor="{anchor}">{}</text>"#,
            x(t),
            super::summary::clock(t)
        );
    }
    s.push_str("</svg>");
    s
}

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
