#!/usr/bin/env python3
"""Read latency and throughput through the admin API of a real 3-node cluster on 127.0.0.1
(mutual TLS, fsync on, default timings), per read rule: linearizable (ReadIndex: a heartbeat
round answered by a majority per batch of reads), lease (from the leader's state while its
lease holds) and serializable (from the node's own state), at 1 and 16 concurrent clients.
Runs are interleaved (every mode once per pass) and repeated; medians are printed.

Usage: bench/reads.py build/tools/anya-ha build/bench/admin_load [--seconds 5] [--repeat 3]"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools",
                                "anya-ha", "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster  # noqa: E402
from failover import settle  # noqa: E402
from throughput import load  # noqa: E402

MODES = ("linearizable", "lease", "serializable")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("load")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    c = Cluster(os.path.abspath(a.binary), 3)
    load_bin = os.path.abspath(a.load)
    try:
        c.start_all()
        leader = settle(c)
        load(c, load_bin, leader, 16, 2)  # the keys the readers ask for
        print(f"{'clients':>7} {'mode':>13} {'reads/s':>9} {'p50 ms':>7} {'p90 ms':>7} "
              f"{'p99 ms':>7} (median of {a.repeat} interleaved runs of {a.seconds}s)",
              flush=True)
        for clients in (1, 16):
            runs = {m: [] for m in MODES}
            for _ in range(a.repeat):
                for mode in MODES:
                    leader = settle(c)
                    r, err = load(c, load_bin, leader, clients, a.seconds, ("--read", mode))
                    if r.get("errors", 0) > 0:
                        print(f"  errors in a {mode} run: {err.strip()[:300]}", flush=True)
                    runs[mode].append(r)
            for mode in MODES:
                med = {k: statistics.median(r[k] for r in runs[mode])
                       for k in ("reads_per_s", "p50_ms", "p90_ms", "p99_ms")}
                print(f"{clients:>7} {mode:>13} {med['reads_per_s']:>9.0f} {med['p50_ms']:>7.2f} "
                      f"{med['p90_ms']:>7.2f} {med['p99_ms']:>7.2f}", flush=True)
    finally:
        c.close()


if __name__ == "__main__":
    main()
