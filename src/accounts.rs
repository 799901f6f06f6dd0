//! Account names: what a team calls each AWS account, so an alert from an organisation of many
//! accounts says `payments-prod`, not only `111122223333`.
//!
//! The names are configuration, given as one JSON object from 12-digit account IDs to names
//! (`{"111122223333": "payments-prod"}`): the Lambda reads it from `ACCOUNT_NAMES`, `scan` from
//! `--account-names FILE`. [`AccountNames::from_json`] is the one parser and refuses anything it
//! cannot use (another JSON type, a key that is not an account ID, an empty name, the same ID
//! twice) with a message saying what and where, so a typo stops the start instead of silently
//! naming nothing.
//!
//! This module only maps IDs to names. It does not read files or the environment (the callers do),
//! does not ask AWS Organizations for names, and does not render them (`alert.rs`, `sink/`).

use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Account IDs mapped to names. Empty by default: alerts then carry the ID only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountNames(Arc<BTreeMap<String, String>>);

/// Why a mapping of account names was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountNamesError {
    reason: String,
}

impl fmt::Display for AccountNamesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (expected a JSON object from 12-digit account IDs to names, such as \
             {{\"111122223333\": \"payments-prod\"}})",
            self.reason
        )
    }
}

impl std::error::Error for AccountNamesError {}

impl AccountNames {
    /// Parses `{"<12-digit account ID>": "<name>", ...}`. Surrounding whitespace is allowed; an
    /// empty object is allowed (no names).
    pub fn from_json(text: &str) -> Result<AccountNames, AccountNamesError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let names = deserializer
            .deserialize_any(NamesVisitor)
            .and_then(|names| deserializer.end().map(|()| names))
            .map_err(|e| AccountNamesError {
                reason: e.to_string(),
            })?;
        Ok(AccountNames(Arc::new(names)))
    }

    /// The name of `account_id`, if one was given.
    pub fn get(&self, account_id: &str) -> Option<&str> {
        self.0.get(account_id).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Builds the map entry by entry, so that a repeated ID, which a plain map would silently
/// overwrite, is refused.
struct NamesVisitor;

impl<'de> Visitor<'de> for NamesVisitor {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object from account IDs to names")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut names = BTreeMap::new();
        while let Some(account_id) = map.next_key::<String>()? {
            if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(de::Error::custom(format!(
                    "key {account_id:?} is not a 12-digit AWS account ID"
                )));
            }
            let name = map.next_value::<serde_json::Value>()?;
            let serde_json::Value::String(name) = name else {
                return Err(de::Error::custom(format!(
                    "the name of account {account_id} is {}, not a string",
                    json_type(&name)
                )));
            };
            if name.trim().is_empty() {
                return Err(de::Error::custom(format!(
                    "the name of account {account_id} is empty"
                )));
            }
            if name.chars().any(char::is_control) {
                return Err(de::Error::custom(format!(
                    "the name of account {account_id} ({name:?}) contains control characters"
                )));
            }
            if names.insert(account_id.clone(), name).is_some() {
                return Err(de::Error::custom(format!(
                    "account {account_id} is named twice"
                )));
            }
        }
        Ok(names)
    }
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_by_account_id() {
        let names = AccountNames::from_json(
            r#" {"111122223333": "payments-prod", "444455556666": "sandbox jos\u00e9"} "#,
        )
        .unwrap();
        assert_eq!(names.len(), 2);
        assert_eq!(names.get("111122223333"), Some("payments-prod"));
        assert_eq!(names.get("444455556666"), Some("sandbox josé"));
        assert_eq!(names.get("999999999999"), None);
        assert!(AccountNames::from_json("{}").unwrap().is_empty());
        assert!(AccountNames::default().is_empty());
    }

    #[test]
    fn unusable_mappings_are_refused_saying_what_is_wrong() {
        for (text, says) in [
            ("", "EOF"),
            ("payments-prod", "expected"),
            (
                r#"["111122223333"]"#,
                "a JSON object from account IDs to names",
            ),
            (
                r#""111122223333""#,
                "a JSON object from account IDs to names",
            ),
            (
                r#"{"1111-2222-3333": "payments"}"#,
                "\"1111-2222-3333\" is not a 12-digit",
            ),
            (
                r#"{"11112222333": "payments"}"#,
                "\"11112222333\" is not a 12-digit",
            ),
            (
                r#"{"111122223333": 42}"#,
                "account 111122223333 is a number, not a string",
            ),
            (r#"{"111122223333": null}"#, "is null, not a string"),
            (r#"{"111122223333": "  "}"#, "account 111122223333 is empty"),
            (r#"{"111122223333": "a\nb"}"#, "contains control characters"),
            (
                r#"{"111122223333": "a", "111122223333": "b"}"#,
                "account 111122223333 is named twice",
            ),
            (r#"{"111122223333": "a"} trailing"#, "trailing characters"),
            (r#"{"111122223333": "a""#, "EOF"),
        ] {
            let error = AccountNames::from_json(text).expect_err(text).to_string();
            assert!(error.contains(says), "{text:?}: {error}");
            assert!(
                error.contains("12-digit account IDs to names"),
                "{text:?}: the message shows the expected form: {error}"
            );
        }
    }

    #[test]
    fn positions_are_given_for_broken_json() {
        let error = AccountNames::from_json("{\n  \"111122223333\": \"a\",\n  oops\n}")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 3"), "{error}");
    }
}
