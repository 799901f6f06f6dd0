//! Where the function remembers what it did: which CloudTrail events it has handled (so one
//! `eventID` never alerts twice) and each dedup key's grouping window. One trait, [`Store`], with
//! three adapters: [`DynamoStore`] (the deployed function: a DynamoDB table, conditional writes),
//! [`MemoryStore`] (unit tests and local runs) and [`NoStore`] (no table configured: nothing is
//! remembered, every delivery is handled as new).
//!
//! Event records follow the in-progress / completed pattern of Powertools' idempotency utility: an
//! invocation first claims the event (`attribute_not_exists(pk)`, or an in-progress claim whose
//! lease has run out, i.e. an invocation that died), delivers, then marks it completed; a failed
//! delivery releases the claim so that Lambda's retry delivers it. Windows are written back only if
//! their version is still the one read (optimistic concurrency), so two invocations can never both
//! open a window or lose each other's count.
//!
//! Items (partition key `pk`, a string; TTL attribute `expires_at`, Unix seconds):
//! - `event#<eventID>`: `status` (`in_progress` | `completed`), `lease_until`, `message_id`;
//! - `group#<dedup key>`: `state` (the [`Group`] as JSON), `version`, `closes_at`, and
//!   `summary_pending` while a summary is owed (what the scheduled sweep looks for).
//!
//! This module decides nothing about grouping (that is `lambda_code_watch::grouping`) and delivers
//! nothing.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_code_watch::grouping::Group;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Mutex;

/// Event records are kept this long after the event was handled: longer than Lambda's six hours of
/// asynchronous retries and EventBridge's day of retries, so a late repeat is still recognised.
pub const EVENT_RETENTION_SECONDS: i64 = 7 * 24 * 3600;
/// Windows are kept this long after they close.
pub const GROUP_RETENTION_SECONDS: i64 = 7 * 24 * 3600;

/// What claiming an event found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This invocation owns the event now: deliver, then complete or release.
    Claimed,
    /// Already handled to the end: a repeated delivery, to drop.
    Completed { message_id: Option<String> },
    /// Another invocation is handling it right now (its lease runs until `lease_until`).
    InProgress { lease_until: i64 },
}

/// Writing a window back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Saved,
    /// Someone changed the window since it was read: read it again and decide again.
    Conflict,
}

/// A store that could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// A window as stored, with the version it must still have when written back.
pub type Versioned = (Group, u64);

/// What the function remembers between invocations.
pub trait Store {
    /// Whether this store remembers anything (false for [`NoStore`]).
    fn remembers(&self) -> bool;

    /// Claims `event_id` until `lease_until`.
    fn claim(
        &self,
        event_id: &str,
        now: i64,
        lease_until: i64,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Marks a claimed event handled.
    fn complete(
        &self,
        event_id: &str,
        message_id: Option<&str>,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives a claimed event up (its delivery failed), so a retry handles it again.
    fn release(&self, event_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The window of `key`, if any.
    fn load_group(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Versioned>, StoreError>> + Send;

    /// Writes `group` if its stored version is still `expected` (`None`: if there is none).
    fn save_group(
        &self,
        group: &Group,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send;

    /// Windows that owe a summary and have closed by `now`.
    fn due_groups(
        &self,
        now: i64,
    ) -> impl Future<Output = Result<Vec<Versioned>, StoreError>> + Send;
}

/// No table: nothing is remembered. Every delivery of an event is handled as new (EventBridge's
/// rare duplicate deliveries and Lambda's retries after a lost answer may alert twice), and there
/// is no grouping.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStore;

impl Store for NoStore {
    fn remembers(&self) -> bool {
        false
    }
    async fn claim(&self, _: &str, _: i64, _: i64) -> Result<Claim, StoreError> {
        Ok(Claim::Claimed)
    }
    async fn complete(&self, _: &str, _: Option<&str>, _: i64) -> Result<(), StoreError> {
        Ok(())
    }
    async fn release(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn load_group(&self, _: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(None)
    }
    async fn save_group(&self, _: &Group, _: Option<u64>) -> Result<Saved, StoreError> {
        Ok(Saved::Saved)
    }
    async fn due_groups(&self, _: i64) -> Result<Vec<Versioned>, StoreError> {
        Ok(Vec::new())
    }
}

#[derive(Debug, Clone)]
struct EventItem {
    completed: bool,
    lease_until: i64,
    message_id: Option<String>,
}

/// A store in memory, with the same conditions as [`DynamoStore`]: for unit tests and local runs.
#[derive(Debug, Default)]
pub struct MemoryStore {
    events: Mutex<HashMap<String, EventItem>>,
    groups: Mutex<HashMap<String, Versioned>>,
}

impl MemoryStore {
    /// The stored window of `key` (tests).
    pub fn group(&self, key: &str) -> Option<Group> {
        self.groups.lock().unwrap().get(key).map(|(g, _)| g.clone())
    }
}

impl Store for MemoryStore {
    fn remembers(&self) -> bool {
        true
    }
    async fn claim(&self, event_id: &str, now: i64, lease_until: i64) -> Result<Claim, StoreError> {
        let mut events = self.events.lock().unwrap();
        match events.get(event_id) {
            Some(item) if item.completed => Ok(Claim::Completed {
                message_id: item.message_id.clone(),
            }),
            Some(item) if item.lease_until >= now => Ok(Claim::InProgress {
                lease_until: item.lease_until,
            }),
            _ => {
                events.insert(
                    event_id.to_owned(),
                    EventItem {
                        completed: false,
                        lease_until,
                        message_id: None,
                    },
                );
                Ok(Claim::Claimed)
            }
        }
    }
    async fn complete(
        &self,
        event_id: &str,
        message_id: Option<&str>,
        _: i64,
    ) -> Result<(), StoreError> {
        let mut events = self.events.lock().unwrap();
        let item = events.entry(event_id.to_owned()).or_insert(EventItem {
            completed: false,
            lease_until: 0,
            message_id: None,
        });
        item.completed = true;
        item.message_id = message_id.map(str::to_owned);
        Ok(())
    }
    async fn release(&self, event_id: &str) -> Result<(), StoreError> {
        let mut events = self.events.lock().unwrap();
        if events.get(event_id).is_some_and(|item| !item.completed) {
            events.remove(event_id);
        }
        Ok(())
    }
    async fn load_group(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(self.groups.lock().unwrap().get(key).cloned())
    }
    async fn save_group(&self, group: &Group, expected: Option<u64>) -> Result<Saved, StoreError> {
        let mut groups = self.groups.lock().unwrap();
        let current = groups.get(&group.key).map(|(_, version)| *version);
        if current != expected {
            return Ok(Saved::Conflict);
        }
        groups.insert(
            group.key.clone(),
            (group.clone(), expected.map_or(1, |v| v + 1)),
        );
        Ok(Saved::Saved)
    }
    async fn due_groups(&self, now: i64) -> Result<Vec<Versioned>, StoreError> {
        Ok(self
            .groups
            .lock()
            .unwrap()
            .values()
            .filter(|(group, _)| lambda_code_watch::grouping::summary_due(group, now))
            .cloned()
            .collect())
    }
}

/// The deployed store: one DynamoDB table (`DEDUP_TABLE`).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn event_pk(event_id: &str) -> AttributeValue {
    s(format!("event#{event_id}"))
}

fn group_pk(key: &str) -> AttributeValue {
    s(format!("group#{key}"))
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn text<'i>(item: &'i HashMap<String, AttributeValue>, name: &str) -> Option<&'i str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

fn failed(what: &str, table: &str, error: impl std::error::Error) -> StoreError {
    StoreError(format!(
        "{what} on table {table}: {}",
        DisplayErrorContext(error)
    ))
}

fn is_condition_failure(error: &impl ProvideErrorMetadata) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

impl DynamoStore {
    pub fn new(client: Client, table: String) -> DynamoStore {
        DynamoStore { client, table }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn versioned(&self, item: &HashMap<String, AttributeValue>) -> Result<Versioned, StoreError> {
        let state = text(item, "state")
            .ok_or_else(|| StoreError(format!("a window in {} has no state", self.table)))?;
        let group: Group = serde_json::from_str(state)
            .map_err(|e| StoreError(format!("a window in {} is unreadable: {e}", self.table)))?;
        Ok((group, number(item, "version").unwrap_or(0) as u64))
    }
}

impl Store for DynamoStore {
    fn remembers(&self) -> bool {
        true
    }

    async fn claim(&self, event_id: &str, now: i64, lease_until: i64) -> Result<Claim, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", event_pk(event_id))
            .item("status", s(IN_PROGRESS))
            .item("lease_until", n(lease_until))
            .item("expires_at", n(now + EVENT_RETENTION_SECONDS))
            .condition_expression(
                "attribute_not_exists(pk) OR (#status = :in_progress AND #lease < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lease", "lease_until")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::Claimed),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => {
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", event_pk(event_id))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| failed("GetItem", &self.table, e))?;
                let item = item.item.unwrap_or_default();
                if text(&item, "status") == Some(COMPLETED) {
                    Ok(Claim::Completed {
                        message_id: text(&item, "message_id").map(str::to_owned),
                    })
                } else {
                    Ok(Claim::InProgress {
                        lease_until: number(&item, "lease_until").unwrap_or(now),
                    })
                }
            }
            Err(e) => Err(failed("PutItem (claim)", &self.table, e)),
        }
    }

    async fn complete(
        &self,
        event_id: &str,
        message_id: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", event_pk(event_id))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":expires", n(now + EVENT_RETENTION_SECONDS));
        update = match message_id {
            Some(id) => update
                .update_expression(
                    "SET #status = :completed, expires_at = :expires, message_id = :message \
                     REMOVE lease_until",
                )
                .expression_attribute_values(":message", s(id)),
            None => update.update_expression(
                "SET #status = :completed, expires_at = :expires REMOVE lease_until",
            ),
        };
        update
            .send()
            .await
            .map_err(|e| failed("UpdateItem (complete)", &self.table, e))?;
        Ok(())
    }

    async fn release(&self, event_id: &str) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", event_pk(event_id))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(()),
            Err(e) => Err(failed("DeleteItem (release)", &self.table, e)),
        }
    }

    async fn load_group(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", group_pk(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem (window)", &self.table, e))?;
        output
            .item
            .as_ref()
            .map(|item| self.versioned(item))
            .transpose()
    }

    async fn save_group(&self, group: &Group, expected: Option<u64>) -> Result<Saved, StoreError> {
        let state = serde_json::to_string(group).expect("a window serialises");
        let next = expected.map_or(1, |v| v + 1);
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", group_pk(&group.key))
            .item("state", s(state))
            .item("version", n(next as i64))
            .item("closes_at", n(group.closes_at))
            .item("expires_at", n(group.closes_at + GROUP_RETENTION_SECONDS));
        if group.count > 1 && !group.summarized {
            put = put.item("summary_pending", n(1));
        }
        put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            // Placeholders for every name: DynamoDB reserves hundreds of words.
            Some(version) => put
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(version as i64)),
        };
        match put.send().await {
            Ok(_) => Ok(Saved::Saved),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(Saved::Conflict),
            Err(e) => Err(failed("PutItem (window)", &self.table, e)),
        }
    }

    async fn due_groups(&self, now: i64) -> Result<Vec<Versioned>, StoreError> {
        // A Scan: the table holds one item per alert of the last week and one per key, so it
        // stays small; a sweep every few minutes reads it in one or two pages.
        let mut due = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("attribute_exists(#pending) AND #closes <= :now")
                .expression_attribute_names("#pending", "summary_pending")
                .expression_attribute_names("#closes", "closes_at")
                .expression_attribute_values(":now", n(now))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| failed("Scan (due summaries)", &self.table, e))?;
            for item in page.items() {
                due.push(self.versioned(item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(due)
    }
}
