//! Benchmark corpus generator: expands the CloudTrail records of `../shared/corpus` into a corpus of any
//! size, in the shapes `scan` meets in the field.
//!
//! Every generated record is a corpus record with only its `eventID` (a fresh UUID) and `eventTime`
//! (one second after the previous record) replaced, byte for byte otherwise, so the mix of record shapes,
//! sizes and escapes is the corpus' own. Background records come from `real/` (and, for a small share,
//! from `fixtures/` with their `_panther` key removed, which adds the CI/CD `UpdateFunctionCode` calls the
//! rule must ignore). One record in every `--alert-every` is a copy of a `real/` record that alerts (the
//! Stratus Red Team detonation), planted at a random position in its block, so the number of alerts in
//! each output is known exactly and written to `manifest.json`.
//!
//! The project's own rule sorts the templates (alerting or quiet): this tool does not judge records
//! itself. It does not try to look like one real account's traffic either (accounts and regions inside
//! the records are the corpus'; only the S3 key layout uses a few synthetic ones).
//!
//! Outputs, in `--out DIR`:
//! - `corpus.ndjson`: `--size` bytes of records, one per line;
//! - `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`: the same records as CloudTrail delivers
//!   them to S3, `{"Records":[...]}` on one line, gzip, at most `--file-size` bytes before compression;
//! - `big-records.json`: one single-line `{"Records":[...]}` document of at least `--big-size` bytes;
//! - `sample.ndjson`: the first `--sample-size` bytes of records (for the slow baselines);
//! - `manifest.json`: parameters, and records, bytes and planted alerts of each output.
//!
//! Usage: `cargo run --release --example gen_corpus -- --out DIR [--size 2G] [--big-size 1G]
//! [--sample-size 256M] [--file-size 16M] [--alert-every 100000] [--seed 1] [--corpus DIR]
//! [--gzip-level 6] [--threads N]`

use flate2::Compression;
use flate2::write::GzEncoder;
use lambda_code_watch::Detector;
use memchr::memmem;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Instant;

/// 2024-06-01T00:00:00Z: generated records start here, one second apart.
const START_UNIX: u64 = 1_717_200_000;
/// The S3 layout's synthetic accounts and regions; each record is delivered by one of these trails.
const TRAILS: [(&str, &str); 4] = [
    ("111122223333", "us-east-1"),
    ("111122223333", "eu-west-1"),
    ("444455556666", "us-east-1"),
    ("444455556666", "eu-west-1"),
];

struct Settings {
    out: PathBuf,
    corpus: PathBuf,
    size: u64,
    big_size: u64,
    sample_size: u64,
    file_size: u64,
    alert_every: u64,
    fixture_percent: u64,
    seed: u64,
    gzip_level: u32,
    threads: usize,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gen_corpus: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let settings = parse_args(std::env::args().skip(1))?;
    let started = Instant::now();
    let templates = Templates::load(&settings.corpus)?;
    eprintln!(
        "gen_corpus: {} real and {} fixture background templates, {} alert template(s) from {}",
        templates.real.len(),
        templates.fixtures.len(),
        templates.alerts.len(),
        settings.corpus.display()
    );
    let manifest = generate(&settings, &templates)?;
    let path = settings.out.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    fs::write(&path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!(
        "gen_corpus: wrote {} in {:.1} s",
        settings.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn usage() -> String {
    "usage: gen_corpus --out DIR [--size 2G] [--big-size 1G] [--sample-size 256M] [--file-size 16M] \
     [--alert-every 100000] [--fixture-percent 10] [--seed 1] [--corpus DIR] [--gzip-level 6] [--threads N]"
        .to_owned()
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Settings, String> {
    let default_corpus = std::env::var_os("LCW_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    let mut settings = Settings {
        out: PathBuf::new(),
        corpus: default_corpus,
        size: parse_size("2G")?,
        big_size: parse_size("1G")?,
        sample_size: parse_size("256M")?,
        file_size: parse_size("16M")?,
        alert_every: 100_000,
        fixture_percent: 10,
        seed: 1,
        gzip_level: 6,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(usage());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--out" => settings.out = PathBuf::from(&value),
            "--corpus" => settings.corpus = PathBuf::from(&value),
            "--size" => settings.size = parse_size(&value)?,
            "--big-size" => settings.big_size = parse_size(&value)?,
            "--sample-size" => settings.sample_size = parse_size(&value)?,
            "--file-size" => settings.file_size = parse_size(&value)?,
            "--alert-every" => settings.alert_every = number()?.max(1),
            "--fixture-percent" => settings.fixture_percent = number()?.min(100),
            "--seed" => settings.seed = number()?,
            "--gzip-level" => settings.gzip_level = number()?.min(9) as u32,
            "--threads" => settings.threads = number()?.max(1) as usize,
            _ => return Err(format!("unknown option {flag}\n{}", usage())),
        }
    }
    if settings.out.as_os_str().is_empty() {
        return Err(format!("--out is required\n{}", usage()));
    }
    Ok(settings)
}

/// `2G`, `512M`, `64K`, `1000` (binary multiples).
fn parse_size(text: &str) -> Result<u64, String> {
    let upper = text.trim().to_ascii_uppercase();
    let digits = upper.trim_end_matches(['B', 'I']);
    let (number, shift) = match digits.chars().last() {
        Some('K') => (&digits[..digits.len() - 1], 10),
        Some('M') => (&digits[..digits.len() - 1], 20),
        Some('G') => (&digits[..digits.len() - 1], 30),
        Some('T') => (&digits[..digits.len() - 1], 40),
        _ => (digits, 0),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("not a size: {text:?} (e.g. 2G, 512M, 64K, 1000)"))
}

/// A corpus record ready to be copied with a fresh `eventID` and `eventTime`.
struct Template {
    json: Vec<u8>,
    /// Byte ranges of the two string values to replace, in order of appearance.
    replace: Vec<(usize, usize, Field)>,
}

#[derive(Clone, Copy)]
enum Field {
    EventId,
    EventTime,
}

struct Templates {
    real: Vec<Template>,
    fixtures: Vec<Template>,
    alerts: Vec<Template>,
}

impl Templates {
    fn load(corpus: &Path) -> Result<Templates, String> {
        let mut templates = Templates {
            real: Vec::new(),
            fixtures: Vec::new(),
            alerts: Vec::new(),
        };
        for (dir, is_fixture) in [("real", false), ("fixtures", true)] {
            for path in ndjson_files(&corpus.join(dir))? {
                let text =
                    fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                for (index, line) in text.split(|&b| b == b'\n').enumerate() {
                    let line = line.trim_ascii();
                    if line.is_empty() {
                        continue;
                    }
                    let where_ = || format!("{}:{}", path.display(), index + 1);
                    let json = if is_fixture {
                        without_panther_key(line).ok_or_else(|| {
                            format!("{}: no leading \"_panther\" key to remove", where_())
                        })?
                    } else {
                        line.to_vec()
                    };
                    let outcome = Detector::default()
                        .assess_json(&json)
                        .map_err(|e| format!("{}: {e}", where_()))?;
                    let template = Template::new(json);
                    match (outcome.alert().is_some(), is_fixture) {
                        (true, false) => templates.alerts.push(template),
                        // Panther's positive tests are hand-written, not traffic: never planted.
                        (true, true) => {}
                        (false, false) => templates.real.push(template),
                        (false, true) => templates.fixtures.push(template),
                    }
                }
            }
        }
        if templates.real.is_empty() {
            return Err(format!("no quiet records under {}/real", corpus.display()));
        }
        if templates.alerts.is_empty() {
            return Err(format!(
                "no alerting record under {}/real (expected the Stratus Red Team detonation)",
                corpus.display()
            ));
        }
        Ok(templates)
    }
}

fn ndjson_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        fs::read_dir(dir).map_err(|e| format!("cannot list corpus dir {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|ext| ext == "ndjson") {
            files.push(path);
        }
    }
    // Directory order varies between machines; the corpus must not.
    files.sort();
    Ok(files)
}

/// Fixture lines start with `{"_panther":{...},`; the rest is the record, key order kept.
fn without_panther_key(line: &[u8]) -> Option<Vec<u8>> {
    let rest = line.strip_prefix(b"{\"_panther\":")?;
    let mut values =
        serde_json::Deserializer::from_slice(rest).into_iter::<serde::de::IgnoredAny>();
    values.next()?.ok()?;
    let after = rest[values.byte_offset()..].trim_ascii_start();
    let after = after.strip_prefix(b",").unwrap_or(after);
    let mut json = Vec::with_capacity(line.len());
    json.push(b'{');
    json.extend_from_slice(after);
    Some(json)
}

impl Template {
    fn new(json: Vec<u8>) -> Template {
        let mut replace = Vec::new();
        for (key, field) in [
            (&b"\"eventID\":\""[..], Field::EventId),
            (&b"\"eventTime\":\""[..], Field::EventTime),
        ] {
            // Corpus lines hold each of these keys at most once, and their values have no escapes.
            if let Some(at) = memmem::find(&json, key) {
                let start = at + key.len();
                if let Some(len) = memchr::memchr2(b'"', b'\\', &json[start..])
                    && json[start + len] == b'"'
                {
                    replace.push((start, start + len, field));
                }
            }
        }
        replace.sort_by_key(|&(start, _, _)| start);
        Template { json, replace }
    }

    fn write(&self, out: &mut Vec<u8>, event_id: &[u8; 36], event_time: &[u8; 20]) {
        let mut from = 0;
        for &(start, end, field) in &self.replace {
            out.extend_from_slice(&self.json[from..start]);
            out.extend_from_slice(match field {
                Field::EventId => &event_id[..],
                Field::EventTime => &event_time[..],
            });
            from = end;
        }
        out.extend_from_slice(&self.json[from..]);
    }
}

/// SplitMix64: tiny, fast, and reproducible from `--seed` on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    fn uuid(&mut self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bits = (u128::from(self.next()) << 64) | u128::from(self.next());
        // Version 4, variant 10xx, as CloudTrail's own event ids.
        let bits =
            (bits & !(0xf_u128 << 76) | (0x4_u128 << 76)) & !(0x3_u128 << 62) | (0x2_u128 << 62);
        let mut out = [b'-'; 36];
        let mut nibble = 32;
        for (i, slot) in out.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            nibble -= 1;
            *slot = HEX[((bits >> (nibble * 4)) & 0xf) as usize];
        }
        out
    }
    fn alphanumeric(&mut self) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..16)
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize] as char)
            .collect()
    }
}

/// A UTC calendar time, from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
struct Utc {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
}

impl Utc {
    fn from_unix(seconds: u64) -> Utc {
        let days = seconds / 86_400;
        let in_day = seconds % 86_400;
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: in_day / 3600,
            minute: in_day % 3600 / 60,
            second: in_day % 60,
        }
    }
    fn event_time(&self) -> [u8; 20] {
        let text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        let mut out = [0; 20];
        out.copy_from_slice(&text.as_bytes()[..20]);
        out
    }
}

/// Counts for one output, as written to the manifest.
#[derive(Default)]
struct Tally {
    records: u64,
    bytes: u64,
    alerts: u64,
}

impl Tally {
    fn json(&self, path: &str) -> serde_json::Value {
        serde_json::json!({
            "path": path, "records": self.records, "bytes": self.bytes, "alerts": self.alerts,
        })
    }
}

/// A finished `{"Records":[...]}` file waiting for compression.
struct LogFile {
    path: PathBuf,
    json: Vec<u8>,
}

/// The open (not yet full) log file of one trail.
struct OpenLog {
    day: u64,
    json: Vec<u8>,
    path: PathBuf,
}

struct Tree {
    root: PathBuf,
    file_size: u64,
    open: Vec<Option<OpenLog>>,
    sender: mpsc::SyncSender<LogFile>,
    tally: Tally,
    files: u64,
}

impl Tree {
    fn add(&mut self, trail: usize, record: &[u8], unix: u64, rng: &mut Rng) -> Result<(), String> {
        let day = unix / 86_400;
        let full = self.open[trail].as_ref().is_some_and(|log| {
            log.day != day || (log.json.len() + record.len() + 3) as u64 > self.file_size
        });
        if full {
            self.close(trail)?;
        }
        let log = match &mut self.open[trail] {
            Some(log) => log,
            slot => {
                let (account, region) = TRAILS[trail];
                let t = Utc::from_unix(unix);
                let dir = self.root.join(format!(
                    "AWSLogs/{account}/CloudTrail/{region}/{:04}/{:02}/{:02}",
                    t.year, t.month, t.day
                ));
                fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let name = format!(
                    "{account}_CloudTrail_{region}_{:04}{:02}{:02}T{:02}{:02}Z_{}.json.gz",
                    t.year,
                    t.month,
                    t.day,
                    t.hour,
                    t.minute,
                    rng.alphanumeric()
                );
                let mut json = Vec::with_capacity(self.file_size as usize + 4096);
                json.extend_from_slice(b"{\"Records\":[");
                slot.insert(OpenLog {
                    day,
                    json,
                    path: dir.join(name),
                })
            }
        };
        if log.json.len() > b"{\"Records\":[".len() {
            log.json.push(b',');
        }
        log.json.extend_from_slice(record);
        Ok(())
    }

    fn close(&mut self, trail: usize) -> Result<(), String> {
        if let Some(mut log) = self.open[trail].take() {
            log.json.extend_from_slice(b"]}");
            self.tally.bytes += log.json.len() as u64;
            self.files += 1;
            self.sender
                .send(LogFile {
                    path: log.path,
                    json: log.json,
                })
                .map_err(|_| "a compression thread stopped early".to_owned())?;
        }
        Ok(())
    }
}

fn compress_files(
    receiver: &std::sync::Mutex<mpsc::Receiver<LogFile>>,
    level: u32,
) -> Result<u64, String> {
    let mut compressed = 0;
    loop {
        let next = receiver.lock().map_err(|e| e.to_string())?.recv();
        let Ok(file) = next else {
            return Ok(compressed);
        };
        let out = File::create(&file.path)
            .map_err(|e| format!("cannot create {}: {e}", file.path.display()))?;
        let mut gz = GzEncoder::new(BufWriter::new(out), Compression::new(level));
        let result = gz
            .write_all(&file.json)
            .and_then(|()| gz.finish())
            .and_then(|mut w| w.flush().map(|()| w));
        let writer = result.map_err(|e| format!("cannot write {}: {e}", file.path.display()))?;
        let size = writer
            .get_ref()
            .metadata()
            .map_err(|e| format!("cannot stat {}: {e}", file.path.display()))?
            .len();
        compressed += size;
    }
}

fn create(path: &Path) -> Result<BufWriter<File>, String> {
    let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

fn generate(settings: &Settings, templates: &Templates) -> Result<serde_json::Value, String> {
    fs::create_dir_all(&settings.out)
        .map_err(|e| format!("cannot create {}: {e}", settings.out.display()))?;
    let logs = settings.out.join("AWSLogs");
    if logs.exists() {
        fs::remove_dir_all(&logs).map_err(|e| format!("cannot clear {}: {e}", logs.display()))?;
    }
    let write_error = |path: &str| {
        let path = settings.out.join(path);
        move |e: std::io::Error| format!("cannot write {}: {e}", path.display())
    };
    let mut ndjson = create(&settings.out.join("corpus.ndjson"))?;
    let mut sample = create(&settings.out.join("sample.ndjson"))?;
    let mut big = create(&settings.out.join("big-records.json"))?;
    big.write_all(b"{\"Records\":[")
        .map_err(write_error("big-records.json"))?;

    let (sender, receiver) = mpsc::sync_channel::<LogFile>(settings.threads);
    let receiver = std::sync::Mutex::new(receiver);
    let mut tree = Tree {
        root: settings.out.clone(),
        file_size: settings.file_size.max(1024),
        open: TRAILS.iter().map(|_| None).collect(),
        sender,
        tally: Tally::default(),
        files: 0,
    };
    let (mut ndjson_tally, mut sample_tally, mut big_tally) =
        (Tally::default(), Tally::default(), Tally::default());

    let compressed = std::thread::scope(|scope| -> Result<u64, String> {
        let workers: Vec<_> = (0..settings.threads)
            .map(|_| scope.spawn(|| compress_files(&receiver, settings.gzip_level)))
            .collect();
        let produced = (|| -> Result<(), String> {
            let mut rng = Rng(settings.seed);
            let mut record = Vec::with_capacity(1 << 16);
            let mut alert_at = 0;
            let mut index: u64 = 0;
            while ndjson_tally.bytes < settings.size
                || sample_tally.bytes < settings.sample_size
                || big_tally.bytes < settings.big_size
            {
                let in_block = index % settings.alert_every;
                if in_block == 0 {
                    alert_at = rng.below(settings.alert_every);
                }
                let is_alert = in_block == alert_at;
                let template = if is_alert {
                    &templates.alerts[rng.below(templates.alerts.len() as u64) as usize]
                } else if !templates.fixtures.is_empty()
                    && rng.below(100) < settings.fixture_percent
                {
                    &templates.fixtures[rng.below(templates.fixtures.len() as u64) as usize]
                } else {
                    &templates.real[rng.below(templates.real.len() as u64) as usize]
                };
                let unix = START_UNIX + index;
                record.clear();
                template.write(&mut record, &rng.uuid(), &Utc::from_unix(unix).event_time());
                let alerts = u64::from(is_alert);

                if ndjson_tally.bytes < settings.size {
                    ndjson
                        .write_all(&record)
                        .and_then(|()| ndjson.write_all(b"\n"))
                        .map_err(write_error("corpus.ndjson"))?;
                    add(&mut ndjson_tally, record.len() as u64 + 1, alerts);
                    let trail = rng.below(TRAILS.len() as u64) as usize;
                    tree.add(trail, &record, unix, &mut rng)?;
                    tree.tally.records += 1;
                    tree.tally.alerts += alerts;
                }
                if sample_tally.bytes < settings.sample_size {
                    sample
                        .write_all(&record)
                        .and_then(|()| sample.write_all(b"\n"))
                        .map_err(write_error("sample.ndjson"))?;
                    add(&mut sample_tally, record.len() as u64 + 1, alerts);
                }
                if big_tally.bytes < settings.big_size {
                    if big_tally.records > 0 {
                        big.write_all(b",")
                            .map_err(write_error("big-records.json"))?;
                        big_tally.bytes += 1;
                    }
                    big.write_all(&record)
                        .map_err(write_error("big-records.json"))?;
                    add(&mut big_tally, record.len() as u64, alerts);
                }
                index += 1;
            }
            for trail in 0..TRAILS.len() {
                tree.close(trail)?;
            }
            Ok(())
        })();
        // Closing the channel lets the workers finish, also when producing failed.
        drop(std::mem::replace(&mut tree.sender, mpsc::sync_channel(0).0));
        let mut compressed = 0;
        for worker in workers {
            compressed += worker
                .join()
                .map_err(|_| "a compression thread panicked".to_owned())??;
        }
        produced?;
        Ok(compressed)
    })?;

    big.write_all(b"]}\n")
        .map_err(write_error("big-records.json"))?;
    big_tally.bytes += 2 + b"{\"Records\":[".len() as u64 + 1;
    for (writer, name) in [
        (&mut ndjson, "corpus.ndjson"),
        (&mut sample, "sample.ndjson"),
        (&mut big, "big-records.json"),
    ] {
        writer.flush().map_err(write_error(name))?;
    }

    Ok(serde_json::json!({
        "generator": "examples/gen_corpus.rs",
        "seed": settings.seed,
        "size": settings.size,
        "big_size": settings.big_size,
        "sample_size": settings.sample_size,
        "file_size": settings.file_size,
        "alert_every": settings.alert_every,
        "fixture_percent": settings.fixture_percent,
        "gzip_level": settings.gzip_level,
        "corpus": settings.corpus.display().to_string(),
        "templates": {
            "real": templates.real.len(),
            "fixtures": templates.fixtures.len(),
            "alerts": templates.alerts.len(),
        },
        "ndjson": ndjson_tally.json("corpus.ndjson"),
        "tree": {
            "path": "AWSLogs",
            "files": tree.files,
            "records": tree.tally.records,
            "bytes": tree.tally.bytes,
            "compressed_bytes": compressed,
            "alerts": tree.tally.alerts,
        },
        "big": big_tally.json("big-records.json"),
        "sample": sample_tally.json("sample.ndjson"),
    }))
}

fn add(tally: &mut Tally, bytes: u64, alerts: u64) {
    tally.records += 1;
    tally.bytes += bytes;
    tally.alerts += alerts;
}
