//! Running systemd's command-line tools, with errors that carry the
//! command, its output and what to look at next.
//!
//! portwall talks to systemd through `systemctl` rather than D-Bus: it is
//! what administrators run themselves, it works where D-Bus is not up (a
//! root `systemctl` uses systemd's private socket), and its errors are
//! already worded for people.

use super::{Layout, SystemdError};
use crate::filters::FilterName;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The oldest systemd with `IPIngressFilterPath=`/`IPEgressFilterPath=`.
pub const MIN_VERSION: u32 = 243;

/// Whether systemd is the init system here (sd_booted(3)'s test).
pub fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Fails unless systemd runs here and can attach pinned filters.
pub fn require_systemd() -> Result<u32, SystemdError> {
    if !booted() {
        return Err(SystemdError::NotBooted);
    }
    let v = version()?;
    if v < MIN_VERSION {
        return Err(SystemdError::TooOld(v));
    }
    Ok(v)
}

/// systemd's version number, from `systemctl --version`.
pub fn version() -> Result<u32, SystemdError> {
    let out = run(&["--version"], "")?;
    parse_version(&out).ok_or_else(|| SystemdError::Output {
        command: "systemctl --version".into(),
        detail: format!(
            "no `systemd NUMBER` in {:?}",
            out.lines().next().unwrap_or("")
        ),
    })
}

fn parse_version(out: &str) -> Option<u32> {
    let mut words = out.lines().next()?.split_whitespace();
    if words.next()? != "systemd" {
        return None;
    }
    // Some builds print `systemd 256.7`; the major number is what counts.
    let number: String = words
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    number.parse().ok()
}

/// Runs `systemctl ARGS`, returning its standard output; a failure
/// carries `hint` (what to look at next).
pub fn run(args: &[&str], hint: &str) -> Result<String, SystemdError> {
    let command = format!("systemctl {}", args.join(" "));
    let out = Command::new("systemctl")
        .args(args)
        .env("SYSTEMD_PAGER", "")
        .output()
        .map_err(|source| SystemdError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(SystemdError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            hint: hint.to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `systemctl daemon-reload`: systemd rereads unit files, and re-applies
/// every running unit's cgroup settings, IP filters included.
pub fn daemon_reload() -> Result<(), SystemdError> {
    run(&["daemon-reload"], "see `journalctl -b -u init.scope`").map(|_| ())
}

/// Starts `unit` and waits for it.
pub fn start(unit: &str) -> Result<(), SystemdError> {
    run(&["start", unit], &journal_hint(unit)).map(|_| ())
}

/// Reloads `unit` and waits for it.
pub fn reload(unit: &str) -> Result<(), SystemdError> {
    run(&["reload", unit], &journal_hint(unit)).map(|_| ())
}

/// Stops `unit` and waits for it.
pub fn stop(unit: &str) -> Result<(), SystemdError> {
    run(&["stop", unit], &journal_hint(unit)).map(|_| ())
}

fn journal_hint(unit: &str) -> String {
    format!("see `journalctl -b -u {unit}`")
}

/// `systemctl show -p PROPS UNIT` as a map.
pub fn show(unit: &str, props: &[&str]) -> Result<BTreeMap<String, String>, SystemdError> {
    let mut args = vec!["show", "--no-pager"];
    for p in props {
        args.extend(["-p", p]);
    }
    args.extend(["--", unit]);
    let out = run(&args, "")?;
    Ok(parse_records(&out).into_iter().next().unwrap_or_default())
}

/// Whether `unit` is active (or activating, reloading).
pub fn is_active(unit: &str) -> Result<bool, SystemdError> {
    let state = show(unit, &["ActiveState"])?;
    Ok(matches!(
        state.get("ActiveState").map(String::as_str),
        Some("active" | "activating" | "reloading")
    ))
}

/// `systemctl show` output: records of `Key=value` lines separated by
/// blank lines.
pub fn parse_records(out: &str) -> Vec<BTreeMap<String, String>> {
    let mut records = Vec::new();
    let mut current = BTreeMap::new();
    for line in out.lines() {
        if line.is_empty() {
            if !current.is_empty() {
                records.push(std::mem::take(&mut current));
            }
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            current.insert(k.to_string(), v.to_string());
        }
    }
    if !current.is_empty() {
        records.push(current);
    }
    records
}

/// Which units systemd runs each portwall filter for now: the
/// `IPIngressFilterPath=`/`IPEgressFilterPath=` of every running unit,
/// transient ones included (a stopped unit uses nothing, even if systemd
/// still has it loaded). Filter name to unit names.
pub fn filter_users(layout: &Layout) -> Result<BTreeMap<FilterName, Vec<String>>, SystemdError> {
    let out = run(
        &[
            "show",
            "--no-pager",
            "-p",
            "Id",
            "-p",
            "ActiveState",
            "-p",
            "IPIngressFilterPath",
            "-p",
            "IPEgressFilterPath",
            "--",
            "*",
        ],
        "",
    )?;
    Ok(users_from_records(layout, &parse_records(&out)))
}

fn users_from_records(
    layout: &Layout,
    records: &[BTreeMap<String, String>],
) -> BTreeMap<FilterName, Vec<String>> {
    let mut users: BTreeMap<FilterName, Vec<String>> = BTreeMap::new();
    for record in records {
        let Some(id) = record.get("Id") else { continue };
        let running = matches!(
            record.get("ActiveState").map(String::as_str),
            Some("active" | "activating" | "reloading" | "deactivating")
        );
        if !running {
            continue;
        }
        for key in ["IPIngressFilterPath", "IPEgressFilterPath"] {
            let Some(paths) = record.get(key) else {
                continue;
            };
            for path in paths.split_whitespace().map(Path::new) {
                if path.parent() != Some(layout.pin_dir.as_path()) {
                    continue;
                }
                let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.parse::<FilterName>().ok())
                else {
                    continue;
                };
                let list = users.entry(name).or_default();
                if !list.contains(id) {
                    list.push(id.clone());
                }
            }
        }
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT"),
            Some(252)
        );
        assert_eq!(parse_version("systemd 256.7\n"), Some(256));
        assert_eq!(parse_version("nonsense"), None);
    }

    #[test]
    fn records_and_users() {
        let out = "IPIngressFilterPath=\nIPEgressFilterPath=/sys/fs/bpf/portwall/f1\nId=t.service\nActiveState=active\n\n\
                   Id=x.mount\nIPEgressFilterPath=\nActiveState=active\n\n\
                   IPEgressFilterPath=/sys/fs/bpf/portwall/f1 /sys/fs/bpf/other\nActiveState=reloading\n\
                   IPIngressFilterPath=/sys/fs/bpf/portwall/f2\nId=run-u1.service\n\n\
                   Id=run-u2.service\nActiveState=inactive\nIPEgressFilterPath=/sys/fs/bpf/portwall/f3\n";
        let records = parse_records(out);
        assert_eq!(records.len(), 4);
        assert_eq!(records[1]["Id"], "x.mount");
        let users = users_from_records(&Layout::system(), &records);
        let f1: FilterName = "f1".parse().unwrap();
        let f2: FilterName = "f2".parse().unwrap();
        assert_eq!(users[&f1], vec!["t.service", "run-u1.service"]);
        assert_eq!(users[&f2], vec!["run-u1.service"]);
        assert_eq!(users.len(), 2);
    }
}
