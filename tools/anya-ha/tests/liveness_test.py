#!/usr/bin/env python3
"""The failure detector with real processes: `anya-ha agent` on 127.0.0.1 over mutual TLS. A
SIGKILLed member turns suspect, then down, and is never shown healthy once in doubt; a member
that was never reached is never shown healthy; a restarted one comes back. Prints TAP, and the
time each step took. Usage: liveness_test.py ANYA_HA_BINARY [TEST_NAME...]"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster, check, run_tap  # noqa: E402

BINARY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/tools/anya-ha"


def member(status, node_id):
    for m in status["members"]:
        if m["id"] == node_id:
            return m
    raise AssertionError(f"member {node_id} missing from {status['members']}")


def wait_member(c, via, node_id, predicate, timeout, seen=None):
    """Polls `via`'s status until member `node_id` satisfies `predicate`; every view seen is
    passed to `seen` first. Returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        st = c.status(via)
        if st is not None:
            m = member(st, node_id)
            if seen:
                seen(m)
            if predicate(m):
                return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"member {node_id} as seen by {via}: not there within {timeout}s: "
                         f"{member(c.status(via), node_id)}")


def never_healthy_in_doubt(m):
    if m["reachability"] != "reachable":
        check(m["health"] == "unknown", f"a member in doubt shown {m['health']}: {m}")


def test_a_killed_member_turns_suspect_then_down_and_comes_back():
    c = Cluster(BINARY, nodes=3)
    try:
        c.start_all()
        leader = c.wait_leader()
        victim = next(i for i in range(1, 4) if i != leader)
        # Reachable, with a heartbeat round trip measured, as the leader sees each follower.
        for i in range(1, 4):
            if i != leader:
                wait_member(c, leader, i, lambda m: m["reachability"] == "reachable" and
                            m["rtt_ms"] is not None and m["health"] == "healthy", 10)
        c.kill(victim)
        killed = time.monotonic()
        suspect = wait_member(c, leader, victim, lambda m: m["reachability"] != "reachable",
                              10, never_healthy_in_doubt)
        down = wait_member(c, leader, victim, lambda m: m["reachability"] == "down", 10,
                           never_healthy_in_doubt)
        down_s = time.monotonic() - killed
        check(c.wait_leader() == leader, "the leader changed though a quorum remained")
        # The text CLI shows the column.
        out = run_ctl(c, ["status"], via=leader)
        row = [line for line in out.stdout.splitlines() if line.startswith(f"{victim}\t")]
        check(out.returncode == 0 and row and "\tdown\tunknown\t" in row[0],
              f"ctl status: {out.stdout} {out.stderr}")
        c.start(victim)
        back = wait_member(c, leader, victim, lambda m: m["reachability"] == "reachable", 20)
        check(member(c.status(leader), victim)["health"] == "healthy", "back but not healthy")
        print(f"# SIGKILLed member {victim}: suspect after {suspect * 1000:.0f} ms, down after "
              f"{down_s * 1000:.0f} ms (seen {down * 1000:.0f} ms after suspect); reachable "
              f"again {back * 1000:.0f} ms after restart")
    finally:
        c.close()


def test_a_member_never_reached_is_never_shown_healthy():
    c = Cluster(BINARY, nodes=3)
    try:
        c.start_all()
        leader = c.wait_leader()
        code, reply = c.request(leader, "POST", "/v1/members",
                                {"id": 9, "address": "127.0.0.1:1", "learner": True})
        check(code == 200, f"adding a learner: {code} {reply}")
        seen = []
        took = wait_member(c, leader, 9, lambda m: m["reachability"] == "down", 10,
                           lambda m: seen.append(m))
        for m in seen:
            check(m["health"] != "healthy", f"never reached, yet shown healthy: {m}")
        print(f"# learner 9 (nothing listens): down {took * 1000:.0f} ms after it was added, "
              f"{len(seen)} views, none healthy")
    finally:
        c.close()


def run_ctl(c, args, via):
    cmd = [BINARY, "ctl", "--endpoint", f"https://127.0.0.1:{c.admin_port(via)}", "--cacert",
           os.path.join(c.dir, "ca.crt"), "--cert", os.path.join(c.dir, "client.crt"),
           "--key", os.path.join(c.dir, "client.key")]
    return subprocess.run(cmd + args, capture_output=True, text=True, timeout=60)


if __name__ == "__main__":
    sys.exit(run_tap(dict(globals()), sys.argv[2:]))
