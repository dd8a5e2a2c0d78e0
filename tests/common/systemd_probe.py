#!/usr/bin/python3
"""Loopback traffic for portwall's systemd tests (runs inside the container).

probe.py send ROUNDS TAG TARGET...
    Forever: one round sends "TAG SEQ PID" to each TARGET in order
    (udp:PORT or tcp:PORT, on 127.0.0.1), then appends "SEQ PID" to the
    file ROUNDS. A send the filter drops fails (EPERM, or a TCP connect
    that times out); that is what the tests look for, so it is ignored.

probe.py send-once ROUNDS TAG TARGET...
    One round, then exit.

probe.py receive LOG CONTROL PORT...
    Listens on UDP and TCP PORT (127.0.0.1) for each PORT and appends one
    line "PROTO PORT TAG SEQ PID" per message to LOG. CONTROL is a Unix
    datagram socket (never filtered by cgroup BPF, which sees only IP):
    "FLUSH ID" makes the receiver drain every socket, then log "FLUSH ID",
    so a test knows that anything sent before its flush is in LOG. The
    file LOG.ready appears once every socket listens.
"""

import errno
import os
import selectors
import socket
import sys
import time

HOST = "127.0.0.1"
CONNECT_TIMEOUT = 0.1
ROUND_PAUSE = 0.02


def send(rounds_path, tag, targets, once):
    pid = os.getpid()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    seq = 0
    with open(rounds_path, "a", buffering=1) as rounds:
        while True:
            seq += 1
            message = f"{tag} {seq} {pid}\n".encode()
            for target in targets:
                proto, port = target.split(":")
                try:
                    if proto == "udp":
                        udp.sendto(message, (HOST, int(port)))
                    else:
                        with socket.create_connection((HOST, int(port)), timeout=CONNECT_TIMEOUT) as s:
                            s.sendall(message)
                except OSError:
                    pass
            rounds.write(f"{seq} {pid}\n")
            if once:
                return
            time.sleep(ROUND_PAUSE)


def receive(log_path, control_path, ports):
    sel = selectors.DefaultSelector()
    sockets = []
    for port in ports:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((HOST, port))
        u.setblocking(False)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((HOST, port))
        t.listen(64)
        t.setblocking(False)
        sockets += [("udp", port, u), ("tcp", port, t)]
    try:
        os.unlink(control_path)
    except FileNotFoundError:
        pass
    control = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    control.bind(control_path)
    os.chmod(control_path, 0o666)
    for entry in sockets:
        sel.register(entry[2], selectors.EVENT_READ, entry)
    sel.register(control, selectors.EVENT_READ, ("control", 0, control))
    with open(log_path, "a", buffering=1) as log:
        open(log_path + ".ready", "w").close()

        def drain(proto, port, sock):
            while True:
                try:
                    if proto == "udp":
                        data = sock.recv(4096)
                        log.write(f"udp {port} {data.decode().strip()}\n")
                    else:
                        conn, _ = sock.accept()
                        with conn:
                            conn.settimeout(2)
                            data = b""
                            while not data.endswith(b"\n"):
                                chunk = conn.recv(4096)
                                if not chunk:
                                    break
                                data += chunk
                        if data:
                            log.write(f"tcp {port} {data.decode().strip()}\n")
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        return
                    if isinstance(e, socket.timeout):
                        continue
                    raise

        while True:
            for key, _ in sel.select():
                proto, port, sock = key.data
                if proto != "control":
                    drain(proto, port, sock)
                    continue
                command = sock.recv(4096).decode().strip()
                for p, q, s in sockets:
                    drain(p, q, s)
                log.write(f"{command}\n")


def main():
    mode = sys.argv[1]
    if mode in ("send", "send-once"):
        send(sys.argv[2], sys.argv[3], sys.argv[4:], mode == "send-once")
    elif mode == "receive":
        receive(sys.argv[2], sys.argv[3], [int(p) for p in sys.argv[4:]])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
