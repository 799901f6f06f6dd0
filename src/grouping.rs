//! Alert grouping as Panther does it for this rule (`DedupPeriodMinutes: 60`): alerts with the same
//! dedup key (the title) inside one window make one notification. The first alert of a window is
//! delivered at once; later ones are counted, not delivered; when the window has closed, one
//! summary gives the count and the event ids it holds.
//!
//! This module is the logic only, pure and in memory: [`admit`] decides what one alert does to its
//! key's window, [`summary_due`] and [`GroupSummary::of`] say when and what to report. Two callers
//! apply it: `scan --group` replays history through [`Replay`] (an in-memory store, by
//! `eventTime`), and the Lambda keeps each [`Group`] as a DynamoDB item (the handler's store
//! adapter writes it back only if nobody changed it meanwhile, and asks [`admit`] again if
//! somebody did). Neither decides anything itself.
//!
//! It does not deliver, read clocks or talk to AWS.

use crate::alert::{Alert, RULE_ID, SEVERITY};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// At most this many event ids are kept per window (a DynamoDB item holds 400 KB); the count goes
/// on, and the summary says how many ids it leaves out.
pub const MAX_EVENT_IDS: usize = 500;

/// The grouping window. `Window::minutes(0)` turns grouping off: every alert is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    seconds: i64,
}

impl Window {
    pub fn minutes(minutes: u32) -> Window {
        Window {
            seconds: i64::from(minutes) * 60,
        }
    }

    pub fn is_off(self) -> bool {
        self.seconds == 0
    }

    pub fn as_minutes(self) -> i64 {
        self.seconds / 60
    }
}

/// One key's window: what the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The alerts' `dedup_key`.
    pub key: String,
    /// The title of the window's first alert (every alert of a key has the same title).
    pub title: String,
    /// When the window opened: the first alert's time (Unix seconds).
    pub opened_at: i64,
    /// When it closes (exclusive).
    pub closes_at: i64,
    /// The event id of the alert that was delivered.
    pub first_event_id: Option<String>,
    /// Alerts in the window, the first included.
    pub count: u64,
    /// Their event ids, in arrival order, at most [`MAX_EVENT_IDS`].
    pub event_ids: Vec<String>,
    /// The summary has been delivered: the window takes no more alerts.
    pub summarized: bool,
}

impl Group {
    fn holds(&self, event_id: &str) -> bool {
        self.first_event_id.as_deref() == Some(event_id)
            || self.event_ids.iter().any(|id| id == event_id)
    }

    /// Whether an alert at `at` joins this window.
    pub fn is_open_at(&self, at: i64) -> bool {
        !self.summarized && at >= self.opened_at && at < self.closes_at
    }
}

/// What one alert does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The first alert of a new window: deliver it now, and store `group`. `closed` is the key's
    /// previous window when it held more than one alert and was not summarised yet: its summary
    /// is due now, before the new window replaces it.
    Deliver {
        group: Group,
        closed: Option<Box<GroupSummary>>,
    },
    /// Inside an open window: counted in `group` (store it), not delivered.
    Grouped { group: Group },
    /// This event is already in the window (a retried or repeated delivery): nothing to store.
    /// `first` says whether it was the window's delivered alert.
    Repeat { first: bool },
}

/// The alert's place in its key's window. `current` is the stored window of the alert's key
/// (`None`: none yet), `at` the alert's time (Unix seconds).
pub fn admit(current: Option<&Group>, alert: &Alert, at: i64, window: Window) -> Admission {
    let event_id = alert.event_id.as_deref();
    if let (Some(group), Some(id)) = (current, event_id)
        && group.holds(id)
    {
        return Admission::Repeat {
            first: group.first_event_id.as_deref() == Some(id),
        };
    }
    match current {
        Some(group) if !window.is_off() && group.is_open_at(at) => {
            let mut group = group.clone();
            group.count += 1;
            if let Some(id) = event_id
                && group.event_ids.len() < MAX_EVENT_IDS
            {
                group.event_ids.push(id.to_owned());
            }
            Admission::Grouped { group }
        }
        _ => Admission::Deliver {
            group: Group {
                key: alert.dedup_key.clone(),
                title: alert.title.clone(),
                opened_at: at,
                closes_at: at + window.seconds,
                first_event_id: event_id.map(str::to_owned),
                count: 1,
                event_ids: event_id.map(str::to_owned).into_iter().collect(),
                summarized: false,
            },
            closed: current
                .filter(|group| summary_due(group, at))
                .map(|group| Box::new(GroupSummary::of(group))),
        },
    }
}

/// Whether `group` needs a summary at `now`: its window has closed, it held alerts that were not
/// delivered, and no summary went out yet.
pub fn summary_due(group: &Group, now: i64) -> bool {
    !group.summarized && group.count > 1 && now >= group.closes_at
}

/// What the team receives for a closed window: how many alerts it held and which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSummary {
    /// Always `group_summary`: tells summaries from alert documents on the same topic.
    pub kind: &'static str,
    pub rule_id: &'static str,
    pub severity: &'static str,
    /// `<count> alerts: <title>`.
    pub title: String,
    pub dedup_key: String,
    /// Alerts in the window, the delivered one included.
    pub count: u64,
    /// Alerts counted but not delivered on their own.
    pub grouped: u64,
    pub first_event_id: Option<String>,
    pub event_ids: Vec<String>,
    /// Event ids beyond [`MAX_EVENT_IDS`], counted but not listed.
    pub event_ids_omitted: u64,
    /// The window, RFC 3339 (UTC).
    pub window_start: String,
    pub window_end: String,
}

impl GroupSummary {
    pub fn of(group: &Group) -> GroupSummary {
        GroupSummary {
            kind: "group_summary",
            rule_id: RULE_ID,
            severity: SEVERITY,
            title: format!("{} alerts: {}", group.count, group.title),
            dedup_key: group.key.clone(),
            count: group.count,
            grouped: group.count.saturating_sub(1),
            first_event_id: group.first_event_id.clone(),
            event_ids: group.event_ids.clone(),
            event_ids_omitted: group.count.saturating_sub(group.event_ids.len() as u64),
            window_start: rfc3339(group.opened_at),
            window_end: rfc3339(group.closes_at),
        }
    }

    /// The summary as one line of JSON: what `scan --group` prints and SNS subscribers receive.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a summary holds only strings and numbers")
    }

    /// The summary for people (email).
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "[{}] {}\n\n{} alert(s) with this title between {} and {}: the first was delivered \
             (event ID {}), {} more were grouped into this summary.\n\nEvent IDs:\n",
            self.severity,
            crate::alert::printable(&self.title),
            self.count,
            self.window_start,
            self.window_end,
            self.first_event_id.as_deref().unwrap_or("-"),
            self.grouped
        );
        for id in &self.event_ids {
            text.push_str(&format!("  {}\n", crate::alert::printable(id)));
        }
        if self.event_ids_omitted > 0 {
            text.push_str(&format!("  ... and {} more\n", self.event_ids_omitted));
        }
        text
    }
}

/// Unix seconds as RFC 3339 UTC (`2019-01-01T00:00:00Z`).
pub fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

/// A CloudTrail `eventTime` (RFC 3339) as Unix seconds.
pub fn parse_event_time(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// What a team would have received: an alert delivered at once, or a window's summary.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    Alert(Box<Alert>),
    Summary(Box<GroupSummary>),
}

/// Totals of a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayCounts {
    /// Alerts replayed.
    pub alerts: u64,
    /// Delivered at once (first of their window).
    pub delivered: u64,
    /// Counted into a window, not delivered on their own.
    pub grouped: u64,
    /// Summaries of windows that held more than one alert.
    pub summaries: u64,
    /// Alerts without a usable `eventTime`: each delivered on its own.
    pub untimed: u64,
    /// Alerts whose event id was already replayed (the same event twice in history, as
    /// EventBridge may deliver it twice): dropped, as the Lambda drops a repeated delivery.
    pub repeats: u64,
}

/// Grouping applied to history: every alert of a scan, in `eventTime` order, through [`admit`]
/// with an in-memory store. Alerts are rare, so holding a scan's alerts to sort them is cheap.
#[derive(Debug)]
pub struct Replay {
    window: Window,
    /// (time, order seen, alert).
    alerts: Vec<(Option<i64>, usize, Alert)>,
}

impl Replay {
    pub fn new(window: Window) -> Replay {
        Replay {
            window,
            alerts: Vec::new(),
        }
    }

    pub fn push(&mut self, alert: Alert) {
        let at = alert.event_time.as_deref().and_then(parse_event_time);
        let order = self.alerts.len();
        self.alerts.push((at, order, alert));
    }

    /// The notifications in the order the team would have received them (an alert at its time,
    /// a summary when its window closed), and the totals.
    pub fn finish(mut self) -> (Vec<Notification>, ReplayCounts) {
        self.alerts.sort_by_key(|(at, order, _)| (*at, *order));
        let mut counts = ReplayCounts::default();
        let mut groups: HashMap<String, Group> = HashMap::new();
        let mut out: Vec<(i64, usize, Notification)> = Vec::new();
        for (at, order, alert) in self.alerts {
            counts.alerts += 1;
            let Some(at) = at else {
                counts.untimed += 1;
                counts.delivered += 1;
                out.push((i64::MIN, order, Notification::Alert(Box::new(alert))));
                continue;
            };
            match admit(groups.get(&alert.dedup_key), &alert, at, self.window) {
                Admission::Deliver { group, closed } => {
                    if let Some(summary) = closed {
                        counts.summaries += 1;
                        let closes_at = groups[&alert.dedup_key].closes_at;
                        out.push((closes_at, order, Notification::Summary(summary)));
                    }
                    counts.delivered += 1;
                    groups.insert(group.key.clone(), group);
                    out.push((at, order, Notification::Alert(Box::new(alert))));
                }
                Admission::Grouped { group } => {
                    counts.grouped += 1;
                    groups.insert(group.key.clone(), group);
                }
                // The same event twice in history (a trail and its copy): one alert.
                Admission::Repeat { .. } => counts.repeats += 1,
            }
        }
        let mut open: Vec<&Group> = groups
            .values()
            .filter(|g| summary_due(g, i64::MAX))
            .collect();
        open.sort_by_key(|g| (g.closes_at, g.key.clone()));
        for group in open {
            counts.summaries += 1;
            out.push((
                group.closes_at,
                usize::MAX,
                Notification::Summary(Box::new(GroupSummary::of(group))),
            ));
        }
        out.sort_by_key(|(at, order, _)| (*at, *order));
        (out.into_iter().map(|(_, _, n)| n).collect(), counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Record;
    use crate::rule::{Person, PersonKind};

    fn alert(title_actor: &str, event_id: &str, time: &str) -> Alert {
        let record = Record::from_json(
            serde_json::json!({
                "eventSource": "lambda.amazonaws.com",
                "eventName": "UpdateFunctionCode20150331v2",
                "eventID": event_id,
                "eventTime": time,
                "responseElements": {"functionName": "f"},
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let person = Person {
            name: title_actor.into(),
            kind: PersonKind::IamUser,
            issuer: None,
            session_name: None,
        };
        Alert::new(&record, &person, None)
    }

    const HOUR: Window = Window { seconds: 3600 };

    #[test]
    fn first_is_delivered_later_ones_counted_then_summarised() {
        let a = alert("alice", "e1", "2024-01-01T10:00:00Z");
        let Admission::Deliver { group, closed } = admit(None, &a, 100, HOUR) else {
            panic!("first alert must be delivered");
        };
        assert_eq!(closed, None);
        assert_eq!((group.count, group.closes_at), (1, 3700));
        let b = alert("alice", "e2", "2024-01-01T10:10:00Z");
        let Admission::Grouped { group } = admit(Some(&group), &b, 700, HOUR) else {
            panic!("second alert inside the window is grouped");
        };
        assert_eq!(group.count, 2);
        assert!(!summary_due(&group, 3699));
        assert!(summary_due(&group, 3700));
        assert_eq!(
            admit(Some(&group), &b, 800, HOUR),
            Admission::Repeat { first: false }
        );
        assert_eq!(
            admit(Some(&group), &a, 800, HOUR),
            Admission::Repeat { first: true }
        );
        // After the window, the next alert opens a new window and carries the old summary.
        let c = alert("alice", "e3", "2024-01-01T11:10:00Z");
        let Admission::Deliver {
            closed,
            group: next,
        } = admit(Some(&group), &c, 3700, HOUR)
        else {
            panic!("a new window");
        };
        let summary = closed.expect("the closed window's summary is due");
        assert_eq!(summary.count, 2);
        assert_eq!(summary.event_ids, vec!["e1", "e2"]);
        assert_eq!(next.count, 1);
        // A summarised window takes nothing more, even inside its time.
        let mut done = group.clone();
        done.summarized = true;
        assert!(matches!(
            admit(Some(&done), &c, 800, HOUR),
            Admission::Deliver { closed: None, .. }
        ));
    }

    #[test]
    fn window_zero_delivers_everything() {
        let a = alert("alice", "e1", "2024-01-01T10:00:00Z");
        let Admission::Deliver { group, .. } = admit(None, &a, 100, Window::minutes(0)) else {
            panic!()
        };
        let b = alert("alice", "e2", "2024-01-01T10:00:00Z");
        assert!(matches!(
            admit(Some(&group), &b, 100, Window::minutes(0)),
            Admission::Deliver { .. }
        ));
    }

    #[test]
    fn replay_orders_by_time_and_keeps_keys_apart() {
        let mut replay = Replay::new(HOUR);
        replay.push(alert("alice", "a3", "2024-01-01T10:40:00Z"));
        replay.push(alert("alice", "a1", "2024-01-01T10:00:00Z"));
        replay.push(alert("bob", "b1", "2024-01-01T10:05:00Z"));
        replay.push(alert("alice", "a2", "2024-01-01T10:20:00Z"));
        replay.push(alert("alice", "a4", "2024-01-01T11:30:00Z"));
        replay.push(alert("carol", "c1", "not a time"));
        let (notifications, counts) = replay.finish();
        assert_eq!(
            counts,
            ReplayCounts {
                alerts: 6,
                delivered: 4,
                grouped: 2,
                summaries: 1,
                untimed: 1,
                repeats: 0,
            }
        );
        let shown: Vec<String> = notifications
            .iter()
            .map(|n| match n {
                Notification::Alert(a) => a.event_id.clone().unwrap(),
                Notification::Summary(s) => format!("summary {} {:?}", s.count, s.event_ids),
            })
            .collect();
        assert_eq!(
            shown,
            ["c1", "a1", "b1", "summary 3 [\"a1\", \"a2\", \"a3\"]", "a4"]
        );
    }

    #[test]
    fn event_time_parses_as_cloudtrail_writes_it() {
        assert_eq!(parse_event_time("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(
            parse_event_time("2019-01-01T00:00:00Z"),
            Some(1_546_300_800)
        );
        assert_eq!(parse_event_time("yesterday"), None);
        assert_eq!(rfc3339(1_546_300_800), "2019-01-01T00:00:00Z");
    }
}
