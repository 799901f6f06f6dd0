//! CloudTrail log objects straight from S3 as scan inputs (`scan s3://BUCKET/PREFIX`, cargo feature
//! `s3`): listing, many downloads in flight, and the progress bar.
//!
//! Listing follows the trail's key layout, `[PREFIX/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/
//! YYYY/MM/DD/FILE`, so a hunt reads only what its filters can match: accounts and regions that are
//! given are used as they are, the others are found with delimiter listings (one request per level),
//! and a time window becomes, per region, a listing that starts after the `--since` day and stops at
//! the first key past the `--until` day plus a day of delivery delay ([`TimeWindow::key_days`]).
//! Without filters a prefix is read like a local directory: every object below it.
//!
//! Objects are handed to `scan` as [`Input::Stream`]s in the order a local scan of the same tree
//! would read them (key components compared one by one, as the directory walk sorts names), so the
//! output is the same bytes. Up to `concurrency` objects are downloaded ahead of the scan workers, in
//! that order, each into memory as it arrives (CloudTrail files are small: KBs to a few MB), and
//! decoded as a stream from the first chunk on; no temporary files. A slot is freed when the scan is
//! done with its object, so memory stays bounded by `concurrency` objects however far the network
//! runs ahead.
//!
//! Credentials, region and endpoint come from the SDK's standard chain (environment, profiles, SSO,
//! `credential_process`, container and instance roles). The bucket's own region is found with
//! HeadBucket, so an organisation trail bucket in another region needs no setting.
//!
//! This module does not decode records or decide anything: the objects' bytes go to `scan`, which
//! applies the detector, the time window on `eventTime` and every other scan setting.

use crate::scan::{Input, Stream, Summary};
use crate::window::TimeWindow;
use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{ProvideCredentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::civil::Date;
use std::fmt;
use std::io::{self, IsTerminal, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Objects downloaded ahead of the scan by default. Measured by `scripts/bench-s3` (README,
/// Performance): throughput stops growing between 16 and 32 objects in flight.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// `s3://BUCKET/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl S3Url {
    /// Whether `text` is meant as an S3 location (it may still be invalid).
    pub fn is_s3(text: &str) -> bool {
        text.starts_with("s3://")
    }

    pub fn parse(text: &str) -> Result<S3Url, S3Error> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| S3Error(format!("{text}: not an s3:// location")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(S3Error(format!(
                "{text}: no bucket name (expected s3://BUCKET/PREFIX)"
            )));
        }
        Ok(S3Url {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// What part of a trail to read. Empty `accounts`/`regions` mean all of them; an unbounded window
/// and no accounts or regions mean "every object under the prefix".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub window: TimeWindow,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
}

impl Selection {
    fn follows_layout(&self) -> bool {
        !self.window.is_unbounded() || !self.accounts.is_empty() || !self.regions.is_empty()
    }
}

/// Why S3 cannot be read at all (credentials, bucket, listing): one line for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error(String);

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for S3Error {}

/// One object to scan.
#[derive(Debug, Clone)]
pub struct Object {
    client: Client,
    pub bucket: String,
    pub key: String,
    pub size: u64,
}

impl Object {
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// The SDK, its runtime and the download settings for one `scan`.
pub struct S3 {
    /// Always `Some` until dropped (taken to shut it down without waiting).
    runtime: Option<tokio::runtime::Runtime>,
    config: aws_config::SdkConfig,
    concurrency: usize,
}

impl S3 {
    /// Loads the SDK configuration and checks that there are credentials, so a missing login is
    /// one clear error before anything is listed.
    pub fn connect(concurrency: usize) -> Result<S3, S3Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            // Downloads wait on the network; the cores belong to the scan workers that decode.
            .worker_threads(2)
            .thread_name("s3")
            .enable_all()
            .build()
            .map_err(|e| S3Error(format!("cannot start the S3 runtime: {e}")))?;
        let config = runtime.block_on(load_sdk_config());
        let no_credentials = |why: String| {
            S3Error(format!(
                "no AWS credentials for S3 ({why}): set AWS_PROFILE (for an IAM Identity Center \
                 profile, run `aws sso login --profile NAME` first), or AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY"
            ))
        };
        let provider = config
            .credentials_provider()
            .ok_or_else(|| no_credentials("no credential provider".to_owned()))?;
        runtime
            .block_on(provider.provide_credentials())
            .map_err(|e| no_credentials(error_chain(&e)))?;
        Ok(S3 {
            runtime: Some(runtime),
            config,
            concurrency: concurrency.max(1),
        })
    }

    /// The objects to scan under `url`, in local-scan order, with their sizes.
    pub fn list(&self, url: &S3Url, selection: &Selection) -> Result<Vec<Object>, S3Error> {
        self.runtime().block_on(async {
            let client = self.bucket_client(&url.bucket).await?;
            let lister = Lister {
                client: client.clone(),
                bucket: url.bucket.clone(),
                concurrency: self.concurrency,
            };
            let mut keys = if selection.follows_layout() {
                lister.layout_keys(&url.prefix, selection).await?
            } else {
                lister.all_keys(&url.prefix).await?
            };
            keys.sort_by(|(a, _), (b, _)| a.split('/').cmp(b.split('/')));
            keys.dedup_by(|(a, _), (b, _)| a == b);
            Ok(keys
                .into_iter()
                .map(|(key, size)| Object {
                    client: client.clone(),
                    bucket: url.bucket.clone(),
                    key,
                    size,
                })
                .collect())
        })
    }

    /// One scan input per object, in the same order. Downloads start now, up to `concurrency`
    /// ahead of the scan; `progress` is told every byte that arrives.
    pub fn inputs(&self, objects: Vec<Object>, progress: Option<Arc<Progress>>) -> Vec<Input> {
        let window = Arc::new(Semaphore::new(self.concurrency));
        let mut senders = Vec::with_capacity(objects.len());
        let mut inputs = Vec::with_capacity(objects.len());
        for object in &objects {
            let (sender, receiver) = mpsc::channel();
            senders.push(sender);
            let receiver = Mutex::new(Some(receiver));
            let window = window.clone();
            inputs.push(Input::Stream(Stream::new(object.url(), move || {
                let receiver = receiver
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .ok_or_else(|| io::Error::other("object already read"))?;
                Ok(Box::new(ObjectReader {
                    receiver,
                    chunk: Bytes::new(),
                    ended: false,
                    window: window.clone(),
                }) as Box<dyn Read + Send>)
            })));
        }
        self.runtime().spawn(async move {
            for (object, sender) in objects.into_iter().zip(senders) {
                // The permit comes back when the scan drops the object's reader.
                let Ok(permit) = window.clone().acquire_owned().await else {
                    return;
                };
                permit.forget();
                tokio::spawn(download(object, sender, progress.clone()));
            }
        });
        inputs
    }

    /// A client for `bucket`'s region: the configured one when it is right, else the one S3 names
    /// (HeadBucket answers with the region, also when it refuses). A refusal is not the end: a
    /// policy that allows s3:ListBucket only under some prefixes (as it should) refuses
    /// HeadBucket, and the listings then say what is allowed.
    async fn bucket_client(&self, bucket: &str) -> Result<Client, S3Error> {
        let configured = self.config.region().map(|r| r.as_ref().to_owned());
        let client = self.client_in(configured.as_deref());
        let region = match client.head_bucket().bucket(bucket).send().await {
            Ok(head) => head.bucket_region().map(str::to_owned),
            Err(e) => {
                let response = e.raw_response();
                let region = response
                    .and_then(|r| r.headers().get("x-amz-bucket-region"))
                    .map(str::to_owned);
                // 301: another region (named in the header); 403: not allowed to ask.
                match response.map(|r| r.status().as_u16()) {
                    Some(301 | 403) => region,
                    _ => return Err(bucket_error(bucket, &e)),
                }
            }
        };
        match region {
            Some(region) if Some(&region) != configured.as_ref() => {
                Ok(self.client_in(Some(&region)))
            }
            _ => Ok(client),
        }
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    fn client_in(&self, region: Option<&str>) -> Client {
        let mut builder = aws_sdk_s3::config::Builder::from(&self.config)
            .region(Region::new(region.unwrap_or("us-east-1").to_owned()));
        // S3-compatible endpoints (MinIO, moto, LocalStack) serve buckets by path, not by name.
        if self.config.endpoint_url().is_some() {
            builder = builder.force_path_style(true);
        }
        Client::from_conf(builder.build())
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        // A scan that stopped early (output closed) leaves downloads waiting for a slot.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn load_sdk_config() -> aws_config::SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}

fn bucket_error<E>(bucket: &str, e: &SdkError<E, HttpResponse>) -> S3Error
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let hint = match e.code() {
        Some("NotFound" | "NoSuchBucket") => ": no such bucket",
        _ => "",
    };
    S3Error(format!("s3://{bucket}{hint}: {}", sdk_error(e)))
}

/// An SDK error in one line: what S3 answered (code, message, HTTP status) when it answered, else
/// the whole chain of causes (connection refused, timeout, DNS...).
fn sdk_error<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    if let SdkError::ServiceError(service) = e {
        let code = service.err().code().unwrap_or("error");
        let status = service.raw().status().as_u16();
        return match service.err().message() {
            Some(message) => format!("{code}: {message} (HTTP {status})"),
            None => format!("{code} (HTTP {status})"),
        };
    }
    DisplayErrorContext(e).to_string()
}

/// An error and its sources, joined by ": " (the causes, without the debug dump).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Lists one bucket.
struct Lister {
    client: Client,
    bucket: String,
    concurrency: usize,
}

/// Where a prefix points in the CloudTrail layout, and what it fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    /// `.../AWSLogs/`.
    logs_root: String,
    org: Option<String>,
    account: Option<String>,
    region: Option<String>,
    /// The prefix goes below the region (into the date folders): list exactly it.
    below_region: bool,
}

impl Layout {
    fn parse(prefix: &str) -> Result<Layout, String> {
        let trimmed = prefix.trim_end_matches('/');
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        let Some(logs) = parts.iter().rposition(|p| *p == "AWSLogs") else {
            // A trail's own key prefix (or the bucket root): its logs are under AWSLogs/.
            let base = if trimmed.is_empty() {
                String::new()
            } else {
                format!("{trimmed}/")
            };
            return Ok(Layout {
                logs_root: format!("{base}AWSLogs/"),
                org: None,
                account: None,
                region: None,
                below_region: false,
            });
        };
        let mut rest = parts[logs + 1..].iter().copied().peekable();
        let org = rest.next_if(|p| p.starts_with("o-")).map(str::to_owned);
        let account = rest.next().map(str::to_owned);
        match rest.next() {
            None | Some("CloudTrail") => {}
            Some(other) => {
                return Err(format!(
                    "{other:?} where the CloudTrail layout has \"CloudTrail\" \
                     (AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/)"
                ));
            }
        }
        let region = rest.next().map(str::to_owned);
        Ok(Layout {
            logs_root: format!("{}/", parts[..=logs].join("/")),
            org,
            account,
            region,
            below_region: rest.next().is_some(),
        })
    }
}

/// A region folder to list (`.../CloudTrail/REGION/`), and the prefix to list within it.
struct RegionListing {
    region_dir: String,
    list_prefix: String,
}

impl Lister {
    /// Every object under `prefix`, like a local directory walk (or the one object named `prefix`).
    async fn all_keys(&self, prefix: &str) -> Result<Vec<(String, u64)>, S3Error> {
        let keys = self.keys(prefix, None, None, "").await?;
        let dir = format!("{}/", prefix.trim_end_matches('/'));
        Ok(keys
            .into_iter()
            .filter(|(key, _)| {
                prefix.is_empty() || prefix.ends_with('/') || key == prefix || key.starts_with(&dir)
            })
            .collect())
    }

    /// The objects the selection can match, found through the key layout.
    async fn layout_keys(
        &self,
        prefix: &str,
        selection: &Selection,
    ) -> Result<Vec<(String, u64)>, S3Error> {
        let layout = Layout::parse(prefix)
            .map_err(|e| S3Error(format!("s3://{}/{prefix}: {e}", self.bucket)))?;
        let outside = |what: &str, value: &str, flag: &str| {
            S3Error(format!(
                "s3://{}/{prefix}: the prefix is {what} {value}, which {flag} leaves out",
                self.bucket
            ))
        };
        if let Some(account) = &layout.account
            && !selection.accounts.is_empty()
            && !selection.accounts.contains(account)
        {
            return Err(outside("account", account, "--accounts"));
        }
        if let Some(region) = &layout.region
            && !selection.regions.is_empty()
            && !selection.regions.contains(region)
        {
            return Err(outside("region", region, "--regions"));
        }

        let account_dirs = self.account_dirs(&layout, &selection.accounts).await?;
        let region_dirs: Vec<String> = match &layout.region {
            Some(region) => account_dirs
                .iter()
                .map(|dir| format!("{dir}CloudTrail/{region}/"))
                .collect(),
            None if !selection.regions.is_empty() => account_dirs
                .iter()
                .flat_map(|dir| {
                    selection
                        .regions
                        .iter()
                        .map(move |region| format!("{dir}CloudTrail/{region}/"))
                })
                .collect(),
            None => {
                let found = self
                    .each_limited(account_dirs, |lister, dir| async move {
                        lister.common_prefixes(&format!("{dir}CloudTrail/")).await
                    })
                    .await?;
                found.into_iter().flatten().collect()
            }
        };
        let listings: Vec<RegionListing> = region_dirs
            .into_iter()
            .map(|region_dir| RegionListing {
                list_prefix: if layout.below_region {
                    prefix.to_owned()
                } else {
                    region_dir.clone()
                },
                region_dir,
            })
            .collect();
        let (first_day, last_day) = selection.window.key_days();
        let found = self
            .each_limited(listings, move |lister, listing| async move {
                let start_after =
                    first_day.map(|day| format!("{}{}", listing.region_dir, key_day(day)));
                lister
                    .keys(
                        &listing.list_prefix,
                        start_after,
                        last_day,
                        &listing.region_dir,
                    )
                    .await
            })
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// The `.../ACCOUNT/` folders to read: given ones as they are, the others listed.
    async fn account_dirs(
        &self,
        layout: &Layout,
        accounts: &[String],
    ) -> Result<Vec<String>, S3Error> {
        let root = &layout.logs_root;
        let base = match &layout.org {
            Some(org) => format!("{root}{org}/"),
            None => root.clone(),
        };
        if let Some(account) = &layout.account {
            return Ok(vec![format!("{base}{account}/")]);
        }
        let under =
            |dir: &str| -> Vec<String> { accounts.iter().map(|a| format!("{dir}{a}/")).collect() };
        if layout.org.is_some() {
            return if accounts.is_empty() {
                self.common_prefixes(&base).await
            } else {
                Ok(under(&base))
            };
        }
        // Under AWSLogs/: accounts of single-account trails, and o-ORGID/ folders of organisation
        // trails (whose accounts are one level further down).
        let mut dirs = Vec::new();
        let mut orgs = Vec::new();
        for dir in self.common_prefixes(root).await? {
            let name = dir[root.len()..].trim_end_matches('/');
            if name.starts_with("o-") {
                orgs.push(dir);
            } else if accounts.is_empty() || accounts.iter().any(|a| a == name) {
                dirs.push(dir);
            }
        }
        if accounts.is_empty() {
            let found = self
                .each_limited(orgs, |lister, org| async move {
                    lister.common_prefixes(&org).await
                })
                .await?;
            dirs.extend(found.into_iter().flatten());
        } else {
            for org in orgs {
                dirs.extend(under(&org));
            }
        }
        Ok(dirs)
    }

    /// The folders one level below `prefix` (a delimiter listing), as full prefixes.
    async fn common_prefixes(&self, prefix: &str) -> Result<Vec<String>, S3Error> {
        let mut found = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.list_error(prefix, &e))?;
            found.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned)),
            );
        }
        Ok(found)
    }

    /// The objects under `prefix` (after `start_after`), with their sizes; with `last_day`, the
    /// listing stops at the first key whose day folder below `region_dir` is later. Folder markers
    /// (keys ending in '/') are not objects to read.
    async fn keys(
        &self,
        prefix: &str,
        start_after: Option<String>,
        last_day: Option<Date>,
        region_dir: &str,
    ) -> Result<Vec<(String, u64)>, S3Error> {
        let mut found = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(start_after)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.list_error(prefix, &e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                if let Some(last) = last_day
                    && parse_key_day(key, region_dir).is_some_and(|day| day > last)
                {
                    return Ok(found);
                }
                if !key.ends_with('/') {
                    let size = object.size().map_or(0, |s| u64::try_from(s).unwrap_or(0));
                    found.push((key.to_owned(), size));
                }
            }
        }
        Ok(found)
    }

    fn list_error<E>(&self, prefix: &str, e: &SdkError<E, HttpResponse>) -> S3Error
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
    {
        let hint = match e.code() {
            Some("AccessDenied") => " (scanning needs s3:ListBucket for this prefix)",
            _ => "",
        };
        S3Error(format!(
            "s3://{}/{prefix}: cannot list: {}{hint}",
            self.bucket,
            sdk_error(e)
        ))
    }

    /// Runs `each` on every item, at most `concurrency` at once; results in the items' order.
    async fn each_limited<T, U, F, Fut>(&self, items: Vec<T>, each: F) -> Result<Vec<U>, S3Error>
    where
        T: Send + 'static,
        U: Send + 'static,
        F: Fn(Arc<Lister>, T) -> Fut,
        Fut: Future<Output = Result<U, S3Error>> + Send + 'static,
    {
        let lister = Arc::new(Lister {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            concurrency: self.concurrency,
        });
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut tasks = Vec::with_capacity(items.len());
        for item in items {
            let task = each(lister.clone(), item);
            let slots = slots.clone();
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire_owned().await;
                task.await
            }));
        }
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            let result = task
                .await
                .map_err(|e| S3Error(format!("a listing task failed: {e}")))?;
            results.push(result?);
        }
        Ok(results)
    }
}

/// `YYYY/MM/DD`, as in the key layout.
fn key_day(day: Date) -> String {
    format!("{:04}/{:02}/{:02}", day.year(), day.month(), day.day())
}

/// The day folder of `key` below `region_dir`, when it has one.
fn parse_key_day(key: &str, region_dir: &str) -> Option<Date> {
    let rest = key.strip_prefix(region_dir)?;
    let folder = rest.get(..10)?;
    let bytes = folder.as_bytes();
    if bytes[4] != b'/' || bytes[7] != b'/' || rest.as_bytes().get(10).is_some_and(|b| *b != b'/') {
        return None;
    }
    folder.replace('/', "-").parse().ok()
}

/// One message from a download to the object's reader.
enum Chunk {
    Data(Bytes),
    End,
    Failed(io::Error),
}

async fn download(object: Object, sender: mpsc::Sender<Chunk>, progress: Option<Arc<Progress>>) {
    let response = object
        .client
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .send()
        .await;
    let mut body = match response {
        Ok(response) => response.body,
        Err(e) => {
            let _ = sender.send(Chunk::Failed(io::Error::other(object_error(&e))));
            return;
        }
    };
    loop {
        match body.next().await {
            Some(Ok(bytes)) => {
                if let Some(progress) = &progress {
                    progress.downloaded(bytes.len() as u64);
                }
                if sender.send(Chunk::Data(bytes)).is_err() {
                    return;
                }
            }
            Some(Err(e)) => {
                let reason = format!("download interrupted: {}", DisplayErrorContext(&e));
                let _ = sender.send(Chunk::Failed(io::Error::other(reason)));
                return;
            }
            None => {
                let _ = sender.send(Chunk::End);
                return;
            }
        }
    }
}

/// A failed GetObject in a few words.
fn object_error<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    format!("GetObject failed: {}", sdk_error(e))
}

/// The bytes of one object, as they arrive.
struct ObjectReader {
    receiver: mpsc::Receiver<Chunk>,
    chunk: Bytes,
    ended: bool,
    /// Given a slot back when the scan is done with this object.
    window: Arc<Semaphore>,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.receiver.recv() {
                Ok(Chunk::Data(bytes)) => self.chunk = bytes,
                Ok(Chunk::End) => self.ended = true,
                Ok(Chunk::Failed(e)) => return Err(e),
                Err(mpsc::RecvError) => {
                    return Err(io::Error::other("download stopped before the end"));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        self.window.add_permits(1);
    }
}

/// The progress bar of an S3 scan on a terminal: inputs, bytes downloaded, alerts, throughput, ETA.
pub struct Progress {
    bar: ProgressBar,
    inputs_total: u64,
    inputs_done: AtomicU64,
    alerts: AtomicU64,
}

impl Progress {
    /// A bar on stderr, or `None` when stderr is not a terminal (nothing extra in logs or pipes).
    pub fn on_terminal(inputs_total: u64, bytes_total: u64) -> Option<Arc<Progress>> {
        if !io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(bytes_total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {binary_bytes}/{binary_total_bytes} \
                 {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        let progress = Progress {
            bar,
            inputs_total,
            inputs_done: AtomicU64::new(0),
            alerts: AtomicU64::new(0),
        };
        progress.show_counts();
        Some(Arc::new(progress))
    }

    pub fn downloaded(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// For [`crate::scan::InputHook`].
    pub fn input_done(&self, summary: &Summary) {
        self.inputs_done.fetch_add(1, Ordering::Relaxed);
        self.alerts.fetch_add(summary.alerts, Ordering::Relaxed);
        self.show_counts();
    }

    fn show_counts(&self) {
        self.bar.set_message(format!(
            "{}/{} objects, {} alert(s)",
            self.inputs_done.load(Ordering::Relaxed),
            self.inputs_total,
            self.alerts.load(Ordering::Relaxed)
        ));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// A writer to stdout or stderr that takes the bar away while a whole line is printed.
    pub fn writer(self: &Arc<Progress>, target: Target) -> LineWriter {
        LineWriter {
            progress: self.clone(),
            target,
            pending: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Stdout,
    Stderr,
}

/// Writes complete lines around the progress bar (a partial line waits for its end or a flush).
pub struct LineWriter {
    progress: Arc<Progress>,
    target: Target,
    pending: Vec<u8>,
}

impl LineWriter {
    fn write_through(&mut self, upto: usize) -> io::Result<()> {
        let lines: Vec<u8> = self.pending.drain(..upto).collect();
        let target = self.target;
        self.progress.bar.suspend(|| match target {
            Target::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&lines).and_then(|()| out.flush())
            }
            Target::Stderr => io::stderr().lock().write_all(&lines),
        })
    }
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last) = memchr::memrchr(b'\n', &self.pending) {
            self.write_through(last + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let all = self.pending.len();
        self.write_through(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_bucket_and_prefix() {
        let url = S3Url::parse("s3://trail-bucket/AWSLogs/o-abc123/").unwrap();
        assert_eq!(url.bucket, "trail-bucket");
        assert_eq!(url.prefix, "AWSLogs/o-abc123/");
        assert_eq!(S3Url::parse("s3://b").unwrap().prefix, "");
        assert!(S3Url::parse("s3:///key").is_err());
        assert!(S3Url::parse("/tmp/x").is_err());
    }

    #[test]
    fn prefixes_are_placed_in_the_cloudtrail_layout() {
        let layout = Layout::parse("").unwrap();
        assert_eq!(layout.logs_root, "AWSLogs/");
        assert_eq!(layout.account, None);
        let layout = Layout::parse("my-trail").unwrap();
        assert_eq!(layout.logs_root, "my-trail/AWSLogs/");
        let layout = Layout::parse("AWSLogs/o-abc123/").unwrap();
        assert_eq!(
            (
                layout.logs_root.as_str(),
                layout.org.as_deref(),
                layout.account
            ),
            ("AWSLogs/", Some("o-abc123"), None)
        );
        let layout = Layout::parse("t/AWSLogs/111122223333/CloudTrail/eu-west-1/2024/06").unwrap();
        assert_eq!(layout.logs_root, "t/AWSLogs/");
        assert_eq!(layout.org, None);
        assert_eq!(layout.account.as_deref(), Some("111122223333"));
        assert_eq!(layout.region.as_deref(), Some("eu-west-1"));
        assert!(layout.below_region);
        let e = Layout::parse("AWSLogs/111122223333/CloudTrail-Digest/").unwrap_err();
        assert!(e.contains("CloudTrail-Digest"), "{e}");
    }

    #[test]
    fn key_days_are_read_from_the_folder_below_the_region() {
        let dir = "AWSLogs/1/CloudTrail/us-east-1/";
        let day = |key: &str| parse_key_day(key, dir).map(key_day);
        assert_eq!(
            day("AWSLogs/1/CloudTrail/us-east-1/2024/06/03/f.json.gz").as_deref(),
            Some("2024/06/03")
        );
        assert_eq!(day("AWSLogs/1/CloudTrail/us-east-1/2024/06/031/f"), None);
        assert_eq!(day("AWSLogs/1/CloudTrail/us-east-1/notes.txt"), None);
        assert_eq!(day("AWSLogs/2/CloudTrail/us-east-1/2024/06/03/f"), None);
    }
}
