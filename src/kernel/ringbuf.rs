//! Reading a BPF ring buffer: aya's memory-mapped consumer, woken by
//! poll(2) on the map's descriptor, which is readable while records wait.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use aya::maps::{MapData, RingBuf};

/// The consumer side of a ring buffer.
pub struct RingReader {
    ring: RingBuf<MapData>,
}

impl RingReader {
    /// Maps the ring buffer `map` for reading.
    pub fn new(map: MapData) -> Result<RingReader, aya::maps::MapError> {
        let map = aya::maps::Map::from_map_data(map)?;
        Ok(RingReader {
            ring: RingBuf::try_from(map)?,
        })
    }

    /// Hands each waiting record to `f`, oldest first, at most `limit` of
    /// them; returns how many. A record is released as soon as `f` returns.
    pub fn drain(&mut self, limit: usize, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < limit {
            let Some(item) = self.ring.next() else {
                break;
            };
            f(&item);
            n += 1;
        }
        n
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.ring.as_fd()
    }
}

/// Waits until one of `fds` is readable or `timeout` passes (`None`:
/// forever); says which are. An interrupting signal counts as a timeout.
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = match timeout {
        None => -1,
        // Rounded up, so that a remainder under a millisecond still waits.
        Some(t) => i32::try_from(t.as_millis() + 1).unwrap_or(i32::MAX),
    };
    // SAFETY: `pfds` is a valid array of `pfds.len()` pollfd structs.
    let ret = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(pfds
        .iter()
        .map(|p| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0)
        .collect())
}
