#!/usr/bin/env python3
"""Exactly-once writes, UTXO reservations and DLC records with real processes: `anya-ha agent`
on 127.0.0.1 over mutual TLS, real disks, leaders paused and killed. Prints TAP.
Usage: records_test.py ANYA_HA_BINARY [TEST_NAME...]"""
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster, check, run_tap  # noqa: E402

BINARY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/tools/anya-ha"
TXID = "ab" * 32


def session(client, seq):
    return {"Anya-Client-Id": str(client), "Anya-Client-Seq": str(seq)}


def open_session(c):
    """A new client session's id (POST /v1/session, through the leader)."""
    code, reply = send_to_leader(c, "POST", "/v1/session", None)
    check(code == 200 and reply["client_id"] > 0, f"session open: {code} {reply}")
    return reply["client_id"]


def send_to_leader(c, method, path, body, headers=None, timeout=3.0, attempts=40):
    """Sends to whichever node leads, following hints and riding out elections, as a client
    with retries would: (status, body) of the first answer that is not "ask elsewhere"."""
    for _ in range(attempts):
        try:
            leader = c.wait_leader(timeout=10)
            code, reply = c.request(leader, method, path, body, headers=headers, timeout=timeout)
        except (OSError, TimeoutError):
            time.sleep(0.1)
            continue
        if code in (421, 503):
            time.sleep(0.05)
            continue
        return code, reply
    raise AssertionError(f"{method} {path}: no leader answered")


def test_a_write_retried_after_its_leader_paused_applies_once():
    with_cluster(_retry_after_pause)


def _retry_after_pause(c):
    c.wait_leader()
    w1 = open_session(c)
    leader = c.wait_leader()
    # The client's first attempt reaches a leader that is then paused: it times out, outcome
    # unknown. Whether or not that entry commits, the retry with the same (id, seq) at the new
    # leader must leave the key written exactly once.
    c.kill(leader, signal.SIGSTOP)
    try:
        c.request(leader, "PUT", "/v1/kv/once", {"value": "v"}, headers=session(w1, 1),
                  timeout=0.5)
    except OSError:
        pass  # timed out: the outcome is unknown
    code, first = send_to_leader(c, "PUT", "/v1/kv/once", {"value": "v"},
                                 headers=session(w1, 1))
    check(code == 200, f"retry at the new leader: {code} {first}")
    c.kill(leader, signal.SIGCONT)
    code, again = send_to_leader(c, "PUT", "/v1/kv/once", {"value": "v"},
                                 headers=session(w1, 1))
    check(code == 200 and again.get("replayed") is True, f"second retry: {code} {again}")
    check(again["revision"] == first["revision"],
          f"the retry names another revision: {first} then {again}")
    code, kv = send_to_leader(c, "GET", "/v1/kv/once", None)
    check(code == 200 and kv["version"] == 1 and kv["mod_revision"] == first["revision"],
          f"applied more than once: {kv}")
    print(f"# paused leader {leader}; retry answered revision {first['revision']} "
          f"(replayed={first.get('replayed', False)}), then replayed; key version {kv['version']}")


def test_a_retry_after_the_leader_is_killed_returns_the_first_outcome():
    with_cluster(_retry_after_kill)


def _retry_after_kill(c):
    body = {"outpoint": f"{TXID}:1", "owner": "alice", "ttl_ms": 60000}
    alice, bob = open_session(c), open_session(c)
    code, first = send_to_leader(c, "POST", "/v1/utxo/reserve", body, headers=session(alice, 7))
    check(code == 200 and first["replayed"] is False, f"reserve: {code} {first}")
    leader = c.wait_leader()
    c.kill(leader)
    code, retry = send_to_leader(c, "POST", "/v1/utxo/reserve", body, headers=session(alice, 7))
    check(code == 200 and retry["replayed"] is True and retry["revision"] == first["revision"],
          f"retry after failover: {code} {retry} (first {first})")
    # A different request of another owner is refused, naming the holder.
    code, other = send_to_leader(c, "POST", "/v1/utxo/reserve",
                                 dict(body, owner="bob"), headers=session(bob, 1))
    check(code == 409 and "alice" in other["message"], f"second owner: {code} {other}")
    c.start(leader)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the restarted node catches up from its disk and peers
        st = c.status(leader)
        if st and st["applied_index"] >= first["revision"]:
            break
        time.sleep(0.1)
    check(c.status(leader)["applied_index"] >= first["revision"], "restarted node behind")
    code, got = send_to_leader(c, "GET", f"/v1/utxo/{TXID}:1", None)
    check(code == 200 and got["state"] == "reserved" and got["owner"] == "alice",
          f"after restart: {code} {got}")


def test_one_owner_per_outpoint_when_owners_race_through_every_node():
    with_cluster(_race)


def _race(c):
    c.wait_leader()
    results = {}
    sessions = {f"owner{k}": open_session(c) for k in range(6)}

    def reserve(owner, via):
        body = {"outpoint": f"{TXID}:2", "owner": owner, "ttl_ms": 60000}
        for _ in range(40):  # follow hints; retry the same (id, seq) through elections
            try:
                code, reply = c.request(via, "POST", "/v1/utxo/reserve", body,
                                        headers=session(sessions[owner], 1), timeout=3.0)
            except OSError:
                time.sleep(0.05)
                continue
            if code == 421 and isinstance(reply, dict) and reply.get("leader"):
                via = reply["leader"]
                continue
            if code == 503:
                time.sleep(0.05)
                continue
            results[owner] = (code, reply)
            return

    threads = [threading.Thread(target=reserve, args=(f"owner{k}", 1 + k % c.nodes))
               for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [o for o, (code, _) in results.items() if code == 200]
    check(len(results) == 6, f"not every owner got an answer: {results}")
    check(len(winners) == 1, f"owners granted: {winners} ({results})")
    for owner, (code, reply) in results.items():
        if owner not in winners:
            check(code == 409 and winners[0] in reply["message"], f"{owner}: {code} {reply}")
    code, got = send_to_leader(c, "GET", f"/v1/utxo/{TXID}:2", None)
    check(got["owner"] == winners[0], f"holder {got} is not the winner {winners}")
    print(f"# 6 owners raced through 3 nodes: {winners[0]} holds it, 5 refused")


def test_a_spent_outpoint_stays_spent_after_a_full_restart():
    with_cluster(_spent_final)


def _spent_final(c):
    outpoint = f"{TXID}:3"
    code, r = send_to_leader(c, "POST", "/v1/utxo/reserve",
                             {"outpoint": outpoint, "owner": "w", "ttl_ms": 60000})
    check(code == 200, f"reserve: {code} {r}")
    code, r = send_to_leader(c, "POST", "/v1/utxo/spend", {"outpoint": outpoint, "owner": "w"})
    check(code == 200, f"spend: {code} {r}")
    for i in range(1, c.nodes + 1):
        c.kill(i)
    c.start_all()
    code, r = send_to_leader(c, "POST", "/v1/utxo/reserve",
                             {"outpoint": outpoint, "owner": "w", "ttl_ms": 60000})
    check(code == 409 and "spent" in r["message"], f"reserve after spend: {code} {r}")
    code, got = send_to_leader(c, "GET", f"/v1/utxo/{outpoint}", None)
    check(got["state"] == "spent", f"state after restart: {got}")


def test_bad_outpoints_and_sessions_are_named_and_change_nothing():
    with_cluster(_bad_input)


def _bad_input(c):
    leader = c.wait_leader()
    before = c.status(leader)["commit_index"]
    cases = [
        ({"outpoint": "abc:1", "owner": "w", "ttl_ms": 1}, None, "outpoint txid"),
        ({"outpoint": f"{TXID}:-1", "owner": "w", "ttl_ms": 1}, None, "outpoint vout"),
        ({"outpoint": f"{TXID}:4294967295", "owner": "w", "ttl_ms": 1}, None, "outpoint vout"),
        ({"outpoint": f"{TXID}:1", "owner": "w"}, None, "ttl_ms"),
        ({"outpoint": f"{TXID}:1", "owner": "w", "ttl_ms": 1}, {"Anya-Client-Id": "7"},
         "Anya-Client-Seq"),
        ({"outpoint": f"{TXID}:1", "owner": "w", "ttl_ms": 1}, session("wallet", 1),
         "Anya-Client-Id: expected the client_id"),
    ]
    for body, headers, field in cases:
        code, reply = c.request(leader, "POST", "/v1/utxo/reserve", body, headers=headers)
        check(code == 400 and field in reply["message"], f"{body}: {code} {reply}")
    check(c.status(leader)["commit_index"] == before, "a refused request reached the log")
    # A session never opened is refused whatever its seq, and writes nothing (a late retry of
    # a forgotten session looks the same, and must not apply a second time).
    code, reply = send_to_leader(c, "PUT", "/v1/kv/never", {"value": "v"},
                                 headers=session(before + 1000, 1))
    check(code == 409 and "session expired" in reply["message"], f"unopened: {code} {reply}")
    code, _ = send_to_leader(c, "GET", "/v1/kv/never", None)
    check(code == 404, f"an unopened session wrote the key: {code}")
    # The CLI says the same and exits non-zero.
    out = run_ctl(c, ["utxo", "reserve", f"{TXID[:10]}:1", "--owner", "w"])
    check(out.returncode != 0 and "outpoint txid" in out.stderr, f"ctl: {out.stderr}")


def test_dlc_attestations_are_recorded_once_via_the_cli():
    with_cluster(_dlc)


def _dlc(c):
    c.wait_leader()
    nonce = "cd" * 32
    steps = [
        (["dlc", "create", "c-1", "--state", "offered", "--nonce", nonce], 0, ""),
        (["dlc", "transition", "c-1", "offered", "signed"], 0, ""),
        (["dlc", "transition", "c-1", "offered", "signed"], 1, "in state signed"),
        (["dlc", "attest", "c-1", nonce, "01" * 32], 0, ""),
        (["dlc", "attest", "c-1", nonce, "02" * 32], 1, "already has an attestation"),
        (["dlc", "attest", "c-1", "ef" * 32, "02" * 32], 1, "not among the commitments"),
    ]
    for args, rc, text in steps:
        out = run_ctl(c, args)
        check(out.returncode == rc and text in out.stderr,
              f"{' '.join(args)}: rc {out.returncode}: {out.stdout} {out.stderr}")
    out = run_ctl(c, ["-o", "json", "dlc", "get", "c-1"])
    check(out.returncode == 0 and '"signed"' in out.stdout and ("01" * 32) in out.stdout,
          f"dlc get: {out.stdout} {out.stderr}")
    # Retrying a CLI write with the same --client-id/--client-seq is answered, not applied.
    out = run_ctl(c, ["session", "open"])
    check(out.returncode == 0 and out.stdout.startswith("client_id "), f"session open: {out}")
    client_id = out.stdout.split()[1]
    args = ["--client-id", client_id, "--client-seq", "5", "utxo", "reserve", f"{TXID}:9",
            "--owner", "w"]
    first, second = run_ctl(c, args), run_ctl(c, args)
    check(first.returncode == 0 and second.returncode == 0 and "a retry" in second.stdout,
          f"ctl retry: {first.stdout} / {second.stdout} {second.stderr}")


def run_ctl(c, args):
    endpoints = ",".join(f"https://127.0.0.1:{c.admin_port(i)}" for i in range(1, c.nodes + 1))
    cmd = [BINARY, "ctl", "--endpoint", endpoints, "--cacert", os.path.join(c.dir, "ca.crt"),
           "--cert", os.path.join(c.dir, "client.crt"), "--key", os.path.join(c.dir, "client.key")]
    return subprocess.run(cmd + args, capture_output=True, text=True, timeout=60)


def with_cluster(body):
    c = Cluster(BINARY, nodes=3)
    try:
        c.start_all()
        body(c)
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(run_tap(dict(globals()), sys.argv[2:]))
