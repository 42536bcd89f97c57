//! The `flow` subcommands of the `portcullis` CLI.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Subcommand;

use crate::collector;
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Meter and export flows in the foreground until SIGINT or SIGTERM,
    /// as the daemon would, using the `flow` section of CONFIG.
    Run {
        /// portcullis.json file with a `flow` section.
        #[arg(long, default_value = "/etc/portcullis/portcullis.json")]
        config: PathBuf,
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
            install_stop_handler();
            collector::run(&config, &STOP)?;
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
