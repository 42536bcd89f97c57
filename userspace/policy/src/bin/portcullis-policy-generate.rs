//! A small driver of [`portcullis_policy::generate`] for host tests and the
//! generation benchmark. Operators use `portcullis policy generate`.
//!
//! Usage: portcullis-policy-generate ROOT [--output FILE] [--threads N]
//!
//! It prints each warning and then one summary line to standard error, and
//! saves the policy to FILE, or prints it to standard output without
//! --output. The summary line has key=value pairs with the counts and the
//! elapsed seconds of generate(), so scripts can read it with awk.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use portcullis_policy::{generate, GenerateOptions, Progress};

const USAGE: &str = "usage: portcullis-policy-generate ROOT [--output FILE] [--threads N]";

struct Arguments {
    root: PathBuf,
    output: Option<PathBuf>,
    threads: Option<usize>,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut root = None;
    let mut output = None;
    let mut threads = None;

    let mut arguments = std::env::args_os().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.to_str() {
            Some("--output") => {
                output = Some(arguments.next().ok_or("--output needs a file name")?.into())
            }
            Some("--threads") => {
                let value = arguments.next().ok_or("--threads needs a number")?;
                let value = value.to_string_lossy();
                let count = value
                    .parse()
                    .map_err(|_| format!("invalid --threads {value:?}: expected a whole number, where 0 means one per CPU"))?;
                threads = Some(count);
            }
            Some(option) if option.starts_with("--") => {
                return Err(format!("unknown option {option}"))
            }
            _ if root.is_none() => root = Some(PathBuf::from(argument)),
            _ => return Err("more than one ROOT given".to_owned()),
        }
    }

    let root = root.ok_or("missing ROOT")?;
    Ok(Arguments {
        root,
        output,
        threads,
    })
}

fn main() -> ExitCode {
    let arguments = match parse_arguments() {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("portcullis-policy-generate: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let options = GenerateOptions {
        threads: arguments.threads,
        ..GenerateOptions::default()
    };

    let started = Instant::now();
    let generated = match generate(&arguments.root, &options, |_: &Progress| {}) {
        Ok(generated) => generated,
        Err(error) => {
            eprintln!("portcullis-policy-generate: {error}");
            return ExitCode::FAILURE;
        }
    };
    let seconds = started.elapsed().as_secs_f64();

    for warning in &generated.warnings {
        eprintln!("warning: {warning}");
    }
    let counts = generated.counts;
    eprintln!(
        "entries={} files_seen={} files_hashed={} files_skipped={} bytes_hashed={} \
         directories_skipped={} warnings={} seconds={seconds:.3}",
        generated.policy.len(),
        counts.files_seen,
        counts.files_hashed,
        counts.files_skipped,
        counts.bytes_hashed,
        counts.directories_skipped,
        generated.warnings.len(),
    );

    match arguments.output {
        Some(path) => {
            if let Err(error) = generated.policy.save_atomic(&path) {
                eprintln!("portcullis-policy-generate: {error}");
                return ExitCode::FAILURE;
            }
        }
        None => print!("{}", generated.policy.to_json()),
    }
    ExitCode::SUCCESS
}
