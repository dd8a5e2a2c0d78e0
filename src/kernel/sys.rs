//! Raw bpf(2) commands that aya 0.14 does not expose in the form we need.
//!
//! Besides the cgroup calls below: map element access with sizes known only
//! at run time, and map freezing, for the filter descriptions.
//!
//! aya attaches cgroup programs with `bpf_link` (which dies with the process
//! unless pinned), has no public call that reads a program's info from a
//! plain fd, and hands out pinned programs only wrapped in its own types. The
//! legacy attach, detach, query and object calls are small, so they are
//! issued here directly. Every wrapper passes a `#[repr(C)]` prefix of the
//! kernel's `union bpf_attr` with its exact size; the kernel zero-fills the
//! fields it knows and we do not pass, so these prefixes work on every kernel
//! that has the command.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `enum bpf_cmd` values (include/uapi/linux/bpf.h).
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_MAP_FREEZE: libc::c_long = 22;

/// Attach flag: other programs may be attached to the same cgroup and
/// direction, and all of them run (any drop wins).
pub const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// `BPF_PROG_TYPE_CGROUP_SKB`.
pub const BPF_PROG_TYPE_CGROUP_SKB: u32 = 8;

/// The `BPF_PROG_ATTACH` / `BPF_PROG_DETACH` part of `union bpf_attr`, up
/// to `replace_bpf_fd` (the fields after it are only read with flags we do
/// not pass).
#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The `BPF_PROG_QUERY` part of `union bpf_attr`, up to `prog_cnt`.
#[repr(C)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The `BPF_OBJ_GET` part of `union bpf_attr`.
#[repr(C)]
struct ObjGetAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

/// The `BPF_OBJ_GET_INFO_BY_FD` part of `union bpf_attr`.
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The `BPF_MAP_*_ELEM` part of `union bpf_attr`.
#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The `BPF_MAP_FREEZE` part of `union bpf_attr`.
#[repr(C)]
struct MapFdAttr {
    map_fd: u32,
}

/// The `BPF_PROG_GET_FD_BY_ID` part of `union bpf_attr`.
#[repr(C)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// The leading fields of `struct bpf_prog_info`, up to the name. The
/// pointer fields stay zero, so the kernel copies no instructions or map
/// ids; it fills only as much of the struct as we say we have.
#[repr(C)]
#[derive(Default)]
struct ProgInfoPrefix {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

/// What `BPF_OBJ_GET_INFO_BY_FD` says about a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgInfo {
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// The kernel-wide program id.
    pub id: u32,
    /// The program's name (at most 15 bytes).
    pub name: String,
}

/// The result of a `BPF_PROG_QUERY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    /// The flags programs are attached with at this cgroup and direction.
    pub attach_flags: u32,
    /// How many programs are attached. When it exceeds the buffer's length
    /// only the first `buffer.len()` ids were written.
    pub count: usize,
}

/// Issues bpf(2) with `attr` as the command's attribute prefix.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, initialised, `#[repr(C)]` prefix of
    // `union bpf_attr` for `cmd`; every pointer in it points to memory that
    // outlives the call and is as large as the length passed with it.
    let ret =
        unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of an fd that bpf(2) just returned.
fn owned_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = i32::try_from(ret).map_err(|_| io::Error::other("bpf(2) returned an invalid fd"))?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn raw(fd: BorrowedFd<'_>) -> u32 {
    // A BorrowedFd is never negative.
    fd.as_raw_fd() as u32
}

/// `BPF_PROG_ATTACH`: attaches `prog` to the cgroup open as `cgroup`.
pub fn prog_attach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: raw(cgroup),
        attach_bpf_fd: raw(prog),
        attach_type,
        attach_flags: flags,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// `BPF_PROG_DETACH`: detaches `prog` from the cgroup open as `cgroup`.
pub fn prog_detach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: raw(cgroup),
        attach_bpf_fd: raw(prog),
        attach_type,
        attach_flags: 0,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// `BPF_PROG_QUERY` without `BPF_F_QUERY_EFFECTIVE`: the ids of programs
/// attached directly to the cgroup open as `cgroup`, into `ids`.
///
/// The kernel answers `ENOSPC` when `ids` is too small, after writing as
/// many ids as fit and the real count; that is returned as `Ok` with
/// `count > ids.len()` so the caller can retry with a larger buffer.
pub fn prog_query(cgroup: BorrowedFd<'_>, attach_type: u32, ids: &mut [u32]) -> io::Result<Query> {
    let mut attr = QueryAttr {
        target_fd: raw(cgroup),
        attach_type,
        query_flags: 0,
        attach_flags: 0,
        // A null pointer with a zero count asks for the count only.
        prog_ids: if ids.is_empty() {
            0
        } else {
            ids.as_mut_ptr() as u64
        },
        prog_cnt: u32::try_from(ids.len()).unwrap_or(u32::MAX),
        _pad: 0,
    };
    match bpf(BPF_PROG_QUERY, &mut attr) {
        Ok(_) => {}
        Err(err) if err.raw_os_error() == Some(libc::ENOSPC) => {}
        Err(err) => return Err(err),
    }
    Ok(Query {
        attach_flags: attr.attach_flags,
        count: attr.prog_cnt as usize,
    })
}

/// `BPF_OBJ_GET`: opens the object pinned at `path` in a bpffs.
pub fn obj_get(path: &CStr) -> io::Result<OwnedFd> {
    let mut attr = ObjGetAttr {
        pathname: path.as_ptr() as u64,
        bpf_fd: 0,
        file_flags: 0,
    };
    owned_fd(bpf(BPF_OBJ_GET, &mut attr)?)
}

/// `BPF_MAP_LOOKUP_ELEM` on an array-like map whose values are
/// `value_len` bytes, which aya's typed maps cannot express when the size
/// is only known at run time. For a program array the value is the id of
/// the program in the slot.
/// The id of the program in slot `key` of a program array; `None` when
/// the slot is empty.
pub fn prog_array_get(map: BorrowedFd<'_>, key: u32) -> io::Result<Option<u32>> {
    match map_lookup(map, key, 4) {
        Ok(v) => Ok(Some(u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn map_lookup(map: BorrowedFd<'_>, key: u32, value_len: usize) -> io::Result<Vec<u8>> {
    let key = key.to_ne_bytes();
    let mut value = vec![0u8; value_len];
    let mut attr = MapElemAttr {
        map_fd: raw(map),
        _pad: 0,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        flags: 0,
    };
    bpf(BPF_MAP_LOOKUP_ELEM, &mut attr)?;
    Ok(value)
}

/// `BPF_MAP_UPDATE_ELEM` of an array map's element `key`.
pub fn map_update(map: BorrowedFd<'_>, key: u32, value: &[u8]) -> io::Result<()> {
    map_update_bytes(map, &key.to_ne_bytes(), value)
}

/// `BPF_MAP_UPDATE_ELEM` with a key and value of any size (the map's).
pub fn map_update_bytes(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: raw(map),
        _pad: 0,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        flags: 0,
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// `BPF_MAP_FREEZE`: the map is read-only for user space from now on.
pub fn map_freeze(map: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = MapFdAttr { map_fd: raw(map) };
    bpf(BPF_MAP_FREEZE, &mut attr).map(drop)
}

/// `BPF_PROG_GET_FD_BY_ID`: opens the loaded program with this id.
pub fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdByIdAttr {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
    };
    owned_fd(bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)?)
}

/// `BPF_OBJ_GET_INFO_BY_FD` on a program fd.
///
/// The kernel fills in whichever info struct matches the fd's object, so
/// the caller must know `prog` is a program (see [`is_prog_fd`]).
pub fn prog_info(prog: BorrowedFd<'_>) -> io::Result<ProgInfo> {
    let mut info = ProgInfoPrefix::default();
    let mut attr = InfoAttr {
        bpf_fd: raw(prog),
        info_len: std::mem::size_of::<ProgInfoPrefix>() as u32,
        info: &mut info as *mut ProgInfoPrefix as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    let name_len = info.name.iter().position(|&b| b == 0).unwrap_or(16);
    Ok(ProgInfo {
        prog_type: info.prog_type,
        id: info.id,
        name: String::from_utf8_lossy(&info.name[..name_len]).into_owned(),
    })
}

/// The ids of the maps a program uses (`BPF_OBJ_GET_INFO_BY_FD` with a
/// map id buffer); `prog` must be a program fd.
pub fn prog_map_ids(prog: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    // The count can only be known by asking; a program's maps are fixed
    // once it is loaded, so two calls agree.
    let mut info = ProgInfoPrefix::default();
    let mut attr = InfoAttr {
        bpf_fd: raw(prog),
        info_len: std::mem::size_of::<ProgInfoPrefix>() as u32,
        info: &mut info as *mut ProgInfoPrefix as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    let mut ids = vec![0u32; info.nr_map_ids as usize];
    let mut info = ProgInfoPrefix {
        nr_map_ids: ids.len() as u32,
        map_ids: ids.as_mut_ptr() as u64,
        ..ProgInfoPrefix::default()
    };
    let mut attr = InfoAttr {
        bpf_fd: raw(prog),
        info_len: std::mem::size_of::<ProgInfoPrefix>() as u32,
        info: &mut info as *mut ProgInfoPrefix as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    ids.truncate(info.nr_map_ids as usize);
    Ok(ids)
}

/// What kind of BPF object an fd refers to, from the anonymous inode's
/// name the kernel gives it (`prog`, `map`, `link`, ...).
/// `None` when it is not a BPF object at all.
pub fn bpf_object_kind(fd: BorrowedFd<'_>) -> io::Result<Option<String>> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    let link = link.to_string_lossy();
    // Programs and maps are `bpf-prog` and `bpf-map`, links `bpf_link`.
    Ok(link
        .strip_prefix("anon_inode:bpf")
        .and_then(|kind| kind.strip_prefix(['-', '_']))
        .map(|kind| kind.to_string()))
}

/// Whether `fd` refers to a BPF program.
pub fn is_prog_fd(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(bpf_object_kind(fd)?.as_deref() == Some("prog"))
}
