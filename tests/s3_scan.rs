//! `scan s3://BUCKET/PREFIX` against a real S3 emulator (moto server on 127.0.0.1): the same bytes as
//! a local scan of the same tree, only the objects the filters select are fetched, an unreadable
//! object costs only itself, and a missing login or bucket is one clear error.
//!
//! The tree is an organisation trail and a single-account trail in one bucket (three accounts, two
//! regions, four days, gzip `{"Records": [...]}` files) built from the shared corpus' records and the
//! sample alerts, with a digest folder beside the logs. Requests are counted by a small HTTP proxy
//! in front of moto, which can also refuse one key.

mod common;
#[allow(unused_imports)] // the S3 tests use its guarded processes only
mod support_lambda;

#[cfg(feature = "s3")]
mod with_s3 {
    use crate::common::{self, corpus_dir, corpus_files, repo_dir, unavailable};
    use crate::support_lambda::{Guarded, free_port, run_with_timeout, wait_for_port};
    use flate2::{Compression, write::GzEncoder};
    use lambda_code_watch::{Detector, Outcome};
    use serde_json::Value;
    use std::collections::BTreeSet;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread;
    use std::time::Duration;

    const ORG: &str = "o-test123abc";
    /// Two member accounts of the organisation trail, and one account with its own trail.
    const ORG_ACCOUNTS: [&str; 2] = ["111122223333", "444455556666"];
    const SOLO_ACCOUNT: &str = "777788889999";
    const REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];
    const DAYS: [&str; 4] = ["2024-06-01", "2024-06-02", "2024-06-03", "2024-06-04"];
    const BUCKET: &str = "org-trail-logs";

    /// The tools: moto_server and a python with boto3 (for uploading the tree).
    struct Tools {
        moto_server: PathBuf,
        python: PathBuf,
    }

    impl Tools {
        fn find(test: &str) -> Option<Tools> {
            let venv = repo_dir().join(".venv/bin");
            let moto_server = venv.join("moto_server");
            let python = venv.join("python3");
            let has_boto3 = Command::new(&python)
                .args(["-c", "import boto3"])
                .output()
                .is_ok_and(|o| o.status.success());
            if !moto_server.is_file() || !has_boto3 {
                unavailable(&format!(
                    "{test}: needs moto_server and boto3 in .venv (pip install 'moto[server]' boto3)"
                ));
                return None;
            }
            Some(Tools {
                moto_server,
                python,
            })
        }
    }

    /// A moto server holding the test tree, behind a counting proxy.
    struct Emulator {
        _moto: Guarded,
        proxy: Proxy,
        tree: tempfile::TempDir,
    }

    impl Emulator {
        fn start(name: &str, tools: &Tools) -> Emulator {
            let port = free_port();
            let mut command = Command::new(&tools.moto_server);
            command.args(["-p", &port.to_string()]);
            let mut moto = Guarded::spawn(&format!("{name}-moto"), command);
            wait_for_port(&mut moto, port, Duration::from_secs(60));
            let tree = tempfile::tempdir().unwrap();
            write_tree(tree.path());
            let mut upload = Command::new(&tools.python);
            upload
                .arg(repo_dir().join("scripts/s3-tree.py"))
                .args(["upload", "--endpoint", &format!("http://127.0.0.1:{port}")])
                .args(["--bucket", BUCKET])
                .arg(tree.path())
                .envs(dummy_aws_env());
            let output = run_with_timeout("s3-tree.py upload", upload, Duration::from_secs(120));
            assert!(
                output.status.success(),
                "upload failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            Emulator {
                _moto: moto,
                proxy: Proxy::start(port),
                tree,
            }
        }

        /// `lambda-code-watch ARGS` with dummy keys, through the proxy.
        fn scan(&self, args: &[&str]) -> Output {
            let mut command = Command::new(env!("CARGO_BIN_EXE_lambda-code-watch"));
            command
                .args(args)
                .envs(dummy_aws_env())
                .env("AWS_ENDPOINT_URL", self.proxy.endpoint());
            run_with_timeout("scan", command, Duration::from_secs(300))
        }

        fn local(&self, relative: &str) -> String {
            self.tree
                .path()
                .join(relative)
                .to_string_lossy()
                .into_owned()
        }
    }

    fn dummy_aws_env() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
            ("NO_PROXY", "127.0.0.1,localhost"),
        ]
    }

    /// Runs the CLI on local paths, with no AWS settings at all.
    fn scan_local(args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lambda-code-watch"));
        command.args(args);
        run_with_timeout("local scan", command, Duration::from_secs(300))
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    fn summary_line(output: &Output) -> String {
        let err = text(&output.stderr);
        err.lines()
            .rfind(|l| l.starts_with("scanned "))
            .unwrap_or_else(|| panic!("no summary in stderr:\n{err}"))
            .to_owned()
    }

    /// Quiet corpus records, and the sample alerts (each a different person).
    fn records() -> (Vec<Value>, Vec<Value>) {
        let corpus = corpus_dir().expect("checked by the caller");
        let detector = Detector::default();
        let mut quiet = Vec::new();
        for file in corpus_files(&corpus, "real") {
            for line in std::fs::read_to_string(&file).unwrap().lines() {
                if quiet.len() < 60
                    && let Ok(Outcome::Quiet(_)) = detector.assess_json(line.as_bytes())
                    && let Ok(value) = serde_json::from_str::<Value>(line)
                    && value.get("detail-type").is_none()
                {
                    quiet.push(value);
                }
            }
        }
        let alerts: Vec<Value> = common::event_files("alert")
            .iter()
            .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
            .filter(|v: &Value| v.get("detail-type").is_none())
            .collect();
        assert!(quiet.len() >= 40 && alerts.len() >= 3, "corpus too small");
        (quiet, alerts)
    }

    fn account_dir(account: &str) -> String {
        if account == SOLO_ACCOUNT {
            format!("AWSLogs/{account}")
        } else {
            format!("AWSLogs/{ORG}/{account}")
        }
    }

    fn accounts() -> Vec<&'static str> {
        let mut all = ORG_ACCOUNTS.to_vec();
        all.push(SOLO_ACCOUNT);
        all
    }

    /// Writes the trail tree: per account, region and day, two log files (one holding an alert at
    /// 12:00 that day); the last file of each day also holds an alert from 23:58 the day before (a
    /// late delivery). A digest folder sits beside each account's logs.
    fn write_tree(root: &Path) {
        let (quiet, alerts) = records();
        let mut next_quiet = quiet.iter().cycle();
        let mut next_alert = alerts.iter().cycle();
        let mut serial = 0;
        for account in accounts() {
            for region in REGIONS {
                for (d, day) in DAYS.iter().enumerate() {
                    let folder = day.replace('-', "/");
                    let dir = root.join(format!(
                        "{}/CloudTrail/{region}/{folder}",
                        account_dir(account)
                    ));
                    std::fs::create_dir_all(&dir).unwrap();
                    for file in 0..2 {
                        let mut records = Vec::new();
                        for i in 0..4 {
                            let mut record = next_quiet.next().unwrap().clone();
                            record["eventTime"] = format!("{day}T0{file}:1{i}:00Z").into();
                            records.push(record);
                        }
                        if file == 0 {
                            let mut alert = next_alert.next().unwrap().clone();
                            serial += 1;
                            alert["eventTime"] = format!("{day}T12:00:00Z").into();
                            alert["eventID"] = format!("alert-{serial}").into();
                            records.insert(2, alert);
                        } else if d > 0 {
                            let mut late = next_alert.next().unwrap().clone();
                            serial += 1;
                            late["eventTime"] = format!("{}T23:58:00Z", DAYS[d - 1]).into();
                            late["eventID"] = format!("late-{serial}").into();
                            records.push(late);
                        }
                        let name = format!(
                            "{account}_CloudTrail_{region}_{}T0{file}05Z_file{file}.json.gz",
                            day.replace('-', "")
                        );
                        let json = serde_json::json!({ "Records": records }).to_string();
                        std::fs::write(dir.join(name), gzip(json.as_bytes())).unwrap();
                    }
                }
                let digest = root.join(format!(
                    "{}/CloudTrail-Digest/{region}/2024/06/01",
                    account_dir(account)
                ));
                std::fs::create_dir_all(&digest).unwrap();
                // An alert in it, so that reading it in another place would change the output:
                // the walk reads `CloudTrail/` before `CloudTrail-Digest/`, though the keys
                // compare the other way round as whole strings ('-' < '/').
                let mut alert = next_alert.next().unwrap().clone();
                serial += 1;
                alert["eventID"] = format!("digest-{serial}").into();
                let json = serde_json::json!({ "Records": [alert] }).to_string();
                std::fs::write(digest.join("digest.json.gz"), gzip(json.as_bytes())).unwrap();
            }
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// An HTTP proxy in front of moto: records each request line, refuses the requests it is told
    /// (`METHOD /path`, query aside) with 403 AccessDenied, and forwards the rest one connection
    /// per request.
    struct Proxy {
        port: u16,
        requests: Arc<Mutex<Vec<String>>>,
        refuse: Arc<Mutex<Vec<String>>>,
        stop: Arc<AtomicBool>,
    }

    impl Proxy {
        fn start(upstream: u16) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let proxy = Proxy {
                port: listener.local_addr().unwrap().port(),
                requests: Arc::default(),
                refuse: Arc::default(),
                stop: Arc::default(),
            };
            let (requests, refuse, stop) = (
                proxy.requests.clone(),
                proxy.refuse.clone(),
                proxy.stop.clone(),
            );
            thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let (requests, refuse) = (requests.clone(), refuse.clone());
                    thread::spawn(move || {
                        let _ = forward(client, upstream, &requests, &refuse);
                    });
                }
            });
            proxy
        }

        fn endpoint(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        /// The request lines (`GET /bucket/key?query`) since the last call.
        fn take_requests(&self) -> Vec<String> {
            std::mem::take(&mut *self.requests.lock().unwrap())
        }
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(("127.0.0.1", self.port));
        }
    }

    fn forward(
        client: TcpStream,
        upstream: u16,
        requests: &Mutex<Vec<String>>,
        refuse: &Mutex<Vec<String>>,
    ) -> std::io::Result<()> {
        client.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut reader = BufReader::new(client.try_clone()?);
        let mut start = String::new();
        if reader.read_line(&mut start)? == 0 {
            return Ok(());
        }
        let mut head = Vec::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            if line.trim_end().is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            if !lower.starts_with("connection:") {
                head.push(line);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let request = start.trim_end().to_owned();
        requests.lock().unwrap().push(request.clone());
        let mut client = client;
        let mut parts = request.split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = target.split('?').next().unwrap_or("");
        let this = format!("{method} {path}");
        if refuse.lock().unwrap().contains(&this) {
            let error = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>\
                         <Message>Access Denied</Message></Error>";
            write!(
                client,
                "HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{error}",
                error.len()
            )?;
            return client.flush();
        }
        let mut moto = TcpStream::connect(("127.0.0.1", upstream))?;
        moto.write_all(start.as_bytes())?;
        for line in head {
            moto.write_all(line.as_bytes())?;
        }
        moto.write_all(b"connection: close\r\n\r\n")?;
        moto.write_all(&body)?;
        std::io::copy(&mut moto, &mut client)?;
        client.flush()
    }

    /// `(ListObjectsV2 requests, keys fetched with GetObject)` among `requests`.
    fn classify(requests: &[String]) -> (usize, BTreeSet<String>) {
        let mut lists = 0;
        let mut gets = BTreeSet::new();
        for request in requests {
            let mut parts = request.split(' ');
            let (method, target) = (parts.next().unwrap(), parts.next().unwrap());
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            if method == "GET" && query.contains("list-type=2") {
                lists += 1;
            } else if method == "GET" {
                let key = path
                    .strip_prefix(&format!("/{BUCKET}/"))
                    .unwrap_or_else(|| panic!("a GET outside the bucket: {request}"));
                assert!(gets.insert(key.to_owned()), "{key} fetched twice");
            }
        }
        (lists, gets)
    }

    /// The log files below `dir` of the local tree, as keys, in the local walk's order.
    fn local_keys(tree: &Path, dirs: &[String]) -> Vec<String> {
        fn walk(path: &Path, files: &mut Vec<PathBuf>) {
            if path.is_dir() {
                let mut entries: Vec<_> = std::fs::read_dir(path)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect();
                entries.sort();
                for entry in entries {
                    walk(&entry, files);
                }
            } else {
                files.push(path.to_path_buf());
            }
        }
        let mut files = Vec::new();
        for dir in dirs {
            walk(&tree.join(dir), &mut files);
        }
        files
            .iter()
            .map(|f| f.strip_prefix(tree).unwrap().to_string_lossy().into_owned())
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn setup(test: &str) -> Option<Emulator> {
        let tools = Tools::find(test)?;
        corpus_dir()?;
        Some(Emulator::start(test, &tools))
    }

    #[test]
    fn an_s3_scan_prints_exactly_what_a_local_scan_of_the_same_tree_prints() {
        let Some(emulator) = setup("s3-same-as-local") else {
            return;
        };
        let local_root = emulator.local("AWSLogs");
        let everything: BTreeSet<String> =
            local_keys(emulator.tree.path(), &["AWSLogs".to_owned()])
                .into_iter()
                .collect();
        for format in ["json", "text"] {
            let local = scan_local(&["scan", "-j", "2", "--format", format, &local_root]);
            assert_eq!(local.status.code(), Some(0), "{}", text(&local.stderr));
            // 3 accounts x 2 regions x 4 days: a noon alert each, a late one on days 2-4, and one
            // per digest folder.
            assert!(
                summary_line(&local).contains(" 48 alert(s)"),
                "{}",
                summary_line(&local)
            );
            for concurrency in ["1", "64"] {
                let url = format!("s3://{BUCKET}/AWSLogs");
                let args = [
                    "scan",
                    "-j",
                    "2",
                    "--format",
                    format,
                    "--s3-concurrency",
                    concurrency,
                    &url,
                ];
                let remote = emulator.scan(&args);
                assert_eq!(remote.status.code(), Some(0), "{}", text(&remote.stderr));
                assert!(
                    remote.stdout == local.stdout,
                    "{format}, {concurrency} in flight: stdout differs from the local scan's"
                );
                assert_eq!(remote.stderr, local.stderr, "{format}, {concurrency}");
                // Every object was read once, digests included, as the local walk reads every
                // file.
                let (_, gets) = classify(&emulator.proxy.take_requests());
                assert_eq!(gets, everything);
            }
        }
    }

    #[test]
    fn filters_fetch_only_the_objects_they_select_and_print_what_a_local_scan_of_them_prints() {
        let Some(emulator) = setup("s3-filters") else {
            return;
        };
        let tree = emulator.tree.path();
        let [first, second] = ORG_ACCOUNTS;
        let days = |account: &str, region: &str, days: &[&str]| -> Vec<String> {
            days.iter()
                .map(|d| {
                    format!(
                        "{}/CloudTrail/{region}/{}",
                        account_dir(account),
                        d.replace('-', "/")
                    )
                })
                .collect()
        };
        struct Case {
            url: String,
            args: Vec<String>,
            /// The local folders holding exactly the objects to fetch, in scan order.
            folders: Vec<String>,
            lists: usize,
        }
        let cases = [
            // Everything fixed: one listing, from the --since day to the day after --until.
            Case {
                url: format!("s3://{BUCKET}/AWSLogs/{ORG}/"),
                args: strings(&[
                    "--accounts",
                    second,
                    "--regions",
                    "us-east-1",
                    "--since",
                    "2024-06-02",
                    "--until",
                    "2024-06-02",
                ]),
                folders: days(second, "us-east-1", &["2024-06-02", "2024-06-03"]),
                lists: 1,
            },
            // Bucket root, only a window: AWSLogs/, the organisation folder and each account's
            // regions are discovered (1 + 1 + 3 listings), then one listing per region (6).
            Case {
                url: format!("s3://{BUCKET}"),
                args: strings(&["--since", "2024-06-04T00:00:00Z"]),
                folders: [first, second, SOLO_ACCOUNT]
                    .iter()
                    .flat_map(|a| {
                        REGIONS
                            .iter()
                            .flat_map(move |r| days(a, r, &["2024-06-04"]))
                    })
                    .collect(),
                lists: 11,
            },
            // Accounts given at the root: AWSLogs/ is listed to find the organisation folder, and
            // each given account's regions are looked for both there and directly under AWSLogs/
            // (where it is), 1 + 3 listings, then one listing per region found (4).
            Case {
                url: format!("s3://{BUCKET}/"),
                args: strings(&[
                    "--accounts",
                    &format!("{first},{SOLO_ACCOUNT}"),
                    "--until",
                    "2024-06-01T06:00:00Z",
                ]),
                folders: [first, SOLO_ACCOUNT]
                    .iter()
                    .flat_map(|a| {
                        REGIONS
                            .iter()
                            .flat_map(move |r| days(a, r, &["2024-06-01", "2024-06-02"]))
                    })
                    .collect(),
                lists: 1 + 3 + 4,
            },
            // A prefix below the region: listed as it is, the window still applies.
            Case {
                url: format!(
                    "s3://{BUCKET}/{}/CloudTrail/eu-west-1/2024/06/",
                    account_dir(first)
                ),
                args: strings(&["--since", "2024-06-03", "--regions", "eu-west-1"]),
                folders: days(first, "eu-west-1", &["2024-06-03", "2024-06-04"]),
                lists: 1,
            },
        ];
        for case in &cases {
            let mut folders = case.folders.clone();
            folders.sort_by(|a, b| a.split('/').cmp(b.split('/')));
            let mut args = vec!["scan", "-j", "2"];
            args.extend(case.args.iter().map(String::as_str));
            let mut remote_args = args.clone();
            remote_args.push(&case.url);
            emulator.proxy.take_requests();
            let remote = emulator.scan(&remote_args);
            assert_eq!(remote.status.code(), Some(0), "{}", text(&remote.stderr));
            let requests = emulator.proxy.take_requests();
            let (lists, gets) = classify(&requests);
            let expected: BTreeSet<String> = local_keys(tree, &folders).into_iter().collect();
            assert_eq!(gets, expected, "{} {:?}", case.url, case.args);
            assert_eq!(
                lists, case.lists,
                "ListObjectsV2 requests: {} {:?}: {requests:#?}",
                case.url, case.args
            );

            // The same files scanned locally, with the same window (--accounts and --regions are
            // S3 key filters only).
            let mut local_args: Vec<String> = Vec::new();
            let mut flags = case.args.iter();
            while let Some(flag) = flags.next() {
                let value = flags.next().unwrap();
                if matches!(flag.as_str(), "--since" | "--until") {
                    local_args.extend([flag.clone(), value.clone()]);
                }
            }
            let local_paths: Vec<String> = folders
                .iter()
                .map(|f| tree.join(f).to_string_lossy().into_owned())
                .collect();
            let mut all: Vec<&str> = vec!["scan", "-j", "2"];
            all.extend(local_args.iter().map(String::as_str));
            all.extend(local_paths.iter().map(String::as_str));
            let local = scan_local(&all);
            assert!(
                remote.stdout == local.stdout,
                "{} {:?}: stdout differs",
                case.url,
                case.args
            );
            assert_eq!(text(&remote.stderr), text(&local.stderr), "{}", case.url);
        }
        // The late delivery: the alert of 2024-06-02 23:58 is in the 06-03 folder, and is found.
        let first_case = emulator.scan(&{
            let mut args = vec!["scan"];
            args.extend(cases[0].args.iter().map(String::as_str));
            args.push(&cases[0].url);
            args
        });
        let out = text(&first_case.stdout);
        assert!(out.contains("2024-06-02T12:00:00Z"), "{out}");
        assert!(out.contains("2024-06-02T23:58:00Z"), "{out}");
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(
            summary_line(&first_case).ends_with(", 2 outside the time window"),
            "{}",
            summary_line(&first_case)
        );
    }

    #[test]
    fn an_unreadable_object_is_reported_and_everything_else_is_scanned() {
        let Some(emulator) = setup("s3-unreadable") else {
            return;
        };
        let region_dir = format!("{}/CloudTrail/us-east-1", account_dir(SOLO_ACCOUNT));
        let corrupt = format!("{region_dir}/2024/06/02/0-corrupt.json.gz");
        let mut bytes = gzip(br#"{"Records": []}"#);
        bytes.truncate(bytes.len() / 2);
        let file = emulator.tree.path().join("corrupt.gz");
        std::fs::write(&file, &bytes).unwrap();
        let mut put = Command::new(repo_dir().join(".venv/bin/python3"));
        put.arg(repo_dir().join("scripts/s3-tree.py"))
            .args(["put", "--endpoint", &emulator.proxy.endpoint()])
            .args(["--bucket", BUCKET, "--key", &corrupt])
            .arg(&file)
            .envs(dummy_aws_env());
        let put = run_with_timeout("put", put, Duration::from_secs(60));
        assert!(put.status.success(), "{}", text(&put.stderr));
        let refused_keys = local_keys(emulator.tree.path(), &[format!("{region_dir}/2024/06/03")]);
        let refused = refused_keys[0].clone();
        emulator
            .proxy
            .refuse
            .lock()
            .unwrap()
            .push(format!("GET /{BUCKET}/{refused}"));

        let remote = emulator.scan(&["scan", &format!("s3://{BUCKET}/{region_dir}/")]);
        assert_eq!(remote.status.code(), Some(1), "{}", text(&remote.stderr));
        let err = text(&remote.stderr);
        let corrupt_line = format!("s3://{BUCKET}/{corrupt}: gzip stream is corrupt or truncated");
        assert!(err.lines().any(|l| l.starts_with(&corrupt_line)), "{err}");
        let refused_line = format!("s3://{BUCKET}/{refused}: GetObject failed: AccessDenied");
        assert!(err.lines().any(|l| l.starts_with(&refused_line)), "{err}");

        // Everything else: what a local scan of the other files prints.
        let others: Vec<String> =
            local_keys(emulator.tree.path(), std::slice::from_ref(&region_dir))
                .into_iter()
                .filter(|k| *k != refused)
                .map(|k| emulator.local(&k))
                .collect();
        let mut args = vec!["scan"];
        args.extend(others.iter().map(String::as_str));
        let local = scan_local(&args);
        assert!(
            remote.stdout == local.stdout,
            "stdout differs:\n{}",
            text(&remote.stdout)
        );
        let (local_summary, remote_summary) = (summary_line(&local), summary_line(&remote));
        assert_eq!(
            remote_summary,
            local_summary
                .replace(
                    &format!("scanned {} input(s)", others.len()),
                    &format!("scanned {} input(s)", others.len() + 2)
                )
                .replace("0 error(s)", "2 error(s)"),
        );

        // A policy that allows s3:ListBucket only under the log prefixes refuses HeadBucket: the
        // scan goes on with the listings, and an object it may not read is still one error line.
        emulator
            .proxy
            .refuse
            .lock()
            .unwrap()
            .push(format!("HEAD /{BUCKET}/"));
        let again = emulator.scan(&["scan", &format!("s3://{BUCKET}/{region_dir}/")]);
        let requests = emulator.proxy.take_requests();
        assert!(
            requests.iter().any(|r| r.starts_with("HEAD ")),
            "{requests:?}"
        );
        assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
        assert!(again.stdout == local.stdout);
        assert_eq!(summary_line(&again), remote_summary);
    }

    #[test]
    fn missing_credentials_or_bucket_is_one_clear_error() {
        let Some(tools) = Tools::find("s3-errors") else {
            return;
        };
        let port = free_port();
        let mut command = Command::new(&tools.moto_server);
        command.args(["-p", &port.to_string()]);
        let mut moto = Guarded::spawn("s3-errors-moto", command);
        wait_for_port(&mut moto, port, Duration::from_secs(60));
        let endpoint = format!("http://127.0.0.1:{port}");

        let mut no_login = Command::new(env!("CARGO_BIN_EXE_lambda-code-watch"));
        no_login
            .args(["scan", "s3://any-bucket/AWSLogs/"])
            .envs(dummy_aws_env())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env("AWS_ENDPOINT_URL", &endpoint);
        let output = run_with_timeout(
            "scan without credentials",
            no_login,
            Duration::from_secs(60),
        );
        assert_eq!(output.status.code(), Some(1));
        assert!(output.stdout.is_empty());
        let err = text(&output.stderr);
        assert!(
            err.starts_with("lambda-code-watch: no AWS credentials for S3"),
            "{err}"
        );
        assert!(err.contains("aws sso login"), "{err}");
        assert!(!err.contains("scanned "), "{err}");

        let mut no_bucket = Command::new(env!("CARGO_BIN_EXE_lambda-code-watch"));
        no_bucket
            .args(["scan", "s3://no-such-bucket/AWSLogs/"])
            .envs(dummy_aws_env())
            .env("AWS_ENDPOINT_URL", &endpoint);
        let output = run_with_timeout(
            "scan of a missing bucket",
            no_bucket,
            Duration::from_secs(60),
        );
        assert_eq!(output.status.code(), Some(1));
        let err = text(&output.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("lambda-code-watch: s3://no-such-bucket: no such bucket: NotFound"),
            "{err}"
        );
    }
}

/// A build without the `s3` feature refuses `s3://` and says how to get it.
#[cfg(not(feature = "s3"))]
#[test]
fn without_the_s3_feature_an_s3_input_says_how_to_build_it() {
    let output = common::cli(&["scan", "s3://bucket/AWSLogs/"], b"");
    assert_eq!(output.status.code(), Some(2));
    let err = common::stderr(&output);
    assert!(
        err.contains("cargo install --path . --features s3"),
        "{err}"
    );
    assert!(output.stdout.is_empty());
}

/// For local files too, `--since/--until` show only the alerts whose `eventTime` is inside (bounds
/// included), count the others, and keep an alert whose time cannot be read.
#[test]
fn the_time_window_hides_alerts_outside_it_in_local_files_too() {
    let alert = |time: Option<&str>| {
        let mut value: serde_json::Value = serde_json::from_slice(
            &std::fs::read(common::repo_dir().join("events/alert/iam-user.json")).unwrap(),
        )
        .unwrap();
        match time {
            Some(time) => value["eventTime"] = time.into(),
            None => value["eventTime"] = "not a time".into(),
        }
        value.to_string()
    };
    let input = [
        alert(Some("2024-06-01T23:59:59Z")),
        alert(Some("2024-06-02T00:00:00Z")),
        alert(None),
        alert(Some("2024-06-02T10:00:00Z")),
        alert(Some("2024-06-02T10:00:01Z")),
    ]
    .join("\n");
    let output = common::cli(
        &[
            "scan",
            "--since",
            "2024-06-02",
            "--until",
            "2024-06-02T12:00:00+02:00",
        ],
        input.as_bytes(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    let times: Vec<String> = common::stdout_lines(&output)
        .iter()
        .map(|a| a["event_time"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        times,
        ["2024-06-02T00:00:00Z", "not a time", "2024-06-02T10:00:00Z"]
    );
    let err = common::stderr(&output);
    assert!(
        err.trim_end().ends_with(", 2 outside the time window"),
        "{err}"
    );
    let bad = common::cli(&["scan", "--since", "2024-06-02T12:00"], b"");
    assert_eq!(bad.status.code(), Some(2));
    assert!(common::stderr(&bad).contains("RFC 3339"));
}
