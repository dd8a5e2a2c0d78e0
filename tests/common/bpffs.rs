//! A private bpffs for one test: mounted on a fresh temporary directory,
//! so its pins can never collide with another test's or the machine's,
//! and unmounted (which drops every pin in it) when the guard goes.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub struct PrivateBpffs {
    path: PathBuf,
}

impl PrivateBpffs {
    pub fn mount(test: &str) -> PrivateBpffs {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("portwall-bpffs-{test}-{}-{n}", std::process::id()));
        portwall::filters::pins::mount_bpffs(&path)
            .unwrap_or_else(|e| panic!("mount bpffs on {}: {e}", path.display()));
        PrivateBpffs { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateBpffs {
    fn drop(&mut self) {
        let target = CString::new(self.path.as_os_str().as_bytes()).unwrap();
        // SAFETY: umount2(2) on the mount we made; lazily, in case a
        // descriptor is still open somewhere.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_dir(&self.path);
    }
}
