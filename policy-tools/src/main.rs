//! `portcullis`: the operator's command line.
//!
//! It parses arguments and prints results; the protocol lives in
//! `portcullis-netlink` and the policy format in `portcullis-policy`.
//!
//! Exit codes: 0 success, 1 failure, 2 usage error, 3 the module is missing
//! or speaks another protocol version, 4 (`policy diff`) the policies differ.
//! The attest, verifier, libscan and flow subcommands come from their crates
//! and document their own codes (`libscan scan` exits 1 when a library is
//! affected, `attest challenge` 2 when the device is untrusted).

mod module_cmds;
mod policy_cmds;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub(crate) const EXIT_FAILURE: u8 = 1;
pub(crate) const EXIT_NO_MODULE: u8 = 3;

#[derive(Parser)]
#[command(name = "portcullis", version, about = "Portcullis operator tools: the Approved Application List, attestation, library scan and flows")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the module's status: mode, lock, policy, cache and counters.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set the enforcement mode: off, learn or enforce.
    Mode {
        /// New mode: off, learn or enforce.
        mode: portcullis_netlink::Mode,
    },
    /// Lock the mode and policy until reboot; the module can no longer be
    /// unloaded, the mode lowered or entries removed.
    Lock,
    /// Choose whether allowed decisions are reported as events too.
    AuditAllowed {
        /// "on" to report allowed decisions, "off" for denials and new
        /// files in learn mode only.
        #[arg(value_parser = ["on", "off"])]
        setting: String,
    },
    /// Print decision events from the module.
    Events(module_cmds::EventsArgs),
    /// Work with policies.
    #[command(subcommand)]
    Policy(policy_cmds::PolicyCommand),
    /// Remote attestation, device side: measure, upload a baseline, answer
    /// challenges.
    #[command(subcommand)]
    Attest(portcullis_attest::cli::Command),
    /// Remote attestation, server side: the verifier service and its reports.
    #[command(subcommand)]
    Verifier(portcullis_verifier::cli::Command),
    /// Inventory of system libraries and their known vulnerabilities.
    #[command(subcommand)]
    Libscan(portcullis_libscan::cli::Command),
    /// Network flow metering and IPFIX or NetFlow v9 export.
    #[command(subcommand)]
    Flow(portcullis_flow::cli::Command),
    /// Send a raw request to the module, to test its input checks.
    #[command(hide = true)]
    DebugRaw(module_cmds::RawArgs),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Status { json } => module_cmds::status(json),
        Command::Mode { mode } => module_cmds::set_mode(mode),
        Command::Lock => module_cmds::lock(),
        Command::AuditAllowed { setting } => module_cmds::audit_allowed(setting == "on"),
        Command::Events(args) => module_cmds::events(args),
        Command::Policy(command) => policy_cmds::run(command),
        Command::DebugRaw(args) => module_cmds::raw(args),
        Command::Attest(command) => portcullis_attest::cli::run(command),
        Command::Verifier(command) => portcullis_verifier::cli::run(command),
        Command::Libscan(command) => portcullis_libscan::cli::run(command),
        Command::Flow(command) => portcullis_flow::cli::run(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("portcullis: {err:#}");
            if err
                .chain()
                .filter_map(|cause| cause.downcast_ref::<portcullis_netlink::Error>())
                .any(|e| {
                    matches!(
                        e,
                        portcullis_netlink::Error::ModuleNotLoaded
                            | portcullis_netlink::Error::VersionMismatch { .. }
                    )
                })
            {
                return ExitCode::from(EXIT_NO_MODULE);
            }
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
