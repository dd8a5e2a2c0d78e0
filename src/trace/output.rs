//! How a traced packet is shown: one line for people, one JSON object for
//! scripts.

use std::time::Duration;

use serde::Serialize;

use super::cgroups::CgroupName;
use super::record::Event;
use crate::packet::summary::Summary;

/// A traced packet with everything needed to show it.
pub struct Shown<'a> {
    pub event: &'a Event,
    /// Wall-clock time since the Unix epoch.
    pub time: Duration,
    pub cgroup: &'a CgroupName,
}

impl Shown<'_> {
    fn summary(&self) -> Summary {
        let mut s = Summary::of(&self.event.packet);
        s.length = self.event.len as usize;
        if !self.event.complete() {
            // Cut at the snap length: what is missing is not the packet's
            // fault.
            s.truncated = false;
        }
        s
    }

    fn verdict(&self) -> &'static str {
        if self.event.forwarded {
            "forward"
        } else {
            "drop"
        }
    }

    /// `14:03:07.123456 nginx.service egress drop IPv4 10.0.0.5:41234 ->
    /// 93.184.216.34:443 tcp [SYN] len 60`, in local time; a packet cut at
    /// the snap length ends with `(N captured)`.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} {} {} {} {}",
            local_time(self.time),
            self.cgroup.display(self.event.cgroup_id),
            self.event.direction,
            self.verdict(),
            self.summary()
        );
        if !self.event.complete() {
            line.push_str(&format!(" ({} captured)", self.event.packet.data.len()));
        }
        line
    }

    /// One JSON object: times (RFC 3339 UTC and Unix nanoseconds), the
    /// cgroup (id, path, unit), direction, verdict, lengths and the
    /// decoded headers under `packet`.
    pub fn json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Json<'a> {
            time: String,
            time_ns: u64,
            cgroup_id: u64,
            cgroup: Option<&'a str>,
            unit: Option<&'a str>,
            direction: crate::lang::ir::Direction,
            verdict: &'static str,
            len: u32,
            captured: usize,
            packet: Summary,
        }
        let json = Json {
            time: utc_rfc3339(self.time),
            time_ns: u64::try_from(self.time.as_nanos()).unwrap_or(u64::MAX),
            cgroup_id: self.event.cgroup_id,
            cgroup: self.cgroup.path.as_deref(),
            unit: self.cgroup.unit.as_deref(),
            direction: self.event.direction,
            verdict: self.verdict(),
            len: self.event.len,
            captured: self.event.packet.data.len(),
            packet: self.summary(),
        };
        serde_json::to_value(json).unwrap_or(serde_json::Value::Null)
    }
}

/// `HH:MM:SS.uuuuuu` in the local time zone, as tcpdump prints it.
pub fn local_time(t: Duration) -> String {
    let secs = t.as_secs() as libc::time_t;
    // SAFETY: localtime_r writes into the zeroed tm we pass and reads the
    // time we pass; it returns null only on overflow.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null();
    let (h, m, s) = if ok {
        (tm.tm_hour as u64, tm.tm_min as u64, tm.tm_sec as u64)
    } else {
        let day = t.as_secs() % 86_400;
        (day / 3600, day / 60 % 60, day % 60)
    };
    format!("{h:02}:{m:02}:{s:02}.{:06}", t.subsec_micros())
}

/// `2024-05-01T12:34:56.123456789Z`.
pub fn utc_rfc3339(t: Duration) -> String {
    let secs = t.as_secs();
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let day = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        day / 3600,
        day / 60 % 60,
        day % 60,
        t.subsec_nanos()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::ir::Direction;
    use crate::packet::Packet;

    #[test]
    fn utc_dates_are_right() {
        assert_eq!(
            utc_rfc3339(Duration::ZERO),
            "1970-01-01T00:00:00.000000000Z"
        );
        // 2000-02-29 (a leap day in a century year divisible by 400).
        assert_eq!(
            utc_rfc3339(Duration::new(951_782_400 + 3_723, 5)),
            "2000-02-29T01:02:03.000000005Z"
        );
        // `date -u -d @1700000000`: Tue Nov 14 22:13:20 UTC 2023.
        assert_eq!(
            utc_rfc3339(Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20.000000000Z"
        );
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    fn udp_event(caplen: usize) -> Event {
        // IPv4 UDP 127.0.0.1:5000 -> 127.0.0.2:53, 8 payload bytes.
        let mut data = vec![
            0x45, 0, 0, 36, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2,
        ];
        data.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 16, 0, 0]);
        data.extend_from_slice(&[0; 8]);
        let len = data.len() as u32;
        data.truncate(caplen);
        Event {
            monotonic_ns: 0,
            cgroup_id: 7,
            direction: Direction::Egress,
            forwarded: false,
            len,
            packet: Packet {
                ethertype: crate::packet::ETH_P_IP,
                data,
            },
        }
    }

    #[test]
    fn a_line_says_who_which_way_what_and_which_packet() {
        let event = udp_event(36);
        let cgroup = CgroupName {
            path: Some("/system.slice/x.service".into()),
            unit: Some("x.service".into()),
        };
        let shown = Shown {
            event: &event,
            time: Duration::new(1_700_000_000, 123_456_000),
            cgroup: &cgroup,
        };
        let line = shown.line();
        let rest = line.split_once(' ').unwrap().1;
        assert_eq!(
            rest,
            "x.service egress drop IPv4 127.0.0.1:5000 -> 127.0.0.2:53 udp len 36"
        );
        assert!(line.starts_with(|c: char| c.is_ascii_digit()), "{line}");
        assert!(line.contains(".123456 "), "{line}");
        let json = shown.json();
        assert_eq!(json["unit"], "x.service");
        assert_eq!(json["cgroup"], "/system.slice/x.service");
        assert_eq!(json["direction"], "egress");
        assert_eq!(json["verdict"], "drop");
        assert_eq!(json["packet"]["dst_port"], 53);
        assert_eq!(json["time"], "2023-11-14T22:13:20.123456000Z");
    }

    #[test]
    fn a_packet_cut_at_the_snap_length_says_so_and_keeps_its_length() {
        let event = udp_event(28);
        let cgroup = CgroupName::default();
        let shown = Shown {
            event: &event,
            time: Duration::ZERO,
            cgroup: &cgroup,
        };
        let line = shown.line();
        assert!(
            line.ends_with(
                "cgroup:7 egress drop IPv4 127.0.0.1:5000 -> 127.0.0.2:53 udp len 36 (28 captured)"
            ),
            "{line}"
        );
        assert_eq!(shown.json()["captured"], 28);
        assert_eq!(shown.json()["len"], 36);
    }
}
