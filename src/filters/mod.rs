//! Managed filters: compiled, loaded and pinned in bpffs, replaced live,
//! counted, described, and removed.
//!
//! Everything about a loaded filter lives in the kernel (see [`pins`] for
//! the layout and [`meta`] for its description); this module keeps no
//! files of its own. Changes take the pin directory's lock, and every
//! change is built completely before the one step that makes it visible
//! (pinning the dispatcher, or swapping the jump table's slot), so a
//! failure leaves what was running untouched.

pub mod error;
pub mod meta;
pub mod name;
pub mod pins;

pub use error::FilterError;
pub use meta::FilterMeta;
pub use name::FilterName;
pub use pins::{FilterPins, PinDir};

use crate::compiler::{self, codegen::counter_key};
use crate::kernel::{self, sys};
use crate::lang::ir::{Direction, Filter};
use aya::maps::{Map, MapData, PerCpuArray, ProgramArray};
use aya::programs::ProgramInfo;
use serde::Serialize;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// What to load.
pub struct LoadRequest<'a> {
    pub name: &'a FilterName,
    /// The expression as written (stored for `list`).
    pub expression: &'a str,
    /// Its canonical form.
    pub canonical: String,
    pub filter: &'a Filter,
    pub direction: Option<Direction>,
    /// Replace a loaded filter of that name live (or load it if missing).
    pub replace: bool,
}

/// What a load did.
#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub name: FilterName,
    pub path: std::path::PathBuf,
    /// True when an existing filter was switched to the new program.
    pub replaced: bool,
    /// The id of the new filter program (the dispatcher's stays the same).
    pub program_id: u32,
    pub dispatcher_id: u32,
    pub instructions: usize,
    #[serde(serialize_with = "as_millis")]
    pub compile_time: Duration,
    #[serde(serialize_with = "as_millis")]
    pub load_time: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// Packets and bytes, forwarded and dropped, in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub forwarded_packets: u64,
    pub forwarded_bytes: u64,
    pub dropped_packets: u64,
    pub dropped_bytes: u64,
}

/// A filter's counters in both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub ingress: Counts,
    pub egress: Counts,
}

impl Counters {
    pub fn get(&self, direction: Direction) -> &Counts {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// Everything the kernel knows about one filter.
#[derive(Debug, Serialize)]
pub struct FilterInfo {
    pub name: FilterName,
    pub path: std::path::PathBuf,
    /// The expression, direction and load time, when readable.
    pub meta: Option<FilterMeta>,
    /// The pinned dispatcher (what cgroups attach).
    pub dispatcher_id: u32,
    /// The filter program the dispatcher runs now.
    pub program_id: Option<u32>,
    pub counters: Counters,
    /// Where the dispatcher is attached, found from the kernel (see
    /// [`find_attachments`]); empty until looked up.
    pub attachments: Vec<Attached>,
    /// The systemd units whose `IP*FilterPath=` name this filter (filled
    /// in by the command line when systemd runs).
    pub units: Vec<String>,
}

/// One cgroup a filter is attached to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attached {
    /// The cgroup, relative to the cgroup2 mount (`/system.slice/x.service`).
    pub cgroup: String,
    /// The full path of its directory.
    pub path: std::path::PathBuf,
    pub direction: Direction,
}

/// Fills in where each filter is attached, with one walk of the cgroup2
/// tree, so attachments made by systemd or bpftool show too. Without a
/// cgroup2 mount there are none.
pub fn find_attachments(infos: &mut [FilterInfo]) -> Result<(), FilterError> {
    let Some((root, all)) = cgroup_attachments()? else {
        return Ok(());
    };
    for info in infos {
        info.attachments = attached(&root, &all, info.dispatcher_id);
    }
    Ok(())
}

/// The cgroup2 mount and every attachment below it; `None` without a
/// cgroup2 mount.
fn cgroup_attachments()
-> Result<Option<(std::path::PathBuf, Vec<kernel::attach::Attachment>)>, FilterError> {
    let Ok(root) = kernel::cgroup::cgroup2_mount() else {
        return Ok(None);
    };
    let all = kernel::attach::all_attachments(&root).map_err(|e| FilterError::Attachments {
        source: Box::new(e),
    })?;
    Ok(Some((root, all)))
}

/// Where the dispatcher `dispatcher_id` is among `all`.
fn attached(root: &Path, all: &[kernel::attach::Attachment], dispatcher_id: u32) -> Vec<Attached> {
    all.iter()
        .filter(|a| a.prog_ids.contains(&dispatcher_id))
        .map(|a| Attached {
            cgroup: crate::kernel::cgroup::relative_name(root, &a.cgroup),
            path: a.cgroup.clone(),
            direction: a.direction,
        })
        .collect()
}

/// Refuses to replace a filter attached in one direction with one whose
/// `local_*`/`remote_*` names were resolved for the other: they would
/// silently mean the opposite there.
fn refuse_other_direction(paths: &FilterPins, req: &LoadRequest<'_>) -> Result<(), FilterError> {
    let Some(resolved) = req.filter.direction else {
        return Ok(());
    };
    let Some((root, all)) = cgroup_attachments()? else {
        return Ok(());
    };
    let dispatcher_id = ProgramInfo::from_pin(&paths.program)
        .map_err(|e| aya_error("BPF_OBJ_GET", req.name, e))?
        .id();
    match attached(&root, &all, dispatcher_id)
        .into_iter()
        .find(|a| a.direction != resolved)
    {
        Some(other) => Err(FilterError::AttachedOtherWay {
            name: req.name.clone(),
            cgroup: other.cgroup,
            attached: other.direction,
            resolved,
        }),
        None => Ok(()),
    }
}

/// Compiles, loads and pins a filter, or replaces a loaded one live.
pub fn load(pins: &PinDir, req: &LoadRequest<'_>) -> Result<LoadReport, FilterError> {
    let name = req.name;
    let paths = pins.pins(name);
    let _lock = pins.lock()?;
    let exists = pin_exists(&paths.program)?;
    if exists {
        check_ours(&paths)?;
        if !req.replace {
            return Err(FilterError::Exists(name.clone()));
        }
        refuse_other_direction(&paths, req)?;
        // Leftovers of an interrupted replace, never switched to.
        for table in pins.set_tables(name)? {
            if table.to_str().is_some_and(|t| t.ends_with("@new")) {
                remove_pin(&table)?;
            }
        }
    } else {
        // Leftovers of an interrupted first load: nothing runs them.
        remove_pin(&paths.jump)?;
        remove_pin(&paths.counters)?;
        for table in pins.set_tables(name)? {
            remove_pin(&table)?;
        }
    }

    let started = Instant::now();
    let meta = FilterMeta::new(req.expression, req.canonical.clone(), req.direction).encode();
    let (program, elf) =
        compiler::managed_object(req.filter, req.direction, meta::META_MAP, meta.len() as u32)?;
    let compile_time = started.elapsed();

    let started = Instant::now();
    // Pins this load creates are removed if it fails before the step that
    // makes it visible.
    let mut cleanup = Cleanup::new();
    if !paths.counters.exists() {
        cleanup.add(&paths.counters);
    }
    // The trace hook is shared with the running version (a `portwall
    // trace` keeps working across the replace) through a pin that lives
    // only for this load; see `pins`.
    remove_pin(&paths.trace_hook)?;
    let _unpin_hook = UnpinOnDrop(&paths.trace_hook);
    if exists && let Some(hook) = running_trace_hook(&paths.jump, name)? {
        hook.pin(&paths.trace_hook)
            .map_err(|e| aya_error("pinning the trace hook", name, e))?;
    }
    let filter = kernel::load_with_pins(
        &elf,
        compiler::PROGRAM_NAME,
        &[
            (compiler::COUNTERS_MAP, &paths.counters),
            (compiler::TRACE_JUMP_MAP, &paths.trace_hook),
        ],
    )?;
    write_meta(&filter, name, &meta)?;
    // The set tables, pinned before anything changes (so a failure here
    // changes nothing): under their own names for a first load, beside
    // the running filter's for a replace.
    let tables = filter.set_tables();
    for (index, map) in &tables {
        let path = if exists {
            pins.new_set_table(name, *index)
        } else {
            pins.set_table(name, *index)
        };
        map.pin(&path)
            .map_err(|e| aya_error("pinning a set table", name, e))?;
        cleanup.add(&path);
    }
    let filter_fd = filter
        .program()?
        .fd()
        .map_err(|e| aya_error("fd", name, e))?;
    let program_id = filter
        .program()?
        .info()
        .map_err(|e| aya_error("BPF_OBJ_GET_INFO_BY_FD", name, e))?
        .id();

    let dispatcher_id = if exists {
        let mut jump = open_jump(&paths.jump, name)?;
        // The switch: one map update, seen at once by every cgroup that
        // runs the dispatcher.
        jump.set(0, filter_fd, 0)
            .map_err(|e| aya_error("updating the jump table", name, e))?;
        cleanup.disarm();
        // The new tables' pins take the old ones' names; the old tables
        // live on with the old program until nothing runs it.
        replace_set_pins(pins, name, tables.len())?;
        ProgramInfo::from_pin(&paths.program)
            .map_err(|e| aya_error("BPF_OBJ_GET", name, e))?
            .id()
    } else {
        let elf = compiler::dispatcher_object()?;
        cleanup.add(&paths.jump);
        let mut dispatcher = kernel::load_with_pins(
            &elf,
            compiler::PROGRAM_NAME,
            &[(compiler::JUMP_MAP, &paths.jump)],
        )?;
        {
            let map = dispatcher
                .ebpf_mut()
                .map_mut(compiler::JUMP_MAP)
                .ok_or_else(|| aya_error("finding the jump table", name, "missing map"))?;
            let mut jump = ProgramArray::try_from(map)
                .map_err(|e| aya_error("opening the jump table", name, e))?;
            jump.set(0, filter_fd, 0)
                .map_err(|e| aya_error("filling the jump table", name, e))?;
        }
        let program = dispatcher.program_mut()?;
        let id = program
            .info()
            .map_err(|e| aya_error("BPF_OBJ_GET_INFO_BY_FD", name, e))?
            .id();
        // Pinned last: the path appears only once the filter is complete.
        program
            .pin(&paths.program)
            .map_err(|e| aya_error("pinning the filter", name, e))?;
        id
    };
    cleanup.disarm();
    Ok(LoadReport {
        name: name.clone(),
        path: paths.program.clone(),
        replaced: exists,
        program_id,
        dispatcher_id,
        instructions: program.slots(),
        compile_time,
        load_time: started.elapsed(),
    })
}

/// Removes a filter's pins. Cgroups it is still attached to keep the
/// dispatcher alive, but its jump table is emptied by the kernel once
/// unpinned, so they drop every packet until it is detached.
pub fn unload(pins: &PinDir, name: &FilterName) -> Result<(), FilterError> {
    let _lock = pins.lock()?;
    let paths = existing(pins, name)?;
    remove_pin(&paths.program)?;
    remove_pin(&paths.jump)?;
    remove_pin(&paths.counters)?;
    remove_pin(&paths.trace_hook)?;
    for table in pins.set_tables(name)? {
        remove_pin(&table)?;
    }
    Ok(())
}

/// After a replace switched to a program with `count` set tables pinned
/// under their `@new` names: those take the current names, and the old
/// program's tables beyond them go.
fn replace_set_pins(pins: &PinDir, name: &FilterName, count: usize) -> Result<(), FilterError> {
    for index in 0..count {
        let from = pins.new_set_table(name, index);
        let to = pins.set_table(name, index);
        std::fs::rename(&from, &to).map_err(|e| FilterError::io("rename", &from, e))?;
    }
    for table in pins.set_tables(name)? {
        let stale = table
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit_once("@set"))
            .and_then(|(_, i)| i.parse::<usize>().ok())
            .is_some_and(|i| i >= count);
        if stale {
            remove_pin(&table)?;
        }
    }
    Ok(())
}

/// The trace hook of the filter `name` runs now: the program array
/// `portwall trace` fills with its tracer (see `codegen::counting`).
pub fn trace_hook(pins: &PinDir, name: &FilterName) -> Result<MapData, FilterError> {
    let paths = existing(pins, name)?;
    running_trace_hook(&paths.jump, name)?.ok_or_else(|| FilterError::NoTraceHook(name.clone()))
}

/// The trace hook of the program in the jump table, if it has one
/// (programs loaded before tracing existed do not).
fn running_trace_hook(jump: &Path, name: &FilterName) -> Result<Option<MapData>, FilterError> {
    match current_program(jump, name)? {
        Some(id) => program_map(id, compiler::TRACE_JUMP_MAP, name),
        None => Ok(None),
    }
}

/// Reads a filter's description and counters from the kernel.
pub fn info(pins: &PinDir, name: &FilterName) -> Result<FilterInfo, FilterError> {
    let paths = existing(pins, name)?;
    let dispatcher_id = ProgramInfo::from_pin(&paths.program)
        .map_err(|e| aya_error("BPF_OBJ_GET", name, e))?
        .id();
    let program_id = current_program(&paths.jump, name)?;
    let meta = match program_id {
        Some(id) => read_meta(id, name),
        None => None,
    };
    Ok(FilterInfo {
        name: name.clone(),
        path: paths.program.clone(),
        meta,
        dispatcher_id,
        program_id,
        counters: read_counters(&paths.counters, name)?,
        attachments: Vec::new(),
        units: Vec::new(),
    })
}

/// Every filter in the pin directory.
pub fn list(pins: &PinDir) -> Result<Vec<FilterInfo>, FilterError> {
    let mut all = Vec::new();
    for name in pins.names()? {
        if !pins.pins(&name).jump.exists() {
            continue;
        }
        match info(pins, &name) {
            Ok(info) => all.push(info),
            // Someone else's pins under a name of ours: not a filter.
            Err(FilterError::NotPortwall { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(all)
}

/// A descriptor of the pinned dispatcher, to attach it.
pub fn dispatcher_fd(
    pins: &PinDir,
    name: &FilterName,
) -> Result<std::os::fd::OwnedFd, FilterError> {
    // The pin is the dispatcher: open it, rather than read the whole
    // description (counters, metadata) just to learn its id.
    let paths = existing(pins, name)?;
    kernel::attach::prog_fd_from_pin(&paths.program).map_err(|e| FilterError::Attachments {
        source: Box::new(e),
    })
}

fn write_meta(
    filter: &kernel::LoadedFilter,
    name: &FilterName,
    meta: &[u8],
) -> Result<(), FilterError> {
    let map = filter
        .ebpf()
        .map(meta::META_MAP)
        .ok_or_else(|| aya_error("finding the description map", name, "missing map"))?;
    let fd = match map {
        Map::Array(data) => data.fd().as_fd(),
        _ => {
            return Err(aya_error(
                "finding the description map",
                name,
                "wrong map type",
            ));
        }
    };
    let bpf = |call, source| FilterError::Bpf {
        call,
        name: name.clone(),
        source,
    };
    sys::map_update(fd, 0, meta).map_err(|e| bpf("BPF_MAP_UPDATE_ELEM", e))?;
    // Read-only from now on: what `list` shows is what was loaded.
    sys::map_freeze(fd).map_err(|e| bpf("BPF_MAP_FREEZE", e))
}

fn open_jump(path: &Path, name: &FilterName) -> Result<ProgramArray<MapData>, FilterError> {
    let data = MapData::from_pin(path).map_err(|e| aya_error("opening the jump table", name, e))?;
    let map = Map::from_map_data(data).map_err(|e| aya_error("opening the jump table", name, e))?;
    ProgramArray::try_from(map).map_err(|e| aya_error("opening the jump table", name, e))
}

/// The id of the program in the jump table's slot, if any.
fn current_program(jump: &Path, name: &FilterName) -> Result<Option<u32>, FilterError> {
    let data = MapData::from_pin(jump).map_err(|e| aya_error("opening the jump table", name, e))?;
    sys::prog_array_get(data.fd().as_fd(), 0).map_err(|source| FilterError::Bpf {
        call: "BPF_MAP_LOOKUP_ELEM",
        name: name.clone(),
        source,
    })
}

/// The map called `map_name` that the program `id` uses, if it has one.
fn program_map(id: u32, map_name: &str, name: &FilterName) -> Result<Option<MapData>, FilterError> {
    let bpf = |call, source| FilterError::Bpf {
        call,
        name: name.clone(),
        source,
    };
    let program = sys::prog_get_fd_by_id(id).map_err(|e| bpf("BPF_PROG_GET_FD_BY_ID", e))?;
    let map_ids =
        sys::prog_map_ids(program.as_fd()).map_err(|e| bpf("BPF_OBJ_GET_INFO_BY_FD", e))?;
    for map_id in map_ids {
        let map = MapData::from_id(map_id).map_err(|e| aya_error("opening a map", name, e))?;
        let info = map
            .info()
            .map_err(|e| aya_error("reading a map", name, e))?;
        if info.name_as_str() == Some(map_name) {
            return Ok(Some(map));
        }
    }
    Ok(None)
}

/// The description stored with the filter program `id`.
fn read_meta(id: u32, name: &FilterName) -> Option<FilterMeta> {
    let map = program_map(id, meta::META_MAP, name).ok()??;
    let size = map.info().ok()?.value_size() as usize;
    let value = sys::map_lookup(map.fd().as_fd(), 0, size).ok()?;
    FilterMeta::decode(&value)
}

fn read_counters(path: &Path, name: &FilterName) -> Result<Counters, FilterError> {
    let data = MapData::from_pin(path).map_err(|e| aya_error("opening the counters", name, e))?;
    let map = Map::from_map_data(data).map_err(|e| aya_error("opening the counters", name, e))?;
    let counters: PerCpuArray<MapData, [u64; 2]> =
        PerCpuArray::try_from(map).map_err(|e| aya_error("opening the counters", name, e))?;
    sum_counters(&counters).map_err(|e| aya_error("reading the counters", name, e))
}

/// Adds up a counters map (see `codegen::counter_key` for its layout)
/// over every CPU.
pub fn sum_counters<T: std::borrow::Borrow<MapData>>(
    map: &PerCpuArray<T, [u64; 2]>,
) -> Result<Counters, aya::maps::MapError> {
    let sum = |key: u32| -> Result<(u64, u64), aya::maps::MapError> {
        let values = map.get(&key, 0)?;
        Ok(values.iter().fold((0, 0), |(p, b), v| (p + v[0], b + v[1])))
    };
    let mut out = Counters::default();
    for direction in Direction::ALL {
        let (forwarded_packets, forwarded_bytes) = sum(counter_key(direction, true))?;
        let (dropped_packets, dropped_bytes) = sum(counter_key(direction, false))?;
        let counts = Counts {
            forwarded_packets,
            forwarded_bytes,
            dropped_packets,
            dropped_bytes,
        };
        match direction {
            Direction::Ingress => out.ingress = counts,
            Direction::Egress => out.egress = counts,
        }
    }
    Ok(out)
}

/// The pins of a loaded portwall filter; an error if there is none of
/// that name, or if the pin is someone else's program.
fn existing(pins: &PinDir, name: &FilterName) -> Result<FilterPins, FilterError> {
    let paths = pins.pins(name);
    if !pin_exists(&paths.program)? {
        return Err(FilterError::NotFound {
            name: name.clone(),
            dir: pins.path().to_path_buf(),
        });
    }
    check_ours(&paths)?;
    Ok(paths)
}

/// Whether something is pinned at `path`; an error when that cannot be
/// told (the directory is unreadable), rather than a silent "no".
fn pin_exists(path: &Path) -> Result<bool, FilterError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(FilterError::io("look up", path, e)),
    }
}

/// Checks that the pins are a portwall filter's: a cgroup_skb program
/// with a program array pinned beside it. Anything else under the name
/// (a map, another kind of program, a directory, a program without its
/// jump table) belongs to someone else and must not be replaced,
/// attached or removed.
fn check_ours(paths: &FilterPins) -> Result<(), FilterError> {
    let not_ours = |reason: String| FilterError::NotPortwall {
        path: paths.program.clone(),
        reason,
    };
    if paths.program.is_dir() {
        return Err(not_ours("it is a directory".into()));
    }
    if let Err(e) = kernel::attach::prog_fd_from_pin(&paths.program) {
        return Err(match e {
            // Could not open it at all (no permission, say): that is not
            // a verdict on whose it is.
            kernel::AttachError::Pin { source, .. } => {
                FilterError::io("open", &paths.program, source)
            }
            e => not_ours(e.to_string()),
        });
    }
    if !paths.jump.exists() {
        return Err(not_ours("no jump table pinned next to it".into()));
    }
    let jump = MapData::from_pin(&paths.jump)
        .and_then(|m| m.info())
        .map_err(|e| {
            not_ours(format!(
                "{} cannot be opened as a map: {e}",
                paths.jump.display()
            ))
        })?;
    match jump.map_type() {
        Ok(aya::maps::MapType::ProgramArray) => Ok(()),
        other => Err(not_ours(format!(
            "{} is not a program array but {other:?}",
            paths.jump.display()
        ))),
    }
}

fn remove_pin(path: &Path) -> Result<(), FilterError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FilterError::io("remove", path, e)),
    }
}

fn aya_error(call: &'static str, name: &FilterName, e: impl std::fmt::Display) -> FilterError {
    FilterError::Aya {
        call,
        name: name.clone(),
        message: e.to_string(),
    }
}

/// Removes a pin when dropped, whatever happened meanwhile.
struct UnpinOnDrop<'a>(&'a Path);

impl Drop for UnpinOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// Pins created by a load that has not made its filter visible yet;
/// removed on drop unless the load gets there.
struct Cleanup {
    paths: Vec<std::path::PathBuf>,
    armed: bool,
}

impl Cleanup {
    fn new() -> Cleanup {
        Cleanup {
            paths: Vec::new(),
            armed: true,
        }
    }

    fn add(&mut self, path: &Path) {
        self.paths.push(path.to_path_buf());
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.armed {
            for path in &self.paths {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}
