use clap::Parser;
use log::error;
use std::path::PathBuf;
use std::process::ExitCode;

/// The Portcullis device daemon. Runs in the foreground; stop it with
/// SIGTERM or SIGINT, reload its configuration and policy with SIGHUP.
#[derive(Parser)]
#[command(name = "portcullisd", version)]
struct Args {
    /// Configuration file.
    #[arg(long, short, default_value = portcullisd::config::DEFAULT_PATH)]
    config: PathBuf,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let args = Args::parse();
    let result = portcullisd::Daemon::start(&args.config).and_then(|mut daemon| daemon.run());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
