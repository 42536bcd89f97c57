//! Flow aging as NetFlow exporters do it, independent of the meter.
//!
//! A meter (eBPF map or conntrack) reports cumulative counters per flow on
//! every poll. The flow cache remembers what it has already exported and
//! decides, for each flow:
//! - idle: no packet for the idle timeout. The meter removes the flow and
//!   the cache exports what was not exported yet.
//! - active: the record has covered the active timeout. The cache exports
//!   the delta and starts a new record; the meter keeps the flow.
//! - evicted: the table is fuller than the threshold, so the flows seen
//!   least recently are handled as idle before their time, and counted.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::record::{Direction, FlowRecord, FlowSource, MacAddress};

/// The identity of a unidirectional flow on one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub interface_index: u32,
    pub direction: Direction,
    pub source_address: IpAddr,
    pub destination_address: IpAddr,
    pub source_port: u16,
    pub destination_port: u16,
    pub protocol: u8,
}

/// Cumulative counters of a flow as the meter reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    pub tcp_flags: u8,
    /// First and last packet, in milliseconds since the Unix epoch.
    pub first_ms: u64,
    pub last_ms: u64,
    pub source_mac: MacAddress,
    pub destination_mac: MacAddress,
}

/// Reason a flow's record is due after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Idle,
    Active,
    /// Removed early because the table was too full.
    Evicted,
}

/// Counters of one flow already exported, and the start of its next record.
#[derive(Debug, Clone, Copy)]
struct Exported {
    packets: u64,
    bytes: u64,
    /// Start of the next record: the first packet, or the last packet of
    /// the previous record.
    next_start_ms: u64,
}

/// The export state of every flow the meter currently holds.
#[derive(Debug)]
pub struct FlowCache {
    source: FlowSource,
    active_timeout_ms: u64,
    idle_timeout_ms: u64,
    exported: HashMap<FlowKey, Exported>,
}

impl FlowCache {
    pub fn new(source: FlowSource, active_timeout_ms: u64, idle_timeout_ms: u64) -> Self {
        FlowCache { source, active_timeout_ms, idle_timeout_ms, exported: HashMap::new() }
    }

    /// Decides which of the meter's `flows` expire at `now_ms`.
    /// With `evict_down_to`, the flows seen least recently are also marked
    /// [`Expiry::Evicted`] until at most that many remain.
    pub fn expire(
        &mut self,
        flows: &[(FlowKey, Counters)],
        now_ms: u64,
        evict_down_to: Option<usize>,
    ) -> Vec<(FlowKey, Expiry)> {
        // Forget flows the meter no longer has (removed outside this cache).
        let present: std::collections::HashSet<&FlowKey> = flows.iter().map(|(key, _)| key).collect();
        self.exported.retain(|key, _| present.contains(key));

        let mut expiries = Vec::new();
        let mut remaining = Vec::new();
        for (key, counters) in flows {
            let start_ms = self.exported.get(key).map_or(counters.first_ms, |e| e.next_start_ms);
            if now_ms.saturating_sub(counters.last_ms) >= self.idle_timeout_ms {
                expiries.push((*key, Expiry::Idle));
            } else if now_ms.saturating_sub(start_ms) >= self.active_timeout_ms {
                expiries.push((*key, Expiry::Active));
                remaining.push((counters.last_ms, *key));
            } else {
                remaining.push((counters.last_ms, *key));
            }
        }

        if let Some(limit) = evict_down_to {
            if remaining.len() > limit {
                remaining.sort_by_key(|(last_ms, _)| *last_ms);
                let excess = remaining.len() - limit;
                for (_, key) in &remaining[..excess] {
                    expiries.retain(|(k, _)| k != key);
                    expiries.push((*key, Expiry::Evicted));
                }
            }
        }
        expiries
    }

    /// Builds the record of an active flow from its cumulative `counters`
    /// and remembers them as exported. Returns None when no packet arrived
    /// since the previous record.
    ///
    /// NOTE: tcp_flags is the OR over the whole flow, not only this record,
    /// because the meter cannot reset it without losing concurrent updates.
    pub fn export_active(&mut self, key: &FlowKey, counters: &Counters) -> Option<FlowRecord> {
        let previous = self.exported.get(key).copied();
        self.exported.insert(
            *key,
            Exported { packets: counters.packets, bytes: counters.bytes, next_start_ms: counters.last_ms },
        );
        self.delta_record(key, counters, previous)
    }

    /// Builds the last record of a flow the meter has removed, from its
    /// final cumulative `counters`, and drops the flow from the cache.
    pub fn export_final(&mut self, key: &FlowKey, counters: &Counters) -> Option<FlowRecord> {
        let previous = self.exported.remove(key);
        self.delta_record(key, counters, previous)
    }

    fn delta_record(&self, key: &FlowKey, counters: &Counters, previous: Option<Exported>) -> Option<FlowRecord> {
        let (packets, bytes, start_ms) = match previous {
            Some(exported) => (
                counters.packets.saturating_sub(exported.packets),
                counters.bytes.saturating_sub(exported.bytes),
                exported.next_start_ms,
            ),
            None => (counters.packets, counters.bytes, counters.first_ms),
        };
        if packets == 0 {
            return None;
        }
        Some(FlowRecord {
            source: self.source,
            interface_name: String::new(),
            interface_index: key.interface_index,
            direction: key.direction,
            source_mac: counters.source_mac,
            destination_mac: counters.destination_mac,
            source_address: key.source_address,
            destination_address: key.destination_address,
            source_port: key.source_port,
            destination_port: key.destination_port,
            protocol: key.protocol,
            bytes,
            packets,
            tcp_flags: counters.tcp_flags,
            start_ms: start_ms.min(counters.last_ms),
            end_ms: counters.last_ms,
        })
    }

    /// Number of flows with at least one record exported.
    pub fn len(&self) -> usize {
        self.exported.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exported.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> FlowKey {
        FlowKey {
            interface_index: 3,
            direction: Direction::Ingress,
            source_address: "192.0.2.1".parse().unwrap(),
            destination_address: "192.0.2.2".parse().unwrap(),
            source_port: port,
            destination_port: 80,
            protocol: 6,
        }
    }

    fn counters(packets: u64, bytes: u64, first_ms: u64, last_ms: u64) -> Counters {
        Counters {
            packets,
            bytes,
            tcp_flags: 0x02,
            first_ms,
            last_ms,
            source_mac: MacAddress([2, 0, 0, 0, 0, 1]),
            destination_mac: MacAddress([2, 0, 0, 0, 0, 2]),
        }
    }

    fn cache() -> FlowCache {
        // Active timeout 60 s, idle timeout 15 s.
        FlowCache::new(FlowSource::Ebpf, 60_000, 15_000)
    }

    #[test]
    fn fresh_flow_not_expired() {
        let mut cache = cache();
        let flows = [(key(1), counters(2, 120, 1_000, 2_000))];
        assert!(cache.expire(&flows, 10_000, None).is_empty());
    }

    #[test]
    fn idle_flow_exports_all() {
        let mut cache = cache();
        let flows = [(key(1), counters(2, 120, 1_000, 2_000))];
        assert_eq!(cache.expire(&flows, 17_000, None), [(key(1), Expiry::Idle)]);

        let record = cache.export_final(&key(1), &flows[0].1).unwrap();
        assert_eq!((record.packets, record.bytes), (2, 120));
        assert_eq!((record.start_ms, record.end_ms), (1_000, 2_000));
        assert_eq!(record.source_mac, MacAddress([2, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn active_flow_exports_deltas() {
        let mut cache = cache();
        let first = counters(10, 1_000, 0, 60_500);
        assert_eq!(cache.expire(&[(key(1), first)], 61_000, None), [(key(1), Expiry::Active)]);
        let record = cache.export_active(&key(1), &first).unwrap();
        assert_eq!((record.packets, record.bytes, record.start_ms, record.end_ms), (10, 1_000, 0, 60_500));

        // Not due again until a full active timeout after the last record.
        let second = counters(15, 1_600, 0, 100_000);
        assert!(cache.expire(&[(key(1), second)], 100_000, None).is_empty());
        assert_eq!(cache.expire(&[(key(1), second)], 120_600, None), [(key(1), Expiry::Idle)]);

        let record = cache.export_final(&key(1), &second).unwrap();
        assert_eq!((record.packets, record.bytes), (5, 600));
        assert_eq!((record.start_ms, record.end_ms), (60_500, 100_000));
        assert!(cache.is_empty());
    }

    #[test]
    fn active_flow_without_new_packets_exports_nothing() {
        let mut cache = cache();
        let flow = counters(10, 1_000, 0, 59_000);
        cache.export_active(&key(1), &flow).unwrap();
        assert!(cache.export_final(&key(1), &flow).is_none());
    }

    #[test]
    fn eviction_takes_least_recent() {
        let mut cache = cache();
        let flows = [
            (key(1), counters(1, 60, 0, 5_000)),
            (key(2), counters(1, 60, 0, 3_000)),
            (key(3), counters(1, 60, 0, 4_000)),
        ];
        let mut expiries = cache.expire(&flows, 6_000, Some(1));
        expiries.sort_by_key(|(key, _)| key.source_port);
        assert_eq!(expiries, [(key(2), Expiry::Evicted), (key(3), Expiry::Evicted)]);
    }

    #[test]
    fn eviction_leaves_idle_flows_idle() {
        let mut cache = cache();
        let flows = [(key(1), counters(1, 60, 0, 1_000)), (key(2), counters(1, 60, 0, 20_000))];
        let expiries = cache.expire(&flows, 20_000, Some(1));
        assert_eq!(expiries, [(key(1), Expiry::Idle)]);
    }

    #[test]
    fn flows_gone_from_meter_are_forgotten() {
        let mut cache = cache();
        let flow = counters(10, 1_000, 0, 59_000);
        cache.export_active(&key(1), &flow).unwrap();
        assert_eq!(cache.len(), 1);
        cache.expire(&[], 60_000, None);
        assert!(cache.is_empty());
    }
}
