//! The ops topic's copy of an alarm's summary, capped so that it always fits a notification.

use serde::Serialize;

use super::AlarmSummary;

/// The largest ops notification body: SNS takes 256 KB, and an email of more helps nobody.
pub const NOTIFICATION_MAX_BYTES: usize = 64 * 1024;

/// The summary as the ops topic gets it: whole when it fits [`NOTIFICATION_MAX_BYTES`], else
/// with every list cut to its first entries and `omitted` saying how many were left out (the
/// function's log line has them all).
pub fn notification_body(summary: &AlarmSummary) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Capped<'a> {
        #[serde(flatten)]
        summary: &'a AlarmSummary,
        #[serde(skip_serializing_if = "Option::is_none")]
        omitted: Option<String>,
    }
    let whole = serde_json::to_string_pretty(summary).unwrap_or_default();
    if whole.len() <= NOTIFICATION_MAX_BYTES {
        return whole;
    }
    let lists = |s: &AlarmSummary| {
        [
            s.marked_failed.len(),
            s.already_failed.len(),
            s.already_stored.len(),
            s.conflicts.len(),
            s.unparseable.len(),
            s.errors.len(),
        ]
    };
    let mut keep = lists(summary).into_iter().max().unwrap_or(0);
    loop {
        keep /= 2;
        let mut cut = summary.clone();
        cut.marked_failed.truncate(keep);
        cut.already_failed.truncate(keep);
        cut.already_stored.truncate(keep);
        cut.conflicts.truncate(keep);
        cut.unparseable.truncate(keep);
        cut.errors.truncate(keep);
        let omitted: usize =
            lists(summary).iter().sum::<usize>() - lists(&cut).iter().sum::<usize>();
        let body = serde_json::to_string_pretty(&Capped {
            summary: &cut,
            omitted: Some(format!(
                "{omitted} entries left out to keep this notification short: every entry is in dlq-alarm's log line for this alarm"
            )),
        })
        .unwrap_or_default();
        if body.len() <= NOTIFICATION_MAX_BYTES || keep == 0 {
            return body;
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::dlq_alarm::Unparseable;

    /// Protects: the ops notification stays far below SNS's 256 KB limit whatever the DLQ holds
    /// (10,000 dead letters with long ids), and says what it left out; a small one is whole.
    #[test]
    fn the_ops_notification_is_capped_and_says_what_it_left_out() {
        let small = AlarmSummary {
            alarm_name: "a".into(),
            conflicts: vec!["O1".into()],
            ..Default::default()
        };
        assert_eq!(
            notification_body(&small),
            serde_json::to_string_pretty(&small).unwrap()
        );
        let id = |i: usize| format!("{i:0>128}");
        let big = AlarmSummary {
            alarm_name: "a".into(),
            messages_seen: 10_000,
            conflicts: (0..5_000).map(id).collect(),
            unparseable: (0..5_000)
                .map(|i| Unparseable {
                    message_id: id(i),
                    reason: "x".repeat(200),
                })
                .collect(),
            ..Default::default()
        };
        let body = notification_body(&big);
        assert!(body.len() <= NOTIFICATION_MAX_BYTES, "{} bytes", body.len());
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["messagesSeen"], 10_000);
        assert!(json["omitted"].as_str().unwrap().contains("left out"));
        assert!(
            !json["conflicts"].as_array().unwrap().is_empty(),
            "the first entries are kept"
        );
    }
}
