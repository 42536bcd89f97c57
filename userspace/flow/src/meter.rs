//! The eBPF meter: loads bpf/flow.bpf.c, attaches it at TC ingress and
//! egress of the configured interfaces, and reads the flow table.

use std::collections::HashMap;
use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use libbpf_rs::{MapCore, MapHandle, Object, ObjectBuilder, TcHook, TcHookBuilder, TC_EGRESS, TC_INGRESS};

use crate::aging::{Counters, FlowKey};
use crate::record::{Direction, MacAddress};

/// The BPF object that build.rs compiled from bpf/flow.bpf.c.
static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/flow.bpf.o"));

/// Size of struct flow_key and struct flow_value in bpf/flow.bpf.c.
pub const KEY_SIZE: usize = 44;
pub const VALUE_SIZE: usize = 48;

/// Indexes of the per-CPU `counters` map in bpf/flow.bpf.c.
const COUNTER_MAP_FULL: u32 = 0;
const COUNTER_NOT_IP: u32 = 1;
const COUNTER_TRUNCATED: u32 = 2;

/// Handle and priority of our cls_bpf filters, so that detaching removes
/// only them and leaves other filters on the same clsact qdisc.
const TC_HANDLE: u32 = 0xF10;
const TC_PRIORITY: u32 = 0xF10;

/// Counters the BPF programs keep about packets they did not meter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MeterCounters {
    /// Packets not metered because the flow table was full.
    pub map_full: u64,
    /// Frames that were neither IPv4 nor IPv6.
    pub not_ip: u64,
    /// IP packets whose headers were cut short.
    pub truncated: u64,
}

/// One interface the programs are attached to.
struct Attachment {
    ifindex: i32,
    ingress: TcHook,
    egress: TcHook,
}

pub struct EbpfMeter {
    /// Keeps the programs and maps loaded.
    object: Object,
    flows: MapHandle,
    counters: MapHandle,
    attached: HashMap<String, Attachment>,
    /// Names of interfaces seen, by ifindex, kept after an interface is
    /// gone so its last flows still carry the name.
    names: HashMap<u32, String>,
    /// Pin path of the flow table, removed on drop.
    pinned: Option<PathBuf>,
}

impl EbpfMeter {
    /// Loads the BPF programs with a flow table of `max_flows` entries.
    pub fn load(max_flows: u32) -> anyhow::Result<EbpfMeter> {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Warn, log_libbpf_message)));
        let mut open = ObjectBuilder::default()
            .open_memory(BPF_OBJECT)
            .context("failed to open the embedded BPF object")?;
        let mut flows_map = open
            .maps_mut()
            .find(|map| map.name() == "flows")
            .ok_or_else(|| anyhow!("BPF object has no map named flows"))?;
        flows_map.set_max_entries(max_flows).context("failed to set the flow table size")?;

        let object = open.load().context("failed to load the BPF programs into the kernel")?;
        let flows = map_handle(&object, "flows")?;
        let counters = map_handle(&object, "counters")?;
        if flows.key_size() as usize != KEY_SIZE || flows.value_size() as usize != VALUE_SIZE {
            bail!(
                "flow map layout is {}/{} bytes, this program reads {KEY_SIZE}/{VALUE_SIZE}",
                flows.key_size(),
                flows.value_size()
            );
        }

        Ok(EbpfMeter { object, flows, counters, attached: HashMap::new(), names: HashMap::new(), pinned: None })
    }

    /// Attaches to the named interfaces that exist and are not attached,
    /// and drops those that are gone or were replaced by a new interface
    /// of the same name. Returns the number of interfaces attached now.
    pub fn reconcile(&mut self, interfaces: &[String]) -> usize {
        for name in interfaces {
            let ifindex = interface_index(name);
            let current = self.attached.get(name).map(|a| a.ifindex);
            match (ifindex, current) {
                (Some(index), Some(attached)) if index == attached => {}
                (None, None) => {}
                (None, Some(attached)) => {
                    log::warn!("interface {name} (ifindex {attached}) disappeared; metering resumes when it returns");
                    self.attached.remove(name);
                }
                (Some(index), previous) => {
                    if let Some(previous) = previous {
                        log::warn!("interface {name} changed from ifindex {previous} to {index}; attaching again");
                        self.attached.remove(name);
                    }
                    match self.attach(index) {
                        Ok(attachment) => {
                            log::info!("metering flows on {name} (ifindex {index}) at TC ingress and egress");
                            self.names.insert(index as u32, name.clone());
                            self.attached.insert(name.clone(), attachment);
                        }
                        Err(err) => log::warn!("failed to attach to {name} (ifindex {index}): {err:#}; retrying next poll"),
                    }
                }
            }
        }
        self.attached.len()
    }

    fn attach(&self, ifindex: i32) -> anyhow::Result<Attachment> {
        let ingress_prog = self.program("flow_ingress")?;
        let egress_prog = self.program("flow_egress")?;

        let mut ingress = TcHookBuilder::new(ingress_prog.as_fd())
            .ifindex(ifindex)
            .replace(true)
            .handle(TC_HANDLE)
            .priority(TC_PRIORITY)
            .hook(TC_INGRESS);
        let mut egress = TcHookBuilder::new(egress_prog.as_fd())
            .ifindex(ifindex)
            .replace(true)
            .handle(TC_HANDLE)
            .priority(TC_PRIORITY)
            .hook(TC_EGRESS);

        // create() makes the clsact qdisc, or finds the existing one.
        ingress.create().context("failed to create the clsact qdisc")?;
        ingress.attach().context("failed to attach at TC ingress")?;
        if let Err(err) = egress.attach() {
            let _ = ingress.detach();
            return Err(anyhow!(err).context("failed to attach at TC egress"));
        }
        Ok(Attachment { ifindex, ingress, egress })
    }

    fn program(&self, name: &str) -> anyhow::Result<libbpf_rs::Program<'_>> {
        self.object
            .progs()
            .find(|prog| prog.name() == name)
            .ok_or_else(|| anyhow!("BPF object has no program named {name}"))
    }

    /// Detaches the filters from every interface still present.
    ///
    /// NOTE: the clsact qdisc stays, because other programs may use it.
    pub fn detach_all(&mut self) {
        for (name, mut attachment) in self.attached.drain() {
            if interface_index(&name) != Some(attachment.ifindex) {
                continue;
            }
            for (hook, point) in [(&mut attachment.ingress, "ingress"), (&mut attachment.egress, "egress")] {
                if let Err(err) = hook.detach() {
                    log::warn!("failed to detach the flow meter from {name} at TC {point}: {err}");
                }
            }
        }
    }

    /// Reads every flow in the table, with timestamps converted to Unix
    /// milliseconds using `boot_epoch_ms`.
    pub fn read_flows(&self, boot_epoch_ms: u64) -> Vec<(FlowKey, Counters)> {
        read_flow_table(&self.flows, boot_epoch_ms)
    }

    /// Pins the flow table at `path` on a BPF file system, replacing a pin
    /// left there by an earlier run, so that `flow show` can read it.
    pub fn pin_flow_table(&mut self, path: &Path) -> anyhow::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
        }
        match std::fs::remove_file(path) {
            Ok(()) => log::info!("removed a stale flow table pin at {}", path.display()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(anyhow!(err).context(format!("failed to remove the old pin {}", path.display()))),
        }
        self.flows.pin(path).with_context(|| format!("failed to pin the flow table at {}", path.display()))?;
        self.pinned = Some(path.to_path_buf());
        Ok(())
    }

    /// Removes a flow and returns its final counters, read in the same
    /// operation so that no packet counted in between is lost.
    pub fn remove_flow(&self, key: &FlowKey, boot_epoch_ms: u64) -> Option<Counters> {
        let raw_key = encode_key(key);
        match self.flows.lookup_and_delete(&raw_key) {
            Ok(Some(raw_value)) => parse_value(&raw_value, boot_epoch_ms),
            Ok(None) => None,
            Err(err) => {
                log::warn!("failed to remove a flow from the BPF flow table: {err}");
                None
            }
        }
    }

    pub fn capacity(&self) -> u32 {
        self.flows.max_entries()
    }

    /// Returns the interface name of `ifindex`, if it was ever attached.
    pub fn interface_name(&self, ifindex: u32) -> Option<&str> {
        self.names.get(&ifindex).map(String::as_str)
    }

    /// Sums the per-CPU counters of packets the programs did not meter.
    pub fn counters(&self) -> MeterCounters {
        let read = |index: u32| -> u64 {
            match self.counters.lookup_percpu(&index.to_ne_bytes(), libbpf_rs::MapFlags::ANY) {
                Ok(Some(per_cpu)) => per_cpu
                    .iter()
                    .filter_map(|bytes| bytes.get(..8))
                    .map(|bytes| u64::from_ne_bytes(bytes.try_into().expect("8 bytes")))
                    .sum(),
                _ => 0,
            }
        };
        MeterCounters { map_full: read(COUNTER_MAP_FULL), not_ip: read(COUNTER_NOT_IP), truncated: read(COUNTER_TRUNCATED) }
    }
}

impl Drop for EbpfMeter {
    fn drop(&mut self) {
        self.detach_all();
        if let Some(path) = self.pinned.take() {
            if let Err(err) = std::fs::remove_file(&path) {
                log::warn!("failed to remove the flow table pin {}: {err}", path.display());
            }
        }
    }
}

/// Reads every flow in a flow table, with timestamps converted to Unix
/// milliseconds using `boot_epoch_ms`.
pub fn read_flow_table(flows: &MapHandle, boot_epoch_ms: u64) -> Vec<(FlowKey, Counters)> {
    let mut result = Vec::new();
    for raw_key in flows.keys() {
        // A flow deleted between keys() and lookup() is simply skipped.
        let Ok(Some(raw_value)) = flows.lookup(&raw_key, libbpf_rs::MapFlags::ANY) else { continue };
        if let (Some(key), Some(counters)) = (parse_key(&raw_key), parse_value(&raw_value, boot_epoch_ms)) {
            result.push((key, counters));
        }
    }
    result
}

/// Opens a flow table pinned by a running collector.
pub fn open_pinned_flow_table(path: &Path) -> anyhow::Result<MapHandle> {
    let map = MapHandle::from_pinned_path(path)
        .with_context(|| format!("failed to open the pinned flow table {}; is the collector running?", path.display()))?;
    if map.key_size() as usize != KEY_SIZE || map.value_size() as usize != VALUE_SIZE {
        bail!("{} is not a flow table of this version: key/value sizes {}/{}", path.display(), map.key_size(), map.value_size());
    }
    Ok(map)
}

/// Returns the name of interface `ifindex` in this network namespace.
pub fn interface_name_of(ifindex: u32) -> Option<String> {
    let mut buffer = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buffer` has IF_NAMESIZE bytes, as if_indextoname requires.
    let name = unsafe { libc::if_indextoname(ifindex, buffer.as_mut_ptr()) };
    if name.is_null() {
        return None;
    }
    // SAFETY: on success if_indextoname wrote a NUL-terminated name into `buffer`.
    let name = unsafe { std::ffi::CStr::from_ptr(buffer.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// Passes libbpf's own messages (verifier output, load errors) to the log
/// instead of stderr.
fn log_libbpf_message(level: libbpf_rs::PrintLevel, message: String) {
    let message = message.trim_end();
    match level {
        libbpf_rs::PrintLevel::Warn => log::warn!("libbpf: {message}"),
        libbpf_rs::PrintLevel::Info => log::info!("libbpf: {message}"),
        libbpf_rs::PrintLevel::Debug => log::debug!("libbpf: {message}"),
    }
}

fn map_handle(object: &Object, name: &str) -> anyhow::Result<MapHandle> {
    let map = object
        .maps()
        .find(|map| map.name() == name)
        .ok_or_else(|| anyhow!("BPF object has no map named {name}"))?;
    MapHandle::try_from(&map).with_context(|| format!("failed to duplicate the handle of map {name}"))
}

/// Returns the ifindex of interface `name`, or None if there is none.
pub fn interface_index(name: &str) -> Option<i32> {
    let name = CString::new(name).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index as i32)
}

/// Parses a struct flow_key. Returns None for a key of the wrong size or
/// with an IP version other than 4 or 6.
pub fn parse_key(raw: &[u8]) -> Option<FlowKey> {
    if raw.len() != KEY_SIZE {
        return None;
    }
    let address = |bytes: &[u8], version: u8| -> Option<IpAddr> {
        match version {
            4 => Some(IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))),
            6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?))),
            _ => None,
        }
    };
    let version = raw[41];
    Some(FlowKey {
        source_address: address(&raw[0..16], version)?,
        destination_address: address(&raw[16..32], version)?,
        interface_index: u32::from_ne_bytes(raw[32..36].try_into().ok()?),
        source_port: u16::from_ne_bytes(raw[36..38].try_into().ok()?),
        destination_port: u16::from_ne_bytes(raw[38..40].try_into().ok()?),
        protocol: raw[40],
        direction: if raw[42] == 0 { Direction::Ingress } else { Direction::Egress },
    })
}

/// Encodes a key back into struct flow_key, the inverse of [`parse_key`].
pub fn encode_key(key: &FlowKey) -> [u8; KEY_SIZE] {
    let mut raw = [0u8; KEY_SIZE];
    let version = match (key.source_address, key.destination_address) {
        (IpAddr::V4(source), IpAddr::V4(destination)) => {
            raw[0..4].copy_from_slice(&source.octets());
            raw[16..20].copy_from_slice(&destination.octets());
            4
        }
        (source, destination) => {
            raw[0..16].copy_from_slice(&to_ipv6_octets(source));
            raw[16..32].copy_from_slice(&to_ipv6_octets(destination));
            6
        }
    };
    raw[32..36].copy_from_slice(&key.interface_index.to_ne_bytes());
    raw[36..38].copy_from_slice(&key.source_port.to_ne_bytes());
    raw[38..40].copy_from_slice(&key.destination_port.to_ne_bytes());
    raw[40] = key.protocol;
    raw[41] = version;
    raw[42] = key.direction as u8;
    raw
}

fn to_ipv6_octets(address: IpAddr) -> [u8; 16] {
    match address {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Parses a struct flow_value; the BPF timestamps are CLOCK_MONOTONIC
/// nanoseconds, turned into Unix milliseconds with `boot_epoch_ms`.
pub fn parse_value(raw: &[u8], boot_epoch_ms: u64) -> Option<Counters> {
    if raw.len() != VALUE_SIZE {
        return None;
    }
    let word = |offset: usize| u64::from_ne_bytes(raw[offset..offset + 8].try_into().expect("8 bytes"));
    Some(Counters {
        packets: word(0),
        bytes: word(8),
        first_ms: boot_epoch_ms + word(16) / 1_000_000,
        last_ms: boot_epoch_ms + word(24) / 1_000_000,
        tcp_flags: u32::from_ne_bytes(raw[32..36].try_into().ok()?) as u8,
        source_mac: MacAddress(raw[36..42].try_into().ok()?),
        destination_mac: MacAddress(raw[42..48].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips() {
        for (source, destination) in [("192.0.2.1", "192.0.2.2"), ("2001:db8::1", "fe80::2")] {
            let key = FlowKey {
                interface_index: 12,
                direction: Direction::Egress,
                source_address: source.parse().unwrap(),
                destination_address: destination.parse().unwrap(),
                source_port: 443,
                destination_port: 51000,
                protocol: 17,
            };
            assert_eq!(parse_key(&encode_key(&key)), Some(key));
        }
    }

    #[test]
    fn key_with_bad_version_rejected() {
        let mut raw = [0u8; KEY_SIZE];
        raw[41] = 5;
        assert_eq!(parse_key(&raw), None);
        assert_eq!(parse_key(&raw[..40]), None);
    }

    #[test]
    fn value_converts_clock() {
        let mut raw = [0u8; VALUE_SIZE];
        raw[0..8].copy_from_slice(&3u64.to_ne_bytes());
        raw[8..16].copy_from_slice(&180u64.to_ne_bytes());
        raw[16..24].copy_from_slice(&2_000_000_000u64.to_ne_bytes());
        raw[24..32].copy_from_slice(&2_500_000_000u64.to_ne_bytes());
        raw[32..36].copy_from_slice(&0x12u32.to_ne_bytes());
        raw[36..42].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        raw[42..48].copy_from_slice(&[2, 0, 0, 0, 0, 2]);

        let counters = parse_value(&raw, 1_000_000).unwrap();
        assert_eq!((counters.packets, counters.bytes), (3, 180));
        assert_eq!((counters.first_ms, counters.last_ms), (1_002_000, 1_002_500));
        assert_eq!(counters.tcp_flags, 0x12);
        assert_eq!(counters.source_mac, MacAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(counters.destination_mac, MacAddress([2, 0, 0, 0, 0, 2]));
    }

    #[test]
    fn embedded_object_has_programs_and_maps() {
        // Opening parses the ELF and BTF without loading, so it needs no root.
        let open = ObjectBuilder::default().open_memory(BPF_OBJECT).unwrap();
        let programs: Vec<String> = open.progs().map(|p| p.name().to_string_lossy().into_owned()).collect();
        assert!(programs.contains(&"flow_ingress".to_string()), "{programs:?}");
        assert!(programs.contains(&"flow_egress".to_string()), "{programs:?}");
        let flows = open.maps().find(|m| m.name() == "flows").unwrap();
        assert_eq!(flows.key_size() as usize, KEY_SIZE);
        assert_eq!(flows.value_size() as usize, VALUE_SIZE);
    }
}
