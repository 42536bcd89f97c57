//! `portcullis-verifier`: the verifier service and its operator commands.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "portcullis-verifier",
    version,
    about = "Remote attestation verifier"
)]
struct Arguments {
    #[command(subcommand)]
    command: portcullis_verifier::cli::Command,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let arguments = Arguments::parse();
    match portcullis_verifier::cli::run(arguments.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("portcullis-verifier: {error:#}");
            ExitCode::FAILURE
        }
    }
}
