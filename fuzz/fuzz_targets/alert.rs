//! Arbitrary JSON into the detector, and every alert through both renderings and the SNS message
//! shaping: valid JSON out, a Subject SNS accepts, nothing invisible in what people read.
#![no_main]

use lambda_code_watch::Detector;
use lambda_code_watch::sink::sns_message::{MAX_PUBLISH_BYTES, MAX_SUBJECT_CHARS, SnsMessage};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use unicode_general_category::{GeneralCategory, get_general_category};

fn hidden(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(
            get_general_category(c),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

fuzz_target!(|data: &[u8]| {
    let Ok(outcome) = Detector::default().assess_json(data) else {
        return;
    };
    let Some(alert) = outcome.alert() else {
        return;
    };
    let _: Value = serde_json::from_str(&alert.to_json()).expect("alert JSON is valid");
    assert!(!alert.to_text().chars().any(hidden), "hidden character in the text");
    let message = SnsMessage::for_alert(alert).expect("fits once truncated");
    let subject = &message.subject;
    assert!(!subject.is_empty() && subject.len() <= MAX_SUBJECT_CHARS);
    assert!(subject.bytes().all(|b| (0x20..0x7f).contains(&b)));
    assert!(message.publish_bytes() <= MAX_PUBLISH_BYTES);
    let outer: Value = serde_json::from_str(&message.message).expect("Message is valid JSON");
    assert!(outer["default"].as_str().is_some());
});
