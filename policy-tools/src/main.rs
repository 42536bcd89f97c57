//! `portcullis`: the operator's command line.
//!
//! It parses arguments and prints results; the protocol lives in
//! `portcullis-netlink` and the policy format in `portcullis-policy`.
//!
//! Exit codes: 0 success, 1 failure, 2 usage error, 3 the module is missing
//! or speaks another protocol version, 4 (`policy diff`) the policies differ.

mod module_cmds;
mod policy_cmds;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub(crate) const EXIT_FAILURE: u8 = 1;
pub(crate) const EXIT_NO_MODULE: u8 = 3;

#[derive(Parser)]
#[command(name = "portcullis", version, about = "Manage the Portcullis Approved Application List")]
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
    Mode { mode: portcullis_netlink::Mode },
    /// Lock the mode and policy until reboot; the module can no longer be
    /// unloaded, the mode lowered or entries removed.
    Lock,
    /// Choose whether allowed decisions are reported as events too.
    AuditAllowed {
        #[arg(value_parser = ["on", "off"])]
        setting: String,
    },
    /// Print decision events from the module.
    Events(module_cmds::EventsArgs),
    /// Work with policies.
    #[command(subcommand)]
    Policy(policy_cmds::PolicyCommand),
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
