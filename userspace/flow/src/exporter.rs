//! Sends flow records to the configured collectors over UDP, one encoder
//! stream per collector, with templates at start and on schedule, and
//! appends them as JSON lines when a file is configured.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config::{CollectorConfig, Config, ExportProtocol};
use crate::ipfix::IpfixEncoder;
use crate::netflow9::Netflow9Encoder;
use crate::record::{self, FlowRecord};

enum Encoder {
    Ipfix(IpfixEncoder),
    Netflow9(Netflow9Encoder),
}

struct Collector {
    address: SocketAddr,
    protocol: ExportProtocol,
    socket: UdpSocket,
    encoder: Encoder,
    templates_sent: Option<Instant>,
    send_errors: u64,
}

/// Counters of what the exporter sent and failed to send.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExportStats {
    pub records: u64,
    pub messages: u64,
    pub send_errors: u64,
}

pub struct Exporter {
    collectors: Vec<Collector>,
    template_refresh: Duration,
    json_lines: Option<(PathBuf, File)>,
    stats: ExportStats,
}

impl Exporter {
    pub fn new(config: &Config) -> anyhow::Result<Exporter> {
        let collectors = config
            .collectors
            .iter()
            .map(|collector| open_collector(collector, config))
            .collect::<anyhow::Result<Vec<_>>>()?;

        let json_lines = match &config.json_lines_path {
            Some(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("failed to open JSON lines output {}", path.display()))?;
                Some((path.clone(), file))
            }
            None => None,
        };

        Ok(Exporter {
            collectors,
            template_refresh: Duration::from_secs(config.template_refresh_secs),
            json_lines,
            stats: ExportStats::default(),
        })
    }

    /// Sends `records` to every collector, with templates where they are
    /// due; an empty batch still sends templates that are due. A collector
    /// that cannot be reached does not stop the others.
    pub fn export(&mut self, records: &[FlowRecord], now_ms: u64, boot_epoch_ms: u64) {
        let now = Instant::now();
        for collector in &mut self.collectors {
            let templates_due = collector.templates_sent.is_none_or(|sent| now.duration_since(sent) >= self.template_refresh);
            if records.is_empty() && !templates_due {
                continue;
            }
            let messages = match &mut collector.encoder {
                Encoder::Ipfix(encoder) => encoder.encode(records, templates_due, (now_ms / 1000) as u32),
                Encoder::Netflow9(encoder) => encoder.encode(records, templates_due, now_ms, boot_epoch_ms),
            };
            if templates_due {
                collector.templates_sent = Some(now);
            }
            for message in &messages {
                match collector.socket.send_to(message, collector.address) {
                    Ok(_) => self.stats.messages += 1,
                    Err(err) => {
                        collector.send_errors += 1;
                        self.stats.send_errors += 1;
                        // Log the first failure and then every 100th, so an
                        // absent collector does not flood the log.
                        if collector.send_errors % 100 == 1 {
                            log::warn!(
                                "failed to send {} message to {}: {err}; {} failures so far, dropping it",
                                collector.protocol,
                                collector.address,
                                collector.send_errors
                            );
                        }
                    }
                }
            }
        }

        self.stats.records += records.len() as u64;
        self.write_json_lines(records);
    }

    fn write_json_lines(&mut self, records: &[FlowRecord]) {
        let Some((path, file)) = &mut self.json_lines else { return };
        if records.is_empty() {
            return;
        }
        let result = record::to_json_lines(records)
            .map_err(std::io::Error::other)
            .and_then(|text| file.write_all(text.as_bytes()));
        if let Err(err) = result {
            log::warn!("failed to append {} flow records to {}: {err}", records.len(), path.display());
        }
    }

    pub fn stats(&self) -> ExportStats {
        self.stats
    }
}

fn open_collector(collector: &CollectorConfig, config: &Config) -> anyhow::Result<Collector> {
    let bind: SocketAddr = if collector.address.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }
        .parse()
        .expect("literal socket address");
    // Unconnected on purpose: a connected UDP socket fails the next send
    // after any ICMP port unreachable, for example while the collector
    // restarts, and would count a message as lost that was sent.
    let socket = UdpSocket::bind(bind).with_context(|| format!("failed to open a UDP socket for {}", collector.address))?;

    let encoder = match collector.protocol {
        ExportProtocol::Ipfix => Encoder::Ipfix(IpfixEncoder::new(config.observation_domain, config.max_message_bytes)),
        ExportProtocol::Netflow9 => {
            Encoder::Netflow9(Netflow9Encoder::new(config.observation_domain, config.max_message_bytes))
        }
    };
    log::info!("exporting flow records as {} to {}", collector.protocol, collector.address);
    Ok(Collector {
        address: collector.address,
        protocol: collector.protocol,
        socket,
        encoder,
        templates_sent: None,
        send_errors: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::sample_ipv4;

    fn config_for(address: SocketAddr, protocol: ExportProtocol) -> Config {
        Config {
            collectors: vec![CollectorConfig { address, protocol }],
            template_refresh_secs: 3600,
            ..Config::default()
        }
    }

    fn receive(socket: &UdpSocket) -> Vec<u8> {
        let mut buffer = [0u8; 65536];
        let length = socket.recv(&mut buffer).unwrap();
        buffer[..length].to_vec()
    }

    #[test]
    fn templates_first_then_only_data() {
        let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
        listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut exporter = Exporter::new(&config_for(listener.local_addr().unwrap(), ExportProtocol::Ipfix)).unwrap();

        exporter.export(&[sample_ipv4()], 1_700_000_001_000, 0);
        let first = receive(&listener);
        assert_eq!(&first[0..2], &[0x00, 0x0a]);
        assert_eq!(&first[16..18], &[0x00, 0x02], "first message starts with the template set");

        exporter.export(&[sample_ipv4()], 1_700_000_002_000, 0);
        let second = receive(&listener);
        assert_eq!(&second[16..18], &[0x01, 0x00], "second message starts with data set 256");
        assert_eq!(exporter.stats().records, 2);
    }

    #[test]
    fn netflow9_goes_to_its_collector() {
        let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
        listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut exporter =
            Exporter::new(&config_for(listener.local_addr().unwrap(), ExportProtocol::Netflow9)).unwrap();

        exporter.export(&[sample_ipv4()], 1_700_000_001_000, 1_699_999_000_000);
        let packet = receive(&listener);
        assert_eq!(&packet[0..2], &[0x00, 0x09]);
        assert_eq!(&packet[2..4], &[0x00, 0x03], "two templates and one data record");
    }

    #[test]
    fn json_lines_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flows.jsonl");
        std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
        let config = Config { json_lines_path: Some(path.clone()), ..Config::default() };
        let mut exporter = Exporter::new(&config).unwrap();

        exporter.export(&[sample_ipv4(), sample_ipv4()], 0, 0);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "existing line kept, two records added");
        assert_eq!(lines[0], "{\"earlier\":true}");
        assert!(lines[2].contains("\"interface_name\":\"veth0\""));
    }
}
