#!/usr/bin/env python3
"""A bounded Jepsen-style run against real anya-ha agents on 127.0.0.1: concurrent clients put,
get, compare-and-set and delete a few keys over the admin API while a nemesis SIGKILLs the
leader, freezes it with SIGSTOP for longer than an election timeout, asks it to hand
leadership on, runs one node under a clock slowed to half speed (libfaketime), and cuts the
leader's peer links off for two seconds. Partitions need a network namespace of the test's own:
run as root, the script re-runs itself under `unshare --net`, where the nodes listen and dial
from 127.0.1.ID and nftables rules in that namespace drop one node's peer traffic (the admin API
stays on 127.0.0.1); elsewhere partitions are skipped with a message saying why. Every
operation is recorded with its invocation and completion times; at the end the history goes
to the simulator's own checker (`anya-sim check-history`, sim/linearizability.cpp), and stale
reads are counted directly: a read answering an older revision of a key than a write that had
been acknowledged before the read was sent.

Usage: chaos_test.py ANYA_HA ANYA_SIM [--seconds 45] [--clients 4] [--keep FILE]
TAP output, one case per check. Every loop is bounded by --seconds; the run stops by itself."""
import argparse
import bisect
import http.client
import itertools
import shutil
import json
import os
import random
import re
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster  # noqa: E402

FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1"]
KEYS = ["k0", "k1", "k2"]
# Half the clients give up quickly and go find the new leader; the other half wait out a frozen
# leader, so their requests are answered (or not) when it wakes: both sides of a stale read.
REQUEST_TIMEOUT_S = (0.5, 3.0)


def now_us():
    return time.monotonic_ns() // 1000


class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []  # dicts; "complete" None = unknown outcome

    def add(self, op):
        with self.lock:
            self.ops.append(op)

    def write_tsv(self, path):
        with open(path, "w") as f:
            f.write("# client kind key value expected invoke_us complete_us outcome revision\n")
            for o in self.ops:
                done = "-" if o["complete"] is None else str(o["complete"])
                outcome = "-" if o["complete"] is None else o["outcome"]
                f.write(f'{o["client"]}\t{o["kind"]}\t{o["key"]}\t{o["value"]}\t'
                        f'{o["expected"]}\t{o["invoke"]}\t{done}\t{outcome}\t{o["revision"]}\n')

    def stale_reads(self):
        """Reads that answered an older revision than a write acknowledged before they began."""
        acked = {}  # key -> [(complete_us, revision)] of successful writes
        for o in self.ops:
            if o["kind"] in ("put", "cas") and o["complete"] is not None and o["outcome"] == "ok":
                acked.setdefault(o["key"], []).append((o["complete"], o["revision"]))
        # Per key: completion times in order, and the highest revision acknowledged by then.
        done_at, best = {}, {}
        for key, writes in acked.items():
            writes.sort()
            done_at[key] = [done for done, _ in writes]
            best[key] = list(itertools.accumulate((rev for _, rev in writes), max))
        stale = []
        for o in self.ops:
            if o["kind"] != "get" or o["outcome"] != "ok" or o["key"] not in done_at:
                continue
            k = bisect.bisect_left(done_at[o["key"]], o["invoke"])  # writes done before it
            if k > 0 and best[o["key"]][k - 1] > o["revision"]:
                stale.append((o, best[o["key"]][k - 1]))
        return stale


class Client(threading.Thread):
    def __init__(self, number, cluster, history, deadline):
        super().__init__(daemon=True)
        self.number = number
        self.c = cluster
        self.history = history
        self.deadline = deadline
        self.target = 1
        self.seq = 0
        self.seen = {}
        self.counts = {"ok": 0, "unknown": 0, "refused": 0, "unanswered": 0}
        self.conns = {}
        self.rng = random.Random(number)

    def call(self, method, path, body=None):
        # Keep-alive connections, one per node, as a real client pool keeps them: a request to a
        # frozen node is then already in its socket, TLS done, when it wakes.
        conn = self.conns.get(self.target)
        if conn is None:
            conn = http.client.HTTPSConnection("127.0.0.1", self.c.admin_port(self.target),
                                               timeout=REQUEST_TIMEOUT_S[self.number % 2],
                                               context=self.c.ctx)
            self.conns[self.target] = conn
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body))
            r = conn.getresponse()
            raw = r.read().decode()
        except Exception:
            conn.close()
            del self.conns[self.target]
            raise
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, {}

    def follow(self, reply):
        leader = reply.get("leader") if isinstance(reply, dict) else None
        if leader:
            self.target = leader
        else:
            self.target = self.rng.randint(1, self.c.nodes)

    def run(self):
        while time.monotonic() < self.deadline:
            self.one()

    def one(self):
        key = self.rng.choice(KEYS)
        pick = self.rng.randrange(100)
        kind = "get" if pick < 45 else "put" if pick < 70 else "cas" if pick < 88 else "del"
        self.seq += 1
        value = f"c{self.number}-{self.seq}" if kind in ("put", "cas") else ""
        expected = self.seen.get(key, 0) if kind == "cas" else (
            self.seen.get(key, 0) if kind == "del" and self.rng.random() < 0.5 else 0)
        op = {"client": self.number, "kind": kind, "key": key, "value": value,
              "expected": expected, "invoke": now_us(), "complete": None, "outcome": "-",
              "revision": 0}
        try:
            if kind == "get":
                code, reply = self.call("GET", "/v1/kv/" + key)
            elif kind == "put":
                code, reply = self.call("PUT", "/v1/kv/" + key, {"value": value})
            elif kind == "cas":
                code, reply = self.call("PUT", "/v1/kv/" + key,
                                        {"value": value, "prev_revision": expected})
            else:
                path = "/v1/kv/" + key + (f"?prev_revision={expected}" if expected else "")
                code, reply = self.call("DELETE", path)
        except (OSError, ssl.SSLError, http.client.HTTPException):
            code, reply = None, {}
        done = now_us()
        if code == 200 or code == 404 or code == 409:
            op["complete"] = done
            op["outcome"] = {200: "ok", 404: "not_found", 409: "conflict"}[code]
            if code == 200 and kind == "get":
                op["value"] = reply["value"]
                op["revision"] = reply["mod_revision"]
            elif code == 200 and kind != "del":
                op["revision"] = reply["revision"]
            elif code == 409:
                m = re.search(r"current revision is (\d+)", reply.get("message", ""))
                op["revision"] = int(m.group(1)) if m else 0
            if code == 200 and kind == "del":
                self.seen.pop(key, None)
            elif op["revision"]:
                self.seen[key] = op["revision"]
            self.counts["ok"] += 1
            self.history.add(op)
            return
        if code == 421:
            self.counts["refused"] += 1  # definitely did not happen
            self.follow(reply)
            time.sleep(0.002)
            return
        # 503, a timeout or a dead node: a write may still take effect, a read tells nothing.
        if kind == "get":
            self.counts["unanswered"] += 1
        else:
            self.counts["unknown"] += 1
            self.history.add(op)
        self.target = self.rng.randint(1, self.c.nodes)
        time.sleep(0.01)


def peer_host(i):
    return f"127.0.1.{i}"


def nft(*args):
    subprocess.run(["nft", *args], check=True, capture_output=True, text=True, timeout=10)


def can_partition():
    """Why partitions cannot be made here, or None."""
    if os.environ.get("ANYA_CHAOS_NETNS") != "1":
        return "not inside a network namespace of the test's own (needs root and unshare)"
    if shutil.which("nft") is None:
        return "nft is not installed (apt-get install nftables)"
    return None


class Nemesis(threading.Thread):
    def __init__(self, cluster, deadline, faketime, partitions):
        super().__init__(daemon=True)
        self.c = cluster
        self.deadline = deadline
        self.faketime = faketime
        self.partitions = partitions
        self.faults = {"kill": 0, "stop": 0, "transfer": 0, "slow_clock": 0, "partition": 0}
        if not faketime:
            del self.faults["slow_clock"]
        if not partitions:
            del self.faults["partition"]
        self.rejoin_ms = []
        self.term_raised_by_return = 0
        self.error = None

    def leader(self):
        try:
            return self.c.wait_leader(timeout=10)
        except TimeoutError:
            return None

    def pause(self, seconds):
        end = min(self.deadline, time.monotonic() + seconds)
        while time.monotonic() < end:
            time.sleep(0.05)

    def run(self):
        try:
            self.loop()
        except Exception:  # noqa: BLE001 - reported as a failed case
            self.error = traceback.format_exc()

    def loop(self):
        kinds = list(self.faults)
        k = 0
        self.pause(2)
        while time.monotonic() < self.deadline - 3:
            kind = kinds[k % len(kinds)]
            k += 1
            leader = self.leader()
            if leader is None:
                continue
            if kind == "kill":
                self.c.kill(leader)
                self.pause(1.0)
                self.c.start(leader)
            elif kind == "stop":
                self.c.kill(leader, signal.SIGSTOP)
                self.pause(1.0)  # three election timeouts: a new leader acknowledges writes
                self.c.kill(leader, signal.SIGCONT)
            elif kind == "transfer":
                self.c.request(leader, "POST", "/v1/leader/transfer", {})
            elif kind == "partition":
                self.partition(leader)
            else:
                # Restart a follower with its clock at half speed, make it the leader, then
                # freeze it so the others elect someone while its slow clock says little time
                # has passed.
                slow = next(i for i in range(1, self.c.nodes + 1) if i != leader)
                self.c.kill(slow)
                self.c.start(slow, env={"LD_PRELOAD": self.faketime, "FAKETIME": "+0 x0.5"})
                self.pause(1.5)
                self.c.request(self.leader() or leader, "POST", "/v1/leader/transfer",
                               {"to": slow})
                self.pause(1.0)
                self.c.kill(slow, signal.SIGSTOP)
                self.pause(1.0)
                self.c.kill(slow, signal.SIGCONT)
                self.pause(0.5)
                self.c.kill(slow)
                self.c.start(slow)
            self.faults[kind] += 1
            self.pause(1.5)

    def partition(self, node):
        """Cut `node`'s peer links for 2 s, heal, and time its return: until it follows the
        current leader in the current term and has applied what that leader had committed."""
        h = peer_host(node)
        nft("add", "table", "inet", "anya_chaos")
        nft("add", "chain", "inet", "anya_chaos", "out",
            "{ type filter hook output priority 0 ; }")
        nft("add", "rule", "inet", "anya_chaos", "out", "ip", "saddr", h, "ip", "daddr", "!=", h,
            "drop")
        nft("add", "rule", "inet", "anya_chaos", "out", "ip", "daddr", h, "ip", "saddr", "!=", h,
            "drop")
        self.pause(2.0)
        others = [i for i in range(1, self.c.nodes + 1) if i != node]
        leader = self.c.wait_leader(timeout=10, among=others)
        before = self.c.status(leader)
        nft("delete", "table", "inet", "anya_chaos")
        healed = time.monotonic()
        while time.monotonic() - healed < 10:
            st = self.c.status(node, timeout=0.5)
            lst = self.c.status(leader, timeout=0.5)
            if st and lst and lst["role"] == "leader" and st["leader"] == leader and \
                    st["term"] == lst["term"] and st["applied_index"] >= before["commit_index"]:
                self.rejoin_ms.append((time.monotonic() - healed) * 1000)
                if lst["term"] > before["term"]:
                    self.term_raised_by_return += 1
                return
            time.sleep(0.01)
        self.rejoin_ms.append(float("inf"))


def tap(results):
    print(f"1..{len(results)}")
    for i, (ok, name, notes) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        for line in notes:
            print(f"# {line}")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("anya_ha")
    ap.add_argument("anya_sim")
    ap.add_argument("--seconds", type=float, default=45)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--keep", help="also write the history to this file")
    ap.add_argument("--faults", help="comma-separated subset of kill,stop,transfer,slow_clock,"
                                     "partition (default: every one that can run here)")
    a = ap.parse_args()
    if (os.environ.get("ANYA_CHAOS_NETNS") is None and os.geteuid() == 0 and
            shutil.which("unshare") and shutil.which("ip") and
            subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0):
        # Again, inside a network namespace of our own (it ends with this process).
        env = dict(os.environ, ANYA_CHAOS_NETNS="1")
        inner = ["unshare", "--net", "--", "sh", "-c",
                 'ip link set lo up && exec "$0" "$@"', sys.executable,
                 os.path.abspath(sys.argv[0]), *sys.argv[1:]]
        return subprocess.run(inner, env=env).returncode
    faketime = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
    notes = []
    if faketime is None:
        notes.append("slow clock: skipped, libfaketime is not installed (apt-get install "
                     "libfaketime)")
    why_not = can_partition()
    if why_not:
        notes.append("partitions: skipped, " + why_not)
    c = Cluster(os.path.abspath(a.anya_ha), 3)
    if not why_not:
        # Each node listens and dials from its own address, so rules can single it out.
        for i in range(1, c.nodes + 1):
            c.edit_config(i, {f"127.0.0.1:{c.base + j}": f"{peer_host(j)}:{c.base + j}"
                              for j in range(1, c.nodes + 1)})
    history = History()
    results = []
    try:
        c.start_all()
        c.wait_leader(timeout=15)
        deadline = time.monotonic() + a.seconds
        clients = [Client(n, c, history, deadline) for n in range(1, a.clients + 1)]
        nemesis = Nemesis(c, deadline, faketime, why_not is None)
        if a.faults:
            wanted = a.faults.split(",")
            unknown = [f for f in wanted if f not in nemesis.faults]
            if unknown:
                raise ValueError(f"--faults: {unknown} unknown or not possible here")
            nemesis.faults = {f: 0 for f in wanted}
        for t in clients + [nemesis]:
            t.start()
        for t in clients + [nemesis]:
            t.join(timeout=a.seconds + 60)
        counts = {k: sum(cl.counts[k] for cl in clients) for k in clients[0].counts}
        results.append((nemesis.error is None and all(v > 0 for v in nemesis.faults.values()),
                        "faults injected", [f"faults: {nemesis.faults}"] + notes +
                        ([nemesis.error] if nemesis.error else [])))
        if nemesis.partitions:
            r = sorted(nemesis.rejoin_ms)
            results.append((bool(r) and r[-1] < 10_000 and nemesis.term_raised_by_return == 0,
                            "a healed node rejoins and never raises the term",
                            [f"rejoin after heal: n={len(r)} "
                             + (f"median={statistics.median(r):.0f} ms max={r[-1]:.0f} ms"
                                if r else ""),
                             f"heals after which the leader's term had risen: "
                             f"{nemesis.term_raised_by_return}"]))
        with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as f:
            path = f.name
        history.write_tsv(path)
        if a.keep:
            history.write_tsv(a.keep)
        check = subprocess.run([os.path.abspath(a.anya_sim), "check-history", path],
                               capture_output=True, text=True, timeout=300)
        os.unlink(path)
        results.append((check.returncode == 0, "history is linearizable",
                        [f"operations: {counts}"] +
                        (check.stdout + check.stderr).strip().splitlines()[:60]))
        stale = history.stale_reads()
        results.append((not stale and counts["ok"] > 0, "no stale reads",
                        [f"stale reads: {len(stale)}"] +
                        [f"{o} after revision {rev}" for o, rev in stale[:10]]))
    except Exception:  # noqa: BLE001
        results.append((False, "chaos run", traceback.format_exc().splitlines()))
    finally:
        c.close()
    tap(results)
    return 0 if all(ok for ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
