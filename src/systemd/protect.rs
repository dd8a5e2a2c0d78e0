//! `portwall protect` and `unprotect`: what they change, planned as a pure
//! function of the request and of what is installed, then applied step by
//! step (or printed, for `--dry-run`).
//!
//! Protecting UNIT with filters F1..Fn:
//! 1. write each filter's config `/etc/portwall/Fi.conf`;
//! 2. install the loader template if none is installed (then
//!    `daemon-reload`, so systemd sees it);
//! 3. start `portwall@Fi` (or reload it when running: the filter is
//!    replaced live); only now does each pin exist;
//! 4. write UNIT's drop-in and `daemon-reload`: systemd attaches the pins
//!    to UNIT's cgroup now if UNIT runs, or when it starts;
//! 5. filters UNIT used before and no longer does are retired (below).
//!
//! The order makes every intermediate state safe: a unit never refers to
//! a pin that does not exist yet, and if a filter fails to load, the
//! files written so far are restored and UNIT is left as it was.
//!
//! Unprotecting UNIT removes its drop-in, runs `daemon-reload` (systemd
//! detaches the filters from a running UNIT), then retires each of its
//! filters that no other unit uses: stop the loader (which unloads the
//! filter) and remove the config. The template goes too if `protect`
//! installed it and nothing uses it any more. Whatever another unit still
//! uses is kept, and said so.

use super::config::{ConfigFile, FilterConfig};
use super::unit::UnitName;
use super::units::{self, TemplateOrigin, UnitFilters};
use super::{DROP_IN_NAME, Layout, SystemdError, loader_unit, systemctl};
use crate::filters::{self, FilterName, PinDir};
use crate::lang::ir::Direction;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One filter `protect` sets up.
#[derive(Clone, Debug)]
pub struct FilterSpec {
    /// The filter's name (`BASE-ingress`, `BASE-egress`).
    pub name: FilterName,
    /// Its config; the direction is always set.
    pub config: FilterConfig,
}

impl FilterSpec {
    fn direction(&self) -> Direction {
        self.config
            .direction
            .expect("protect gives every filter a direction")
    }
}

/// What `protect` is asked to do.
#[derive(Clone, Debug)]
pub struct ProtectRequest {
    /// The unit to protect.
    pub unit: UnitName,
    /// The unit's filters from now on (its earlier ones not listed here
    /// are retired).
    pub filters: Vec<FilterSpec>,
    /// The filter names were chosen with `--name`: sharing them with
    /// other units is intended.
    pub shared: bool,
    /// The portwall binary as a unit file's command (for the template).
    pub binary: String,
}

/// An installed loader template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Template {
    /// None is installed.
    Missing,
    /// One `protect` installed, with its text.
    AutoInstalled {
        /// Where it is.
        path: PathBuf,
        /// Its text, to tell whether it runs the current binary.
        text: String,
    },
    /// One installed by a package or by hand: used as it is.
    Installed(PathBuf),
}

/// A protected unit's drop-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropIn {
    /// The file as it is.
    pub text: String,
    /// The filters it gives the unit.
    pub filters: UnitFilters,
}

/// What planning depends on: portwall's files and what systemd and the
/// kernel run now.
#[derive(Clone, Debug)]
pub struct State {
    /// Every unit with a portwall drop-in.
    pub drop_ins: BTreeMap<UnitName, DropIn>,
    /// Every filter config, by filter name, with its text.
    pub configs: BTreeMap<FilterName, String>,
    /// Filters pinned now.
    pub pinned: BTreeSet<FilterName>,
    /// Loaded units running each filter, as systemd reports them.
    pub users: BTreeMap<FilterName, Vec<String>>,
    /// Loader instances that are active.
    pub active_loaders: BTreeSet<FilterName>,
    /// The installed loader template, if any.
    pub template: Template,
}

impl State {
    /// Reads the state from disk, bpffs and, when `systemd` is true,
    /// from systemd.
    pub fn read(layout: &Layout, systemd: bool) -> Result<State, SystemdError> {
        let drop_ins = read_drop_ins(layout)?;
        let configs = read_configs(layout)?;
        let mut pinned = BTreeSet::new();
        if let Ok(entries) = std::fs::read_dir(&layout.pin_dir) {
            for entry in entries.flatten() {
                if let Some(name) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                    pinned.insert(name);
                }
            }
        }
        let (users, active_loaders) = if systemd {
            let users = systemctl::filter_users(layout)?;
            let mut active = BTreeSet::new();
            let mut names: BTreeSet<&FilterName> = configs.keys().collect();
            names.extend(pinned.iter());
            for unit in drop_ins.values() {
                names.extend(unit.filters.iter().map(|(_, n)| n));
            }
            for name in names {
                if systemctl::is_active(&loader_unit(name))? {
                    active.insert(name.clone());
                }
            }
            (users, active)
        } else {
            Default::default()
        };
        Ok(State {
            drop_ins,
            configs,
            pinned,
            users,
            active_loaders,
            template: read_template(layout)?,
        })
    }
}

fn read_drop_ins(layout: &Layout) -> Result<BTreeMap<UnitName, DropIn>, SystemdError> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(&layout.unit_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(SystemdError::io("read", &layout.unit_dir, e)),
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(unit) = file_name
            .to_str()
            .and_then(|n| n.strip_suffix(".d"))
            .and_then(|n| n.parse::<UnitName>().ok())
        else {
            continue;
        };
        let path = entry.path().join(DROP_IN_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let filters = units::parse_drop_in(layout, &text);
                out.insert(unit, DropIn { text, filters });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SystemdError::io("read", &path, e)),
        }
    }
    Ok(out)
}

fn read_configs(layout: &Layout) -> Result<BTreeMap<FilterName, String>, SystemdError> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(&layout.config_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(SystemdError::io("read", &layout.config_dir, e)),
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name
            .to_str()
            .and_then(|n| n.strip_suffix(".conf"))
            .and_then(|n| n.parse::<FilterName>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let text =
            std::fs::read_to_string(&path).map_err(|e| SystemdError::io("read", &path, e))?;
        out.insert(name, text);
    }
    Ok(out)
}

fn read_template(layout: &Layout) -> Result<Template, SystemdError> {
    for dir in &layout.template_dirs {
        let path = dir.join(super::TEMPLATE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) if text.starts_with(units::AUTO_INSTALLED_MARK) => {
                return Ok(Template::AutoInstalled { path, text });
            }
            Ok(_) => return Ok(Template::Installed(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SystemdError::io("read", &path, e)),
        }
    }
    Ok(Template::Missing)
}

/// One change to the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Write `text` to the file `path` (creating its directory).
    #[allow(missing_docs)]
    Write { path: PathBuf, text: String },
    /// Remove the file `path`.
    #[allow(missing_docs)]
    Remove { path: PathBuf },
    /// Remove the directory `path` if it is empty.
    #[allow(missing_docs)]
    RemoveDirIfEmpty { path: PathBuf },
    /// `systemctl daemon-reload`.
    DaemonReload,
    /// `systemctl start` the loader: loads the filter.
    Start(FilterName),
    /// `systemctl reload` the loader: replaces the filter live.
    Reload(FilterName),
    /// `systemctl stop` the loader: unloads the filter.
    Stop(FilterName),
    /// Remove the pins of a filter whose loader is not running.
    Unload(FilterName),
}

/// The steps of one `protect` or `unprotect`, and what to tell the user
/// beyond them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The changes, in the order they are made.
    pub steps: Vec<Step>,
    /// What the user should know: filters kept for other units, rules
    /// that change for other units too.
    pub notes: Vec<String>,
}

/// The comment at the top of a config written by `protect`.
fn config_header(name: &FilterName) -> String {
    format!(
        "portwall filter `{name}`, written by `portwall protect`.\n\
         Edit it, check it with `portwall apply {name} --dry-run`, then apply it live:\n  \
         systemctl reload {}\n\
         Format: `portwall apply --help`.",
        loader_unit(name)
    )
}

/// Plans `protect`.
pub fn plan_protect(
    layout: &Layout,
    req: &ProtectRequest,
    state: &State,
) -> Result<Plan, SystemdError> {
    let mut plan = Plan::default();
    let new: UnitFilters = req
        .filters
        .iter()
        .map(|f| (f.direction(), f.name.clone()))
        .collect();

    let old = state.drop_ins.get(&req.unit);
    let mut configs = Vec::new();
    for f in &req.filters {
        let others = other_units(state, &req.unit, &f.name);
        let ours = old.is_some_and(|d| d.filters.iter().any(|(_, n)| *n == f.name));
        if !others.is_empty() && !req.shared && !ours {
            return Err(SystemdError::NameInUse {
                filter: f.name.clone(),
                users: others.join(", "),
            });
        }
        let existing = state.configs.get(&f.name);
        if state.pinned.contains(&f.name) && existing.is_none() {
            return Err(SystemdError::NotManaged {
                filter: f.name.clone(),
                pin: layout.pin_path(&f.name),
                config: layout.config_path(&f.name),
            });
        }
        let path = layout.config_path(&f.name);
        let text = f.config.render(&config_header(&f.name));
        // What is written is what the loader will read: check it as such.
        ConfigFile::parse(&text, &path.display().to_string())?;
        if existing != Some(&text) {
            if !others.is_empty() && existing.is_some() {
                plan.notes.push(format!(
                    "filter `{}` is shared with {}: its new rule applies there too",
                    f.name,
                    others.join(", ")
                ));
            }
            configs.push(Step::Write { path, text });
        }
    }
    plan.steps.extend(configs);

    let wanted = units::template(&req.binary, TemplateOrigin::AutoInstalled);
    let template_path = match &state.template {
        Template::Missing => Some(layout.template_path()),
        Template::AutoInstalled { path, text } if *text != wanted => Some(path.clone()),
        _ => None,
    };
    if let Some(path) = template_path {
        plan.steps.push(Step::Write { path, text: wanted });
        plan.steps.push(Step::DaemonReload);
    }

    for f in &req.filters {
        plan.steps.push(if state.active_loaders.contains(&f.name) {
            Step::Reload(f.name.clone())
        } else {
            Step::Start(f.name.clone())
        });
    }

    let text = units::drop_in(layout, &req.unit, &new);
    if old.map(|d| &d.text) != Some(&text) {
        plan.steps.push(Step::Write {
            path: layout.drop_in_path(&req.unit),
            text,
        });
        plan.steps.push(Step::DaemonReload);
    }

    let dropped: Vec<FilterName> = old
        .map(|d| d.filters.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(_, n)| n)
        .filter(|n| !new.iter().any(|(_, m)| m == n))
        .collect();
    retire(layout, state, &req.unit, &dropped, &mut plan);
    Ok(plan)
}

/// Plans `unprotect`; `None` when `unit` has no portwall drop-in.
pub fn plan_unprotect(
    layout: &Layout,
    unit: &UnitName,
    state: &State,
) -> Result<Option<Plan>, SystemdError> {
    let Some(drop_in) = state.drop_ins.get(unit) else {
        return Ok(None);
    };
    let mut plan = Plan::default();
    plan.steps.push(Step::Remove {
        path: layout.drop_in_path(unit),
    });
    plan.steps.push(Step::RemoveDirIfEmpty {
        path: layout.drop_in_dir(unit),
    });
    plan.steps.push(Step::DaemonReload);
    let names: Vec<FilterName> = drop_in.filters.iter().map(|(_, n)| n.clone()).collect();
    let retired = retire(layout, state, unit, &names, &mut plan);
    if !retired.is_empty() {
        plan.steps.push(Step::RemoveDirIfEmpty {
            path: layout.config_dir.clone(),
        });
    }

    // The template goes with the last use of it: no other protected
    // unit, no other config, no other loader running.
    if let Template::AutoInstalled { path, .. } = &state.template {
        let other_drop_ins = state.drop_ins.keys().any(|u| u != unit);
        let other_configs = state.configs.keys().any(|n| !retired.contains(n));
        let other_loaders = state.active_loaders.iter().any(|n| !retired.contains(n));
        if !other_drop_ins && !other_configs && !other_loaders {
            plan.steps.push(Step::Remove { path: path.clone() });
            plan.steps.push(Step::DaemonReload);
        }
    }
    Ok(Some(plan))
}

/// Other units using filter `name`: through a portwall drop-in, or as
/// systemd reports (hand-written units, `systemd-run -p ...`).
fn other_units(state: &State, unit: &UnitName, name: &FilterName) -> Vec<String> {
    let mut users: BTreeSet<String> = state
        .drop_ins
        .iter()
        .filter(|(u, d)| *u != unit && d.filters.iter().any(|(_, n)| n == name))
        .map(|(u, _)| u.to_string())
        .collect();
    if let Some(list) = state.users.get(name) {
        users.extend(list.iter().filter(|u| *u != unit.as_str()).cloned());
    }
    users.into_iter().collect()
}

/// Adds the steps that retire `names` (no longer used by `unit`) unless
/// another unit uses them; returns the ones retired.
fn retire(
    layout: &Layout,
    state: &State,
    unit: &UnitName,
    names: &[FilterName],
    plan: &mut Plan,
) -> BTreeSet<FilterName> {
    let mut retired = BTreeSet::new();
    for name in names {
        let others = other_units(state, unit, name);
        if !others.is_empty() {
            plan.notes.push(format!(
                "kept filter `{name}`: {} still use{} it",
                others.join(", "),
                if others.len() == 1 { "s" } else { "" }
            ));
            continue;
        }
        if state.active_loaders.contains(name) {
            plan.steps.push(Step::Stop(name.clone()));
        } else if state.pinned.contains(name) {
            plan.steps.push(Step::Unload(name.clone()));
        }
        if state.configs.contains_key(name) {
            plan.steps.push(Step::Remove {
                path: layout.config_path(name),
            });
        }
        retired.insert(name.clone());
    }
    retired
}

impl Plan {
    /// The plan as `--dry-run` prints it: each file in full, each command
    /// as it would be run.
    pub fn render(&self, layout: &Layout) -> String {
        let mut out = String::new();
        for step in &self.steps {
            match step {
                Step::Write { path, text } => {
                    out.push_str(&format!("--- write {}\n{text}", path.display()));
                    if !text.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str("---\n");
                }
                Step::Remove { path } => out.push_str(&format!("rm {}\n", path.display())),
                Step::RemoveDirIfEmpty { path } => {
                    out.push_str(&format!("rmdir {} (if empty)\n", path.display()))
                }
                Step::DaemonReload => out.push_str("systemctl daemon-reload\n"),
                Step::Start(n) => out.push_str(&format!("systemctl start {}\n", loader_unit(n))),
                Step::Reload(n) => out.push_str(&format!("systemctl reload {}\n", loader_unit(n))),
                Step::Stop(n) => out.push_str(&format!("systemctl stop {}\n", loader_unit(n))),
                Step::Unload(n) => out.push_str(&format!(
                    "portwall unload {n}    # pinned at {}\n",
                    layout.pin_path(n).display()
                )),
            }
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }

    /// Whether the plan makes systemd reread unit files.
    pub fn reloads_systemd(&self) -> bool {
        self.steps.contains(&Step::DaemonReload)
    }

    /// Applies the plan, printing one line per change to `log`. If a step
    /// fails, what was done so far is undone: files put back, loaders this
    /// run started stopped, loaders it reloaded reloaded again from the
    /// restored configs; the error says so.
    pub fn apply(&self, layout: &Layout, log: &mut dyn Write) -> Result<(), SystemdError> {
        let mut undo = Undo::default();
        for step in &self.steps {
            if let Err(err) = apply_step(layout, step, &mut undo, log) {
                let restored = undo.run();
                return Err(match restored {
                    Ok(()) if undo.is_empty() => err,
                    Ok(()) => SystemdError::RolledBack {
                        source: Box::new(err),
                        undone: undo.describe(),
                    },
                    Err(again) => SystemdError::RollbackFailed {
                        source: Box::new(err),
                        rollback: Box::new(again),
                    },
                });
            }
        }
        Ok(())
    }
}

/// What a failed plan must put back.
#[derive(Default)]
struct Undo {
    /// Files and their previous contents (`None`: did not exist).
    files: Vec<(PathBuf, Option<Vec<u8>>)>,
    /// Directories created for new files.
    dirs: Vec<PathBuf>,
    /// Loaders this run started (their filters did not run before).
    started: Vec<FilterName>,
    /// Loaders this run reloaded (their old configs are put back).
    reloaded: Vec<FilterName>,
    daemon_reloaded: bool,
}

impl Undo {
    fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn describe(&self) -> String {
        self.files
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn run(&self) -> Result<(), SystemdError> {
        for (path, before) in self.files.iter().rev() {
            match before {
                Some(bytes) => write_file(path, bytes)?,
                None => remove_file(path)?,
            }
        }
        for dir in self.dirs.iter().rev() {
            // Only if empty: something else may have been put there.
            let _ = std::fs::remove_dir(dir);
        }
        if self.daemon_reloaded {
            systemctl::daemon_reload()?;
        }
        for name in &self.started {
            let unit = loader_unit(name);
            systemctl::stop(&unit)?;
            // A loader that failed to start would stay listed as failed.
            let _ = systemctl::run(&["reset-failed", &unit], "");
        }
        for name in &self.reloaded {
            let unit = loader_unit(name);
            if systemctl::is_active(&unit)? {
                systemctl::reload(&unit)?;
            }
        }
        Ok(())
    }
}

fn apply_step(
    layout: &Layout,
    step: &Step,
    undo: &mut Undo,
    log: &mut dyn Write,
) -> Result<(), SystemdError> {
    let mut say = |line: String| {
        // The log is the user's terminal; a closed one must not stop
        // the change half-way.
        let _ = writeln!(log, "{line}");
    };
    match step {
        Step::Write { path, text } => {
            let before = read_optional(path)?;
            if let Some(dir) = path.parent().filter(|d| !d.exists()) {
                undo.dirs.push(dir.to_path_buf());
            }
            write_file(path, text.as_bytes())?;
            undo.files.push((path.clone(), before.clone()));
            say(format!(
                "{} {}",
                if before.is_some() { "updated" } else { "wrote" },
                path.display()
            ));
        }
        Step::Remove { path } => {
            let before = read_optional(path)?;
            if before.is_some() {
                remove_file(path)?;
                undo.files.push((path.clone(), before));
                say(format!("removed {}", path.display()));
            }
        }
        Step::RemoveDirIfEmpty { path } => {
            // Not empty, or already gone: both are fine.
            if std::fs::remove_dir(path).is_ok() {
                say(format!("removed {}", path.display()));
            }
        }
        Step::DaemonReload => {
            systemctl::daemon_reload()?;
            undo.daemon_reloaded = true;
            say("reloaded systemd (daemon-reload)".into());
        }
        Step::Start(name) => {
            let unit = loader_unit(name);
            undo.started.push(name.clone());
            systemctl::start(&unit)?;
            say(format!(
                "started {unit}: filter `{name}` pinned at {}",
                layout.pin_path(name).display()
            ));
        }
        Step::Reload(name) => {
            let unit = loader_unit(name);
            undo.reloaded.push(name.clone());
            systemctl::reload(&unit)?;
            say(format!("reloaded {unit}: filter `{name}` replaced live"));
        }
        Step::Stop(name) => {
            let unit = loader_unit(name);
            systemctl::stop(&unit)?;
            say(format!("stopped {unit}: filter `{name}` unloaded"));
        }
        Step::Unload(name) => {
            let bpffs = layout.pin_dir.parent().unwrap_or(Path::new("/"));
            let pins = PinDir::open(Some(bpffs), false).map_err(|e| SystemdError::Unload {
                name: name.clone(),
                source: Box::new(e),
            })?;
            filters::unload(&pins, name).map_err(|e| SystemdError::Unload {
                name: name.clone(),
                source: Box::new(e),
            })?;
            say(format!("unloaded filter `{name}`"));
        }
    }
    Ok(())
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, SystemdError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SystemdError::io("read", path, e)),
    }
}

/// Writes through a temporary file and a rename, so systemd or the loader
/// never read half a file.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SystemdError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| SystemdError::io("create", dir, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".portwall-tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| SystemdError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        SystemdError::io("write", path, e)
    })
}

fn remove_file(path: &Path) -> Result<(), SystemdError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SystemdError::io("remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> FilterName {
        s.parse().unwrap()
    }

    fn unit(s: &str) -> UnitName {
        s.parse().unwrap()
    }

    fn spec(n: &str, direction: Direction, expr: &str) -> FilterSpec {
        FilterSpec {
            name: name(n),
            config: FilterConfig {
                direction: Some(direction),
                expression: expr.into(),
            },
        }
    }

    fn empty() -> State {
        State {
            drop_ins: BTreeMap::new(),
            configs: BTreeMap::new(),
            pinned: BTreeSet::new(),
            users: BTreeMap::new(),
            active_loaders: BTreeSet::new(),
            template: Template::Missing,
        }
    }

    fn request(u: &str, filters: Vec<FilterSpec>, shared: bool) -> ProtectRequest {
        ProtectRequest {
            unit: unit(u),
            filters,
            shared,
            binary: "/usr/local/bin/portwall".into(),
        }
    }

    /// The state after `plan` ran (files and loaders; systemd's users
    /// follow the drop-ins).
    fn after(layout: &Layout, state: &State, plan: &Plan) -> State {
        let mut s = state.clone();
        for step in &plan.steps {
            match step {
                Step::Write { path, text } => {
                    if path.starts_with(&layout.config_dir) {
                        let n = path.file_stem().unwrap().to_str().unwrap();
                        s.configs.insert(name(n), text.clone());
                    } else if path.ends_with(DROP_IN_NAME) {
                        let dir = path
                            .parent()
                            .unwrap()
                            .file_name()
                            .unwrap()
                            .to_str()
                            .unwrap();
                        let u = unit(dir.strip_suffix(".d").unwrap());
                        let filters = units::parse_drop_in(layout, text);
                        s.drop_ins.insert(
                            u,
                            DropIn {
                                text: text.clone(),
                                filters,
                            },
                        );
                    } else {
                        s.template = Template::AutoInstalled {
                            path: path.clone(),
                            text: text.clone(),
                        };
                    }
                }
                Step::Remove { path } => {
                    if path.starts_with(&layout.config_dir) {
                        let n = path.file_stem().unwrap().to_str().unwrap();
                        s.configs.remove(&name(n));
                    } else if path.ends_with(DROP_IN_NAME) {
                        let dir = path
                            .parent()
                            .unwrap()
                            .file_name()
                            .unwrap()
                            .to_str()
                            .unwrap();
                        s.drop_ins.remove(&unit(dir.strip_suffix(".d").unwrap()));
                    } else {
                        s.template = Template::Missing;
                    }
                }
                Step::Start(n) | Step::Reload(n) => {
                    s.active_loaders.insert(n.clone());
                    s.pinned.insert(n.clone());
                }
                Step::Stop(n) | Step::Unload(n) => {
                    s.active_loaders.remove(n);
                    s.pinned.remove(n);
                }
                Step::DaemonReload | Step::RemoveDirIfEmpty { .. } => {}
            }
        }
        s
    }

    #[test]
    fn first_protect_writes_everything_in_a_safe_order() {
        let layout = Layout::system();
        let req = request(
            "web.service",
            vec![
                spec("web-ingress", Direction::Ingress, "tcp && dst_port == 80"),
                spec("web-egress", Direction::Egress, "udp && dst_port == 53"),
            ],
            false,
        );
        let plan = plan_protect(&layout, &req, &empty()).unwrap();
        let kinds: Vec<String> = plan
            .steps
            .iter()
            .map(|s| match s {
                Step::Write { path, .. } => format!("write {}", path.display()),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "write /etc/portwall/web-ingress.conf",
                "write /etc/portwall/web-egress.conf",
                "write /etc/systemd/system/portwall@.service",
                "DaemonReload",
                "Start(FilterName(\"web-ingress\"))",
                "Start(FilterName(\"web-egress\"))",
                "write /etc/systemd/system/web.service.d/90-portwall.conf",
                "DaemonReload",
            ]
        );
        assert!(plan.notes.is_empty());
        let rendered = plan.render(&layout);
        assert!(
            rendered.contains(
                "--- write /etc/portwall/web-egress.conf\n\
             # portwall filter `web-egress`, written by `portwall protect`.\n"
            ),
            "{rendered}"
        );
        assert!(rendered.contains("direction = egress\nfilter = udp && dst_port == 53\n---\n"));
        assert!(rendered.contains("systemctl start portwall@web-ingress.service\n"));
    }

    #[test]
    fn protecting_twice_only_replaces_the_filter_live() {
        let layout = Layout::system();
        let req = request(
            "web",
            vec![spec(
                "web-egress",
                Direction::Egress,
                "udp && dst_port == 53",
            )],
            false,
        );
        let first = plan_protect(&layout, &req, &empty()).unwrap();
        let state = after(&layout, &empty(), &first);
        let again = plan_protect(&layout, &req, &state).unwrap();
        assert_eq!(again.steps, [Step::Reload(name("web-egress"))]);
        assert!(!again.reloads_systemd());

        // A new rule: the config and a live reload, still no unit change.
        let changed = request(
            "web",
            vec![spec("web-egress", Direction::Egress, "tcp")],
            false,
        );
        let plan = plan_protect(&layout, &changed, &state).unwrap();
        assert!(
            matches!(&plan.steps[0], Step::Write { path, .. } if path.ends_with("web-egress.conf"))
        );
        assert_eq!(plan.steps[1..], [Step::Reload(name("web-egress"))]);
    }

    #[test]
    fn dropping_a_direction_retires_its_filter() {
        let layout = Layout::system();
        let both = request(
            "web",
            vec![
                spec("web-ingress", Direction::Ingress, "tcp"),
                spec("web-egress", Direction::Egress, "udp"),
            ],
            false,
        );
        let state = after(
            &layout,
            &empty(),
            &plan_protect(&layout, &both, &empty()).unwrap(),
        );
        let egress_only = request(
            "web",
            vec![spec("web-egress", Direction::Egress, "udp")],
            false,
        );
        let plan = plan_protect(&layout, &egress_only, &state).unwrap();
        let tail: Vec<&Step> = plan.steps.iter().rev().take(2).collect();
        assert_eq!(
            tail,
            [
                &Step::Remove {
                    path: "/etc/portwall/web-ingress.conf".into()
                },
                &Step::Stop(name("web-ingress")),
            ]
        );
    }

    #[test]
    fn names_are_shared_only_on_purpose() {
        let layout = Layout::system();
        let a = request("a", vec![spec("a-egress", Direction::Egress, "udp")], false);
        let state = after(
            &layout,
            &empty(),
            &plan_protect(&layout, &a, &empty()).unwrap(),
        );
        // b's default name cannot be a-egress, but a colliding --name-less
        // request is refused ...
        let b = request("b", vec![spec("a-egress", Direction::Egress, "tcp")], false);
        let err = plan_protect(&layout, &b, &state).unwrap_err().to_string();
        assert!(
            err.contains("already used by a.service; pass --name a"),
            "{err}"
        );
        // ... and accepted with --name, saying whom the change affects.
        let b = ProtectRequest { shared: true, ..b };
        let plan = plan_protect(&layout, &b, &state).unwrap();
        assert_eq!(
            plan.notes,
            ["filter `a-egress` is shared with a.service: its new rule applies there too"]
        );
        let state = after(&layout, &state, &plan);

        // Unprotecting one keeps the filter for the other.
        let plan = plan_unprotect(&layout, &unit("a"), &state)
            .unwrap()
            .unwrap();
        assert!(!plan.steps.iter().any(|s| matches!(s, Step::Stop(_))));
        assert_eq!(
            plan.notes,
            ["kept filter `a-egress`: b.service still uses it"]
        );
        let state = after(&layout, &state, &plan);
        // The last one takes the filter, the config and the template.
        let plan = plan_unprotect(&layout, &unit("b"), &state)
            .unwrap()
            .unwrap();
        assert!(plan.steps.contains(&Step::Stop(name("a-egress"))));
        let state = after(&layout, &state, &plan);
        assert!(state.configs.is_empty() && state.drop_ins.is_empty());
        assert_eq!(state.template, Template::Missing);
        assert!(state.pinned.is_empty() && state.active_loaders.is_empty());
    }

    #[test]
    fn a_unit_keeps_updating_its_own_filter_when_others_use_it_too() {
        let layout = Layout::system();
        let a = request("a", vec![spec("a-egress", Direction::Egress, "udp")], false);
        let mut state = after(
            &layout,
            &empty(),
            &plan_protect(&layout, &a, &empty()).unwrap(),
        );
        state
            .users
            .insert(name("a-egress"), vec!["run-u7.service".into()]);
        let changed = request("a", vec![spec("a-egress", Direction::Egress, "tcp")], false);
        let plan = plan_protect(&layout, &changed, &state).unwrap();
        assert_eq!(
            plan.notes,
            ["filter `a-egress` is shared with run-u7.service: its new rule applies there too"]
        );
    }

    #[test]
    fn filters_used_outside_portwall_are_kept() {
        let layout = Layout::system();
        let a = request("a", vec![spec("a-egress", Direction::Egress, "udp")], false);
        let mut state = after(
            &layout,
            &empty(),
            &plan_protect(&layout, &a, &empty()).unwrap(),
        );
        state.users.insert(
            name("a-egress"),
            vec!["a.service".into(), "run-u7.service".into()],
        );
        let plan = plan_unprotect(&layout, &unit("a"), &state)
            .unwrap()
            .unwrap();
        assert_eq!(
            plan.notes,
            ["kept filter `a-egress`: run-u7.service still uses it"]
        );
        // The template stays with the config that still needs it.
        assert!(
            !plan
                .steps
                .iter()
                .any(|s| matches!(s, Step::Remove { path } if path.ends_with("portwall@.service")))
        );
    }

    #[test]
    fn foreign_filters_and_templates_are_left_alone() {
        let layout = Layout::system();
        let mut state = empty();
        state.pinned.insert(name("web-egress"));
        let req = request(
            "web",
            vec![spec("web-egress", Direction::Egress, "udp")],
            false,
        );
        let err = plan_protect(&layout, &req, &state).unwrap_err().to_string();
        assert!(
            err.contains("not managed by portwall@web-egress.service"),
            "{err}"
        );

        let mut state = empty();
        state.template = Template::Installed("/usr/lib/systemd/system/portwall@.service".into());
        let plan = plan_protect(&layout, &req, &state).unwrap();
        assert!(
            !plan.steps.iter().any(
                |s| matches!(s, Step::Write { path, .. } if path.ends_with("portwall@.service"))
            )
        );
        let state = after(&layout, &state, &plan);
        let plan = plan_unprotect(&layout, &unit("web"), &state)
            .unwrap()
            .unwrap();
        assert!(
            !plan
                .steps
                .iter()
                .any(|s| matches!(s, Step::Remove { path } if path.ends_with("portwall@.service")))
        );

        assert_eq!(
            plan_unprotect(&layout, &unit("other"), &state).unwrap(),
            None
        );
    }

    #[test]
    fn an_auto_installed_template_follows_the_binary() {
        let layout = Layout::system();
        let req = request(
            "web",
            vec![spec("web-egress", Direction::Egress, "udp")],
            false,
        );
        let state = after(
            &layout,
            &empty(),
            &plan_protect(&layout, &req, &empty()).unwrap(),
        );
        let moved = ProtectRequest {
            binary: "/opt/portwall/bin/portwall".into(),
            ..req
        };
        let plan = plan_protect(&layout, &moved, &state).unwrap();
        assert!(plan.steps.iter().any(|s| matches!(s, Step::Write { text, .. } if text.contains("ExecStart=/opt/portwall/bin/portwall apply %i"))));
    }

    #[test]
    fn reads_state_from_a_tree() {
        let root = std::env::temp_dir().join(format!("portwall-state-{}", std::process::id()));
        let layout = Layout {
            unit_dir: root.join("units"),
            config_dir: root.join("portwall"),
            pin_dir: "/sys/fs/bpf/portwall".into(),
            template_dirs: vec![root.join("units"), root.join("lib")],
        };
        let empty_state = State::read(&layout, false).unwrap();
        assert!(empty_state.drop_ins.is_empty() && empty_state.configs.is_empty());
        assert_eq!(empty_state.template, Template::Missing);

        let req = request(
            "web",
            vec![spec("web-egress", Direction::Egress, "udp")],
            false,
        );
        let plan = plan_protect(&layout, &req, &empty_state).unwrap();
        for step in &plan.steps {
            if let Step::Write { path, text } = step {
                write_file(path, text.as_bytes()).unwrap();
            }
        }
        let state = State::read(&layout, false).unwrap();
        assert_eq!(
            state.drop_ins[&unit("web")].filters,
            [(Direction::Egress, name("web-egress"))]
        );
        assert!(state.configs.contains_key(&name("web-egress")));
        assert!(matches!(state.template, Template::AutoInstalled { .. }));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
