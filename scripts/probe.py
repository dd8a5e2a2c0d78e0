#!/usr/bin/env python3
"""Tries a few kinds of loopback traffic and says which got out.

Made to run under `portwall run`: with the example filter, ICMP, UDP to
port 53 and TCP to port 80 are allowed; the rest is dropped. A dropped UDP
send fails at once with EPERM; a dropped TCP connection attempt times out.
Nothing needs to listen: a refused TCP connection still means the SYN got
out (the kernel answered it).
"""
import errno
import os
import socket
import struct
import sys

TIMEOUT = 0.5


def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"probe", ("127.0.0.1", port))
        return "sent"
    except PermissionError:
        return "blocked (EPERM)"
    finally:
        s.close()


def tcp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect(("127.0.0.1", port))
        return "connected"
    except ConnectionRefusedError:
        return "got out (refused: nothing listens)"
    except (socket.timeout, TimeoutError):
        return "blocked (timed out)"
    except PermissionError:
        return "blocked (EPERM)"
    finally:
        s.close()


def icmp_echo():
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except PermissionError:
        return "not tried (raw sockets need root)"
    s.settimeout(TIMEOUT)
    ident = os.getpid() & 0xFFFF
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    checksum = 0
    for i in range(0, len(header), 2):
        checksum += (header[i] << 8) + header[i + 1]
    checksum = (checksum >> 16) + (checksum & 0xFFFF)
    checksum = ~(checksum + (checksum >> 16)) & 0xFFFF
    header = struct.pack("!BBHHH", 8, 0, checksum, ident, 1)
    try:
        s.sendto(header, ("127.0.0.1", 0))
        while True:
            data = s.recv(1024)
            if data[20] == 0 and struct.unpack("!H", data[24:26])[0] == ident:
                return "reply received"
    except (socket.timeout, TimeoutError):
        return "blocked (no reply)"
    except PermissionError:
        return "blocked (EPERM)"
    finally:
        s.close()


def main():
    probes = [
        ("ping 127.0.0.1", icmp_echo),
        ("UDP to port 53 (DNS)", lambda: udp(53)),
        ("UDP to port 123 (NTP)", lambda: udp(123)),
        ("TCP to port 80 (HTTP)", lambda: tcp(80)),
        ("TCP to port 443 (HTTPS)", lambda: tcp(443)),
    ]
    for name, probe in probes:
        print(f"{name:<26} {probe()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
