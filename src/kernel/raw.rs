//! The few bpf(2) commands aya 0.14 does not expose for our use: map
//! element access with run-time value sizes, map freezing, and program
//! lookup by id. Each wrapper fills only the `union bpf_attr` fields its
//! command reads (include/uapi/linux/bpf.h) and returns the io::Error.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_MAP_FREEZE: libc::c_long = 22;

/// `union bpf_attr` is 144 bytes on current kernels; the kernel accepts a
/// larger zero-padded attr, so one generous buffer serves every command.
#[repr(C, align(8))]
struct Attr([u8; 160]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 160])
    }

    fn put_u32(&mut self, offset: usize, value: u32) -> &mut Attr {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }

    fn put_u64(&mut self, offset: usize, value: u64) -> &mut Attr {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
        self
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: attr points to a live, zero-initialized buffer at least as
    // large as the size we pass; the kernel reads (and for some commands
    // writes) only within it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut Attr,
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Reads element `key` of an array-like map whose values are `value_len`
/// bytes. For a program array the value is the program's id.
pub fn lookup(map: BorrowedFd<'_>, key: u32, value_len: usize) -> io::Result<Vec<u8>> {
    let key = key.to_ne_bytes();
    let mut value = vec![0u8; value_len];
    let mut attr = Attr::new();
    attr.put_u32(0, map.as_raw_fd() as u32)
        .put_u64(8, key.as_ptr() as u64)
        .put_u64(16, value.as_mut_ptr() as u64);
    bpf(BPF_MAP_LOOKUP_ELEM, &mut attr)?;
    Ok(value)
}

/// Writes element `key` of an array map.
pub fn update(map: BorrowedFd<'_>, key: u32, value: &[u8]) -> io::Result<()> {
    let key = key.to_ne_bytes();
    let mut attr = Attr::new();
    attr.put_u32(0, map.as_raw_fd() as u32)
        .put_u64(8, key.as_ptr() as u64)
        .put_u64(16, value.as_ptr() as u64);
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// Makes a map read-only for user space from now on.
pub fn freeze(map: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = Attr::new();
    attr.put_u32(0, map.as_raw_fd() as u32);
    bpf(BPF_MAP_FREEZE, &mut attr).map(drop)
}

/// A file descriptor for the program with this id.
pub fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = Attr::new();
    attr.put_u32(0, id);
    let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)?;
    // SAFETY: on success the kernel returned a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
