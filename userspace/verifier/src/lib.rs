//! Remote attestation, server side: the verifier that stores devices,
//! baselines, challenges and results in SQLite and serves them over HTTPS.
//!
//! The message format and the answer check come from `portcullis-attest`
//! ([`portcullis_attest::wire`]); this crate adds storage ([`store`]), the
//! request handling ([`service`]), HTTPS ([`server`]) and certificates for
//! a first setup ([`cert`]). It is not run on devices.
//!
//! # Entry points
//!
//! - CLI: [`cli::Command`] is a clap subcommand enum for the `portcullis`
//!   CLI to mount (`portcullis verifier ...`); [`cli::run`] executes one.
//!   `report`, `challenge` and `enrol` take `--json`. The `portcullis-verifier`
//!   binary runs the same commands on its own.
//! - Service: [`server::serve`] runs the HTTPS service on a listener until
//!   its `AtomicBool` is set; tests start it on a thread this way.

pub mod cert;
pub mod cli;
pub mod server;
pub mod service;
pub mod store;
