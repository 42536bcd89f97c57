//! The daemon's scan collector: scans on a schedule on its own thread at
//! low CPU and I/O priority, and writes each report to a file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer};

use crate::cache::FileCache;
use crate::feed::FeedStore;
use crate::inventory::{self, Executables, ScanOptions};
use crate::report::Report;

/// The `libscan` section of /etc/portcullis/portcullis.json.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the daemon starts the collector at all.
    pub enabled: bool,
    /// Root of the file system to scan.
    pub root: PathBuf,
    /// Directories under `root` to scan.
    pub directories: Vec<String>,
    /// Programs to list besides shared libraries.
    pub executables: Executables,
    /// Feed files or directories of feed files.
    pub feeds: Vec<PathBuf>,
    /// Time between scans, in humantime form ("24h", "90m").
    #[serde(deserialize_with = "deserialize_duration")]
    pub interval: Duration,
    /// Per-file results kept between scans.
    pub cache_file: PathBuf,
    /// Path of each scan's JSON report.
    pub report_file: PathBuf,
    /// Nice value of the scanning thread, 0 (normal) to 19 (lowest).
    pub nice: i32,
    /// Whether the scanning thread uses the idle I/O class, so its reads
    /// wait for every other process's.
    pub idle_io: bool,
    /// Files larger than this many bytes are skipped.
    pub max_file_size: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            enabled: true,
            root: PathBuf::from("/"),
            directories: inventory::DEFAULT_DIRECTORIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            executables: Executables::Known,
            feeds: vec![PathBuf::from("/etc/portcullis/vulndb")],
            interval: Duration::from_secs(24 * 60 * 60),
            cache_file: PathBuf::from("/var/lib/portcullis/libscan-cache.json"),
            report_file: PathBuf::from("/var/lib/portcullis/libscan-report.json"),
            nice: 19,
            idle_io: true,
            max_file_size: inventory::DEFAULT_MAX_FILE_SIZE,
        }
    }
}

fn deserialize_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    let duration = humantime::parse_duration(&text).map_err(|error| {
        serde::de::Error::custom(format!("invalid duration \"{text}\": {error}"))
    })?;
    if duration.is_zero() {
        return Err(serde::de::Error::custom(
            "invalid duration \"0s\": the interval must be positive",
        ));
    }
    Ok(duration)
}

impl Config {
    /// Reads the section from its JSON value; an error names the key path
    /// (`libscan.interval: invalid duration "daily"`).
    pub fn from_json(section: &serde_json::Value) -> anyhow::Result<Config> {
        let config: Config = serde_path_to_error::deserialize(section).map_err(|error| {
            anyhow::anyhow!(
                "invalid libscan configuration at libscan.{}: {}",
                error.path(),
                error.inner()
            )
        })?;
        if !(0..=19).contains(&config.nice) {
            anyhow::bail!(
                "invalid libscan configuration at libscan.nice: {} is outside 0..=19",
                config.nice
            );
        }
        Ok(config)
    }

    fn scan_options(&self, stop: &Arc<AtomicBool>) -> ScanOptions {
        ScanOptions {
            root: self.root.clone(),
            directories: self.directories.clone(),
            executables: self.executables,
            max_file_size: self.max_file_size,
            cancel: Some(Arc::clone(stop)),
        }
    }
}

/// A running collector.
pub struct Collector {
    thread: JoinHandle<()>,
    scan_requested: Arc<AtomicBool>,
}

impl Collector {
    /// Asks for a scan now instead of at the next scheduled time.
    pub fn request_scan(&self) {
        self.scan_requested.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
    }

    /// Waits for the thread to end after `stop` was set.
    pub fn join(self) {
        if self.thread.join().is_err() {
            log::error!("libscan: collector thread panicked");
        }
    }
}

/// Starts the collector on its own thread. It scans once at start unless
/// the last report is younger than the interval, then every interval, and
/// ends within about a second of `stop` being set, abandoning a scan in
/// progress.
pub fn spawn(config: Config, stop: Arc<AtomicBool>) -> std::io::Result<Collector> {
    let scan_requested = Arc::new(AtomicBool::new(false));
    let requested = Arc::clone(&scan_requested);
    let thread = thread::Builder::new()
        .name("libscan".to_string())
        .spawn(move || run(config, stop, requested))?;
    Ok(Collector {
        thread,
        scan_requested,
    })
}

fn run(config: Config, stop: Arc<AtomicBool>, requested: Arc<AtomicBool>) {
    crate::priority::lower(config.nice, config.idle_io);
    log::info!(
        "libscan: collector started for {} every {}, feeds {:?}",
        config.root.display(),
        humantime::format_duration(config.interval),
        config.feeds
    );

    let mut cache = FileCache::load(&config.cache_file);
    let mut feeds = FeedStore::new();
    let mut next_scan = first_scan_time(&config.report_file, config.interval);

    while !stop.load(Ordering::Relaxed) {
        let due = SystemTime::now() >= next_scan;
        if due || requested.swap(false, Ordering::Relaxed) {
            scan_once(&config, &stop, &mut cache, &mut feeds);
            next_scan = SystemTime::now() + config.interval;
            continue;
        }
        thread::park_timeout(Duration::from_secs(1));
    }
    log::info!("libscan: collector stopped");
}

/// Returns when the first scan is due: one interval after the last report
/// was written, so the schedule survives daemon restarts, or now.
fn first_scan_time(report_file: &Path, interval: Duration) -> SystemTime {
    let modified = std::fs::metadata(report_file).and_then(|metadata| metadata.modified());
    match modified {
        Ok(modified) if modified <= SystemTime::now() => modified + interval,
        _ => SystemTime::now(),
    }
}

/// Runs one scan and writes its report. Feed files that fail to parse are
/// logged and their last good copies stay in use.
pub fn scan_once(
    config: &Config,
    stop: &Arc<AtomicBool>,
    cache: &mut FileCache,
    feeds: &mut FeedStore,
) {
    let feed_errors = feeds.refresh(&config.feeds);
    for error in &feed_errors {
        log::error!("libscan: {error}; keeping the last good copy of that file if there is one");
    }

    let inventory = match inventory::scan(&config.scan_options(stop), cache) {
        Ok(inventory) => inventory,
        Err(error) => {
            log::error!(
                "libscan: scan of {} failed: {error:#}; retrying at the next interval",
                config.root.display()
            );
            return;
        }
    };
    if let Err(error) = cache.save(&config.cache_file) {
        log::warn!("libscan: {error:#}; the next scan parses every file again");
    }

    let mut report = Report::build(inventory, feeds);
    report.feed_errors = feed_errors.iter().map(ToString::to_string).collect();
    let totals = &report.totals;
    log::info!(
        "libscan: scanned {} libraries in {} ({} files parsed, {} from cache): {} vulnerable, {} unknown versions, {} to review",
        totals.libraries,
        config.root.display(),
        report.files_parsed,
        report.files_examined - report.files_parsed.min(report.files_examined),
        totals.vulnerable_libraries,
        totals.unknown_versions,
        totals.needs_review_findings
    );
    if let Err(error) = write_report(&config.report_file, &report) {
        log::error!("libscan: {error:#}");
    }
}

fn write_report(path: &Path, report: &Report) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, serde_json::to_vec_pretty(report)?).map_err(|error| {
        anyhow::anyhow!("failed to write report {}: {error}", temporary.display())
    })?;
    std::fs::rename(&temporary, path)
        .map_err(|error| anyhow::anyhow!("failed to replace report {}: {error}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_keys() {
        let config = Config::from_json(&serde_json::json!({})).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.interval, Duration::from_secs(86400));

        let config =
            Config::from_json(&serde_json::json!({"interval": "90m", "feeds": ["/data/osv.zip"]}))
                .unwrap();
        assert_eq!(config.interval, Duration::from_secs(5400));
        assert_eq!(config.feeds, vec![PathBuf::from("/data/osv.zip")]);
    }

    #[test]
    fn config_errors_name_key() {
        let error = Config::from_json(&serde_json::json!({"interval": "daily"}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("libscan.interval"), "{error}");

        let error = Config::from_json(&serde_json::json!({"nice": "low"}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("libscan.nice"), "{error}");

        let error = Config::from_json(&serde_json::json!({"intervall": "1h"}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("intervall"), "{error}");

        let error = Config::from_json(&serde_json::json!({"nice": 25}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("libscan.nice"), "{error}");
    }

    #[test]
    fn scan_request_runs_before_schedule() {
        let directory = tempfile::tempdir().unwrap();
        let root = directory.path().join("root");
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(
            root.join("usr/lib/libdemo.so.4.5"),
            crate::elf::minimal_elf(b""),
        )
        .unwrap();
        // A fresh report puts the first scheduled scan a day away.
        let report_file = directory.path().join("report.json");
        std::fs::write(&report_file, "{}").unwrap();
        let config = Config {
            root,
            feeds: Vec::new(),
            cache_file: directory.path().join("cache.json"),
            report_file: report_file.clone(),
            nice: 0,
            idle_io: false,
            ..Config::default()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let collector = spawn(config, Arc::clone(&stop)).unwrap();

        thread::sleep(Duration::from_millis(300));
        assert_eq!(
            std::fs::read_to_string(&report_file).unwrap(),
            "{}",
            "no scan before the request"
        );
        collector.request_scan();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::fs::read_to_string(&report_file).unwrap() == "{}"
            && std::time::Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        collector.join();

        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
        assert_eq!(report["libraries"][0]["version"], "4.5");
    }

    #[test]
    fn collector_writes_report_and_stops() {
        let directory = tempfile::tempdir().unwrap();
        let root = directory.path().join("root");
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(
            root.join("usr/lib/libdemo.so.1.2.3"),
            crate::elf::minimal_elf(b""),
        )
        .unwrap();
        let config = Config {
            root,
            feeds: Vec::new(),
            cache_file: directory.path().join("cache.json"),
            report_file: directory.path().join("report.json"),
            nice: 0,
            idle_io: false,
            ..Config::default()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let collector = spawn(config.clone(), Arc::clone(&stop)).unwrap();

        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !config.report_file.exists() && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        collector.join();

        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config.report_file).unwrap()).unwrap();
        let paths: Vec<&str> = report["libraries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, vec!["/usr/lib/libdemo.so.1.2.3"]);
        assert_eq!(report["libraries"][0]["version"], "1.2.3");
        assert!(config.cache_file.exists());
    }
}
