#!/usr/bin/env python3
"""Discovery with real processes: `anya-ha agent` on 127.0.0.1 over mutual TLS, multicast
announcements on loopback. A whole cluster rescheduled at new addresses (every member's
recorded address stale, as when every pod of a StatefulSet gets a new IP) re-forms only
through discovery; a joining node takes its seeds from discovery. Prints TAP and the time
each step took. Usage: discovery_test.py ANYA_HA_BINARY [TEST_NAME...]"""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster, check, run_tap  # noqa: E402

BINARY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/tools/anya-ha"


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_secret(c):
    path = os.path.join(c.dir, "multicast.secret")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    return path


def use_multicast(c, i, methods, udp_port, secret):
    """Node i's [discovery] runs `methods` with a multicast table on loopback."""
    table = (f'\n[discovery.multicast]\ngroup = "239.255.42.99"\nport = {udp_port}\n'
             f'interface = "127.0.0.1"\ninterval = "200ms"\nsecret_file = "{secret}"\n'
             f'replay_window = "10s"\n')
    c.edit_config(i, {'methods = ["static"]': "methods = " + methods, "\n[log]": table + "\n[log]"})


def move_peer_port(c, i, old, new):
    """Node i listens at `new` and lists itself there; the others stay at their old addresses
    in its file, as in the membership every node recorded."""
    c.edit_config(i, {f'listen = "127.0.0.1:{old}"': f'listen = "127.0.0.1:{new}"',
                      f'advertise = "127.0.0.1:{old}"': f'advertise = "127.0.0.1:{new}"',
                      f'"{i}@127.0.0.1:{old}"': f'"{i}@127.0.0.1:{new}"'})


def metric_or_none(c, i, name, labels=None):
    try:
        return c.metric(i, name, labels)
    except OSError:  # not listening yet
        return None


def no_leader_for(c, seconds):
    try:
        c.wait_leader(timeout=seconds)
        return False
    except TimeoutError:
        return True


def test_a_cluster_rescheduled_at_new_addresses_reforms_through_discovery():
    c = Cluster(BINARY, nodes=3)
    try:
        c.start_all()
        c.wait_leader(timeout=20)
        code, _ = c.put("before", "moved")
        check(code == 200, f"write before the move: {code}")
        for i in range(1, 4):
            c.kill(i, signal.SIGTERM)
        new = {i: free_port() for i in range(1, 4)}
        for i in range(1, 4):
            move_peer_port(c, i, c.base + i, new[i])
        # Control: with the static list only, every member dials the others' old addresses.
        c.start_all()
        check(no_leader_for(c, 4), "a leader without discovery: the test would prove nothing")
        for i in range(1, 4):
            c.kill(i, signal.SIGTERM)
        udp_port = free_port(socket.SOCK_DGRAM)
        secret = write_secret(c)
        for i in range(1, 4):
            use_multicast(c, i, '["multicast"]', udp_port, secret)
        started = time.monotonic()
        c.start_all()
        leader = c.wait_leader(timeout=30)
        took = time.monotonic() - started
        code, reply = c.get("before", via=leader)
        check(code == 200 and reply.get("value") == "moved", f"read after the move: {reply}")
        for i in range(1, 4):
            peers = c.metric(i, "anya_discovery_peers", {"method": "multicast"})
            check(peers == 2, f"node {i}: multicast proposes {peers} peers, expected 2")
            errors = c.metric(i, "anya_discovery_errors_total") or 0
            check(errors == 0, f"node {i}: {errors} discovery errors")
        print(f"# all 3 members at new addresses: leader {leader} {took * 1000:.0f} ms after "
              f"the restart (multicast interval 200 ms)")
    finally:
        c.close()


def test_a_joining_node_takes_its_seeds_from_discovery():
    c = Cluster(BINARY, nodes=4)
    try:
        udp_port = free_port(socket.SOCK_DGRAM)
        secret = write_secret(c)
        four = f'"4@127.0.0.1:{c.base + 4}"'
        for i in range(1, 4):
            c.edit_config(i, {", " + four: ""})
            use_multicast(c, i, '["static", "multicast"]', udp_port, secret)
        # Node 4 knows no member: join = true, no static list, multicast only.
        members = ", ".join(f'"{i}@127.0.0.1:{c.base + i}"' for i in range(1, 5))
        c.edit_config(4, {"join = false": "join = true", f"members = [{members}]": "members = []"})
        use_multicast(c, 4, '["multicast"]', udp_port, secret)
        for i in range(1, 4):
            c.start(i)
        leader = c.wait_leader(timeout=20, among=[1, 2, 3])
        c.start(4)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if metric_or_none(c, 4, "anya_discovery_known_peers") == 3:
                break
            time.sleep(0.1)
        known = metric_or_none(c, 4, "anya_discovery_known_peers")
        check(known == 3, f"node 4 discovered {known} peers, expected 3")
        code, reply = c.request(leader, "POST", "/v1/members",
                                {"id": 4, "address": f"127.0.0.1:{c.base + 4}", "learner": True})
        check(code in (200, 201), f"members add 4: {code} {reply}")
        deadline = time.monotonic() + 20
        st = None
        while time.monotonic() < deadline:
            st = c.status(4)
            if st and st["leader"] == leader and st["applied_index"] > 0:
                break
            time.sleep(0.05)
        check(st and st["leader"] == leader, f"node 4 never followed leader {leader}: {st}")
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(run_tap(dict(globals()), sys.argv[2:]))
