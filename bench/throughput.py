#!/usr/bin/env python3
"""Throughput and latency of committed writes (256-byte values, PUT /v1/kv) through the admin API
of a real 3-node cluster on 127.0.0.1 (mutual TLS, fsync on), at 1, 16 and 64 concurrent
clients, each run bounded in time. Also the idle footprint of one node (CPU % and RSS) over a
window with no client traffic.

Usage: bench/throughput.py build/tools/anya-ha build/bench/admin_load [--seconds 10]
       [--repeat 3] [--idle-seconds 60]"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools",
                                "anya-ha", "tests"))
from harness import Cluster  # noqa: E402
from failover import settle  # noqa: E402


def load(c, load_bin, leader, clients, seconds, extra=()):
    out = subprocess.run([load_bin, "--endpoint", f"https://127.0.0.1:{c.admin_port(leader)}",
                          "--cacert", os.path.join(c.dir, "ca.crt"),
                          "--cert", os.path.join(c.dir, "client.crt"),
                          "--key", os.path.join(c.dir, "client.key"),
                          "--clients", str(clients), "--seconds", str(seconds), *extra],
                         capture_output=True, text=True, timeout=seconds + 60)
    line = out.stdout.strip().splitlines()[-1]
    return dict((k, float(v)) for k, v in re.findall(r"(\w+)=([0-9.]+)", line)), out.stderr


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_footprint(c, seconds):
    hz = os.sysconf("SC_CLK_TCK")
    result = {}
    for i in range(1, c.nodes + 1):
        pid = c.procs[i].pid
        result[i] = (cpu_ticks(pid), time.monotonic())
    time.sleep(seconds)
    out = []
    for i in range(1, c.nodes + 1):
        pid = c.procs[i].pid
        t0, w0 = result[i]
        cpu = (cpu_ticks(pid) - t0) / hz / (time.monotonic() - w0) * 100
        out.append((i, cpu, rss_kib(pid) / 1024))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("load")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--idle-seconds", type=int, default=60)
    a = ap.parse_args()
    c = Cluster(os.path.abspath(a.binary), 3)
    try:
        c.start_all()
        leader = settle(c)
        if a.idle_seconds > 0:
            time.sleep(2)
            for i, cpu, rss in idle_footprint(c, a.idle_seconds):
                role = "leader" if i == leader else "follower"
                print(f"idle {a.idle_seconds}s node {i} ({role}): cpu={cpu:.2f}% rss={rss:.1f} MiB",
                      flush=True)
        print(f"{'clients':>7} {'writes/s':>9} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}"
              f" (median of {a.repeat} runs of {a.seconds}s)", flush=True)
        for clients in (1, 16, 64):
            runs = []
            for _ in range(a.repeat):
                leader = settle(c)
                r, err = load(c, os.path.abspath(a.load), leader, clients, a.seconds)
                if r.get("errors", 0) > 0:
                    print(f"  errors in a run: {err.strip()[:300]}", flush=True)
                runs.append(r)
            med = {k: statistics.median(r[k] for r in runs)
                   for k in ("writes_per_s", "p50_ms", "p90_ms", "p99_ms")}
            print(f"{clients:>7} {med['writes_per_s']:>9.0f} {med['p50_ms']:>7.2f} "
                  f"{med['p90_ms']:>7.2f} {med['p99_ms']:>7.2f}", flush=True)
    finally:
        c.close()


if __name__ == "__main__":
    main()
