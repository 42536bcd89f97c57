//! Library inventory and offline vulnerability matching for Portcullis.
//!
//! The inventory walks a root file system's library and program
//! directories and reads each ELF file's SONAME and architecture. It takes a
//! name and version from every source there is: the package database
//! (dpkg, opkg or apk), the file name (`libz.so.1.2.13`), and the version
//! string compiled into well-known libraries (OpenSSL, zlib, BusyBox, curl,
//! glibc, musl, expat, SQLite, Dropbear, OpenSSH). Each library lists all
//! of them and which one won.
//!
//! Matching reads feeds the operator supplies, offline: OSV JSON files or
//! zips, the Alpine security database, and CVE JSON 5 records. Versions are
//! compared under each ecosystem's own rules ([`version`]). A library whose
//! version is unknown is reported as unknown, and a record whose ranges a
//! program cannot evaluate is reported as "needs review", never as a match
//! or as nothing.
//!
//! It does not fetch feeds, read distribution changelogs for backported
//! fixes, or decide anything about enforcement.
//!
//! # Entry points
//!
//! - CLI: [`cli::Command`], mounted by `portcullis` as `portcullis libscan`,
//!   and [`cli::run`]. `scan` exits 0 (no known vulnerability), 1
//!   (vulnerable) or 2 (error).
//! - Daemon: [`collector::Config`] is the `libscan` section of
//!   /etc/portcullis/portcullis.json (read it with
//!   [`collector::Config::from_json`], whose errors name the key), and
//!   [`collector::spawn`] starts the scheduled scan on its own thread until
//!   the shared `Arc<AtomicBool>` is set.

pub mod cache;
pub mod catalogue;
pub mod cli;
pub mod collector;
pub mod elf;
pub mod feed;
pub mod inventory;
pub mod matching;
pub mod pkgdb;
mod priority;
pub mod report;
pub mod version;
