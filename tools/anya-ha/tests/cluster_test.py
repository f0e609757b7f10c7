#!/usr/bin/env python3
"""Integration tests: real `anya-ha agent` processes on 127.0.0.1 over mutual TLS, with real
disks. Prints TAP (one case per test). Usage: cluster_test.py ANYA_HA_BINARY [TEST_NAME...]"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster, check, run_tap  # noqa: E402

BINARY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/tools/anya-ha"


def write_keys(c, prefix, count, via=None):
    for k in range(count):
        code, body = c.put(f"{prefix}{k}", f"value-{k}", via=via)
        check(code == 200, f"put {prefix}{k}: {code} {body}")


def check_keys(c, prefix, count, via):
    for k in range(count):
        code, body = c.get(f"{prefix}{k}", via)
        check(code == 200 and body["value"] == f"value-{k}",
              f"node {via}: {prefix}{k} lost or wrong: {code} {body}")


def transfer_leadership(c, target, attempts=3):
    """Asks the leader to hand over to `target` until it leads. A transfer the leader gives up
    on (the target did not win within an election timeout, as can happen on a loaded machine)
    is asked again, as an operator would; the failure names what each attempt saw."""
    seen = []
    for _ in range(attempts):
        leader = c.wait_leader(timeout=5)
        if leader == target:
            return
        code, body = c.request(leader, "POST", "/v1/leader/transfer", {"to": target})
        check(code == 200, f"transfer from {leader} to {target}: {code} {body}")
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            if c.wait_leader(timeout=3) == target:
                return
            time.sleep(0.05)
        seen.append((leader, c.status(target)))
    raise AssertionError(f"leadership never moved to node {target}: {seen}\n"
                         + c.log(target)[-3000:])


def wait_caught_up(c, node, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = c.wait_leader(timeout=timeout)
        lst, nst = c.status(leader), c.status(node)
        if lst and nst and nst["applied_index"] >= lst["commit_index"]:
            return nst
        time.sleep(0.05)
    raise TimeoutError(f"node {node} did not catch up")


def test_three_nodes_elect_one_leader_and_commit():
    with_cluster = Cluster(BINARY, 3)
    try:
        with_cluster.start_all()
        leader = with_cluster.wait_leader(timeout=10)
        # A majority agreed; the third hears the leader within a heartbeat or two.
        deadline = time.monotonic() + 3
        while True:
            views = {i: with_cluster.status(i)["leader"] for i in (1, 2, 3)}
            if set(views.values()) == {leader} or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        check(set(views.values()) == {leader}, f"nodes disagree on the leader: {views}")
        code, body = with_cluster.put("greeting", "hello", via=(leader % 3) + 1)  # via a follower
        check(code == 200 and body["revision"] > 0, f"put: {code} {body}")
        code, body = with_cluster.get("greeting", leader)
        check(code == 200 and body["value"] == "hello", f"get: {code} {body}")
        # A follower never answers a read itself: it names the leader.
        follower = (leader % 3) + 1
        code, body = with_cluster.get("greeting", follower)
        check(code == 421 and body["error"] == "not_leader" and body["leader"] == leader,
              f"follower read: {code} {body}")
        check(body["leader_admin"].endswith(str(with_cluster.admin_port(leader))),
              f"leader_admin: {body}")
        st = with_cluster.status(follower)
        for field in ("node_id", "cluster_id", "role", "term", "leader", "commit_index",
                      "applied_index", "quorum", "config_version", "fencing_token", "members"):
            check(field in st, f"/v1/status lacks {field}")
        check(st["quorum"] is True and st["fencing_token"] == st["term"], f"status: {st}")
        check(len(st["members"]) == 3 and all(m["voter"] for m in st["members"]), f"{st}")
        code, _ = with_cluster.request(follower, "GET", "/readyz")
        check(code == 200, f"/readyz on a follower with quorum: {code}")
    finally:
        with_cluster.close()


def test_sigkill_of_the_leader_loses_no_committed_write_and_the_node_catches_up():
    c = Cluster(BINARY, 3)
    try:
        c.start_all()
        leader = c.wait_leader()
        write_keys(c, "before-", 40, via=leader)
        c.kill(leader, signal.SIGKILL)
        t0 = time.monotonic()
        new_leader = c.wait_leader(timeout=5, exclude=(leader,))
        elapsed = time.monotonic() - t0
        check(new_leader != leader, "the killed node is still the leader")
        check_keys(c, "before-", 40, via=new_leader)
        write_keys(c, "after-", 20, via=new_leader)
        # The killed node restarts from its WAL and catches up from the new leader.
        c.start(leader)
        st = wait_caught_up(c, leader)
        check(st["leader"] == new_leader, f"restarted node follows {st['leader']}")
        check(st["role"] == "follower", f"restarted node is {st['role']}")
        check("log 1.." in c.log(leader).split("started:")[-1],
              "the restarted node did not recover its log from the WAL")
        # Make it leader and read everything back through it.
        transfer_leadership(c, leader)
        check_keys(c, "before-", 40, via=leader)
        check_keys(c, "after-", 20, via=leader)
        print(f"# new leader {elapsed * 1000:.0f} ms after SIGKILL", flush=True)
    finally:
        c.close()


def test_a_follower_behind_the_leaders_compacted_log_catches_up_from_a_snapshot():
    # Snapshots every 20 entries, 20 kept: a follower 120 entries behind can only catch up by
    # installing the leader's snapshot over the peer link, then the entries after it.
    c = Cluster(BINARY, 3, extra_config={"snapshot_entries = 10000": "snapshot_entries = 20"})
    try:
        c.start_all()
        leader = c.wait_leader()
        follower = (leader % 3) + 1
        write_keys(c, "early-", 3, via=leader)
        wait_caught_up(c, follower)
        c.kill(follower, signal.SIGKILL)  # before its first snapshot: nothing to restore at start
        write_keys(c, "behind-", 120, via=leader)
        taken = c.metric(leader, "anya_snapshots_total", {"event": "taken"})
        check(taken is not None and taken >= 5, f"leader took {taken} snapshots, expected 5+")
        c.start(follower)
        wait_caught_up(c, follower)
        restored = c.metric(follower, "anya_snapshots_total", {"event": "restored"})
        check(restored == 1, f"follower restored {restored} snapshots, expected the leader's one")
        refused = c.metric(follower, "anya_snapshots_total", {"event": "refused"})
        check(not refused, f"follower refused {refused} snapshots")
        # Everything, from before and inside the snapshot and after it, reads back through it.
        write_keys(c, "after-", 5, via=leader)
        wait_caught_up(c, follower)
        transfer_leadership(c, follower)
        check_keys(c, "early-", 3, via=follower)
        check_keys(c, "behind-", 120, via=follower)
        check_keys(c, "after-", 5, via=follower)
    finally:
        c.close()


def test_five_nodes_survive_two_kills():
    c = Cluster(BINARY, 5)
    try:
        c.start_all()
        leader = c.wait_leader()
        write_keys(c, "k", 20, via=leader)
        victims = [leader, (leader % 5) + 1]
        for v in victims:
            c.kill(v, signal.SIGKILL)
        survivors = [i for i in range(1, 6) if i not in victims]
        new_leader = c.wait_leader(timeout=5, among=survivors)
        check(new_leader in survivors, f"leader {new_leader} is not a survivor")
        check_keys(c, "k", 20, via=new_leader)
        write_keys(c, "more", 10, via=new_leader)
        check_keys(c, "more", 10, via=new_leader)
    finally:
        c.close()


def test_minority_side_has_no_quorum_and_refuses_writes():
    c = Cluster(BINARY, 3)
    try:
        c.start_all()
        leader = c.wait_leader()
        others = [i for i in (1, 2, 3) if i != leader]
        for v in others:
            c.kill(v, signal.SIGKILL)
        # CheckQuorum: the lone leader steps down within an election timeout or two.
        deadline = time.monotonic() + 3
        st = c.status(leader)
        while time.monotonic() < deadline and st["role"] == "leader":
            time.sleep(0.05)
            st = c.status(leader)
        check(st["role"] != "leader", f"a leader without quorum kept leading: {st}")
        check(st["quorum"] is False, f"minority node reports quorum: {st}")
        code, _ = c.request(leader, "GET", "/readyz")
        check(code == 503, f"/readyz without quorum: {code}")
        code, body = c.put("x", "y", via=leader)
        check(code in (421, 503), f"a write on the minority side: {code} {body}")
    finally:
        c.close()


def test_sigterm_of_the_leader_hands_over_and_exits_zero():
    c = Cluster(BINARY, 3)
    try:
        c.start_all()
        leader = c.wait_leader()
        write_keys(c, "t", 5, via=leader)
        code = c.kill(leader, signal.SIGTERM)
        check(code == 0, f"exit code after SIGTERM: {code}")
        check("handing leadership to node" in c.log(leader), "no hand-over logged")
        new_leader = c.wait_leader(timeout=3, exclude=(leader,))
        check_keys(c, "t", 5, via=new_leader)
    finally:
        c.close()


def test_node_with_a_certificate_from_another_ca_is_refused():
    c = Cluster(BINARY, 3)
    rogue_dir = tempfile.mkdtemp(prefix="anya-rogue-")
    try:
        c.start_all()
        c.wait_leader()
        # Node 3's identity, but a certificate signed by another CA.
        out = subprocess.run([BINARY, "certs", "init", "--dir", rogue_dir], capture_output=True)
        check(out.returncode == 0, out.stderr)
        out = subprocess.run([BINARY, "certs", "issue", "--ca-dir", rogue_dir, "--node", "3",
                              "--ip", "127.0.0.1", "--out", os.path.join(rogue_dir, "node")],
                             capture_output=True)
        check(out.returncode == 0, out.stderr)
        c.kill(3, signal.SIGKILL)
        rogue = os.path.join(c.dir, "3", "rogue.toml")
        with open(c.config_path(3)) as f:
            text = f.read()
        text = text.replace(f'ca = "{c.dir}/ca.crt"', f'ca = "{rogue_dir}/ca.crt"')
        text = text.replace(f'ca_key = "{c.dir}/ca.key"', f'ca_key = "{rogue_dir}/ca.key"')
        text = text.replace('cert = "node.crt"', f'cert = "{rogue_dir}/node.crt"')
        text = text.replace('key = "node.key"', f'key = "{rogue_dir}/node.key"')
        text = text.replace('data_dir = "data"', 'data_dir = "rogue-data"')
        with open(rogue, "w") as f:
            f.write(text)
        check(rogue_dir in text, "the rogue configuration was not rewritten")
        leader = c.wait_leader(among=[1, 2])
        c.start(3, config=rogue)
        time.sleep(1.5)
        check(c.alive(3), "the rogue node did not start: " + c.log(3)[-500:])
        refused = sum(c.metric(i, "anya_rejected_total", {"reason": "tls"}) or 0
                      for i in (1, 2))
        check(refused > 0, "no TLS refusal counted")
        logs = c.log(1) + c.log(2)
        check("certificate" in logs and ("unknown ca" in logs or "local issuer" in logs),
              "no log line says why the peer was refused")
        for i in (1, 2):
            st = c.status(i)
            peer3 = [m for m in st["members"] if m["id"] == 3][0]
            check(peer3["last_seen_ms"] is None or peer3["last_seen_ms"] > 1000 or
                  st["leader"] == leader, f"node {i} hears the rogue node: {st}")
        # The real cluster is untouched: still a leader, still writable.
        code, body = c.put("after-rogue", "1", via=leader)
        check(code == 200, f"{code} {body}")
    finally:
        c.close()
        shutil.rmtree(rogue_dir, ignore_errors=True)


def test_node_of_another_cluster_is_refused():
    c = Cluster(BINARY, 3)
    try:
        c.start_all()
        leader = c.wait_leader()
        c.kill(3, signal.SIGKILL)
        leader = c.wait_leader(among=[1, 2])
        c.edit_config(3, {'cluster = "dev"': 'cluster = "other"', 'data_dir = "data"':
                          'data_dir = "other-data"'})
        c.start(3)
        time.sleep(1.5)
        refused = sum(c.metric(i, "anya_rejected_total", {"reason": "cluster"}) or 0
                      for i in (1, 2))
        check(refused > 0, "no cluster refusal counted")
        check("is in cluster 'other'" in c.log(1) + c.log(2), "no log line names the cluster")
        st3 = c.status(3)
        check(st3 is not None and st3["leader"] in (None, 3) and st3["role"] != "leader",
              f"the foreign node joined: {st3}")
        code, body = c.put("still-ok", "1", via=leader)
        check(code == 200, f"{code} {body}")
    finally:
        c.close()


def test_bad_configuration_exits_2_naming_the_field():
    c = Cluster(BINARY, 1)
    try:
        c.edit_config(1, {'election_timeout = "300ms"': 'election_timeout = "30"'})
        out = subprocess.run([BINARY, "agent", "--config", c.config_path(1)], capture_output=True,
                             text=True, timeout=10)
        check(out.returncode == 2, f"exit code {out.returncode}")
        check("raft.election_timeout" in out.stderr, f"message: {out.stderr}")
    finally:
        c.close()


def test_ctl_follows_the_leader_and_reports_errors():
    c = Cluster(BINARY, 3)
    try:
        c.start_all()
        leader = c.wait_leader()
        env = dict(os.environ)
        with open(os.path.join(c.dir, "ctl.env")) as f:
            for line in f:
                if line.startswith("export "):
                    k, _, v = line[len("export "):].strip().partition("=")
                    env[k] = v
        follower = (leader % 3) + 1
        env["ANYA_HA_ENDPOINTS"] = f"https://127.0.0.1:{c.admin_port(follower)}"

        def ctl(*args):
            return subprocess.run([BINARY, "ctl", *args], capture_output=True, text=True,
                                  env=env, timeout=20)
        out = ctl("kv", "put", "color", "blue")
        check(out.returncode == 0 and "revision" in out.stdout, f"{out.returncode} {out.stderr}")
        out = ctl("kv", "get", "color")
        check(out.returncode == 0 and out.stdout.strip() == "blue", f"{out.stdout}{out.stderr}")
        out = ctl("kv", "cas", "color", "1", "red")
        check(out.returncode == 1 and "conflict" in out.stderr, f"{out.returncode} {out.stderr}")
        out = ctl("status")
        check(out.returncode == 0 and f"leader {leader}" in out.stdout, out.stdout + out.stderr)
        out = ctl("-o", "json", "members")
        check(out.returncode == 0 and '"members"' in out.stdout, out.stdout + out.stderr)
        out = ctl("kv", "get", "missing-key")
        check(out.returncode == 1 and "not_found" in out.stderr, f"{out.returncode} {out.stderr}")
        out = ctl("kv", "frobnicate")
        check(out.returncode == 2, f"bad usage exit code {out.returncode}")
        env["ANYA_HA_ENDPOINTS"] = "http://127.0.0.1:1"
        out = ctl("status")
        check(out.returncode == 2 and "https://" in out.stderr, f"{out.returncode} {out.stderr}")
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(run_tap(globals(), sys.argv[2:]))
