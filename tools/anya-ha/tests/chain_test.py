#!/usr/bin/env python3
"""Chain-gated leadership against real processes: three `anya-ha agent`s, each with an exec
chain probe ([bitcoin] chain_probe) that prints a file this test writes, standing in for the
Bitcoin backend beside each node. Prints TAP (one case per test).
Usage: chain_test.py ANYA_HA_BINARY [TEST_NAME...]"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster, check, run_tap  # noqa: E402

BINARY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/tools/anya-ha"
MAX_BEHIND = 2
# Generous: the leader needs a probe interval to see the change, a heartbeat to learn the
# others' views and a round trip to hand over; a loaded CI machine gets ten seconds.
BOUND_S = 10.0


def tip(height):
    return f"{height:064x}"


def chain_file(c, i):
    return os.path.join(c.dir, str(i), "chain.json")


def set_height(c, i, height):
    """What node i's backend says; written atomically so a probe never reads half a file."""
    path = chain_file(c, i)
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps({"height": height, "tip": tip(height)}) + "\n")
    os.replace(path + ".tmp", path)


def set_raw(c, i, text):
    path = chain_file(c, i)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def chain_cluster():
    c = Cluster(BINARY, 3)
    for i in range(1, 4):
        set_height(c, i, 1000)
        c.edit_config(i, {
            f"max_blocks_behind = 2\n": f'chain_probe = "cat {chain_file(c, i)}"\n'
                                        f"max_blocks_behind = {MAX_BEHIND}\n",
            'chain_probe_interval = "1s"': 'chain_probe_interval = "100ms"',
        })
    return c


def wait_for(what, fn, timeout=BOUND_S):
    """Polls fn() until it returns something truthy; raises naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout}s; last seen: {last}")


def chain_of(c, i):
    st = c.status(i)
    return st["chain"] if st else None


def wait_views(c, height):
    """Every node reports `height`, and the leader knows a quorum holds it."""
    def ready():
        views = {i: chain_of(c, i) for i in range(1, 4)}
        ok = all(v and v["height"] == height for v in views.values())
        leader = c.wait_leader(timeout=BOUND_S)
        lv = chain_of(c, leader)
        return views if ok and lv and lv["quorum_height"] == height else None
    return wait_for(f"every node at height {height}", ready)


def leader_other_than(c, old):
    def moved():
        try:
            leader = c.wait_leader(timeout=1.0)
        except TimeoutError:
            return None
        return leader if leader != old else None
    return wait_for(f"leadership away from node {old}", moved)


def test_a_leader_whose_backend_falls_behind_hands_over_and_says_so():
    c = chain_cluster()
    try:
        c.start_all()
        wait_views(c, 1000)
        old = c.wait_leader()
        others = [i for i in range(1, 4) if i != old]
        # The leader's backend stalls while the others' move on by more than max_blocks_behind.
        for i in others:
            set_height(c, i, 1000 + MAX_BEHIND + 3)
        new = leader_other_than(c, old)
        check(new in others, f"new leader {new}")
        view = wait_for(f"node {old} reporting itself behind",
                        lambda: (lambda v: v if v and v["behind"] else None)(chain_of(c, old)))
        check(view["height"] == 1000 and view["quorum_height"] == 1005
              and view["blocks_behind"] == 5 and view["max_blocks_behind"] == MAX_BEHIND
              and view["tip"] == tip(1000) and view["probe_error"] is None, f"status: {view}")
        want = {old: 1000, others[0]: 1005, others[1]: 1005}

        def heights_seen():
            st = c.status(new)
            heights = {m["id"]: m["chain_height"] for m in st["members"]} if st else None
            return heights if heights == want else None
        wait_for(f"the new leader reporting each member's height as {want}", heights_seen)
        check(c.metric(old, "anya_chain_behind") == 1, "anya_chain_behind on the old leader")
        check(c.metric(old, "anya_chain_blocks_behind") == 5, "anya_chain_blocks_behind")
        check(c.metric(old, "anya_chain_height") == 1000, "anya_chain_height")
        check(c.metric(old, "anya_gated_transfers_total", {"reason": "chain"}) == 1,
              "one hand-over for the chain on the old leader")
        check(c.metric(old, "anya_gated_transfers_total", {"reason": "health"}) == 0,
              "none for health")
        wait_for("the log saying why",
                 lambda: "behind the Bitcoin chain: height 1000" in c.log(old))
        # While behind it never takes leadership back, though it stays a healthy voter.
        time.sleep(2.0)
        check(c.wait_leader() != old, "the node behind the chain leads again")
        # Its backend catches up: it is no longer behind, and may lead again.
        set_height(c, old, 1005)
        wait_for(f"node {old} caught up",
                 lambda: (lambda v: v if v and not v["behind"] else None)(chain_of(c, old)))

        def leader_sees_it():
            leader = c.wait_leader()
            st = c.status(leader)
            seen = st and any(m["id"] == old and m["chain_height"] == 1005 for m in st["members"])
            return leader if seen else None
        # The leader judges a target by the height the target last reported to it.
        leader = wait_for(f"the leader hearing node {old} at 1005", leader_sees_it)
        code, body = c.request(leader, "POST", "/v1/leader/transfer", {"to": old})
        check(code == 200, f"a caught-up node is a valid target again: {code} {body}")
        wait_for(f"node {old} leading again", lambda: c.wait_leader() == old)
    finally:
        c.close()


def test_a_failed_probe_makes_the_view_unknown_and_a_behind_node_no_target():
    c = chain_cluster()
    try:
        c.start_all()
        wait_views(c, 1000)
        leader = c.wait_leader()
        victim = (leader % 3) + 1
        set_raw(c, victim, '{"height": 1000}\n')  # no tip: a bad probe
        view = wait_for(f"node {victim}'s probe failing",
                        lambda: (lambda v: v if v and v["probe_error"] else None)(
                            chain_of(c, victim)))
        check(view["height"] is None and view["behind"] is True, f"status: {view}")
        check('no "tip"' in view["probe_error"], f"reason: {view['probe_error']}")
        check(c.metric(victim, "anya_chain_probe_failures_total") >= 1, "failures counted")
        log = c.log(victim)
        check(log.count("chain probe failed") == 1,
              "logged once, however many probes failed:\n" + log[-2000:])
        # An operator cannot hand leadership to it, once the leader has heard it has no view.
        def leader_sees_no_view():
            st = c.status(leader)
            return st and any(m["id"] == victim and m["chain_height"] is None
                              for m in st["members"])
        wait_for(f"the leader hearing node {victim} has no view", leader_sees_no_view)
        code, body = c.request(leader, "POST", "/v1/leader/transfer", {"to": victim})
        check(code == 400 and "behind the Bitcoin chain (height unknown" in body["message"],
              f"{code} {body}")
        # ctl status shows it.
        env = dict(os.environ)
        with open(os.path.join(c.dir, "ctl.env")) as f:
            for line in f:
                if line.startswith("export "):
                    k, _, v = line[len("export "):].strip().partition("=")
                    env[k] = v
        env["ANYA_HA_ENDPOINTS"] = f"https://127.0.0.1:{c.admin_port(victim)}"
        out = subprocess.run([BINARY, "ctl", "status"], capture_output=True, text=True,
                             env=env, timeout=20)
        check(out.returncode == 0 and "chain: height unknown (probe: " in out.stdout
              and "BEHIND, will not lead" in out.stdout, out.stdout + out.stderr)
        set_height(c, victim, 1000)
        wait_for(f"node {victim}'s probe working again",
                 lambda: (lambda v: v if v and v["height"] == 1000 and not v["behind"] else None)(
                     chain_of(c, victim)))
        check("chain probe works again" in c.log(victim), "the recovery is logged")
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(run_tap(globals(), sys.argv[2:]))
