//! S3 mode end to end: the real handler under `cargo lambda watch`, with S3, SQS, SNS and DynamoDB
//! on moto_server. The trail bucket sends its ObjectCreated notifications to an SQS queue (moto's
//! own S3 event notifications, keys URL-encoded as S3 does, and its `s3:TestEvent`), and the test
//! hands what arrives there to the function as the event source mapping would: an SQS batch.
//!
//! - a gzip CloudTrail log file with one alerting record: exactly one SNS message, equal to what
//!   `scan` prints for that file;
//! - an event the EventBridge path already alerted on, then found in a log file: nothing more;
//! - a missing object and a file that is not CloudTrail: `batchItemFailures` names exactly their
//!   messages, and the other message of the batch is read and alerts;
//! - 5,000 records without an alert: nothing published, and the function's peak memory (VmHWM of
//!   its process) stays under a measured bound;
//! - two alerts in one file whose first publish fails: the message fails, the second alert is
//!   published at once, and the retried message publishes the first and not the second again.
//!
//! Needs moto_server, cargo-lambda and python3 with boto3 (scripts/test installs them): under
//! `CI=true` their absence fails the tests, elsewhere it skips them.

mod common;
mod support_lambda;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use support_lambda::{Fault, FaultProxy, Moto, Subscription, Tools, Watch, aws_helper, repo_dir};

const BUCKET: &str = "org-trail-logs";
const PREFIX: &str = "central";
const DAY_DIR: &str = "central/AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/us-east-1/2026/01/02";

/// The function's peak resident memory reading a 5,000-record file, in KiB. Measured: about
/// 20 MiB for the debug build under `cargo lambda watch` (the file inflates to 7 MB, which the
/// decoder inflates whole); a function that kept every record, or the file twice, passes it.
const PEAK_RSS_BOUND_KIB: u64 = 48 * 1024;

struct Stack {
    tools: Tools,
    moto: Moto,
    subscription: Subscription,
    proxy: FaultProxy,
    table: String,
    queue_url: String,
    dir: tempfile::TempDir,
}

fn stack(name: &str) -> Option<Stack> {
    let tools = Tools::find("lambda_s3")?;
    let moto = Moto::start(&tools, name);
    let subscription = moto.topic_with_queue(&format!("lcw-{name}"));
    let table = format!("lcw-{name}-events");
    aws_helper(&tools, &moto, &["table", "--name", &table]);
    aws_helper(&tools, &moto, &["bucket", "--name", BUCKET]);
    let queue = aws_helper(
        &tools,
        &moto,
        &[
            "trail-queue",
            "--name",
            &format!("lcw-{name}-trail-files"),
            "--bucket",
            BUCKET,
            "--prefix",
            &format!("{PREFIX}/AWSLogs/"),
        ],
    );
    let proxy = FaultProxy::start(moto.port);
    Some(Stack {
        queue_url: queue["queue_url"].as_str().unwrap().to_owned(),
        tools,
        moto,
        subscription,
        proxy,
        table,
        dir: tempfile::tempdir().expect("a temporary directory"),
    })
}

impl Stack {
    fn watch(&self, name: &str) -> Watch {
        let proxy = self.proxy.endpoint();
        Watch::start(
            &self.tools,
            name,
            &[
                ("AWS_ENDPOINT_URL", self.moto.endpoint.as_str()),
                ("AWS_ENDPOINT_URL_SNS", proxy.as_str()),
                ("ALERT_TOPIC_ARN", self.subscription.topic_arn.as_str()),
                ("DEDUP_TABLE", self.table.as_str()),
                ("TRAIL_BUCKET", BUCKET),
                ("TRAIL_PREFIX", PREFIX),
            ],
        )
    }

    /// Writes `records` as a CloudTrail log file (`{"Records": [...]}`, gzip) named `name`, keeps
    /// a copy for `scan`, and puts it in the bucket. Returns the local copy.
    fn put_log_file(&self, name: &str, records: &[Value]) -> PathBuf {
        let path = self.dir.path().join(name);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json!({"Records": records}).to_string().as_bytes())
            .unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        self.put(name, &path);
        path
    }

    fn put(&self, name: &str, path: &Path) {
        aws_helper(
            &self.tools,
            &self.moto,
            &[
                "put-object",
                "--name",
                BUCKET,
                "--key",
                &format!("{DAY_DIR}/{name}"),
                "--file",
                path.to_str().unwrap(),
            ],
        );
    }

    /// The next `count` notifications on the queue, as the SQS event the function is given.
    fn sqs_event(&self, count: usize) -> Value {
        aws_helper(
            &self.tools,
            &self.moto,
            &[
                "sqs-event",
                "--name",
                &self.queue_url,
                "--count",
                &count.to_string(),
            ],
        )
    }

    /// The alert documents published since the last call, as SNS delivered them.
    fn published(&self) -> Vec<String> {
        self.moto
            .drain(&self.subscription)
            .into_iter()
            .map(|envelope| envelope["Message"].as_str().expect("a Message").to_owned())
            .collect()
    }
}

/// The IAM-user sample record with its own event id and user (a user per alert: another key, so
/// grouping holds nothing back).
fn alert_record(event_id: &str, user: &str) -> Value {
    let path = repo_dir().join("events/alert/iam-user.json");
    let mut record: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    record["eventID"] = json!(event_id);
    record["userIdentity"]["userName"] = json!(user);
    record["userIdentity"]["arn"] = json!(format!("arn:aws:iam::123456789012:user/{user}"));
    record
}

/// Quiet records shaped like a trail's: the quiet samples (a CI/CD role's code update among
/// them) and, mostly, the same records as other APIs.
fn quiet_records(count: usize) -> Vec<Value> {
    let samples: Vec<Value> = common::event_files("quiet")
        .iter()
        .map(|path| serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
        .collect();
    const OTHER_APIS: &[&str] = &["GetObject", "AssumeRole", "DescribeInstances", "PutItem"];
    (0..count)
        .map(|n| {
            let mut record = samples[n % samples.len()].clone();
            record["eventID"] = json!(format!("quiet-{n}"));
            if n % 5 != 0 {
                record["eventName"] = json!(OTHER_APIS[n % OTHER_APIS.len()]);
            }
            record
        })
        .collect()
}

fn batch_failures(answer: &Value) -> Vec<String> {
    answer["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not a partial batch response: {answer}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

/// The message ids of a batch, by a word of each message's body (its file name).
fn ids_by_file(event: &Value, files: &[&str]) -> BTreeMap<String, String> {
    let mut ids = BTreeMap::new();
    for message in event["Records"].as_array().unwrap() {
        let body = message["body"].as_str().unwrap();
        let id = message["messageId"].as_str().unwrap().to_owned();
        let name = files
            .iter()
            .find(|f| body.contains(*f))
            .map_or("s3:TestEvent", |f| *f);
        ids.insert(name.to_owned(), id);
    }
    ids
}

#[test]
fn a_log_file_alert_is_published_once_as_scan_prints_it_and_not_again_after_eventbridge() {
    let Some(stack) = stack("s3-alert") else {
        return;
    };
    let mut watch = stack.watch("s3-alert");

    // S3's test event (sent when the notification was configured) and a new log file.
    let mut records = quiet_records(20);
    records.insert(7, alert_record("s3-alert-1", "alice"));
    let file = stack.put_log_file("alice.json.gz", &records);
    let event = stack.sqs_event(2);
    let ids = ids_by_file(&event, &["alice.json.gz"]);
    assert_eq!(ids.len(), 2, "{event}");
    let answer = watch.invoke(event.to_string().as_bytes());
    assert!(answer.succeeded(), "{answer:?}");
    assert_eq!(batch_failures(&answer.body), Vec::<String>::new());
    let published = stack.published();
    assert_eq!(
        published,
        support_lambda::scan_output(&file),
        "{published:#?}"
    );
    assert_eq!(published.len(), 1);

    // The EventBridge path alerts first; the file holding the same event then publishes nothing.
    let record = alert_record("s3-alert-2", "bob");
    let envelope = {
        let path = repo_dir().join("events/eventbridge/alert/iam-user.json");
        let mut envelope: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        envelope["detail"] = record.clone();
        envelope
    };
    let first = watch.invoke(envelope.to_string().as_bytes());
    assert_eq!(first.body["delivery"], "published", "{first:?}");
    let mut records = quiet_records(10);
    records.push(record);
    stack.put_log_file("bob.json.gz", &records);
    let answer = watch.invoke(stack.sqs_event(1).to_string().as_bytes());
    assert_eq!(batch_failures(&answer.body), Vec::<String>::new());
    let published = stack.published();
    assert_eq!(published.len(), 1, "{published:#?}");
    let document: Value = serde_json::from_str(&published[0]).unwrap();
    assert_eq!(document["event_id"], "s3-alert-2");
    assert!(
        watch.output().contains(r#""delivery":"duplicate""#),
        "the file's copy of the event was found completed"
    );
}

#[test]
fn an_unreadable_or_missing_file_fails_only_its_own_message() {
    let Some(stack) = stack("s3-failures") else {
        return;
    };
    let mut watch = stack.watch("s3-failures");
    stack.sqs_event(1); // S3's test event

    stack.put_log_file("gone.json.gz", &quiet_records(3));
    aws_helper(
        &stack.tools,
        &stack.moto,
        &[
            "delete-object",
            "--name",
            BUCKET,
            "--key",
            &format!("{DAY_DIR}/gone.json.gz"),
        ],
    );
    let garbage = stack.dir.path().join("garbage.json.gz");
    std::fs::write(&garbage, b"this is not a CloudTrail log file\n").unwrap();
    stack.put("garbage.json.gz", &garbage);
    let mut records = quiet_records(5);
    records.push(alert_record("s3-good-1", "carol"));
    let good = stack.put_log_file("good.json.gz", &records);

    let event = stack.sqs_event(3);
    let ids = ids_by_file(&event, &["gone.json.gz", "garbage.json.gz", "good.json.gz"]);
    assert_eq!(ids.len(), 3, "{event}");
    let answer = watch.invoke(event.to_string().as_bytes());
    assert!(answer.succeeded(), "{answer:?}");
    let mut failed = batch_failures(&answer.body);
    failed.sort();
    let mut expected = vec![ids["gone.json.gz"].clone(), ids["garbage.json.gz"].clone()];
    expected.sort();
    assert_eq!(failed, expected, "{ids:?}");
    assert_eq!(stack.published(), support_lambda::scan_output(&good));
    let log = watch.output();
    assert!(log.contains("NoSuchKey"), "the log says why: {log}");
}

#[test]
fn a_file_of_5000_quiet_records_publishes_nothing_in_bounded_memory() {
    let Some(stack) = stack("s3-memory") else {
        return;
    };
    let mut watch = stack.watch("s3-memory");
    stack.sqs_event(1); // S3's test event
    stack.put_log_file("quiet.json.gz", &quiet_records(5000));
    let answer = watch.invoke(stack.sqs_event(1).to_string().as_bytes());
    assert!(answer.succeeded(), "{answer:?}");
    assert_eq!(batch_failures(&answer.body), Vec::<String>::new());
    assert_eq!(stack.published(), Vec::<String>::new());
    let log = watch.output();
    assert!(
        log.contains(r#""records":5000"#),
        "the whole file was read: {}",
        support_lambda::tail(&log, 20)
    );
    let peak = watch
        .peak_rss_kib()
        .expect("the function's process is found in /proc");
    eprintln!("peak RSS of the function reading 5,000 records: {peak} KiB");
    assert!(
        peak <= PEAK_RSS_BOUND_KIB,
        "the function peaked at {peak} KiB reading 5,000 records (bound {PEAK_RSS_BOUND_KIB})"
    );
}

#[test]
fn a_file_whose_first_publish_fails_publishes_each_alert_exactly_once() {
    let Some(stack) = stack("s3-retry") else {
        return;
    };
    let mut watch = stack.watch("s3-retry");
    stack.sqs_event(1); // S3's test event
    let mut records = quiet_records(4);
    records.insert(1, alert_record("s3-retry-1", "dave"));
    records.push(alert_record("s3-retry-2", "erin"));
    stack.put_log_file("two.json.gz", &records);
    let event = stack.sqs_event(1);
    let id = event["Records"][0]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Every attempt of the first publish fails; the second alert goes through.
    stack
        .proxy
        .fail_next(&[Fault::ServerError, Fault::ServerError, Fault::ServerError]);
    let answer = watch.invoke(event.to_string().as_bytes());
    assert!(answer.succeeded(), "{answer:?}");
    assert_eq!(batch_failures(&answer.body), std::slice::from_ref(&id));
    let ids = |published: Vec<String>| -> Vec<String> {
        published
            .iter()
            .map(|m| {
                serde_json::from_str::<Value>(m).unwrap()["event_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(ids(stack.published()), ["s3-retry-2"]);

    // SQS hands the message out again: the first alert now, the second not again.
    let retry = watch.invoke(event.to_string().as_bytes());
    assert_eq!(
        batch_failures(&retry.body),
        Vec::<String>::new(),
        "{retry:?}"
    );
    assert_eq!(ids(stack.published()), ["s3-retry-1"]);
    let again = watch.invoke(event.to_string().as_bytes());
    assert_eq!(
        batch_failures(&again.body),
        Vec::<String>::new(),
        "{again:?}"
    );
    assert_eq!(stack.published(), Vec::<String>::new());

    let items = aws_helper(
        &stack.tools,
        &stack.moto,
        &["items", "--name", &stack.table],
    );
    let completed: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"]["S"] == "completed")
        .filter_map(|i| i["pk"]["S"].as_str())
        .collect();
    assert_eq!(completed.len(), 2, "{items:#}");
}
