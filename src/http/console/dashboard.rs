//! The dashboard from the consult record: consults over time by decision, top rules, overrides
//! and their reasons (CDS Hooks feedback), shadow rules' would-be decisions beside what the
//! enforced rules decided, and decision latency. Every figure is a `$stats`-style query of the
//! store over the chosen period; the pictures carry their numbers as a table.

use super::charts::{self, Bar, Series};
use super::pages::page;
use super::period::{chooser, Period};
use crate::rules::RuleSet;
use crate::site::RuleMode;
use crate::store::{Stats, TimeCount};
use maud::{html, Markup};

pub const DECISIONS: [(&str, &str); 3] = [
    ("accepted", charts::ACCEPTED),
    ("redirected", charts::REDIRECTED),
    ("rejected", charts::REJECTED),
];

/// The decision a rule's action leads to, had it been enforced.
fn would_be(rules: &RuleSet, id: &str) -> &'static str {
    match rules.rules.iter().find(|r| r.def.id == id) {
        Some(r) => match r.def.action.as_str() {
            "reject" => "rejected",
            "redirect" => "redirected",
            _ => "accepted",
        },
        None => "accepted",
    }
}

fn colour(decision: &str) -> &'static str {
    DECISIONS
        .iter()
        .find(|(d, _)| *d == decision)
        .map_or(charts::NEUTRAL, |(_, c)| *c)
}

/// One series per decision, one value per bucket of the period.
pub fn series(period: &Period, timeline: &[TimeCount]) -> Vec<Series> {
    let n = period.buckets();
    DECISIONS
        .iter()
        .map(|(d, c)| {
            let mut values = vec![0.0; n];
            for t in timeline.iter().filter(|t| t.decision == *d) {
                if let Some(v) = usize::try_from(t.bucket)
                    .ok()
                    .and_then(|i| values.get_mut(i))
                {
                    *v += t.count as f64;
                }
            }
            Series {
                name: d.to_string(),
                colour: c,
                values,
            }
        })
        .collect()
}

pub fn dashboard(
    rules: &RuleSet,
    period: &Period,
    stats: &Stats,
    timeline: &[TimeCount],
) -> Markup {
    let decision_bars: Vec<Bar> = DECISIONS
        .iter()
        .map(|(d, c)| Bar {
            label: d.to_string(),
            value: stats
                .decisions
                .iter()
                .find(|(k, _)| k == d)
                .map_or(0.0, |(_, n)| *n as f64),
            colour: c,
        })
        .collect();
    let mut top: Vec<_> = stats.rules.iter().filter(|r| r.fired > 0).collect();
    top.sort_by(|a, b| b.fired.cmp(&a.fired).then(a.id.cmp(&b.id)));
    let top_bars: Vec<Bar> = top
        .iter()
        .take(12)
        .map(|r| Bar {
            label: r.id.clone(),
            value: r.fired as f64,
            colour: colour(would_be(rules, &r.id)),
        })
        .collect();
    let mut overridden: Vec<_> = stats.rules.iter().filter(|r| r.overridden > 0).collect();
    overridden.sort_by(|a, b| b.overridden.cmp(&a.overridden).then(a.id.cmp(&b.id)));
    let override_bars: Vec<Bar> = overridden
        .iter()
        .map(|r| Bar {
            label: format!(
                "{} ({})",
                r.id,
                super::pages::override_rate(r.fired, r.overridden).unwrap_or_default()
            ),
            value: r.overridden as f64,
            colour: charts::REJECTED,
        })
        .collect();
    let mut reasons: Vec<(String, i64)> = Vec::new();
    for r in &stats.rules {
        for (reason, n) in &r.override_reasons {
            match reasons.iter_mut().find(|(k, _)| k == reason) {
                Some((_, total)) => *total += n,
                None => reasons.push((reason.clone(), *n)),
            }
        }
    }
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let reason_bars: Vec<Bar> = reasons
        .iter()
        .map(|(reason, n)| Bar {
            label: reason.clone(),
            value: *n as f64,
            colour: charts::NEUTRAL,
        })
        .collect();
    // Shadow rules: those in shadow mode now, and any that fired in shadow mode in the period.
    let mut shadow_ids: Vec<&str> = rules
        .rules
        .iter()
        .filter(|r| rules.site.rule_mode(&r.def.id) == RuleMode::Shadow)
        .map(|r| r.def.id.as_str())
        .collect();
    for r in stats.rules.iter().filter(|r| r.shadow_fired > 0) {
        if !shadow_ids.contains(&r.id.as_str()) {
            shadow_ids.push(&r.id);
        }
    }
    shadow_ids.sort_unstable();
    let shadow_rows: Vec<(&str, &'static str, i64, i64)> = shadow_ids
        .iter()
        .map(|id| {
            let s = stats.rules.iter().find(|r| r.id == *id);
            (
                *id,
                would_be(rules, id),
                s.map_or(0, |s| s.shadow_fired),
                s.map_or(0, |s| s.fired),
            )
        })
        .collect();
    let shadow_bars: Vec<Bar> = shadow_rows
        .iter()
        .map(|(id, would, n, _)| Bar {
            label: format!("{id} → would be {would}"),
            value: *n as f64,
            colour: charts::SHADOW,
        })
        .collect();
    let ms = |us: Option<i64>| us.map_or(0.0, |v| (v as f64 / 100.0).round() / 10.0);
    let latency_bars = vec![
        Bar {
            label: "median (p50)".into(),
            value: ms(stats.p50_us),
            colour: charts::NEUTRAL,
        },
        Bar {
            label: "p99".into(),
            value: ms(stats.p99_us),
            colour: charts::NEUTRAL,
        },
    ];
    let window = format!("days={}", period.days);
    let body = html! {
        p class="lede" {
            "What the gateway decided over " (period.name()) ", from the consult record: "
            strong { (stats.total) " consults" } ". Each picture has its numbers one click away, under “The numbers”."
        }
        (chooser("/console/dashboard", period))
        div class="charts" {
            (charts::time_series("over-time", &format!("Consults per {} by decision", period.unit()), &period.labels(), &series(period, timeline)))
            (charts::bar_chart("decisions", "Decisions", "consults", &decision_bars))
            (charts::bar_chart("top-rules", "Top rules (times fired)", "times fired", &top_bars))
            (charts::bar_chart("overrides", "Overridden cards by rule (override rate)", "overrides", &override_bars))
            (charts::bar_chart("override-reasons", "Override reasons", "overrides", &reason_bars))
            (charts::bar_chart("latency", "Decision latency (ms)", "ms", &latency_bars))
        }
        h2 id="shadow" { "Shadow rules: would-be decisions" }
        p {
            "A rule in " code { "shadow" } " mode (" code { "[rule_modes]" } " in " code { "rules/site.toml" }
            ") is evaluated and recorded but hidden from every answer. Here is what it would have decided, "
            "beside what the enforced rules decided for the same period."
        }
        @if shadow_rows.is_empty() {
            p { "No rule is in shadow mode, and none fired in shadow mode over " (period.name()) "." }
        } @else {
            div class="charts" {
                (charts::bar_chart("shadow-rules", "Shadow rules (times they would have fired)", "would have fired", &shadow_bars))
            }
            table {
                caption { "Shadow rules beside the enforced decisions, " (period.name()) }
                thead { tr {
                    th scope="col" { "Rule" } th scope="col" { "Mode now" } th scope="col" { "Would be" }
                    th scope="col" class="num" { "Would have fired" } th scope="col" class="num" { "Fired (enforced)" }
                } }
                tbody {
                    @for (id, would, n, fired) in &shadow_rows {
                        tr {
                            th scope="row" { a href={"/console#rule-" (id)} { (id) } }
                            td { (rules.site.rule_mode(id).as_str()) }
                            td { span class={"badge " (would)} { (would) } }
                            td class="num" {
                                @if *n > 0 { a href={"/console/consults?shadow=" (id) "&" (window)} { (n) } } @else { "0" }
                            }
                            td class="num" { (fired) }
                        }
                    }
                }
            }
            p {
                "Enforced decisions over the same period: "
                @for (i, (d, _)) in DECISIONS.iter().enumerate() {
                    @if i > 0 { ", " }
                    (d) " " (stats.decisions.iter().find(|(k, _)| k == d).map_or(0, |(_, n)| *n))
                }
                "."
            }
        }
    };
    page("/console/dashboard", "Dashboard", rules, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_fills_every_bucket_of_each_decision() {
        let period = Period::ending(7, 1_772_361_000_000_000);
        let timeline = [
            TimeCount {
                bucket: 0,
                decision: "rejected".into(),
                count: 2,
            },
            TimeCount {
                bucket: 6,
                decision: "accepted".into(),
                count: 5,
            },
            // Outside the period (a clock step): ignored.
            TimeCount {
                bucket: 7,
                decision: "accepted".into(),
                count: 9,
            },
        ];
        let s = series(&period, &timeline);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].values, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0]);
        assert_eq!(s[2].values, [2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(s[1].values.iter().all(|v| *v == 0.0));
    }
}
