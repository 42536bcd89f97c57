//! The `flow` subcommands of the `portcullis` CLI.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;

use crate::collector;
use crate::aging::FlowCache;
use crate::config::{Config, DEFAULT_PIN_PATH};
use crate::meter;
use crate::record::{FlowRecord, FlowSource};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Meter and export flows in the foreground until SIGINT or SIGTERM,
    /// as the daemon would, using the `flow` section of CONFIG.
    Run {
        /// portcullis.json file with a `flow` section.
        #[arg(long, default_value = "/etc/portcullis/portcullis.json")]
        config: PathBuf,
    },
    /// List the flows in the running collector's eBPF flow table, with
    /// counters since each flow's first packet, largest first.
    Show {
        /// Pinned flow table, as `pin_path` in the `flow` section sets it.
        #[arg(long, default_value = DEFAULT_PIN_PATH)]
        pin_path: PathBuf,
        /// Print one JSON object per flow, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Check the `flow` section of CONFIG and print it with defaults filled in.
    CheckConfig {
        /// portcullis.json file with a `flow` section.
        #[arg(default_value = "/etc/portcullis/portcullis.json")]
        config: PathBuf,
        /// Print the configuration as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `flow` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => {
            let config = Config::load(&config)?;
            run_until_signal(config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { pin_path, json } => {
            show(&pin_path, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config: path, json } => {
            let config = Config::load(&path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&config)?);
            } else {
                print_config(&path, &config);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs the collector the way the daemon does, on its own thread with a
/// shared stop flag, and sets the flag on SIGINT or SIGTERM.
fn run_until_signal(config: Config) -> anyhow::Result<()> {
    install_stop_handler();
    let stop = Arc::new(AtomicBool::new(false));
    let collector = collector::spawn(config, Arc::clone(&stop))?;

    while !STOP.load(Ordering::Relaxed) && !collector.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);

    match collector.join() {
        Ok(result) => result,
        Err(_) => anyhow::bail!("the flow collector thread panicked"),
    }
}

fn show(pin_path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let table = meter::open_pinned_flow_table(pin_path)?;
    let boot = collector::boot_epoch_ms();

    // A fresh cache has exported nothing, so each record covers the whole
    // flow so far.
    let mut cache = FlowCache::new(FlowSource::Ebpf, u64::MAX, u64::MAX);
    let mut records: Vec<FlowRecord> = meter::read_flow_table(&table, boot)
        .iter()
        .filter_map(|(key, counters)| {
            let mut record = cache.export_final(key, counters)?;
            record.interface_name = meter::interface_name_of(key.interface_index).unwrap_or_default();
            Some(record)
        })
        .collect();
    records.sort_by_key(|record| std::cmp::Reverse(record.bytes));

    if json {
        print!("{}", crate::record::to_json_lines(&records)?);
        return Ok(());
    }
    println!("{:<10} {:<7} {:>5} {:>41} {:>41} {:>10} {:>12}", "INTERFACE", "DIR", "PROTO", "SOURCE", "DESTINATION", "PACKETS", "BYTES");
    for record in &records {
        println!(
            "{:<10} {:<7} {:>5} {:>41} {:>41} {:>10} {:>12}",
            record.interface_name,
            format!("{:?}", record.direction).to_lowercase(),
            record.protocol,
            std::net::SocketAddr::new(record.source_address, record.source_port).to_string(),
            std::net::SocketAddr::new(record.destination_address, record.destination_port).to_string(),
            record.packets,
            record.bytes
        );
    }
    Ok(())
}

fn print_config(path: &std::path::Path, config: &Config) {
    println!("{}: flow section is valid", path.display());
    println!("  source: {:?}", config.source);
    println!("  interfaces: {}", config.interfaces.join(", "));
    for collector in &config.collectors {
        println!("  collector: {} ({})", collector.address, collector.protocol);
    }
    println!(
        "  timeouts: active {} s, idle {} s; poll every {} ms; templates every {} s",
        config.active_timeout_secs, config.idle_timeout_secs, config.poll_interval_ms, config.template_refresh_secs
    );
    println!("  flow table: {} flows, eviction above {}%", config.max_flows, config.eviction_threshold_percent);
}

/// Set by the signal handler, which cannot reach the collector's Arc.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn install_stop_handler() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe, and `signal` is a valid signal number.
        unsafe { libc::signal(signal, request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    }
}
