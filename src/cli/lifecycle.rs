//! `portwall load`, `unload`, `list`, `show` and `stats`: filters pinned
//! in bpffs, managed by name.

use super::Global;
use super::input::FilterArgs;
use crate::filters::{self, Counts, FilterInfo, FilterName, LoadRequest, PinDir};
use crate::lang::ir::Direction;
use crate::lang::print;
use anyhow::Result;
use clap::Args;

/// Compile a filter, load it and pin it under a name (or replace it live).
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    portwall load web 'icmp || (udp && dst_port == 53) || (tcp && dst_port == 443)'\n  \
    portwall load web -f /etc/portwall/web.filter --replace     # live, no restart\n\n\
    The filter is pinned at <bpffs>/portwall/NAME (default /sys/fs/bpf/portwall/NAME):\n\
    give that path to systemd (IPEgressFilterPath=, IPIngressFilterPath=), to\n\
    'bpftool cgroup attach CGROUP egress pinned PATH multi', or use 'portwall attach'.\n\
    --replace switches every cgroup running NAME to the new filter at once,\n\
    including attachments made by systemd or bpftool; if the new filter does not\n\
    compile or load, the old one keeps running.")]
pub struct LoadArgs {
    /// The filter's name: letters, digits, '-' and '_' (no dots).
    #[arg(value_name = "NAME")]
    pub name: FilterName,

    #[command(flatten)]
    pub filter: FilterArgs,

    /// The direction the filter will be attached in (default: either); a
    /// filter that uses local_*/remote_* names needs one, and can then only
    /// be attached in that direction.
    #[arg(long, value_name = "ingress|egress")]
    pub direction: Option<Direction>,

    /// Replace a loaded filter of this name live (loads it if missing).
    #[arg(long)]
    pub replace: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Remove a filter's pins.
#[derive(Args, Debug)]
pub struct UnloadArgs {
    #[arg(value_name = "NAME")]
    pub name: FilterName,
}

/// List every loaded filter with its expression, program id and counters.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Show one filter (expression, direction, program ids, counters, where it
/// is attached), or the filters attached to one cgroup or unit.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    portwall show web\n  \
    portwall show --unit nginx          # what filters nginx.service runs\n  \
    portwall show --cgroup system.slice/cron.service --json")]
pub struct ShowArgs {
    #[arg(value_name = "NAME", required_unless_present_any = ["cgroup", "pid", "unit"])]
    pub name: Option<FilterName>,

    /// Show the programs attached to this cgroup instead.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["name", "pid", "unit"])]
    pub cgroup: Option<std::path::PathBuf>,

    /// Show the programs attached to this process's cgroup instead.
    #[arg(long, value_name = "PID", conflicts_with_all = ["name", "unit"])]
    pub pid: Option<u32>,

    /// Show the programs attached to this running unit's cgroup instead.
    #[arg(long, value_name = "UNIT", conflicts_with = "name")]
    pub unit: Option<String>,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Print counters of one or all filters.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    portwall stats web\n  \
    portwall stats --prometheus > /var/lib/node_exporter/textfile/portwall.prom")]
pub struct StatsArgs {
    /// Only this filter.
    #[arg(value_name = "NAME")]
    pub name: Option<FilterName>,

    /// Print JSON.
    #[arg(long, conflicts_with = "prometheus")]
    pub json: bool,

    /// Print the Prometheus text exposition format.
    #[arg(long)]
    pub prometheus: bool,
}

pub fn load(global: &Global, args: &LoadArgs) -> Result<()> {
    let source = args.filter.require()?;
    let (ast, filter) = source.check_with(args.direction)?;
    let pins = PinDir::open(global.bpffs.as_deref(), true)?;
    let report = filters::load(
        &pins,
        &LoadRequest {
            name: &args.name,
            expression: &source.text,
            canonical: print::print(&ast),
            filter: &filter,
            direction: args.direction,
            replace: args.replace,
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let verb = if report.replaced {
            "replaced"
        } else {
            "loaded"
        };
        println!(
            "{verb} {} at {} (program {}, {} instructions, compiled in {:.1} ms, loaded in {:.1} ms)",
            report.name,
            report.path.display(),
            report.program_id,
            report.instructions,
            report.compile_time.as_secs_f64() * 1000.0,
            report.load_time.as_secs_f64() * 1000.0,
        );
    }
    Ok(())
}

pub fn unload(global: &Global, args: &UnloadArgs) -> Result<()> {
    let pins = PinDir::open(global.bpffs.as_deref(), false)?;
    let mut info = filters::info(&pins, &args.name)?;
    filters::find_attachments(std::slice::from_mut(&mut info))?;
    filters::unload(&pins, &args.name)?;
    println!("unloaded {}", args.name);
    if !info.attachments.is_empty() {
        eprintln!(
            "portwall: warning: {} is still attached; the kernel keeps it there, and without its \
             pinned jump table it now drops every packet (fail closed) until detached:",
            args.name
        );
        for a in &info.attachments {
            eprintln!(
                "  {} ({}): bpftool cgroup detach {} {} id {}",
                a.cgroup,
                a.direction,
                a.path.display(),
                a.direction,
                info.dispatcher_id
            );
        }
    }
    Ok(())
}

pub fn list(global: &Global, args: &ListArgs) -> Result<()> {
    let pins = match PinDir::open(global.bpffs.as_deref(), false) {
        Ok(p) => p,
        Err(filters::FilterError::NotBpffs(_)) if global.bpffs.is_none() => {
            return print_list(&[], args.json);
        }
        Err(e) => return Err(e.into()),
    };
    let mut all = filters::list(&pins)?;
    filters::find_attachments(&mut all)?;
    add_units(global, &mut all);
    print_list(&all, args.json)
}

fn print_list(all: &[FilterInfo], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(all)?);
        return Ok(());
    }
    if all.is_empty() {
        println!("no filters loaded");
        return Ok(());
    }
    for info in all {
        print_info(info);
    }
    Ok(())
}

/// Names the systemd units that run each filter, when systemd is the init
/// system and the filters are in its pin directory.
fn add_units(global: &Global, infos: &mut [FilterInfo]) {
    if global.bpffs.is_some() || !crate::systemd::systemctl::booted() {
        return;
    }
    let Ok(users) = crate::systemd::systemctl::filter_users(&crate::systemd::Layout::system())
    else {
        return;
    };
    for info in infos {
        info.units = users.get(&info.name).cloned().unwrap_or_default();
    }
}

pub fn show(global: &Global, args: &ShowArgs) -> Result<()> {
    let pins = PinDir::open(global.bpffs.as_deref(), false)?;
    let target =
        super::attach::resolve_target(args.cgroup.as_deref(), args.pid, args.unit.as_deref())?;
    let (Some(name), None) = (&args.name, &target) else {
        let cgroup = target.expect("clap requires NAME or a cgroup");
        return show_cgroup(&pins, &cgroup, args.json);
    };
    let mut info = filters::info(&pins, name)?;
    filters::find_attachments(std::slice::from_mut(&mut info))?;
    add_units(global, std::slice::from_mut(&mut info));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print_info(&info);
    }
    Ok(())
}

fn print_info(info: &FilterInfo) {
    let (expression, direction) = match &info.meta {
        Some(m) => (
            m.canonical.as_str(),
            m.direction.map_or("either", |d| d.as_str()),
        ),
        None => ("(description unavailable)", "?"),
    };
    println!("{}: {expression}", info.name);
    println!("  path {}", info.path.display());
    println!(
        "  direction {direction}, dispatcher program {}, filter program {}",
        info.dispatcher_id,
        info.program_id
            .map_or("none".to_string(), |id| id.to_string())
    );
    for d in Direction::ALL {
        let c = info.counters.get(d);
        println!(
            "  {d:<7} forwarded {} packets ({} bytes), dropped {} packets ({} bytes)",
            c.forwarded_packets, c.forwarded_bytes, c.dropped_packets, c.dropped_bytes
        );
    }
    if !info.units.is_empty() {
        println!("  used by {}", info.units.join(", "));
    }
    if info.attachments.is_empty() {
        println!("  not attached");
    }
    for a in &info.attachments {
        println!("  attached to {} ({})", a.cgroup, a.direction);
    }
}

/// The programs attached to one cgroup, named where they are portwall
/// filters.
fn show_cgroup(pins: &PinDir, cgroup: &std::path::Path, json: bool) -> Result<()> {
    let all = filters::list(pins)?;
    let mut rows = Vec::new();
    for direction in Direction::ALL {
        for id in crate::kernel::attach::query(cgroup, direction)? {
            let filter = all.iter().find(|f| f.dispatcher_id == id);
            rows.push(serde_json::json!({
                "direction": direction,
                "program_id": id,
                "filter": filter.map(|f| f.name.as_str()),
                "expression": filter.and_then(|f| f.meta.as_ref()).map(|m| m.canonical.as_str()),
            }));
        }
    }
    if json {
        let doc = serde_json::json!({ "cgroup": cgroup, "attached": rows });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("{}", cgroup.display());
    if rows.is_empty() {
        println!("  no programs attached");
    }
    for row in &rows {
        let what = match (row["filter"].as_str(), row["expression"].as_str()) {
            (Some(name), Some(expr)) => format!("portwall filter {name}: {expr}"),
            (Some(name), None) => format!("portwall filter {name}"),
            _ => "not a portwall filter".to_string(),
        };
        println!(
            "  {} program {}: {what}",
            row["direction"].as_str().unwrap_or("?"),
            row["program_id"]
        );
    }
    Ok(())
}

pub fn stats(global: &Global, args: &StatsArgs) -> Result<()> {
    let pins = PinDir::open(global.bpffs.as_deref(), false)?;
    let all = match &args.name {
        Some(name) => vec![filters::info(&pins, name)?],
        None => filters::list(&pins)?,
    };
    if args.prometheus {
        print!("{}", prometheus(&all));
    } else if args.json {
        let out: Vec<_> = all
            .iter()
            .map(|i| serde_json::json!({ "name": i.name, "counters": i.counters }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for info in &all {
            for d in Direction::ALL {
                let c: &Counts = info.counters.get(d);
                println!(
                    "{} {d} forwarded {} {} dropped {} {}",
                    info.name,
                    c.forwarded_packets,
                    c.forwarded_bytes,
                    c.dropped_packets,
                    c.dropped_bytes
                );
            }
        }
    }
    Ok(())
}

/// The Prometheus text exposition format, one counter family for packets
/// and one for bytes, labelled by filter, direction and verdict.
pub fn prometheus(all: &[FilterInfo]) -> String {
    let mut out = String::new();
    for (metric, help, pick) in [
        (
            "portwall_packets_total",
            "Packets judged by a portwall filter.",
            (|c: &Counts, fwd: bool| {
                if fwd {
                    c.forwarded_packets
                } else {
                    c.dropped_packets
                }
            }) as fn(&Counts, bool) -> u64,
        ),
        (
            "portwall_bytes_total",
            "Bytes of packets judged by a portwall filter.",
            |c: &Counts, fwd: bool| {
                if fwd {
                    c.forwarded_bytes
                } else {
                    c.dropped_bytes
                }
            },
        ),
    ] {
        out.push_str(&format!(
            "# HELP {metric} {help}\n# TYPE {metric} counter\n"
        ));
        for info in all {
            for d in Direction::ALL {
                for (verdict, fwd) in [("forward", true), ("drop", false)] {
                    out.push_str(&format!(
                        "{metric}{{filter=\"{}\",direction=\"{d}\",verdict=\"{verdict}\"}} {}\n",
                        info.name,
                        pick(info.counters.get(d), fwd)
                    ));
                }
            }
        }
    }
    out
}
