//! Pure parser for `/proc/net/netstat` and `/proc/net/snmp`: header/value line pairs such as
//!
//! ```text
//! TcpExt: SyncookiesSent SyncookiesRecv ... ListenOverflows ListenDrops ...
//! TcpExt: 0 0 ... 1042 1042 ...
//! ```
//!
//! Counters are kept in a map keyed `Section.Name` (`TcpExt.ListenOverflows`, `Tcp.RetransSegs`),
//! so a kernel that adds or drops a counter never breaks a run. Never touches the filesystem.

use std::collections::BTreeMap;

/// One reading of every counter of one namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot(pub BTreeMap<String, i64>);

impl Snapshot {
    /// Parses the concatenated text of `/proc/net/netstat` and `/proc/net/snmp`.
    /// Lines come in pairs with the same `Section:` prefix; the first names, the second values.
    pub fn parse(text: &str) -> Result<Snapshot, String> {
        let mut map = BTreeMap::new();
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        while let Some(header) = lines.next() {
            let values = lines
                .next()
                .ok_or_else(|| format!("header line without values: {header:.60}"))?;
            let (section, names) = header
                .split_once(':')
                .ok_or_else(|| format!("line without a section: {header:.60}"))?;
            let (vsection, nums) = values
                .split_once(':')
                .ok_or_else(|| format!("line without a section: {values:.60}"))?;
            if section != vsection {
                return Err(format!("section {section} followed by {vsection}"));
            }
            let names: Vec<&str> = names.split_whitespace().collect();
            let nums: Vec<&str> = nums.split_whitespace().collect();
            if names.len() != nums.len() {
                return Err(format!(
                    "{section}: {} names but {} values",
                    names.len(),
                    nums.len()
                ));
            }
            for (name, num) in names.iter().zip(nums) {
                // Tcp.MaxConn is -1; everything else is an unsigned counter or a gauge.
                let v: i64 = num
                    .parse()
                    .map_err(|_| format!("{section}.{name}: `{num}` is not a number"))?;
                map.insert(format!("{section}.{name}"), v);
            }
        }
        Ok(Snapshot(map))
    }

    /// Adds the counters of `/proc/net/snmp6`, one `Name value` per line (`Ip6InReceives 12`),
    /// under the same `Section.Name` keys as the other files: `Ip6.InReceives`, `Icmp6.InMsgs`,
    /// `Udp6.InDatagrams`, `UdpLite6.InErrors`. The IPv6 counters have a file of their own; the
    /// TCP ones (`Tcp.*`, `TcpExt.*`) are shared by both families.
    pub fn add_snmp6(&mut self, text: &str) -> Result<(), String> {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (name, num) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("snmp6 line without a value: {line:.60}"))?;
            let (section, rest) = ["UdpLite6", "Udp6", "Icmp6", "Ip6"]
                .iter()
                .find_map(|p| Some((*p, name.strip_prefix(p)?)))
                .ok_or_else(|| format!("snmp6 counter of no known section: {name:.60}"))?;
            let v: i64 = num
                .trim()
                .parse()
                .map_err(|_| format!("{name}: `{}` is not a number", num.trim()))?;
            self.0.insert(format!("{section}.{rest}"), v);
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<i64> {
        self.0.get(name).copied()
    }

    /// The counters that changed between two snapshots, with their deltas.
    pub fn moved(before: &Snapshot, after: &Snapshot) -> BTreeMap<String, i64> {
        Snapshot::delta(before, after)
            .into_iter()
            .filter(|(_, d)| *d != 0)
            .collect()
    }

    /// `after - before` for every counter present in both.
    pub fn delta(before: &Snapshot, after: &Snapshot) -> BTreeMap<String, i64> {
        after
            .0
            .iter()
            .filter_map(|(k, a)| before.0.get(k).map(|b| (k.clone(), a - b)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on this project's machine kind (Linux 6.18.44), host namespace, idle.
    const NETSTAT_6_18: &str = include_str!("../../tests/fixtures/netstat/linux-6.18-netstat.txt");
    const SNMP_6_18: &str = include_str!("../../tests/fixtures/netstat/linux-6.18-snmp.txt");

    #[test]
    fn parses_real_netstat_and_snmp() {
        let s = Snapshot::parse(&format!("{NETSTAT_6_18}{SNMP_6_18}")).unwrap();
        assert!(s.get("TcpExt.ListenOverflows").is_some());
        assert!(s.get("TcpExt.TCPReqQFullDrop").is_some());
        assert!(s.get("IpExt.InOctets").is_some());
        assert_eq!(s.get("Tcp.MaxConn"), Some(-1));
        assert!(s.get("Tcp.RetransSegs").is_some());
        assert!(s.get("Udp.InDatagrams").is_some());
        assert!(s.0.len() > 200, "only {} counters", s.0.len());
    }

    #[test]
    fn tolerates_unknown_and_missing_counters() {
        let s = Snapshot::parse("TcpExt: NewThing ListenDrops\nTcpExt: 7 3\n").unwrap();
        assert_eq!(s.get("TcpExt.NewThing"), Some(7));
        assert_eq!(s.get("TcpExt.ListenOverflows"), None);
    }

    #[test]
    fn rejects_mismatched_lines() {
        assert!(Snapshot::parse("TcpExt: A B\nTcpExt: 1\n").is_err());
        assert!(Snapshot::parse("TcpExt: A\nIpExt: 1\n").is_err());
        assert!(Snapshot::parse("TcpExt: A\n").is_err());
        assert!(Snapshot::parse("TcpExt: A\nTcpExt: x\n").is_err());
    }

    #[test]
    fn delta_subtracts_common_keys() {
        let a = Snapshot::parse("T: A B\nT: 1 5\n").unwrap();
        let b = Snapshot::parse("T: A B C\nT: 4 5 9\n").unwrap();
        let d = Snapshot::delta(&a, &b);
        assert_eq!(d.get("T.A"), Some(&3));
        assert_eq!(d.get("T.B"), Some(&0));
        assert_eq!(d.get("T.C"), None);
    }
}
