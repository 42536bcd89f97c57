//! Certificates for a verifier that has none from an operator's CA: a
//! one-off CA and a server certificate it signs, made with rcgen.

use std::path::Path;

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// Writes `ca.pem` (give it to devices), `cert.pem` and `key.pem` (give
/// them to the verifier) into `out_dir`, for the names in `subject_alt_names`.
/// The CA key is dropped, so the CA signs nothing else.
pub fn generate(out_dir: &Path, subject_alt_names: &[String]) -> Result<()> {
    let ca_key = KeyPair::generate().context("cannot generate the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Portcullis verifier CA");
    let ca = ca_params
        .self_signed(&ca_key)
        .context("cannot sign the CA certificate")?;

    let server_key = KeyPair::generate().context("cannot generate the server key")?;
    let mut server_params = CertificateParams::new(subject_alt_names.to_vec())
        .context("invalid subject alternative name")?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "Portcullis verifier");
    let server = server_params
        .signed_by(&server_key, &ca, &ca_key)
        .context("cannot sign the server certificate")?;

    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let write = |name: &str, text: String, mode: u32| -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = out_dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    };
    write("ca.pem", ca.pem(), 0o644)?;
    write("cert.pem", server.pem(), 0o644)?;
    write("key.pem", server_key.serialize_pem(), 0o600)
}
