//! Real loopback traffic from a process inside a test cgroup, checked at a
//! receiver outside it (egress), or sent from outside to a receiver inside
//! it (ingress).
//!
//! A socket belongs to the cgroup of the process that creates it, so the
//! side under test must be another process that joins the cgroup before it
//! creates any socket. No extra binary is needed: the test binary runs
//! itself again (`--exact traffic_helper`) with [`JOB_ENV`] describing the
//! job, and joins the cgroup between fork and exec. A test file using this
//! module must therefore contain
//!
//! ```ignore
//! #[test]
//! fn traffic_helper() {
//!     common::traffic::helper_main();
//! }
//! ```
//!
//! which does nothing in a normal test run. The child prints its results as
//! JSON lines prefixed with [`LINE_PREFIX`] (libtest prints its own lines
//! around them). Every wait is bounded by a deadline on an actual event
//! (a datagram, a connection, a reply, a line from the child), never a
//! sleep; a check that nothing arrives necessarily waits its whole timeout.

// Each test crate that includes `common` uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io::{self, BufRead, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};

/// The environment variable that carries a child's job (JSON).
pub const JOB_ENV: &str = "PORTWALL_TRAFFIC_JOB";

/// The name of the `#[test]` function that runs [`helper_main`].
pub const HELPER_TEST: &str = "traffic_helper";

/// Prefix of the lines a child prints for its parent.
pub const LINE_PREFIX: &str = "PORTWALL-TRAFFIC ";

/// How long a child may take to start and print its first line. Starting
/// the test binary takes milliseconds; this only bounds a hang.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Something a sender does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Sends `count` UDP datagrams to `addr`, from one socket.
    UdpSend {
        /// Where to.
        addr: SocketAddr,
        /// How many.
        count: u32,
    },
    /// Opens a TCP connection to `addr`, giving up after `timeout_ms`.
    TcpConnect {
        /// Where to.
        addr: SocketAddr,
        /// How long to wait for the handshake.
        timeout_ms: u64,
    },
    /// Sends `count` ICMP (ICMPv6 for IPv6) echo requests to `addr` from a
    /// raw socket and counts the replies that arrive within `timeout_ms`.
    IcmpEcho {
        /// Where to.
        addr: IpAddr,
        /// How many requests.
        count: u32,
        /// How long to wait for all replies.
        timeout_ms: u64,
    },
}

/// What came of one [`Action`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// For [`Action::UdpSend`].
    Udp {
        /// `sendto` calls that succeeded.
        sent: u32,
        /// `sendto` calls that failed with EPERM (dropped on egress).
        eperm: u32,
        /// Other failures.
        errors: Vec<String>,
    },
    /// For [`Action::TcpConnect`].
    Tcp(TcpOutcome),
    /// For [`Action::IcmpEcho`].
    Icmp {
        /// Requests sent.
        sent: u32,
        /// Requests whose `sendto` failed with EPERM.
        eperm: u32,
        /// Distinct echo replies received.
        replies: u32,
        /// Other failures.
        errors: Vec<String>,
    },
}

impl Outcome {
    /// A UDP outcome with every datagram sent.
    pub fn udp_sent(count: u32) -> Outcome {
        Outcome::Udp {
            sent: count,
            eperm: 0,
            errors: Vec::new(),
        }
    }

    /// A UDP outcome with every `sendto` refused with EPERM.
    pub fn udp_eperm(count: u32) -> Outcome {
        Outcome::Udp {
            sent: 0,
            eperm: count,
            errors: Vec::new(),
        }
    }
}

/// How a TCP connection attempt ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TcpOutcome {
    /// The handshake completed.
    Connected,
    /// No answer within the timeout (a dropped SYN or SYN-ACK).
    TimedOut,
    /// `connect` failed with EPERM.
    Eperm,
    /// The peer answered with a reset.
    Refused,
    /// Anything else.
    Failed(String),
}

/// Packets (UDP) and connections (TCP) a receiver has seen, per socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Datagrams on the 127.0.0.1 UDP socket.
    pub udp_v4: u32,
    /// Datagrams on the ::1 UDP socket.
    pub udp_v6: u32,
    /// Connections accepted on the 127.0.0.1 listener.
    pub tcp_v4: u32,
    /// Connections accepted on the ::1 listener.
    pub tcp_v6: u32,
}

impl Counts {
    /// `n` datagrams on each UDP socket, nothing on TCP.
    pub fn udp(n: u32) -> Counts {
        Counts {
            udp_v4: n,
            udp_v6: n,
            ..Counts::default()
        }
    }

    /// `n` connections on each listener, nothing on UDP.
    pub fn tcp(n: u32) -> Counts {
        Counts {
            tcp_v4: n,
            tcp_v6: n,
            ..Counts::default()
        }
    }

    /// Adds two counts field by field.
    pub fn plus(self, other: Counts) -> Counts {
        Counts {
            udp_v4: self.udp_v4 + other.udp_v4,
            udp_v6: self.udp_v6 + other.udp_v6,
            tcp_v4: self.tcp_v4 + other.tcp_v4,
            tcp_v6: self.tcp_v6 + other.tcp_v6,
        }
    }

    /// Whether every field is at least `other`'s.
    pub fn covers(&self, other: &Counts) -> bool {
        self.udp_v4 >= other.udp_v4
            && self.udp_v6 >= other.udp_v6
            && self.tcp_v4 >= other.tcp_v4
            && self.tcp_v6 >= other.tcp_v6
    }
}

/// Where a receiver listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addrs {
    /// UDP on 127.0.0.1.
    pub udp_v4: SocketAddr,
    /// UDP on ::1.
    pub udp_v6: SocketAddr,
    /// TCP on 127.0.0.1.
    pub tcp_v4: SocketAddr,
    /// TCP on ::1.
    pub tcp_v6: SocketAddr,
}

impl Addrs {
    /// Sends `count` datagrams to each UDP socket and connects once to each
    /// listener (`timeout_ms` each): the usual probe of a receiver.
    pub fn probe(&self, count: u32, timeout_ms: u64) -> Vec<Action> {
        vec![
            Action::UdpSend {
                addr: self.udp_v4,
                count,
            },
            Action::UdpSend {
                addr: self.udp_v6,
                count,
            },
            Action::TcpConnect {
                addr: self.tcp_v4,
                timeout_ms,
            },
            Action::TcpConnect {
                addr: self.tcp_v6,
                timeout_ms,
            },
        ]
    }
}

/// UDP sockets and TCP listeners on 127.0.0.1 and ::1 (ephemeral ports)
/// that count what arrives, in whichever process creates them.
#[derive(Debug)]
pub struct Receiver {
    udp_v4: UdpSocket,
    udp_v6: UdpSocket,
    tcp_v4: TcpListener,
    tcp_v6: TcpListener,
    counts: Counts,
}

impl Receiver {
    /// Binds the four sockets.
    pub fn bind() -> io::Result<Receiver> {
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 0));
        let receiver = Receiver {
            udp_v4: UdpSocket::bind(v4)?,
            udp_v6: UdpSocket::bind(v6)?,
            tcp_v4: TcpListener::bind(v4)?,
            tcp_v6: TcpListener::bind(v6)?,
            counts: Counts::default(),
        };
        receiver.udp_v4.set_nonblocking(true)?;
        receiver.udp_v6.set_nonblocking(true)?;
        receiver.tcp_v4.set_nonblocking(true)?;
        receiver.tcp_v6.set_nonblocking(true)?;
        Ok(receiver)
    }

    /// Where the sockets listen.
    pub fn addrs(&self) -> io::Result<Addrs> {
        Ok(Addrs {
            udp_v4: self.udp_v4.local_addr()?,
            udp_v6: self.udp_v6.local_addr()?,
            tcp_v4: self.tcp_v4.local_addr()?,
            tcp_v6: self.tcp_v6.local_addr()?,
        })
    }

    /// Everything seen so far (since [`Receiver::bind`]).
    pub fn counts(&mut self) -> io::Result<Counts> {
        self.drain()?;
        Ok(self.counts)
    }

    /// Receives until the counts since [`Receiver::bind`] cover `at_least`
    /// or `timeout` passes, and returns them. To check that nothing
    /// arrives, ask for more than can come: it waits the whole timeout.
    pub fn wait_for(&mut self, at_least: Counts, timeout: Duration) -> io::Result<Counts> {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain()?;
            if self.counts.covers(&at_least) {
                return Ok(self.counts);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(self.counts);
            }
            let fds = [
                self.udp_v4.as_fd(),
                self.udp_v6.as_fd(),
                self.tcp_v4.as_fd(),
                self.tcp_v6.as_fd(),
            ];
            poll_in(&fds, left)?;
        }
    }

    fn drain(&mut self) -> io::Result<()> {
        self.counts.udp_v4 += drain_udp(&self.udp_v4)?;
        self.counts.udp_v6 += drain_udp(&self.udp_v6)?;
        self.counts.tcp_v4 += drain_tcp(&self.tcp_v4)?;
        self.counts.tcp_v6 += drain_tcp(&self.tcp_v6)?;
        Ok(())
    }
}

fn drain_udp(socket: &UdpSocket) -> io::Result<u32> {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    loop {
        match socket.recv_from(&mut buf) {
            Ok(_) => n += 1,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(n),
            Err(err) => return Err(err),
        }
    }
}

fn drain_tcp(listener: &TcpListener) -> io::Result<u32> {
    let mut n = 0;
    loop {
        match listener.accept() {
            // Counting the handshake is all we need; closing is fine.
            Ok(_) => n += 1,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(n),
            Err(err) => return Err(err),
        }
    }
}

/// Waits until one of `fds` is readable (or at end of file) or `timeout`
/// passes; says whether one is.
fn poll_in(fds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<bool> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Round up so that a sub-millisecond remainder still waits.
    let ms = i32::try_from(timeout.as_millis() + 1).unwrap_or(i32::MAX);
    // SAFETY: `pfds` is a valid array of `pfds.len()` pollfds.
    let ret = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(ret > 0)
}

/// Runs `actions` in this process, in order, and reports each.
pub fn run_actions(actions: &[Action]) -> Vec<Outcome> {
    actions.iter().map(run_action).collect()
}

fn run_action(action: &Action) -> Outcome {
    match *action {
        Action::UdpSend { addr, count } => udp_send(addr, count),
        Action::TcpConnect { addr, timeout_ms } => {
            Outcome::Tcp(tcp_connect(addr, Duration::from_millis(timeout_ms)))
        }
        Action::IcmpEcho {
            addr,
            count,
            timeout_ms,
        } => icmp_echo(addr, count, Duration::from_millis(timeout_ms)),
    }
}

fn udp_send(addr: SocketAddr, count: u32) -> Outcome {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let (mut sent, mut eperm, mut errors) = (0, 0, Vec::new());
    let socket = match UdpSocket::bind(local) {
        Ok(socket) => socket,
        Err(err) => {
            return Outcome::Udp {
                sent,
                eperm,
                errors: vec![format!("bind: {err}")],
            };
        }
    };
    for i in 0..count {
        match socket.send_to(format!("portwall {i}").as_bytes(), addr) {
            Ok(_) => sent += 1,
            Err(err) if err.raw_os_error() == Some(libc::EPERM) => eperm += 1,
            Err(err) => errors.push(format!("sendto: {err}")),
        }
    }
    Outcome::Udp {
        sent,
        eperm,
        errors,
    }
}

fn tcp_connect(addr: SocketAddr, timeout: Duration) -> TcpOutcome {
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(_) => TcpOutcome::Connected,
        Err(err) if err.kind() == io::ErrorKind::TimedOut => TcpOutcome::TimedOut,
        Err(err) if err.raw_os_error() == Some(libc::EPERM) => TcpOutcome::Eperm,
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => TcpOutcome::Refused,
        Err(err) => TcpOutcome::Failed(err.to_string()),
    }
}

/// Echo identifiers unique within this process; the pid keeps them apart
/// from other processes' (raw sockets see every ICMP packet on the host).
fn next_echo_id() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    (std::process::id() as u16).wrapping_mul(31) ^ NEXT.fetch_add(1, Ordering::Relaxed)
}

/// RFC 1071 checksum (ICMPv4; the kernel fills in ICMPv6's).
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn sockaddr_of(addr: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        IpAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn icmp_echo(addr: IpAddr, count: u32, timeout: Duration) -> Outcome {
    let (mut sent, mut eperm, mut errors) = (0, 0, Vec::new());
    let mut replies = BTreeSet::new();
    let (domain, protocol, request, reply) = match addr {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP, 8u8, 0u8),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6, 128u8, 129u8),
    };
    // A raw socket rather than a ping socket (SOCK_DGRAM): ping sockets
    // are off by default (net.ipv4.ping_group_range = "1 0"), raw sockets
    // only need CAP_NET_RAW, which the privileged tests have.
    // SAFETY: socket(2) has no memory-safety preconditions.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        errors.push(format!("socket: {}", io::Error::last_os_error()));
        return Outcome::Icmp {
            sent,
            eperm,
            replies: 0,
            errors,
        };
    }
    // SAFETY: socket(2) just returned this fd and nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let id = next_echo_id();
    let (dest, dest_len) = sockaddr_of(addr);
    for seq in 0..count as u16 {
        let mut packet = vec![request, 0, 0, 0];
        packet.extend_from_slice(&id.to_be_bytes());
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(b"portwall echo");
        if addr.is_ipv4() {
            let sum = inet_checksum(&packet);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        // SAFETY: `packet` and `dest` are valid for the lengths passed.
        let ret = unsafe {
            libc::sendto(
                socket.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                &dest as *const _ as *const libc::sockaddr,
                dest_len,
            )
        };
        if ret >= 0 {
            sent += 1;
        } else {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EPERM) {
                eperm += 1;
            } else {
                errors.push(format!("sendto: {err}"));
            }
        }
    }
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    while (replies.len() as u32) < sent {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock {
                errors.push(format!("recv: {err}"));
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Err(err) = poll_in(&[socket.as_fd()], left) {
                errors.push(format!("poll: {err}"));
                break;
            }
            continue;
        }
        let mut message = &buf[..n as usize];
        // IPv4 raw sockets deliver the IP header too; IPv6 ones do not.
        if addr.is_ipv4() {
            let header_len = usize::from(message.first().map_or(0, |b| b & 0x0f)) * 4;
            message = message.get(header_len..).unwrap_or(&[]);
        }
        // The raw socket also sees our own requests and other processes'
        // ICMP: count only replies to ours.
        if message.len() >= 8
            && message[0] == reply
            && u16::from_be_bytes([message[4], message[5]]) == id
        {
            let seq = u16::from_be_bytes([message[6], message[7]]);
            if u32::from(seq) < count {
                replies.insert(seq);
            }
        }
    }
    Outcome::Icmp {
        sent,
        eperm,
        replies: replies.len() as u32,
        errors,
    }
}

/// A child's job, passed in [`JOB_ENV`].
#[derive(Debug, Serialize, Deserialize)]
enum Job {
    /// Run these actions and report.
    Send(Vec<Action>),
    /// Bind a [`Receiver`], report its addresses, then answer
    /// [`WaitRequest`]s read from stdin until it closes.
    Receive,
    /// Report ready, then wait until stdin closes (or the process is killed).
    Hold,
    /// Report ready, then send UDP datagrams to this address as fast as
    /// possible until stdin closes; then report one [`Outcome::Udp`].
    Stream(SocketAddr),
}

/// A request to a receiving child: [`Receiver::wait_for`] with these.
#[derive(Debug, Serialize, Deserialize)]
struct WaitRequest {
    at_least: Counts,
    timeout_ms: u64,
}

/// The body of the `traffic_helper` test: does nothing unless [`JOB_ENV`]
/// is set, otherwise runs the job this process was started for.
pub fn helper_main() {
    let Ok(job) = std::env::var(JOB_ENV) else {
        return;
    };
    let job: Job = serde_json::from_str(&job).expect("the job in PORTWALL_TRAFFIC_JOB parses");
    match job {
        Job::Send(actions) => emit("REPORT", &run_actions(&actions)),
        Job::Receive => {
            let mut receiver = Receiver::bind().expect("the receiver binds");
            emit("READY", &receiver.addrs().expect("local addresses"));
            for line in io::stdin().lock().lines() {
                let line = line.expect("stdin reads");
                let request: WaitRequest = serde_json::from_str(&line).expect("request parses");
                let counts = receiver
                    .wait_for(request.at_least, Duration::from_millis(request.timeout_ms))
                    .expect("the receiver receives");
                emit("COUNTS", &counts);
            }
        }
        Job::Hold => {
            emit("READY", &std::process::id());
            let mut sink = Vec::new();
            let _ = io::stdin().read_to_end(&mut sink);
        }
        Job::Stream(addr) => {
            let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = done.clone();
            std::thread::spawn(move || {
                let mut sink = Vec::new();
                let _ = io::stdin().read_to_end(&mut sink);
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            emit("READY", &std::process::id());
            let (mut sent, mut eperm, mut errors) = (0u32, 0u32, Vec::new());
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                match udp_send(addr, 1) {
                    Outcome::Udp {
                        sent: s,
                        eperm: e,
                        errors: mut err,
                    } => {
                        sent += s;
                        eperm += e;
                        errors.append(&mut err);
                    }
                    other => unreachable!("udp_send gave {other:?}"),
                }
            }
            errors.truncate(10);
            emit(
                "REPORT",
                &vec![Outcome::Udp {
                    sent,
                    eperm,
                    errors,
                }],
            );
        }
    }
}

/// A child in a cgroup streaming UDP datagrams at one address until
/// stopped: the load under which live replaces are tested.
pub struct UdpStream {
    child: ChildProcess,
}

impl UdpStream {
    /// Starts streaming and returns once the child runs.
    pub fn start(cgroup: &Path, addr: SocketAddr) -> anyhow::Result<UdpStream> {
        let mut child = ChildProcess::spawn(Some(cgroup), &Job::Stream(addr))?;
        let _pid: u32 = child.expect("READY", STARTUP_TIMEOUT)?;
        Ok(UdpStream { child })
    }

    /// Stops the stream and reports what came of every datagram.
    pub fn stop(mut self) -> anyhow::Result<Outcome> {
        drop(self.child.stdin.take());
        let mut report: Vec<Outcome> = self.child.expect("REPORT", STARTUP_TIMEOUT)?;
        let status = self.child.close_and_wait(STARTUP_TIMEOUT)?;
        anyhow::ensure!(
            status.success(),
            "the streaming helper failed: {}",
            self.child.stderr()
        );
        report.pop().ok_or_else(|| anyhow!("empty report"))
    }
}

fn emit<T: Serialize>(kind: &str, value: &T) {
    let json = serde_json::to_string(value).expect("serializes");
    let mut out = io::stdout().lock();
    // Flushed at once: the parent is waiting for this line.
    writeln!(out, "{LINE_PREFIX}{kind} {json}").expect("stdout writes");
    out.flush().expect("stdout flushes");
}

/// A running child: the test binary re-executed for one job.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: LineReader,
}

impl ChildProcess {
    /// Starts the test binary for `job`, inside `cgroup` if given: the
    /// child writes `0` (itself) to `cgroup.procs` between fork and exec,
    /// so every socket it creates belongs to the cgroup.
    fn spawn(cgroup: Option<&Path>, job: &Job) -> anyhow::Result<ChildProcess> {
        let exe = std::env::current_exe().context("finding the test binary")?;
        let mut command = Command::new(exe);
        command
            .args(["--exact", HELPER_TEST, "--nocapture", "--test-threads=1"])
            .env(JOB_ENV, serde_json::to_string(job)?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cgroup) = cgroup {
            let procs = CString::new(cgroup.join("cgroup.procs").as_os_str().as_bytes())?;
            // SAFETY: the closure runs between fork and exec and only calls
            // open, write and close, which are async-signal-safe, on memory
            // prepared before the fork.
            unsafe {
                command.pre_exec(move || {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                    let err = io::Error::last_os_error();
                    libc::close(fd);
                    if written != 1 {
                        return Err(err);
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting the traffic helper for {job:?} in {cgroup:?}"))?;
        let stdin = child.stdin.take();
        let stdout = LineReader::new(child.stdout.take().expect("stdout is piped"));
        Ok(ChildProcess {
            child,
            stdin,
            stdout,
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads lines until one of `kind`, and parses its JSON.
    fn expect<T: for<'de> Deserialize<'de>>(
        &mut self,
        kind: &str,
        timeout: Duration,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + timeout;
        let wanted = format!("{LINE_PREFIX}{kind} ");
        loop {
            match self.stdout.next_line(deadline)? {
                Some(line) => {
                    // libtest prints `test traffic_helper ... ` without a
                    // newline before the test's own output: look inside.
                    if let Some(json) = line.find(&wanted).map(|at| &line[at + wanted.len()..]) {
                        return serde_json::from_str(json)
                            .with_context(|| format!("parsing the child's {kind} line {json}"));
                    }
                }
                None => {
                    let status = self.finish_now();
                    bail!(
                        "the traffic helper ended ({}) without a {kind} line; its stderr:\n{}",
                        status,
                        self.stderr()
                    );
                }
            }
        }
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }

    /// Kills the child if it still runs and reaps it.
    fn finish_now(&mut self) -> String {
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(err) => format!("wait failed: {err}"),
        }
    }

    /// Closes the child's stdin and waits for it to exit (a child that
    /// does not exit within `timeout` is killed).
    pub fn close_and_wait(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        // Its stdout closes when it exits; lines after the last expected
        // one are libtest's summary.
        loop {
            match self.stdout.next_line(deadline) {
                Ok(Some(_)) => {}
                // Stdout closes as the process exits: the wait is short.
                Ok(None) => return Ok(self.child.wait()?),
                Err(err) => {
                    self.finish_now();
                    return Err(err.context(format!(
                        "the traffic helper did not exit within {timeout:?}"
                    )));
                }
            }
        }
    }

    /// Waits until the child has exited (it is being killed by someone
    /// else) and returns its status.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        self.child.wait()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads lines from a pipe with a deadline (a `BufReader` cannot be polled).
#[derive(Debug)]
struct LineReader {
    pipe: ChildStdout,
    buf: Vec<u8>,
    eof: bool,
}

impl LineReader {
    fn new(pipe: ChildStdout) -> LineReader {
        LineReader {
            pipe,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// The next line, `None` at end of file; an error at the deadline.
    fn next_line(&mut self, deadline: Instant) -> anyhow::Result<Option<String>> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return Ok(Some(String::from_utf8_lossy(&line[..end]).into_owned()));
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.buf);
                return Ok(Some(String::from_utf8_lossy(&rest).into_owned()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(anyhow!(
                    "no line from the traffic helper before the deadline"
                ));
            }
            if !poll_in(&[self.pipe.as_fd()], left)? {
                continue;
            }
            let mut chunk = [0u8; 4096];
            // Poll said data or end of file is there: this read cannot block.
            match self.pipe.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// Total time the actions may take, for the deadline on the report.
fn budget(actions: &[Action]) -> Duration {
    let ms: u64 = actions
        .iter()
        .map(|a| match a {
            Action::UdpSend { .. } => 0,
            Action::TcpConnect { timeout_ms, .. } | Action::IcmpEcho { timeout_ms, .. } => {
                *timeout_ms
            }
        })
        .sum();
    STARTUP_TIMEOUT + Duration::from_millis(ms)
}

/// Runs `actions` in a child process inside `cgroup` and returns its
/// report, one [`Outcome`] per action.
pub fn run_sender(cgroup: &Path, actions: &[Action]) -> anyhow::Result<Vec<Outcome>> {
    let mut child = ChildProcess::spawn(Some(cgroup), &Job::Send(actions.to_vec()))?;
    let report = child.expect("REPORT", budget(actions))?;
    let status = child.close_and_wait(STARTUP_TIMEOUT)?;
    if !status.success() {
        bail!(
            "the traffic helper failed ({status}) after reporting: {}",
            child.stderr()
        );
    }
    Ok(report)
}

/// A [`Receiver`] in a child process inside a cgroup, for ingress tests:
/// the test sends from outside and asks the child what arrived.
#[derive(Debug)]
pub struct RemoteReceiver {
    child: ChildProcess,
    addrs: Addrs,
}

impl RemoteReceiver {
    /// Starts the receiving child in `cgroup` and waits until it listens.
    pub fn spawn(cgroup: &Path) -> anyhow::Result<RemoteReceiver> {
        let mut child = ChildProcess::spawn(Some(cgroup), &Job::Receive)?;
        let addrs = child.expect("READY", STARTUP_TIMEOUT)?;
        Ok(RemoteReceiver { child, addrs })
    }

    /// Where the child listens.
    pub fn addrs(&self) -> Addrs {
        self.addrs
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// [`Receiver::wait_for`] in the child: counts since it started.
    pub fn wait_for(&mut self, at_least: Counts, timeout: Duration) -> anyhow::Result<Counts> {
        let request = WaitRequest {
            at_least,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("the receiver's stdin is closed"))?;
        writeln!(stdin, "{}", serde_json::to_string(&request)?)?;
        stdin.flush()?;
        self.child.expect("COUNTS", timeout + STARTUP_TIMEOUT)
    }

    /// Stops the child and checks that it exited cleanly.
    pub fn finish(mut self) -> anyhow::Result<()> {
        let status = self.child.close_and_wait(STARTUP_TIMEOUT)?;
        if !status.success() {
            bail!(
                "the receiving helper failed ({status}): {}",
                self.child.stderr()
            );
        }
        Ok(())
    }
}

/// A child that does nothing in `cgroup` until killed, for testing cleanup.
pub fn spawn_holder(cgroup: &Path) -> anyhow::Result<ChildProcess> {
    let mut child = ChildProcess::spawn(Some(cgroup), &Job::Hold)?;
    let pid: u32 = child.expect("READY", STARTUP_TIMEOUT)?;
    anyhow::ensure!(pid == child.pid(), "the holder reported pid {pid}");
    Ok(child)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_an_echo_request() {
        // type 8, code 0, id 0x1234, seq 1: sum 0x0800 + 0x1234 + 0x0001.
        let packet = [8, 0, 0, 0, 0x12, 0x34, 0, 1];
        assert_eq!(inet_checksum(&packet), !0x1a35);
    }
}
