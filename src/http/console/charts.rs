//! Charts drawn on the server as SVG, each with its numbers one click away as a table (a
//! `<details>` under the picture): people look at the picture, screen readers and auditors read
//! the table. No script, no library: a bar chart and a stacked time series are a few
//! rectangles.

use maud::{html, Markup, PreEscaped};

/// One bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// A fill colour (`#rrggbb`).
    pub colour: &'static str,
}

/// One stacked series of a time series.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub colour: &'static str,
    /// One value per x label.
    pub values: Vec<f64>,
}

/// Colours with at least 4.5:1 contrast on white (WCAG AA for the text drawn in them).
pub const ACCEPTED: &str = "#11663a";
pub const REJECTED: &str = "#a11d1d";
pub const REDIRECTED: &str = "#7a4b00";
pub const SHADOW: &str = "#5b3f8c";
pub const NEUTRAL: &str = "#0b4f8a";

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart: one row per bar, the label left, the value at the bar's end.
pub fn bar_chart(id: &str, title: &str, unit: &str, bars: &[Bar]) -> Markup {
    const ROW: f64 = 26.0;
    const LABEL: f64 = 170.0;
    const WIDTH: f64 = 560.0;
    let room = WIDTH - LABEL - 60.0;
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    let height = (bars.len().max(1) as f64) * ROW + 8.0;
    let mut svg = String::new();
    for (i, b) in bars.iter().enumerate() {
        let y = i as f64 * ROW + 4.0;
        let w = if max > 0.0 { b.value / max * room } else { 0.0 };
        svg.push_str(&format!(
            r#"<text x="{lx}" y="{ty}" text-anchor="end">{label}</text><rect x="{x}" y="{y}" width="{w:.1}" height="{h}" fill="{c}"><title>{label}: {v} {unit}</title></rect><text x="{vx:.1}" y="{ty}">{v}</text>"#,
            lx = LABEL - 6.0,
            ty = y + ROW * 0.62,
            label = escape(&b.label),
            x = LABEL,
            h = ROW - 8.0,
            c = b.colour,
            v = number(b.value),
            unit = escape(unit),
            vx = LABEL + w + 4.0,
        ));
    }
    if bars.is_empty() {
        svg.push_str(r#"<text x="10" y="20">No data yet.</text>"#);
    }
    html! {
        figure id=(id) {
            figcaption id={(id) "-title"} { (title) }
            svg role="img" aria-labelledby={(id) "-title"} viewBox={"0 0 " (WIDTH) " " (height)} width="100%" preserveAspectRatio="xMinYMin meet" {
                (PreEscaped(svg))
            }
            details {
                summary { "The numbers" }
                table {
                    caption { (title) }
                    thead { tr { th scope="col" { "" } th scope="col" class="num" { (unit) } } }
                    tbody {
                        @for b in bars {
                            tr { th scope="row" { (b.label) } td class="num" { (number(b.value)) } }
                        }
                    }
                }
            }
        }
    }
}

/// A stacked column chart over time: one column per x label, one colour per series, a legend.
pub fn time_series(id: &str, title: &str, x_labels: &[String], series: &[Series]) -> Markup {
    const HEIGHT: f64 = 200.0;
    const LEFT: f64 = 40.0;
    const BOTTOM: f64 = 36.0;
    const WIDTH: f64 = 560.0;
    let n = x_labels.len().max(1);
    let totals: Vec<f64> = (0..x_labels.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let slot = (WIDTH - LEFT - 10.0) / n as f64;
    let bar = (slot * 0.7).max(2.0);
    let mut svg = format!(
        r##"<line x1="{LEFT}" y1="{y0}" x2="{x2}" y2="{y0}" stroke="#4a5360"/><text x="{tx}" y="{y0}" text-anchor="end">0</text><text x="{tx}" y="14" text-anchor="end">{top}</text>"##,
        y0 = HEIGHT,
        x2 = WIDTH - 10.0,
        tx = LEFT - 4.0,
        top = number(max),
    );
    let every = (x_labels.len() / 8).max(1);
    for (i, label) in x_labels.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let mut y = HEIGHT;
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let h = v / max * (HEIGHT - 10.0);
            y -= h;
            svg.push_str(&format!(
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="{c}"><title>{label} — {name}: {v}</title></rect>"#,
                c = s.colour,
                label = escape(label),
                name = escape(&s.name),
                v = number(v),
            ));
        }
        if i % every == 0 {
            svg.push_str(&format!(
                r#"<text x="{cx:.1}" y="{ly}" text-anchor="middle">{label}</text>"#,
                cx = x + bar / 2.0,
                ly = HEIGHT + 16.0,
                label = escape(label),
            ));
        }
    }
    let mut lx = LEFT;
    for s in series {
        svg.push_str(&format!(
            r#"<rect x="{lx}" y="{ly}" width="12" height="12" fill="{c}"/><text x="{tx}" y="{ty}">{name}</text>"#,
            ly = HEIGHT + 22.0,
            c = s.colour,
            tx = lx + 16.0,
            ty = HEIGHT + 32.0,
            name = escape(&s.name),
        ));
        lx += 24.0 + 8.0 * s.name.len() as f64;
    }
    html! {
        figure id=(id) {
            figcaption id={(id) "-title"} { (title) }
            svg role="img" aria-labelledby={(id) "-title"} viewBox={"0 0 " (WIDTH) " " (HEIGHT + BOTTOM + 6.0)} width="100%" preserveAspectRatio="xMinYMin meet" {
                (PreEscaped(svg))
            }
            details {
                summary { "The numbers" }
                table {
                    caption { (title) }
                    thead { tr {
                        th scope="col" { "" }
                        @for s in series { th scope="col" class="num" { (s.name) } }
                        th scope="col" class="num" { "total" }
                    } }
                    tbody {
                        @for (i, label) in x_labels.iter().enumerate() {
                            tr {
                                th scope="row" { (label) }
                                @for s in series { td class="num" { (number(s.values.get(i).copied().unwrap_or(0.0))) } }
                                td class="num" { (number(totals.get(i).copied().unwrap_or(0.0))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_keep_their_numbers() {
        let bars = [
            Bar {
                label: "accepted".into(),
                value: 30.0,
                colour: ACCEPTED,
            },
            Bar {
                label: "rejected <x>".into(),
                value: 15.0,
                colour: REJECTED,
            },
        ];
        let out = bar_chart("c", "Decisions", "consults", &bars).into_string();
        // The largest bar is the full room (560 - 170 - 60 = 330), the other half of it.
        assert!(out.contains(r#"width="330.0""#), "{out}");
        assert!(out.contains(r#"width="165.0""#), "{out}");
        // Labels are escaped, and the table carries the numbers.
        assert!(out.contains("rejected &lt;x&gt;"), "{out}");
        assert!(out.contains(r#"<td class="num">15</td>"#), "{out}");
    }

    #[test]
    fn a_time_series_stacks_and_totals() {
        let out = time_series(
            "t",
            "Consults by day",
            &["1 Dec".into(), "2 Dec".into()],
            &[
                Series {
                    name: "accepted".into(),
                    colour: ACCEPTED,
                    values: vec![2.0, 1.0],
                },
                Series {
                    name: "rejected".into(),
                    colour: REJECTED,
                    values: vec![2.0, 0.0],
                },
            ],
        )
        .into_string();
        assert!(out.contains(r#"<td class="num">4</td>"#), "{out}");
        // Three rectangles with values (a zero is not drawn) plus two legend keys.
        assert_eq!(out.matches("<rect").count(), 5, "{out}");
    }
}
