//! FHIR date, dateTime and instant values (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, with an optional
//! time and zone) and the arithmetic the rules need: age in whole years, age of a result in
//! days. A partial date is kept as the range of days it may mean, so that an age near a
//! threshold is never guessed.

use time::{Date, Month};

/// The days a FHIR date may mean: one day, or a whole month or year when partial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub earliest: Date,
    pub latest: Date,
}

impl DateRange {
    pub fn is_exact(&self) -> bool {
        self.earliest == self.latest
    }
}

/// Parses a FHIR date/dateTime/instant; the time of day is checked and then ignored.
pub fn parse_fhir_datetime(s: &str) -> Result<DateRange, String> {
    let (date_part, time_part) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date_part.split('-');
    let year = parse_num(parts.next(), 4, "year")?;
    let month = parts
        .next()
        .map(|m| parse_num(Some(m), 2, "month"))
        .transpose()?;
    let day = parts
        .next()
        .map(|d| parse_num(Some(d), 2, "day"))
        .transpose()?;
    if parts.next().is_some() {
        return Err(format!(
            "'{s}' has too many parts; use YYYY, YYYY-MM or YYYY-MM-DD"
        ));
    }
    let year = i32::try_from(year).map_err(|_| "year out of range".to_string())?;
    if let Some(t) = time_part {
        if day.is_none() {
            return Err("a time needs a full date before it".into());
        }
        check_time(t)?;
    }
    let month_of = |m: u32| -> Result<Month, String> {
        u8::try_from(m)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or_else(|| format!("month {m:02} does not exist"))
    };
    match (month, day) {
        (None, _) => Ok(DateRange {
            earliest: ymd(year, Month::January, 1)?,
            latest: ymd(year, Month::December, 31)?,
        }),
        (Some(m), None) => {
            let m = month_of(m)?;
            Ok(DateRange {
                earliest: ymd(year, m, 1)?,
                latest: ymd(year, m, m.length(year))?,
            })
        }
        (Some(m), Some(d)) => {
            let month = month_of(m)?;
            let day = u8::try_from(d).map_err(|_| format!("day {d} does not exist"))?;
            let date = Date::from_calendar_date(year, month, day).map_err(|_| {
                format!(
                    "{year:04}-{m:02}-{d:02} does not exist (day {d} of a month with {} days)",
                    month.length(year)
                )
            })?;
            Ok(DateRange {
                earliest: date,
                latest: date,
            })
        }
    }
}

fn ymd(year: i32, month: Month, day: u8) -> Result<Date, String> {
    Date::from_calendar_date(year, month, day).map_err(|e| e.to_string())
}

fn parse_num(part: Option<&str>, digits: usize, what: &str) -> Result<u32, String> {
    let part = part.unwrap_or("");
    if part.len() != digits || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the {what} must be {digits} digits"));
    }
    part.parse()
        .map_err(|_| format!("the {what} is not a number"))
}

/// `hh:mm:ss(.fff)(Z|+hh:mm|-hh:mm)`: FHIR requires seconds and a zone on a dateTime's time.
fn check_time(t: &str) -> Result<(), String> {
    let (clock, zone) = if let Some(c) = t.strip_suffix('Z') {
        (c, None)
    } else if let Some(i) = t.rfind(['+', '-']) {
        (&t[..i], Some(&t[i + 1..]))
    } else {
        return Err("a time needs a time zone (Z or +hh:mm)".into());
    };
    let clock = clock.split('.').next().unwrap_or(clock);
    let hms: Vec<&str> = clock.split(':').collect();
    let limits = [24u32, 60, 60];
    if hms.len() != 3 {
        return Err("a time is hh:mm:ss".into());
    }
    for (p, max) in hms.iter().zip(limits) {
        let n = parse_num(Some(p), 2, "time")?;
        if n >= max {
            return Err(format!("time field {n} is out of range"));
        }
    }
    if let Some(z) = zone {
        let hm: Vec<&str> = z.split(':').collect();
        if hm.len() != 2
            || parse_num(hm.first().copied(), 2, "zone").is_err()
            || parse_num(hm.get(1).copied(), 2, "zone").is_err()
        {
            return Err("the time zone is +hh:mm or -hh:mm".into());
        }
    }
    Ok(())
}

/// Whole years from `birth` to `on`.
fn years_between(birth: Date, on: Date) -> i64 {
    let mut years = i64::from(on.year()) - i64::from(birth.year());
    if (on.month() as u8, on.day()) < (birth.month() as u8, birth.day()) {
        years -= 1;
    }
    years
}

/// Age in whole years at `on`, as the range a partial birth date allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age {
    pub min: i64,
    pub max: i64,
}

pub fn age_at(birth: DateRange, on: Date) -> Age {
    Age {
        min: years_between(birth.latest, on),
        max: years_between(birth.earliest, on),
    }
}

/// Today's date (UTC).
pub fn today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn validates_dates() {
        assert!(parse_fhir_datetime("2024-02-29").is_ok());
        assert!(parse_fhir_datetime("2023-02-29").is_err());
        assert!(parse_fhir_datetime("2024-13-45").is_err());
        assert!(parse_fhir_datetime("1968-02-31").is_err());
        assert!(parse_fhir_datetime("2024").is_ok());
        assert!(parse_fhir_datetime("2024-06").is_ok());
        assert!(parse_fhir_datetime("2024-06-01T10:00:00Z").is_ok());
        assert!(parse_fhir_datetime("2024-06-01T10:00:00.123+01:00").is_ok());
        assert!(parse_fhir_datetime("2024-06-01T10:00").is_err());
        assert!(parse_fhir_datetime("2024-06-01T25:00:00Z").is_err());
        assert!(parse_fhir_datetime("24-06-01").is_err());
        assert!(parse_fhir_datetime("").is_err());
    }

    #[test]
    fn age_at_boundaries() {
        let birth = parse_fhir_datetime("1981-06-15").unwrap();
        assert_eq!(
            age_at(birth, date!(2026 - 06 - 15)),
            Age { min: 45, max: 45 }
        );
        assert_eq!(
            age_at(birth, date!(2026 - 06 - 14)),
            Age { min: 44, max: 44 }
        );
        let leap = parse_fhir_datetime("2000-02-29").unwrap();
        assert_eq!(age_at(leap, date!(2018 - 02 - 28)).min, 17);
        assert_eq!(age_at(leap, date!(2018 - 03 - 01)).min, 18);
        let year_only = parse_fhir_datetime("1981").unwrap();
        assert_eq!(
            age_at(year_only, date!(2026 - 06 - 15)),
            Age { min: 44, max: 45 }
        );
    }
}
