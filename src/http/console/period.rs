//! The period a console view counts over (`?days=N`), cut into the buckets of its time series,
//! and the consult-store figures of that period.

use crate::store::{now_us, Stats};
use maud::{html, Markup};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// The periods offered, in days; the default is 30.
pub const DAYS: [u32; 5] = [1, 7, 30, 90, 365];
const DEFAULT_DAYS: u32 = 30;

/// `[since, until)` in microseconds since the epoch, cut into buckets of `bucket_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub days: u32,
    pub since: i64,
    pub until: i64,
    pub bucket_us: i64,
}

impl Period {
    /// The period a query asks for (`days`, one of [`DAYS`]; anything else is the default),
    /// ending now.
    pub fn from_query(params: &[(String, String)]) -> Self {
        let days = params
            .iter()
            .find(|(k, _)| k == "days")
            .and_then(|(_, v)| v.parse::<u32>().ok())
            .filter(|d| DAYS.contains(d))
            .unwrap_or(DEFAULT_DAYS);
        Self::ending(days, now_us())
    }

    /// The last `days` days up to `now`: hours for one day, weeks beyond 90 days, else days.
    /// Buckets are whole UTC hours, days or weeks (from a day's start), the last one holding
    /// `now`.
    pub fn ending(days: u32, now: i64) -> Self {
        let (bucket_us, n) = match days {
            1 => (HOUR, 24),
            d if d > 90 => (7 * DAY, i64::from(d).div_euclid(7) + 1),
            d => (DAY, i64::from(d)),
        };
        let unit = if bucket_us == HOUR { HOUR } else { DAY };
        let until = (now.div_euclid(unit) + 1) * unit;
        Period {
            days,
            since: until - n * bucket_us,
            until,
            bucket_us,
        }
    }

    pub fn buckets(&self) -> usize {
        usize::try_from((self.until - self.since) / self.bucket_us).unwrap_or(0)
    }

    /// Each bucket's label: `14:00` for hours, `1 Dec` for days and weeks (the week's first
    /// day).
    pub fn labels(&self) -> Vec<String> {
        (0..self.buckets())
            .map(|i| {
                let us = self.since + i as i64 * self.bucket_us;
                let t = time::OffsetDateTime::from_unix_timestamp(us.div_euclid(1_000_000))
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                if self.bucket_us == HOUR {
                    format!("{:02}:00", t.hour())
                } else {
                    let month = t.month().to_string();
                    format!("{} {}", t.day(), month.get(..3).unwrap_or(&month))
                }
            })
            .collect()
    }

    /// "the last 30 days", "the last 24 hours".
    pub fn name(&self) -> String {
        match self.days {
            1 => "the last 24 hours".into(),
            d => format!("the last {d} days"),
        }
    }

    /// The buckets' unit, for a chart's title.
    pub fn unit(&self) -> &'static str {
        match self.bucket_us {
            HOUR => "hour",
            DAY => "day",
            _ => "week",
        }
    }
}

/// The form that picks the period of a view (`action`: the view's path).
pub fn chooser(action: &str, period: &Period) -> Markup {
    html! {
        form method="get" action=(action) class="filter" {
            label for="days" { "Period"
                select id="days" name="days" {
                    @for d in DAYS {
                        @let name = Period::ending(d, 0).name();
                        @if d == period.days { option value=(d) selected { (name) } }
                        @else { option value=(d) { (name) } }
                    }
                }
            }
            button type="submit" { "Show" }
        }
    }
}

/// What the consult store says about a period, for the views that show figures.
pub enum Usage {
    /// `--store none`.
    NoStore,
    /// The store did not answer.
    Unavailable(String),
    Counted {
        period: Period,
        stats: Stats,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_end_with_the_bucket_holding_now() {
        // 2026-03-01T10:30:00Z
        let now = 1_772_361_000_000_000;
        let day = Period::ending(1, now);
        assert_eq!(day.buckets(), 24);
        assert_eq!(day.labels().last().map(String::as_str), Some("10:00"));
        assert!(day.since <= now - 23 * HOUR && now < day.until);
        let month = Period::ending(30, now);
        assert_eq!(month.buckets(), 30);
        assert_eq!(month.labels().last().map(String::as_str), Some("1 Mar"));
        assert_eq!(month.labels().first().map(String::as_str), Some("31 Jan"));
        let year = Period::ending(365, now);
        assert_eq!(year.bucket_us, 7 * DAY);
        assert!(year.until - year.since >= 365 * DAY);
        assert_eq!(year.unit(), "week");
    }

    #[test]
    fn unknown_periods_are_the_default() {
        let q = |v: &str| vec![("days".to_string(), v.to_string())];
        assert_eq!(Period::from_query(&q("7")).days, 7);
        assert_eq!(Period::from_query(&q("8")).days, DEFAULT_DAYS);
        assert_eq!(Period::from_query(&q("x")).days, DEFAULT_DAYS);
        assert_eq!(Period::from_query(&[]).days, DEFAULT_DAYS);
    }
}
