//! The verifier's subcommands: run the service, print reports, issue a
//! challenge, allow a new baseline, and make certificates.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use crate::server;
use crate::service::Verifier;
use crate::store::{Report, Store};

const DEFAULT_DB: &str = "/var/lib/portcullis-verifier/verifier.db";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTPS service until killed.
    Serve {
        /// Address and port to listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        /// PEM certificate chain the verifier presents.
        #[arg(long)]
        cert: PathBuf,
        /// PEM private key of that certificate.
        #[arg(long)]
        key: PathBuf,
        #[arg(long, default_value = DEFAULT_DB)]
        db: PathBuf,
        /// Seconds a nonce stays valid after it is issued.
        #[arg(long, default_value_t = 120)]
        nonce_ttl_secs: u64,
        /// File with a bearer token that GET requests (the reports) must
        /// carry; without it the reports are open to every client.
        #[arg(long)]
        operator_token_file: Option<PathBuf>,
        /// Accept a registration only with a token from `enrol`.
        #[arg(long)]
        require_enrolment: bool,
    },
    /// Create a one-time token that lets DEVICE register, and print it.
    Enrol {
        device: String,
        #[arg(long, default_value = DEFAULT_DB)]
        db: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print whether each device is trusted, or which files differ.
    Report {
        /// Only this device.
        device: Option<String>,
        #[arg(long, default_value = DEFAULT_DB)]
        db: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Issue a nonce that the device receives with its next challenge request.
    Challenge {
        device: String,
        #[arg(long, default_value = DEFAULT_DB)]
        db: PathBuf,
        #[arg(long, default_value_t = 600)]
        nonce_ttl_secs: u64,
        #[arg(long)]
        json: bool,
    },
    /// Drop a device's baseline so it may upload a new one, after an update.
    Rebaseline {
        device: String,
        #[arg(long, default_value = DEFAULT_DB)]
        db: PathBuf,
    },
    /// Make a CA (ca.pem for devices) and a server certificate it signs
    /// (cert.pem, key.pem) for the given names.
    GenCert {
        #[arg(long)]
        out_dir: PathBuf,
        /// DNS name or IP address of the verifier; repeat for several.
        #[arg(long = "san", default_values_t = ["127.0.0.1".to_string(), "localhost".to_string()])]
        subject_alt_names: Vec<String>,
    },
}

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Serve {
            listen,
            cert,
            key,
            db,
            nonce_ttl_secs,
            operator_token_file,
            require_enrolment,
        } => {
            let tls = server::server_tls_config(&cert, &key)?;
            let store = open_store(&db)?;
            let listener =
                TcpListener::bind(&listen).with_context(|| format!("cannot listen on {listen}"))?;
            log::info!(
                "verifier listening on https://{}, database {}",
                listener.local_addr()?,
                db.display()
            );
            let mut verifier = Verifier::new(store, nonce_ttl_secs);
            if let Some(file) = operator_token_file {
                verifier = verifier.with_operator_token(read_token(&file)?);
            }
            if require_enrolment {
                verifier = verifier.with_required_enrolment();
            }
            let verifier = Arc::new(verifier);
            server::serve(listener, tls, verifier, &AtomicBool::new(false))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { device, db, json } => report(device.as_deref(), &db, json),
        Command::Challenge {
            device,
            db,
            nonce_ttl_secs,
            json,
        } => {
            let store = open_store(&db)?;
            if store.device_key(&device)?.is_none() {
                bail!("device {device} is not registered in {}", db.display());
            }
            let challenge = store.issue_challenge(&device, nonce_ttl_secs)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"device_id": device, "nonce": challenge.nonce, "expires_at": challenge.expires_at})
                );
            } else {
                println!(
                    "issued nonce {} to device {device}, expires at {}",
                    challenge.nonce, challenge.expires_at
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Enrol { device, db, json } => {
            crate::service::check_device_id(&device).map_err(anyhow::Error::msg)?;
            let store = open_store(&db)?;
            if store.device_key(&device)?.is_some() {
                bail!("device {device} is already registered in {}", db.display());
            }
            let token = store.enrol(&device)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"device_id": device, "enrolment_token": token})
                );
            } else {
                println!("{token}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rebaseline { device, db } => {
            let store = open_store(&db)?;
            if store.delete_baseline(&device)? {
                log::info!("dropped baseline of device {device}; it may upload a new one");
                println!("device {device} may upload a new baseline");
            } else {
                println!("device {device} has no baseline");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::GenCert {
            out_dir,
            subject_alt_names,
        } => {
            crate::cert::generate(&out_dir, &subject_alt_names)?;
            println!(
                "wrote ca.pem, cert.pem and key.pem to {}",
                out_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_token(file: &Path) -> Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read operator token file {}", file.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("operator token file {} is empty", file.display());
    }
    Ok(token.to_string())
}

fn open_store(db: &Path) -> Result<Store> {
    if let Some(parent) = db.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    Store::open(db)
}

fn report(device: Option<&str>, db: &Path, json: bool) -> Result<ExitCode> {
    let store = open_store(db)?;
    let reports: Vec<Report> = match device {
        Some(id) => match store.report(id)? {
            Some(report) => vec![report],
            None => bail!("device {id} is not registered in {}", db.display()),
        },
        None => {
            let mut all = Vec::new();
            for id in store.device_ids()? {
                all.extend(store.report(&id)?);
            }
            all
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(ExitCode::SUCCESS);
    }
    for report in &reports {
        print_report(report);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_report(report: &Report) {
    let checked = report
        .checked_at
        .map_or(String::new(), |at| format!(" (checked at {at})"));
    println!("{}: {}{checked}", report.device_id, report.status);
    for (label, paths) in [
        ("changed", &report.changed),
        ("added", &report.added),
        ("removed", &report.removed),
    ] {
        for path in paths {
            println!("  {label} {path}");
        }
    }
    if let Some(rejection) = &report.last_rejection {
        println!(
            "  last rejected answer at {}: {}",
            rejection.at, rejection.reason
        );
    }
}
