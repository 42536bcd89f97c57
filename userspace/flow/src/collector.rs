//! The daemon side: picks the meter, polls and ages flows, exports records,
//! and stops when the shared flag is set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::aging::{Counters, Expiry, FlowCache, FlowKey};
use crate::config::{Config, SourceChoice};
use crate::conntrack::ConntrackMeter;
use crate::exporter::Exporter;
use crate::meter::EbpfMeter;
use crate::record::{FlowRecord, FlowSource};

/// Starts the collector on its own thread. It runs until `stop` is set,
/// then exports every flow still in the meter and returns. The thread's result
/// is the error that stopped it early, if any.
pub fn spawn(config: Config, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<anyhow::Result<()>>> {
    std::thread::Builder::new()
        .name("flow-collector".to_string())
        .spawn(move || run(&config, &stop))
}

/// Runs the collector on the calling thread until `stop` is set.
pub fn run(config: &Config, stop: &AtomicBool) -> anyhow::Result<()> {
    let mut exporter = Exporter::new(config)?;
    let mut meter = open_meter(config)?;
    let mut cache = FlowCache::new(
        meter.source(),
        config.active_timeout_secs.saturating_mul(1000),
        config.idle_timeout_secs.saturating_mul(1000),
    );
    let mut stats = CollectorStats::default();

    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let records = poll(config, &mut meter, &mut cache, &mut stats, false);
        exporter.export(&records, now_ms(), boot_epoch_ms());
        sleep_until(started + config.poll_interval(), stop);
    }

    let records = poll(config, &mut meter, &mut cache, &mut stats, true);
    exporter.export(&records, now_ms(), boot_epoch_ms());
    let export = exporter.stats();
    log::info!(
        "flow collector stopped: {} records in {} messages exported, {} send errors, {} flows evicted, \
         {} packets not metered because the flow table was full, {} non-IP frames and {} truncated \
         IP packets skipped",
        export.records,
        export.messages,
        export.send_errors,
        stats.evictions,
        stats.map_full_packets,
        stats.not_ip_frames,
        stats.truncated_packets
    );
    Ok(())
}

/// Counters kept across polls.
#[derive(Debug, Default)]
struct CollectorStats {
    evictions: u64,
    map_full_packets: u64,
    /// Frames that were not IPv4 or IPv6, and IP packets cut short, as the
    /// BPF programs last counted them.
    not_ip_frames: u64,
    truncated_packets: u64,
}

/// The meter in use, named in the log at start.
enum Meter {
    Ebpf(EbpfMeter),
    Conntrack(ConntrackMeter),
}

impl Meter {
    fn source(&self) -> FlowSource {
        match self {
            Meter::Ebpf(_) => FlowSource::Ebpf,
            Meter::Conntrack(_) => FlowSource::Conntrack,
        }
    }
}

fn open_meter(config: &Config) -> anyhow::Result<Meter> {
    let ebpf = match config.source {
        SourceChoice::Conntrack => None,
        SourceChoice::Ebpf => Some(EbpfMeter::load(config.max_flows).context("failed to start the eBPF flow meter")?),
        SourceChoice::Auto => match EbpfMeter::load(config.max_flows) {
            Ok(meter) => Some(meter),
            Err(err) => {
                log::warn!("failed to load the eBPF flow meter: {err:#}; falling back to conntrack");
                None
            }
        },
    };

    if let Some(mut meter) = ebpf {
        if let Some(path) = &config.pin_path {
            // Without the pin only `flow show` is missing, so go on.
            if let Err(err) = meter.pin_flow_table(path) {
                log::warn!("{err:#}; `flow show` will not see the flows");
            }
        }
        let attached = meter.reconcile(&config.interfaces);
        log::info!(
            "flow source: eBPF at TC on {} ({attached} of {} interfaces present), table of {} flows",
            config.interfaces.join(", "),
            config.interfaces.len(),
            meter.capacity()
        );
        return Ok(Meter::Ebpf(meter));
    }

    let meter = ConntrackMeter::open().context("failed to open conntrack over netlink")?;
    log::info!("flow source: conntrack over netlink (no MAC addresses or interfaces in the records)");
    Ok(Meter::Conntrack(meter))
}

/// Reads the meter once and returns the records that are due. With
/// `flush_all`, every flow is exported as if idle.
fn poll(
    config: &Config,
    meter: &mut Meter,
    cache: &mut FlowCache,
    stats: &mut CollectorStats,
    flush_all: bool,
) -> Vec<FlowRecord> {
    let boot = boot_epoch_ms();
    let now = if flush_all { u64::MAX } else { now_ms() };
    match meter {
        Meter::Ebpf(meter) => poll_ebpf(config, meter, cache, stats, now, boot),
        Meter::Conntrack(meter) => poll_conntrack(meter, cache, now, boot),
    }
}

fn poll_ebpf(
    config: &Config,
    meter: &mut EbpfMeter,
    cache: &mut FlowCache,
    stats: &mut CollectorStats,
    now: u64,
    boot: u64,
) -> Vec<FlowRecord> {
    meter.reconcile(&config.interfaces);
    let flows = meter.read_flows(boot);

    // Above the threshold, evict down to three quarters of it so that the
    // table has room again for a while.
    let threshold = meter.capacity() as usize * usize::from(config.eviction_threshold_percent) / 100;
    let evict_down_to = (flows.len() > threshold).then_some(threshold * 3 / 4);
    let expiries = cache.expire(&flows, now, evict_down_to);

    let current: HashMap<FlowKey, Counters> = flows.into_iter().collect();
    let mut records = Vec::new();
    let mut evicted = 0u64;
    for (key, expiry) in expiries {
        let record = match expiry {
            Expiry::Active => current.get(&key).and_then(|counters| cache.export_active(&key, counters)),
            Expiry::Idle | Expiry::Evicted => {
                evicted += u64::from(expiry == Expiry::Evicted);
                meter.remove_flow(&key, boot).and_then(|counters| cache.export_final(&key, &counters))
            }
        };
        if let Some(mut record) = record {
            record.interface_name = meter.interface_name(key.interface_index).unwrap_or_default().to_string();
            records.push(record);
        }
    }

    let counters = meter.counters();
    let map_full = counters.map_full;
    if evicted > 0 || map_full > stats.map_full_packets {
        log::warn!(
            "flow table near full ({} of {} entries): evicted {evicted} flows early, {} packets not metered since the last poll",
            current.len(),
            meter.capacity(),
            map_full.saturating_sub(stats.map_full_packets)
        );
    }
    stats.evictions += evicted;
    stats.map_full_packets = map_full;
    stats.not_ip_frames = counters.not_ip;
    stats.truncated_packets = counters.truncated;
    records
}

fn poll_conntrack(meter: &mut ConntrackMeter, cache: &mut FlowCache, now: u64, boot: u64) -> Vec<FlowRecord> {
    let flows = match meter.read_flows(now.min(now_ms()), boot) {
        Ok(flows) => flows,
        Err(err) => {
            log::warn!("failed to read conntrack: {err:#}; retrying next poll");
            return Vec::new();
        }
    };
    let expiries = cache.expire(&flows, now, None);
    let current: HashMap<FlowKey, Counters> = flows.into_iter().collect();

    // Conntrack entries are the firewall's state and are never deleted
    // here: an idle flow is exported up to now and stays known to the
    // cache, so its counters are not exported twice.
    let mut records = Vec::new();
    for (key, _) in expiries {
        if let Some(record) = current.get(&key).and_then(|counters| cache.export_active(&key, counters)) {
            records.push(record);
        }
    }
    records
}

fn sleep_until(deadline: Instant, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
    }
}

/// Returns the current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Returns the Unix time of system boot in milliseconds: the origin of
/// CLOCK_MONOTONIC, which bpf_ktime_get_ns() reads.
pub fn boot_epoch_ms() -> u64 {
    let mut monotonic = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `monotonic` is a valid timespec for the call to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut monotonic) };
    let monotonic_ms = monotonic.tv_sec as u64 * 1000 + monotonic.tv_nsec as u64 / 1_000_000;
    now_ms().saturating_sub(monotonic_ms)
}
