//! Commands that talk to the kernel module.

use anyhow::{bail, Context, Result};
use clap::Args;
use portcullis_netlink::{Client, Entry, Event, Mode, Status};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn connect() -> Result<Client> {
    Ok(Client::connect()?)
}

pub(crate) fn status(json: bool) -> Result<ExitCode> {
    let status = connect()?.status().context("reading status")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_status(&status);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(s: &Status) {
    let mode = s.mode.map(|m| m.name()).unwrap_or("unknown");
    println!("module version:    {}", s.module_version);
    println!("protocol version:  {}", s.protocol_version);
    println!("mode:              {mode}{}", if s.locked { " (locked)" } else { "" });
    println!("audit allowed:     {}", if s.audit_allowed { "on" } else { "off" });
    println!("policy:            generation {}, {} entries", s.policy_generation, s.policy_size);
    println!(
        "cache:             {} files, {} hits, {} misses",
        s.cache_size, s.cache_hits, s.cache_misses
    );
    println!(
        "events:            {} sent, {} dropped, {} queued",
        s.events_sent, s.events_dropped, s.events_queued
    );
    println!("                   allowed    denied");
    for (name, counts) in [
        ("bprm_check", s.bprm_check),
        ("mmap_file", s.mmap_file),
        ("file_mprotect", s.file_mprotect),
    ] {
        println!("  {name:<16} {:>9} {:>9}", counts.allowed, counts.denied);
    }
}

pub(crate) fn set_mode(mode: Mode) -> Result<ExitCode> {
    connect()?
        .set_mode(mode)
        .with_context(|| format!("setting mode {mode}"))?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn lock() -> Result<ExitCode> {
    connect()?.lock().context("locking")?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn audit_allowed(enabled: bool) -> Result<ExitCode> {
    connect()?.set_audit_allowed(enabled)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub(crate) struct EventsArgs {
    /// Keep printing events until interrupted.
    #[arg(long, short)]
    follow: bool,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<u64>,
    /// Without --follow, stop when no event arrived for this many seconds.
    #[arg(long, default_value_t = 2.0)]
    idle: f64,
    /// Print "ready" on standard error once subscribed, for scripts that
    /// start the listener and then cause events.
    #[arg(long)]
    ready: bool,
}

pub(crate) fn format_event(event: &Event) -> String {
    format!(
        "{} {} {} sha256={} pid={} uid={} comm={} mode={} reason={} generation={}",
        event.verdict,
        event.hook,
        event.path,
        event.sha256.as_deref().unwrap_or("-"),
        event.pid,
        event.uid,
        event.comm,
        event.mode,
        event.reason,
        event.policy_generation
    )
}

pub(crate) fn events(args: EventsArgs) -> Result<ExitCode> {
    let client = connect()?;
    let mut stream = client.subscribe()?;
    stream.set_timeout(Some(Duration::from_millis(200)))?;
    if args.ready {
        eprintln!("ready");
    }
    let idle = Duration::from_secs_f64(args.idle);
    let mut last = Instant::now();
    let mut printed = 0u64;
    let mut out = io::stdout().lock();
    loop {
        if args.count.is_some_and(|count| printed >= count) {
            break;
        }
        match stream.next_event()? {
            Some(event) => {
                if args.json {
                    writeln!(out, "{}", serde_json::to_string(&event)?)?;
                } else {
                    writeln!(out, "{}", format_event(&event))?;
                }
                out.flush()?;
                printed += 1;
                last = Instant::now();
            }
            None if !args.follow && last.elapsed() >= idle => break,
            None => {}
        }
    }
    if stream.overruns > 0 {
        eprintln!("portcullis: the event socket overflowed {} times; some events were lost", stream.overruns);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub(crate) struct AddArgs {
    /// Approve each digest only at the file's own path.
    #[arg(long)]
    path_bound: bool,
    /// Files to hash and approve.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let digest = portcullis_policy::hash_file(&file).with_context(|| format!("reading {}", path.display()))?;
    Ok(digest.0)
}

pub(crate) fn policy_add(args: AddArgs) -> Result<ExitCode> {
    let (path_bound, files) = (args.path_bound, &args.files);
    let mut entries = Vec::with_capacity(files.len());
    for file in files {
        let canonical = file
            .canonicalize()
            .with_context(|| format!("resolving {}", file.display()))?;
        let Some(path) = canonical.to_str() else {
            bail!("path {} is not valid UTF-8", canonical.display());
        };
        entries.push(Entry {
            digest: sha256_file(&canonical)?,
            path: path.to_string(),
            path_bound,
        });
    }
    let generation = connect()?.add_entries(&entries).context("adding entries")?;
    println!("added {} entries; policy generation {generation}", entries.len());
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub(crate) struct RawArgs {
    /// Generic netlink command number.
    command: u8,
    /// Attributes as TYPE:HEX, for example 4:05 for a one-byte mode.
    attrs: Vec<String>,
}

pub(crate) fn raw(args: RawArgs) -> Result<ExitCode> {
    let mut attrs = Vec::new();
    for text in &args.attrs {
        let Some((attr_type, hex)) = text.split_once(':') else {
            bail!("invalid attribute \"{text}\": expected TYPE:HEX");
        };
        let attr_type: u16 = attr_type
            .parse()
            .with_context(|| format!("invalid attribute type in \"{text}\""))?;
        if hex.len() % 2 != 0 {
            bail!("invalid attribute \"{text}\": odd number of hex digits");
        }
        let payload = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .with_context(|| format!("invalid hex in \"{text}\""))?;
        attrs.push((attr_type, payload));
    }
    connect()?.raw_request(args.command, &attrs)?;
    Ok(ExitCode::SUCCESS)
}
