//! `portwall trace`: the packets a managed filter judges, as they happen.
//!
//! Every managed filter has a trace hook: after counting a verdict it
//! tail-calls slot 0 (drops) or 1 (forwards) of a small program array
//! (see `codegen::counting`). A [`Tracer`] loads the tracer program (see
//! [`program`]) with a ring buffer of its own and puts it in the slots it
//! wants; the tracer writes one record per packet (see [`record`]) and
//! returns the verdict unchanged. With the slots empty (no trace running)
//! the hook costs a store and a tail call that the JIT makes a patched
//! direct jump, a no-op while the slot is empty.
//!
//! The hook's program array is pinned by no one: the filter programs and
//! the tracer's descriptor keep it, and the kernel empties a program array
//! when the last descriptor or pin to it closes. So tracing ends with the
//! tracer's process however it ends, SIGKILL included, and the ring
//! buffer, which only the tracer program refers to, goes with it.
//!
//! One trace per filter at a time: the ring buffer has one reader, and a
//! second tracer would take the slots from the first. [`Tracer::start`]
//! refuses when a slot is taken, checking and filling them under the pin
//! directory's lock.

pub mod cgroups;
pub mod output;
pub mod pcap;
pub mod program;
pub mod record;

use crate::filters::{self, FilterError, FilterName, PinDir};
use crate::kernel::ringbuf::RingReader;
use crate::kernel::{self, KernelError, LoadedFilter, sys};
use aya::maps::{Map, MapData, PerCpuArray, ProgramArray};
use std::os::fd::{AsFd, OwnedFd};

use crate::compiler::codegen::{TRACE_SLOT_DROP, TRACE_SLOT_FORWARD};

/// The default number of packet bytes kept per packet: enough for the IP
/// header with options or a few IPv6 extension headers, and the TCP
/// header with options.
pub const DEFAULT_SNAP: u32 = 128;
/// The default ring buffer size.
pub const DEFAULT_RING_BYTES: u32 = 1 << 20;
/// The largest ring buffer allowed (the kernel's limit is far higher;
/// this keeps a typo from pinning gigabytes of kernel memory).
pub const MAX_RING_BYTES: u32 = 1 << 30;

/// Which verdicts to trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Drops,
    All,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Drops => "drops",
            Mode::All => "all",
        }
    }

    fn slots(self) -> &'static [u32] {
        match self {
            Mode::Drops => &[TRACE_SLOT_DROP],
            Mode::All => &[TRACE_SLOT_DROP, TRACE_SLOT_FORWARD],
        }
    }
}

/// How to trace.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub mode: Mode,
    /// Packet bytes kept per packet.
    pub snap: u32,
    /// Size of the ring buffer (rounded up to a power-of-two number of
    /// pages).
    pub ring_bytes: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Drops,
            snap: DEFAULT_SNAP,
            ring_bytes: DEFAULT_RING_BYTES,
        }
    }
}

/// Why tracing could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("cannot build the tracer: {0}")]
    Compile(#[from] crate::compiler::CompileError),
    #[error(
        "filter `{name}` is already being traced (tracer program {program}); one trace per filter at a time: stop the other `portwall trace {name}` first"
    )]
    Busy { name: FilterName, program: u32 },
    #[error(
        "a ring buffer of {ring} bytes cannot hold one record of {record} bytes (--snaplen {snap}): give a larger --buffer or a smaller --snaplen"
    )]
    RingTooSmall { ring: u64, record: u64, snap: u32 },
    #[error("{call} failed while tracing `{name}`: {message}")]
    Map {
        call: &'static str,
        name: FilterName,
        message: String,
    },
}

/// What the periodic check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// The tracer is in its slots.
    Tracing,
    /// The slots had been emptied (the kernel clears the hook when a load
    /// closed the last descriptor to it just before this trace took it;
    /// the clearing can run a moment after) and were filled again.
    Refilled,
    /// The filter was unloaded: nothing more will come.
    Unloaded,
}

/// A running trace of one filter. Dropping it empties its slots.
pub struct Tracer {
    name: FilterName,
    pins: PinDir,
    hook: ProgramArray<MapData>,
    // The same map, for lookups `ProgramArray` does not offer.
    hook_fd: OwnedFd,
    // Holds the tracer program (the slots point at it) and its maps.
    program: LoadedFilter,
    program_id: u32,
    ring: RingReader,
    lost: PerCpuArray<MapData, u64>,
    options: Options,
    stopped: bool,
}

impl Tracer {
    /// Loads the tracer and puts it in the trace hook of filter `name`.
    pub fn start(pins: &PinDir, name: &FilterName, options: Options) -> Result<Tracer, TraceError> {
        let ring = ring_size(options.ring_bytes.min(MAX_RING_BYTES));
        // Each record also carries the ring buffer's 8-byte header.
        let record = u64::from(record::record_len(options.snap)) + 8;
        if record > ring {
            return Err(TraceError::RingTooSmall {
                ring,
                record,
                snap: options.snap,
            });
        }
        let hook = filters::trace_hook(pins, name)?;
        let map_error = |call: &'static str, e: &dyn std::fmt::Display| TraceError::Map {
            call,
            name: name.clone(),
            message: e.to_string(),
        };
        let hook_fd = hook
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| map_error("duplicating the trace hook's descriptor", &e))?;
        let hook = Map::from_map_data(hook)
            .and_then(ProgramArray::try_from)
            .map_err(|e| map_error("opening the trace hook", &e))?;
        let elf = program::object(options.snap, options.ring_bytes.min(MAX_RING_BYTES))?;
        let mut program = kernel::load(&elf, program::PROGRAM_NAME)?;
        let program_id = program
            .program()?
            .info()
            .map_err(|e| map_error("BPF_OBJ_GET_INFO_BY_FD", &e))?
            .id();
        let take = |program: &mut LoadedFilter, map: &str| {
            program
                .ebpf_mut()
                .take_map(map)
                .ok_or_else(|| map_error("finding the tracer's maps", &map))
        };
        let ring = match take(&mut program, program::RING_MAP)? {
            Map::RingBuf(data) => {
                RingReader::new(data).map_err(|e| map_error("mapping the ring buffer", &e))?
            }
            _ => return Err(map_error("finding the ring buffer", &"wrong map type")),
        };
        let lost = PerCpuArray::try_from(take(&mut program, program::LOST_MAP)?)
            .map_err(|e| map_error("opening the lost counter", &e))?;
        let mut tracer = Tracer {
            name: name.clone(),
            pins: pins.clone(),
            hook,
            hook_fd,
            program,
            program_id,
            ring,
            lost,
            options,
            stopped: true,
        };
        let _lock = pins.lock()?;
        for slot in [TRACE_SLOT_DROP, TRACE_SLOT_FORWARD] {
            if let Some(other) = tracer.slot(slot)? {
                return Err(TraceError::Busy {
                    name: name.clone(),
                    program: other,
                });
            }
        }
        tracer.fill()?;
        tracer.stopped = false;
        Ok(tracer)
    }

    pub fn name(&self) -> &FilterName {
        &self.name
    }

    pub fn options(&self) -> Options {
        self.options
    }

    /// The ring buffer, readable also after [`Tracer::stop`].
    pub fn ring(&mut self) -> &mut RingReader {
        &mut self.ring
    }

    /// Packets that did not fit in the ring buffer, so far.
    pub fn lost(&self) -> Result<u64, TraceError> {
        let values = self.lost.get(&0, 0).map_err(|e| TraceError::Map {
            call: "reading the lost counter",
            name: self.name.clone(),
            message: e.to_string(),
        })?;
        Ok(values.iter().sum())
    }

    /// Checks that the filter is still loaded and the tracer still in its
    /// slots, refilling them if the kernel emptied them (see [`Health`]).
    /// Another tracer in a slot is an error.
    pub fn check(&mut self) -> Result<Health, TraceError> {
        if !self.pins.pins(&self.name).program.exists() {
            return Ok(Health::Unloaded);
        }
        let _lock = self.pins.lock()?;
        let mut refill = false;
        for &slot in self.options.mode.slots() {
            match self.slot(slot)? {
                Some(id) if id == self.program_id => {}
                Some(other) => {
                    return Err(TraceError::Busy {
                        name: self.name.clone(),
                        program: other,
                    });
                }
                None => refill = true,
            }
        }
        if !refill {
            return Ok(Health::Tracing);
        }
        self.fill()?;
        Ok(Health::Refilled)
    }

    /// Empties the slots this tracer holds; the records already in the
    /// ring buffer stay readable. Also done on drop.
    pub fn stop(&mut self) -> Result<(), TraceError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        for &slot in self.options.mode.slots() {
            // Only our own: never take another tracer's slot away.
            if self.slot(slot)? == Some(self.program_id) {
                self.hook.clear_index(&slot).map_err(|e| TraceError::Map {
                    call: "emptying the trace hook",
                    name: self.name.clone(),
                    message: e.to_string(),
                })?;
            }
        }
        Ok(())
    }

    fn fill(&mut self) -> Result<(), TraceError> {
        let fd = self.program.program()?.fd().map_err(|e| TraceError::Map {
            call: "finding the tracer's descriptor",
            name: self.name.clone(),
            message: e.to_string(),
        })?;
        for &slot in self.options.mode.slots() {
            self.hook.set(slot, fd, 0).map_err(|e| TraceError::Map {
                call: "filling the trace hook",
                name: self.name.clone(),
                message: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// The id of the program in `slot`, if any.
    fn slot(&self, slot: u32) -> Result<Option<u32>, TraceError> {
        sys::prog_array_get(self.hook_fd.as_fd(), slot).map_err(|e| TraceError::Map {
            call: "BPF_MAP_LOOKUP_ELEM",
            name: self.name.clone(),
            message: e.to_string(),
        })
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The size the kernel gives a ring buffer asked to be `bytes` long: a
/// power-of-two number of pages (aya rounds it so before creating it).
pub fn ring_size(bytes: u32) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    u64::from(bytes).div_ceil(page).max(1).next_power_of_two() * page
}

/// Converts the tracer's `CLOCK_MONOTONIC` times to wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// `CLOCK_REALTIME - CLOCK_MONOTONIC`, in nanoseconds.
    offset: i128,
}

impl Clock {
    /// Reads both clocks now. Re-read it now and then: the wall clock can
    /// be set or slewed while a trace runs.
    pub fn now() -> Clock {
        let ns = |clock| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes into the timespec we pass.
            unsafe { libc::clock_gettime(clock, &mut ts) };
            i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
        };
        let mono = ns(libc::CLOCK_MONOTONIC);
        let real = ns(libc::CLOCK_REALTIME);
        Clock {
            offset: real - mono,
        }
    }

    /// The wall-clock time of a monotonic timestamp, since the Unix epoch.
    pub fn unix(&self, monotonic_ns: u64) -> std::time::Duration {
        let ns = (i128::from(monotonic_ns) + self.offset).max(0);
        std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}
