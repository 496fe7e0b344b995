//! `cron_restart`: when the schedule next comes due, on the app's wall clock — its `TZ`
//! when it has one jiff knows, the host's local time otherwise. Cron patterns name wall
//! times, so the next one is found in civil time and then placed in the zone (a time a
//! DST change skips or repeats is resolved as jiff's `compatible` does, like cron daemons).

use chrono::{Datelike as _, Timelike as _};
use jiff::civil;
use jiff::tz::TimeZone;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long until `pattern` next comes due for an app with environment `env`; `None` for a
/// pattern that does not parse (refused by validation) or has no future time.
pub fn until_next(pattern: &str, env: &BTreeMap<String, String>) -> Option<Duration> {
    let cron = croner::parser::CronParser::new().parse(pattern).ok()?;
    let zone = app_zone(env);
    let now = jiff::ZonedDateTime::now().with_time_zone(zone.clone());
    let next = cron
        .find_next_occurrence(&to_naive(now.datetime())?, false)
        .ok()?;
    let next = zone.to_zoned_datetime(from_naive(next)?).ok()?;
    let wait = now.duration_until(&next);
    Duration::try_from(wait).ok()
}

/// The app's `TZ` (`Europe/Paris`, `:Europe/Paris`, or a POSIX rule such as `UTC0`),
/// else the host's zone.
fn app_zone(env: &BTreeMap<String, String>) -> TimeZone {
    let Some(tz) = env.get("TZ").map(|tz| tz.trim_start_matches(':')) else {
        return TimeZone::system();
    };
    TimeZone::get(tz)
        .or_else(|_| TimeZone::posix(tz))
        .unwrap_or_else(|_| TimeZone::system())
}

fn to_naive(at: civil::DateTime) -> Option<chrono::NaiveDateTime> {
    chrono::NaiveDate::from_ymd_opt(
        i32::from(at.year()),
        u32::try_from(at.month()).ok()?,
        u32::try_from(at.day()).ok()?,
    )?
    .and_hms_nano_opt(
        u32::try_from(at.hour()).ok()?,
        u32::try_from(at.minute()).ok()?,
        u32::try_from(at.second()).ok()?,
        u32::try_from(at.subsec_nanosecond()).ok()?,
    )
}

fn from_naive(at: chrono::NaiveDateTime) -> Option<civil::DateTime> {
    civil::DateTime::new(
        i16::try_from(at.year()).ok()?,
        i8::try_from(at.month()).ok()?,
        i8::try_from(at.day()).ok()?,
        i8::try_from(at.hour()).ok()?,
        i8::try_from(at.minute()).ok()?,
        i8::try_from(at.second()).ok()?,
        0,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_second_is_due_within_a_second_and_a_daily_one_within_a_day() {
        let utc = BTreeMap::from([("TZ".to_owned(), "UTC".to_owned())]);
        let second = until_next("* * * * * *", &utc).unwrap();
        assert!(second <= Duration::from_secs(1), "{second:?}");
        let daily = until_next("0 3 * * *", &utc).unwrap();
        assert!(daily <= Duration::from_secs(24 * 3600), "{daily:?}");
        let paris = BTreeMap::from([("TZ".to_owned(), ":Europe/Paris".to_owned())]);
        assert!(until_next("0 3 * * *", &paris).unwrap() <= Duration::from_secs(24 * 3600));
        assert!(until_next("not a pattern", &utc).is_none());
    }
}
