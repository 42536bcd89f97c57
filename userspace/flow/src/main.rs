//! `portcullis-flow`: the flow subcommands of the `portcullis` CLI as a
//! stand-alone binary, used by the host tests and the benchmark.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "portcullis-flow", about = "Meter network flows and export them as IPFIX or NetFlow v9")]
struct Arguments {
    #[command(subcommand)]
    command: portcullis_flow::cli::Command,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let arguments = Arguments::parse();
    match portcullis_flow::cli::run(arguments.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("portcullis-flow: {err:#}");
            ExitCode::FAILURE
        }
    }
}
