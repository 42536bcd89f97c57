//! `portcullis-attest`: the attestation subcommands on their own, for
//! running the device agent without the full `portcullis` CLI.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "portcullis-attest",
    version,
    about = "Remote attestation, device side"
)]
struct Arguments {
    #[command(subcommand)]
    command: portcullis_attest::cli::Command,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let arguments = Arguments::parse();
    match portcullis_attest::cli::run(arguments.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("portcullis-attest: {error:#}");
            ExitCode::FAILURE
        }
    }
}
