//! HTTPS for the verifier: rustls over blocking sockets, one thread per
//! connection, one request per connection, parsed with httparse.
//!
//! The API is a handful of JSON requests from devices that connect every
//! few minutes, so a blocking server on the TLS stack that the agent already
//! uses (rustls with ring) is enough. tiny_http's rustls support pins an
//! older rustls, and hyper would bring in tokio.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::service::{Response, Verifier};

const MAX_HEAD: usize = 16 * 1024;
/// Large enough for the baseline of a full root file system (about 200 bytes
/// an entry), small enough that a client cannot exhaust memory.
const MAX_BODY: usize = 256 * 1024 * 1024;
const MAX_CONNECTIONS: usize = 64;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Loads the certificate chain and private key that the verifier presents.
pub fn server_tls_config(cert_file: &Path, key_file: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("cannot read certificate file {}", cert_file.display()))?
        .enumerate()
        .map(|(index, cert)| {
            cert.with_context(|| {
                format!(
                    "{}: certificate {} is not valid PEM",
                    cert_file.display(),
                    index + 1
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if chain.is_empty() {
        bail!(
            "certificate file {} contains no certificate",
            cert_file.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("cannot read a private key from {}", key_file.display()))?;
    // rustls 0.23.48 deprecates the ring provider because it lacks the
    // post-quantum key exchange; ring is kept because the aws-lc-rs provider
    // needs cmake and a much longer build on the device toolchains.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("certificate and key do not form a usable pair")?;
    Ok(Arc::new(config))
}

/// Accepts connections until `stop` is set.
pub fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    verifier: Arc<Verifier>,
    stop: &AtomicBool,
) -> Result<()> {
    listener
        .set_nonblocking(true)
        .context("cannot make the listener non-blocking")?;
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(error) => {
                log::warn!("accept failed: {error}; continuing");
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            log::warn!(
                "dropped connection from {peer}: {MAX_CONNECTIONS} connections already open"
            );
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (tls, verifier, active) = (tls.clone(), verifier.clone(), active.clone());
        std::thread::spawn(move || {
            if let Err(error) = handle_connection(stream, tls, &verifier) {
                log::warn!("connection from {peer} failed: {error:#}");
            }
            active.fetch_sub(1, Ordering::Relaxed);
        });
    }
    Ok(())
}

fn handle_connection(
    stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    verifier: &Verifier,
) -> Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let connection = rustls::ServerConnection::new(tls)?;
    let mut stream = rustls::StreamOwned::new(connection, stream);

    let response = match read_request(&mut stream) {
        Ok(request) => verifier.handle_authorized(
            &request.method,
            &request.path,
            request.authorization.as_deref(),
            &request.body,
        ),
        Err(RequestError::Io(error)) => return Err(error).context("cannot read request"),
        Err(RequestError::Bad(status, message)) => {
            log::warn!("rejected request: {message}");
            Response {
                status,
                body: serde_json::json!({ "error": message }),
            }
        }
    };
    write_response(&mut stream, &response)?;
    stream.conn.send_close_notify();
    stream.flush()?;
    Ok(())
}

#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    authorization: Option<String>,
    body: Vec<u8>,
}

enum RequestError {
    Io(io::Error),
    Bad(u16, String),
}

impl From<io::Error> for RequestError {
    fn from(error: io::Error) -> Self {
        RequestError::Io(error)
    }
}

fn read_request(stream: &mut impl Read) -> Result<Request, RequestError> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let (method, path, authorization, content_length, head_len) = loop {
        let count = stream.read(&mut chunk)?;
        if count == 0 {
            return Err(RequestError::Bad(
                400,
                "connection closed inside the request head".into(),
            ));
        }
        buffer.extend_from_slice(&chunk[..count]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buffer) {
            Ok(httparse::Status::Complete(head_len)) => {
                let mut content_length = 0usize;
                let mut authorization = None;
                for header in request.headers.iter() {
                    if header.name.eq_ignore_ascii_case("authorization") {
                        authorization = std::str::from_utf8(header.value).ok().map(str::to_string);
                    }
                    if header.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(RequestError::Bad(
                            411,
                            "chunked bodies are not supported; send Content-Length".into(),
                        ));
                    }
                    if header.name.eq_ignore_ascii_case("content-length") {
                        content_length = std::str::from_utf8(header.value)
                            .ok()
                            .and_then(|value| value.trim().parse().ok())
                            .ok_or_else(|| {
                                RequestError::Bad(400, "invalid Content-Length".into())
                            })?;
                    }
                }
                let method = request.method.unwrap_or_default().to_string();
                let path = request.path.unwrap_or_default().to_string();
                break (method, path, authorization, content_length, head_len);
            }
            Ok(httparse::Status::Partial) if buffer.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => {
                return Err(RequestError::Bad(
                    431,
                    format!("request head exceeds {MAX_HEAD} bytes"),
                ))
            }
            Err(error) => {
                return Err(RequestError::Bad(
                    400,
                    format!("invalid HTTP request: {error}"),
                ))
            }
        }
    };

    if content_length > MAX_BODY {
        return Err(RequestError::Bad(
            413,
            format!("body of {content_length} bytes exceeds {MAX_BODY}"),
        ));
    }
    let mut body = buffer.split_off(head_len);
    if body.len() < content_length {
        // Read what arrives instead of allocating Content-Length up front, so
        // a client that announces a large body and sends nothing costs little.
        let missing = (content_length - body.len()) as u64;
        stream.take(missing).read_to_end(&mut body)?;
        if body.len() < content_length {
            return Err(RequestError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("body ended after {} of {content_length} bytes", body.len()),
            )));
        }
    }
    body.truncate(content_length);
    Ok(Request {
        method,
        path,
        authorization,
        body,
    })
}

fn write_response(stream: &mut impl Write, response: &Response) -> io::Result<()> {
    let body = serde_json::to_vec(&response.body)?;
    let reason = match response.status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Request, (u16, String)> {
        read_request(&mut &raw[..]).map_err(|error| match error {
            RequestError::Bad(status, message) => (status, message),
            RequestError::Io(error) => (0, error.to_string()),
        })
    }

    #[test]
    fn request_with_body_parses() {
        let request = parse(
            b"PUT /v1/devices/a/baseline HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: 4\r\n\r\nbody",
        )
        .unwrap();
        assert_eq!(request.method, "PUT");
        assert_eq!(request.path, "/v1/devices/a/baseline");
        assert_eq!(request.authorization.as_deref(), Some("Bearer t"));
        assert_eq!(request.body, b"body");
    }

    #[test]
    fn bad_requests_get_status() {
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap_err()
                .0,
            411
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n")
                .unwrap_err()
                .0,
            400
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n")
                .unwrap_err()
                .0,
            413
        );
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost").unwrap_err().0, 400);
        assert_eq!(parse(b"\x01\x02 nonsense\r\n\r\n").unwrap_err().0, 400);
    }

    #[test]
    fn truncated_body_is_an_error() {
        let error = parse(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort").unwrap_err();
        assert_eq!(error.0, 0, "{error:?}");
    }
}
