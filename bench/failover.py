#!/usr/bin/env python3
"""Failover time of a real 3-node cluster on 127.0.0.1 (mutual TLS, fsync on, default timings:
50 ms heartbeats, 300 ms election timeout): the time from the leader's death to the first write
committed through a survivor.

  kill mode: SIGKILL the leader (its sockets close, so followers see the link drop at once).
  stop mode: SIGSTOP the leader (its connections stay open: followers must wait out their
             election timeout), then SIGCONT it afterwards.

Usage: bench/failover.py build/tools/anya-ha [--rounds 20] [--mode kill|stop|both]
Prints min, median, p90 and max per mode. Each round is bounded; the script stops by itself."""
import argparse
import os
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools",
                                "anya-ha", "tests"))
from harness import Cluster  # noqa: E402

ROUND_LIMIT_S = 10.0


def first_write_after(c, dead, key):
    """Seconds until a PUT through one of the survivors commits."""
    survivors = [i for i in range(1, c.nodes + 1) if i != dead]
    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < ROUND_LIMIT_S:
        via = survivors[k % len(survivors)]
        k += 1
        try:
            code, body = c.request(via, "PUT", "/v1/kv/" + key, {"value": "x" * 256}, timeout=0.5)
            if code == 421 and isinstance(body, dict) and body.get("leader") in survivors:
                code, body = c.request(body["leader"], "PUT", "/v1/kv/" + key,
                                       {"value": "x" * 256}, timeout=0.5)
            if code == 200:
                return time.monotonic() - t0
        except OSError:
            pass
    raise TimeoutError(f"no write committed within {ROUND_LIMIT_S}s of losing node {dead}")


def settle(c):
    """All nodes up, one leader, everyone caught up."""
    leader = c.wait_leader(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lst = c.status(leader)
        sts = [c.status(i) for i in range(1, c.nodes + 1)]
        if lst and all(s and s["applied_index"] >= lst["commit_index"] and s["leader"] == leader
                       for s in sts):
            return leader
        time.sleep(0.05)
    raise TimeoutError("cluster did not settle")


def run(binary, mode, rounds):
    c = Cluster(binary, 3)
    samples = []
    try:
        c.start_all()
        settle(c)
        for r in range(rounds):
            leader = settle(c)
            c.put(f"warm{r}", "w", via=leader)
            if mode == "kill":
                c.procs[leader].send_signal(signal.SIGKILL)
                c.procs[leader].wait(timeout=5)
            else:
                c.procs[leader].send_signal(signal.SIGSTOP)
            took = first_write_after(c, leader, f"round{r}")
            samples.append(took * 1000)
            if mode == "kill":
                c.start(leader)
            else:
                c.procs[leader].send_signal(signal.SIGCONT)
            print(f"  {mode} round {r + 1:2d}: leader {leader} -> first write after "
                  f"{took * 1000:6.1f} ms", flush=True)
    finally:
        c.close()
    return samples


def report(mode, samples):
    s = sorted(samples)
    p90 = s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))]
    print(f"{mode}: n={len(s)} min={s[0]:.1f} ms median={statistics.median(s):.1f} ms "
          f"p90={p90:.1f} ms max={s[-1]:.1f} ms", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--mode", choices=["kill", "stop", "both"], default="both")
    a = ap.parse_args()
    modes = ["kill", "stop"] if a.mode == "both" else [a.mode]
    results = {m: run(os.path.abspath(a.binary), m, a.rounds) for m in modes}
    for m in modes:
        report(m, results[m])


if __name__ == "__main__":
    main()
