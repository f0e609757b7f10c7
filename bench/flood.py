#!/usr/bin/env python3
"""Connection flood against one listener of a running node (admin or peer port): opens N TCP
connections that never finish a handshake, holds them for S seconds, and reports what the server
did with them; optionally the node's memory, an admin request's latency meanwhile, and how many
log lines the node wrote.

  idle        connect and send nothing
  tls-loris   send a real TLS ClientHello one byte per second
  http-loris  send HTTP request headers one byte per second (never the blank line)

  --reconnect     replace each connection the server closes at once (a churning flood)
  --sources N     spread the connections over 127.0.0.1 .. 127.0.0.N (a flood from N addresses)

Usage:
  bench/flood.py 127.0.0.1:27002 -n 3000 --hold 20 --pid 1234
  bench/flood.py 127.0.0.1:27102 -n 300 --hold 12 --log /tmp/dev.log --log-match node=2 \\
      --probe-url https://127.0.0.1:27102/v1/status --cacert D/ca.crt --cert D/client.crt \\
      --key D/client.key

Prints: connections opened / refused, closed by the server during the hold (and when), RSS
before / peak during / at the end of the hold / after closing (VmRSS of --pid), probe latencies,
log lines written. Python 3 standard library only; everything it opens it closes."""
import argparse
import http.client
import os
import selectors
import socket
import ssl
import statistics
import sys
import threading
import time

CONNECT_TIMEOUT_S = 3.0
SAMPLE_INTERVAL_S = 0.2
PROBE_TIMEOUT_S = 10.0
RECV_BYTES = 4096


def rss_kib(pid):
    """VmRSS of pid in KiB, or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def client_hello():
    """The bytes a real TLS client sends first, produced by the ssl module without a socket."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def loris_bytes(mode):
    if mode == "tls-loris":
        return client_hello()
    if mode == "http-loris":
        return b"GET /healthz HTTP/1.1\r\nHost: flood\r\n" + b"X-Pad: " + b"a" * 4000
    return b""


class RssSampler(threading.Thread):
    """Samples VmRSS every SAMPLE_INTERVAL_S; keeps the peak."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.last = pid, None, None
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            v = rss_kib(self.pid)
            if v is not None:
                self.last = v
                self.peak = v if self.peak is None else max(self.peak, v)
            self.stop.wait(SAMPLE_INTERVAL_S)


class Prober(threading.Thread):
    """Times one HTTPS GET after another (mutual TLS) until stopped."""

    def __init__(self, args):
        super().__init__(daemon=True)
        self.url = args.probe_url
        self.interval = args.probe_interval
        self.ctx = ssl.create_default_context(cafile=args.cacert)
        self.ctx.check_hostname = False
        if args.cert:
            self.ctx.load_cert_chain(args.cert, args.key)
        self.latencies, self.errors = [], []
        self.stop = threading.Event()

    def once(self):
        rest = self.url.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.rpartition(":")
        t0 = time.monotonic()
        conn = http.client.HTTPSConnection(host, int(port), context=self.ctx,
                                           timeout=PROBE_TIMEOUT_S)
        try:
            conn.request("GET", "/" + path)
            status = conn.getresponse().status
        finally:
            conn.close()
        if status >= 500:
            raise RuntimeError(f"HTTP {status}")
        return time.monotonic() - t0

    def run(self):
        while not self.stop.is_set():
            try:
                self.latencies.append(self.once())
            except Exception as e:  # noqa: BLE001 - every failure is a finding to report
                self.errors.append(f"{type(e).__name__}: {e}")
            self.stop.wait(self.interval)


class LogCounter:
    """Lines appended to a log file since construction (optionally only those containing a
    substring)."""

    def __init__(self, path, match):
        self.path, self.match = path, match
        self.start = os.path.getsize(path) if path else 0

    def count(self):
        if not self.path:
            return None
        with open(self.path, "rb") as f:
            f.seek(self.start)
            lines = f.read().decode(errors="replace").splitlines()
        return sum(1 for l in lines if self.match is None or self.match in l)


SOURCES = 1  # --sources: connections come from 127.0.0.1 .. 127.0.0.SOURCES in turn
_next_source = 0


def open_all(host, port, count):
    global _next_source
    socks, refused = [], 0
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(CONNECT_TIMEOUT_S)
        try:
            if SOURCES > 1:
                s.bind((f"127.0.0.{1 + _next_source % SOURCES}", 0))
                _next_source += 1
            s.connect((host, port))
        except OSError:
            refused += 1
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    return socks, refused


def hold(socks, seconds, payload, reconnect_to=None):
    """Watches every socket for the server closing it; sends the next payload byte each second.
    With reconnect_to (host, port), replaces each connection the server closes with a new one.
    Returns (seconds after the start at which each closed, bytes the server sent); `socks` ends
    up holding every socket opened."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    open_socks = set(socks)
    closed_at, received, sent = [], 0, 0
    t0 = time.monotonic()
    next_byte = t0
    while time.monotonic() - t0 < seconds:
        if not open_socks:
            time.sleep(0.1)  # keep the window (and the probe) going to the end
            continue
        if payload and sent < len(payload) and time.monotonic() >= next_byte:
            for s in list(open_socks):
                try:
                    s.send(payload[sent:sent + 1])
                except OSError:
                    pass  # noticed as a close by the selector
            sent += 1
            next_byte += 1.0
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            try:
                data = s.recv(RECV_BYTES)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                received += len(data)
                continue
            sel.unregister(s)
            open_socks.discard(s)
            s.close()  # its descriptor, for the reconnects
            closed_at.append(time.monotonic() - t0)
            if reconnect_to:
                fresh, _ = open_all(reconnect_to[0], reconnect_to[1], 1)
                for f in fresh:
                    socks.append(f)
                    open_socks.add(f)
                    sel.register(f, selectors.EVENT_READ)
    sel.close()
    return closed_at, received


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="HOST:PORT")
    p.add_argument("-n", "--count", type=int, default=300)
    p.add_argument("--hold", type=float, default=10.0, help="seconds to hold the connections")
    p.add_argument("--mode", choices=["idle", "tls-loris", "http-loris"], default="idle")
    p.add_argument("--reconnect", action="store_true",
                   help="replace each connection the server closes with a new one (idle mode)")
    p.add_argument("--sources", type=int, default=1,
                   help="spread the connections over 127.0.0.1 .. 127.0.0.N (loopback targets)")
    p.add_argument("--pid", type=int, help="the node's process, for VmRSS")
    p.add_argument("--after", type=float, default=5.0, help="seconds to watch RSS after closing")
    p.add_argument("--probe-url", help="https URL to time during the flood")
    p.add_argument("--probe-interval", type=float, default=0.5)
    p.add_argument("--cacert")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--log", help="the node's log file, to count lines written meanwhile")
    p.add_argument("--log-match", help="count only log lines containing this")
    args = p.parse_args()
    host, _, port = args.target.rpartition(":")
    global SOURCES
    SOURCES = args.sources

    before = rss_kib(args.pid) if args.pid else None
    sampler = RssSampler(args.pid) if args.pid else None
    logs = LogCounter(args.log, args.log_match)
    if sampler:
        sampler.start()
    socks, refused = open_all(host, int(port), args.count)
    first = len(socks)
    prober = Prober(args) if args.probe_url else None
    if prober:
        prober.start()
    closed_at, received = hold(socks, args.hold, loris_bytes(args.mode),
                               (host, int(port)) if args.reconnect else None)
    if prober:
        prober.stop.set()
        prober.join()
    end_of_hold = rss_kib(args.pid) if args.pid else None
    for s in socks:
        s.close()
    time.sleep(args.after)
    after = rss_kib(args.pid) if args.pid else None
    if sampler:
        sampler.stop.set()
        sampler.join()

    print(f"target {args.target}, mode {args.mode}, {args.count} connections held {args.hold}s")
    print(f"  opened {first} (+{len(socks) - first} reconnects), connect failed {refused}")
    if closed_at:
        closed_at.sort()
        print(f"  closed by the server during the hold: {len(closed_at)} (first after "
              f"{closed_at[0]:.2f}s, median {statistics.median(closed_at):.2f}s, last "
              f"{closed_at[-1]:.2f}s)")
    else:
        print("  closed by the server during the hold: 0")
    print(f"  still open at the end: {len(socks) - len(closed_at)}; bytes from the server: "
          f"{received}")
    if args.pid:
        print(f"  RSS pid {args.pid}: before {mib(before)}, peak {mib(sampler.peak)}, end of hold "
              f"{mib(end_of_hold)}, {args.after:.0f}s after closing {mib(after)}")
    if prober:
        lat = sorted(prober.latencies)
        if lat:
            print(f"  probe {args.probe_url}: {len(lat)} ok, {len(prober.errors)} failed; latency "
                  f"min {lat[0] * 1000:.1f} ms, median {statistics.median(lat) * 1000:.1f} ms, "
                  f"max {lat[-1] * 1000:.1f} ms")
        else:
            print(f"  probe {args.probe_url}: 0 ok, {len(prober.errors)} failed")
        for e in sorted(set(prober.errors))[:5]:
            print(f"    error: {e}")
    if args.log:
        print(f"  log lines written: {logs.count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
