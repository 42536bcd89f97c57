//! Stand-alone front end for the `portcullis libscan` subcommands, for
//! tests and for images built without the `portcullis` CLI.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "portcullis-libscan",
    about = "Library inventory and offline vulnerability matching"
)]
struct Arguments {
    #[command(subcommand)]
    command: portcullis_libscan::cli::Command,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let arguments = Arguments::parse();
    match portcullis_libscan::cli::run(arguments.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("portcullis-libscan: {error:#}");
            ExitCode::from(2)
        }
    }
}
