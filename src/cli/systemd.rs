//! `portwall protect`, `unprotect` and `apply`: filters for systemd units.
//!
//! `protect`/`unprotect` validate everything (unit name, expressions,
//! filter names, systemd's presence) before they change anything, then
//! apply a plan made by [`crate::systemd::protect`]. `apply` is what the
//! loader unit `portwall@NAME.service` runs.
#![warn(missing_docs)]

use super::Global;
use super::input::{FilterError, FilterSource};
use crate::filters::{self, FilterName, LoadRequest, PinDir};
use crate::lang::ir::Direction;
use crate::lang::print;
use crate::systemd::config::{ConfigError, ConfigFile, FilterConfig};
use crate::systemd::protect::{self, FilterSpec, Plan, ProtectRequest, State};
use crate::systemd::{Layout, SystemdError, UnitName, systemctl, unit, units};
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

/// Firewall a systemd unit: load its filters and make systemd attach them.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    portwall protect myapp.service --egress 'icmp || (udp && dst_port == 53) || (tcp && dst_port == 443)'\n  \
    portwall protect api --ingress '(tcp && dst_port == 8080) || (udp && src_port == 53)' \\\n      \
    --egress '(udp && dst_port == 53) || (tcp && src_port == 8080)'\n  \
    portwall protect worker@1 --egress 'tcp && dst_port == 5432' --name workers   # shared by --name\n  \
    portwall protect myapp --egress 'tcp' --dry-run                               # print, change nothing\n\n\
    Each direction is one filter, BASE-ingress or BASE-egress (BASE is the unit name\n\
    without .service, or --name), configured in /etc/portwall/FILTER.conf, loaded by\n\
    portwall@FILTER.service and pinned at /sys/fs/bpf/portwall/FILTER. The unit gets a\n\
    drop-in, UNIT.d/90-portwall.conf: Requires= and After= on the loaders, and\n\
    IPIngressFilterPath=/IPEgressFilterPath= on the pins. systemd attaches the filters\n\
    when the unit starts and at daemon-reload, so a running unit is filtered at once:\n\
    no restart is needed. Filters see single packets: an ingress filter also judges\n\
    the replies to the unit's own connections, an egress one its servers' replies\n\
    (hence `udp && src_port == 53` and `tcp && src_port == 8080` above).\n\
    Running protect again replaces the filters live; it sets exactly the directions\n\
    given (a direction left out is removed).\n\
    The loader template portwall@.service is installed in /etc/systemd/system if none\n\
    is installed, running this portwall binary.")]
pub struct ProtectArgs {
    /// The unit to filter, e.g. nginx.service (no suffix means .service).
    #[arg(value_name = "UNIT")]
    pub unit: UnitName,

    /// The filter for packets the unit receives.
    #[arg(long, value_name = "EXPR")]
    pub ingress: Option<String>,

    /// The filter for packets the unit sends.
    #[arg(long, value_name = "EXPR")]
    pub egress: Option<String>,

    /// The filters' base name (default: from the unit); units given the
    /// same NAME share their filters.
    #[arg(long, value_name = "NAME")]
    pub name: Option<FilterName>,

    /// Print the files and commands instead of running them.
    #[arg(long)]
    pub dry_run: bool,
}

/// Remove what `portwall protect` added to a unit.
#[derive(Args, Debug)]
#[command(
    after_help = "Removes the unit's drop-in and, for each of its filters that no other\n\
    unit uses, stops the loader (unloading the filter) and removes the config; the\n\
    template goes too if protect installed it and nothing uses it any more. systemd\n\
    detaches the filters from a running unit at daemon-reload: no restart is needed."
)]
pub struct UnprotectArgs {
    /// The unit, as given to protect.
    #[arg(value_name = "UNIT")]
    pub unit: UnitName,

    /// Print the files and commands instead of running them.
    #[arg(long)]
    pub dry_run: bool,
}

/// Load a filter from its config, or replace it live (what portwall@NAME runs).
#[derive(Args, Debug)]
#[command(after_help = "The config, /etc/portwall/NAME.conf by default:\n\n  \
    # Comments: lines whose first non-blank character is `#`.\n  \
    direction = egress     # ingress, egress or either (default: either)\n  \
    filter = (tcp && dst_port == 443)\n      \
    || (udp && dst_port == 53)    # the filter may go on over indented lines\n\n\
    Settings start at the beginning of a line; the filter goes on until the next\n\
    setting or the end of the file. The filter is loaded and pinned at\n\
    <bpffs>/portwall/NAME, or, when already loaded, replaced live for every cgroup\n\
    running it. Examples:\n  \
    portwall apply web-egress --dry-run          # check the edited config\n  \
    systemctl reload portwall@web-egress         # apply it (runs portwall apply)")]
pub struct ApplyArgs {
    /// The filter's name.
    #[arg(value_name = "NAME")]
    pub name: FilterName,

    /// Read this config instead of /etc/portwall/NAME.conf.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Only check the config and print the filter it describes.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `portwall protect`: validates, plans, then applies the plan (or
/// prints it), and says whether the unit runs with its filters now.
pub fn protect(global: &Global, args: &ProtectArgs) -> Result<()> {
    let layout = Layout::system();
    check_bpffs(global, &layout)?;
    let base = args
        .name
        .clone()
        .unwrap_or_else(|| args.unit.default_base());
    let mut filters = Vec::new();
    for (direction, expr) in [
        (Direction::Ingress, &args.ingress),
        (Direction::Egress, &args.egress),
    ] {
        let Some(text) = expr else { continue };
        let source = FilterSource {
            text: text.clone(),
            origin: format!("--{direction}"),
        };
        source.check_with(Some(direction))?;
        let name = unit::filter_name(&base, direction).map_err(anyhow::Error::msg)?;
        filters.push(FilterSpec {
            name,
            config: FilterConfig {
                direction: Some(direction),
                expression: text.trim().to_string(),
            },
        });
    }
    if filters.is_empty() {
        bail!(
            "nothing to protect {} with: give --egress EXPR and/or --ingress EXPR \
             (e.g. --egress 'udp && dst_port == 53'); `portwall unprotect` removes filters",
            args.unit
        );
    }
    let systemd = systemd_available(args.dry_run)?;
    if systemd && !args.unit.is_template() {
        require_known(&args.unit)?;
    }
    let binary = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find the portwall binary's path: {e}"))?;
    let binary = units::exec_path(&binary).ok_or(SystemdError::BinaryPath(binary))?;
    let request = ProtectRequest {
        unit: args.unit.clone(),
        filters,
        shared: args.name.is_some(),
        binary,
    };
    let state = State::read(&layout, systemd)?;
    let plan = protect::plan_protect(&layout, &request, &state)?;
    if args.dry_run {
        return dry_run(&plan, &layout, systemd);
    }
    plan.apply(&layout, &mut std::io::stdout())?;
    print_notes(&plan);
    let unit = &args.unit;
    let summary = if unit.is_template() {
        format!(
            "instances of {unit} get the filters when they start; running ones got them at daemon-reload"
        )
    } else if systemctl::is_active(unit.as_str())? {
        if plan.reloads_systemd() {
            format!(
                "{unit} is running: systemd attached its filters at daemon-reload; no restart needed"
            )
        } else {
            format!("{unit} is running with its filters; no restart needed")
        }
    } else {
        format!("{unit} is not running; its filters apply when it starts (systemctl start {unit})")
    };
    println!("{summary}");
    for f in &request.filters {
        println!(
            "filter {name}: counters `portwall stats {name}`; edit {}, then `systemctl reload {}`",
            layout.config_path(&f.name).display(),
            crate::systemd::loader_unit(&f.name),
            name = f.name,
        );
    }
    Ok(())
}

/// Runs `portwall unprotect`: undoes what `protect` added to the unit.
pub fn unprotect(global: &Global, args: &UnprotectArgs) -> Result<()> {
    let layout = Layout::system();
    check_bpffs(global, &layout)?;
    let systemd = systemd_available(args.dry_run)?;
    let state = State::read(&layout, systemd)?;
    let Some(plan) = protect::plan_unprotect(&layout, &args.unit, &state)? else {
        eprintln!(
            "portwall: {} is not protected (no {}); nothing to do",
            args.unit,
            layout.drop_in_path(&args.unit).display()
        );
        return Ok(());
    };
    if args.dry_run {
        return dry_run(&plan, &layout, systemd);
    }
    plan.apply(&layout, &mut std::io::stdout())?;
    print_notes(&plan);
    let unit = &args.unit;
    if !unit.is_template() && systemctl::is_active(unit.as_str())? {
        println!(
            "{unit} is running: systemd detached its filters at daemon-reload; no restart needed"
        );
    } else {
        println!("{unit} is no longer filtered by portwall");
    }
    Ok(())
}

/// Runs `portwall apply`: loads a filter from its config, or replaces it
/// live when loaded.
pub fn apply(global: &Global, args: &ApplyArgs) -> Result<()> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| Layout::system().config_path(&args.name));
    let file = ConfigFile::read(&path).map_err(|e| match e {
        // Rendered with a caret, printed as it is.
        ConfigError::Filter(text) => anyhow::Error::new(FilterError(text)),
        other => other.into(),
    })?;
    let direction = file.config.direction;
    let canonical = print::print(&file.ast);
    if args.dry_run {
        println!(
            "{}: {} filter: {canonical}",
            args.name,
            direction.map_or("either", |d| d.as_str())
        );
        return Ok(());
    }
    let pins = PinDir::open(global.bpffs.as_deref(), true)?;
    let report = filters::load(
        &pins,
        &LoadRequest {
            name: &args.name,
            expression: &file.config.expression,
            canonical,
            filter: &file.filter,
            direction,
            replace: true,
        },
    )?;
    println!(
        "{} {} from {} at {} (program {})",
        if report.replaced {
            "replaced"
        } else {
            "loaded"
        },
        report.name,
        path.display(),
        report.path.display(),
        report.program_id
    );
    Ok(())
}

/// The loader loads into the default bpffs, and systemd is given paths
/// there: another bpffs would make the drop-in point at nothing.
fn check_bpffs(global: &Global, layout: &Layout) -> Result<(), SystemdError> {
    let expected = layout.pin_dir.parent().unwrap_or(&layout.pin_dir);
    match &global.bpffs {
        Some(given) if given != expected => Err(SystemdError::CustomBpffs {
            given: given.clone(),
            expected: expected.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// Whether systemd can be asked; a dry run works without it.
fn systemd_available(dry_run: bool) -> Result<bool, SystemdError> {
    match systemctl::require_systemd() {
        Ok(_) => Ok(true),
        Err(SystemdError::NotBooted) if dry_run => Ok(false),
        Err(e) => Err(e),
    }
}

fn require_known(unit: &UnitName) -> Result<(), SystemdError> {
    let props = systemctl::show(unit.as_str(), &["LoadState"])?;
    match props.get("LoadState").map(String::as_str) {
        Some("not-found") => Err(SystemdError::NoSuchUnit(unit.to_string())),
        _ => Ok(()),
    }
}

fn dry_run(plan: &Plan, layout: &Layout, systemd: bool) -> Result<()> {
    print!("{}", plan.render(layout));
    if !systemd {
        println!(
            "note: systemd is not running here, so this plan assumes no loader is running \
             and no other unit uses these filters"
        );
    }
    Ok(())
}

fn print_notes(plan: &Plan) {
    for note in &plan.notes {
        println!("note: {note}");
    }
}
