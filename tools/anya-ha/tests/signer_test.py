#!/usr/bin/env python3
"""Fencing at the resource, end to end: real `anya-ha agent` processes and the example signer
(`anya-example-signer`) on 127.0.0.1. A worker beside each node takes the fencing token from its
own node's lease and sends it with every request; a leader paused by SIGSTOP wakes after its
successor has signed, and its late request must be refused, before and after the signer restarts.

Prints TAP (one case per test), and the main scenario's timeline as "# t=..." diagnostic lines.
Usage: signer_test.py ANYA_HA_BINARY SIGNER_BINARY [TEST_NAME...]"""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster, check, run_tap  # noqa: E402

BINARY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/tools/anya-ha"
SIGNER = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "build/tools/anya-example-signer"

# Every wait is bounded, and generous: this runs on a busy 2-core machine.
START_TIMEOUT_S = 20.0
LEADER_TIMEOUT_S = 30.0
LEASE_TIMEOUT_S = 20.0
POLL_S = 0.05


class Signer:
    """One anya-example-signer process over DIR; restartable on the same DIR."""

    def __init__(self, directory):
        self.dir = directory
        self.log_path = directory + ".log"
        self.proc = None
        self.port = None

    def start(self):
        """Starts it on a free loopback port and waits until it listens; returns its output
        since this start (notes such as a dropped torn line)."""
        assert self.proc is None or self.proc.poll() is not None, "signer running"
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([SIGNER, "--listen", "127.0.0.1:0", "--dir", self.dir],
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.output(offset)
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            if m:
                self.port = int(m.group(1))
                return text
            check(self.proc.poll() is None,
                  f"the signer exited with {self.proc.returncode}: {text}")
            time.sleep(POLL_S)
        raise TimeoutError("the signer did not listen within %ss: %s" % (START_TIMEOUT_S,
                                                                          self.output(offset)))

    def output(self, offset=0):
        with open(self.log_path, errors="replace") as f:
            f.seek(offset)
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        check(code == 0, f"the signer exited with {code} on SIGTERM")

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def request(self, method, path, body=None, timeout=10.0, raw=False):
        """(status, parsed JSON or text; text only when `raw`)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = None if body is None else (body if isinstance(body, (bytes, str))
                                              else json.dumps(body))
            conn.request(method, path, body=data)
            r = conn.getresponse()
            text = r.read().decode()
            if raw:
                return r.status, text
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text
        finally:
            conn.close()

    def sign(self, message, token):
        return self.request("POST", "/sign", {"message": message, "fencing_token": token})

    def record(self):
        code, text = self.request("GET", "/record", raw=True)
        check(code == 200, f"GET /record: {code} {text}")
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def run_signer(*args):
    return subprocess.run([SIGNER, *args], capture_output=True, text=True, timeout=30)


class Worker:
    """The process beside node `node` that does the leader's work: it takes the lease from its
    own node (never from another: a follower's worker must not act) with `anya-ha ctl lease`."""

    def __init__(self, cluster, node):
        self.c = cluster
        self.node = node
        self.token = None

    def lease(self):
        """Its node's lease, or None when its node does not lead (or does not answer)."""
        out = subprocess.run(
            [BINARY, "ctl", "--endpoint", f"https://127.0.0.1:{self.c.admin_port(self.node)}",
             "--cacert", os.path.join(self.c.dir, "ca.crt"),
             "--cert", os.path.join(self.c.dir, "client.crt"),
             "--key", os.path.join(self.c.dir, "client.key"), "-o", "json", "lease"],
            capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            return None
        lease = json.loads(out.stdout)
        # ctl follows a follower's hint to the leader: that lease is not this worker's to use.
        return lease if lease["holder"] == self.node else None

    def take_token(self, timeout=LEASE_TIMEOUT_S):
        """Waits until its node leads with a valid lease; keeps and returns that lease."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lease = self.lease()
            if lease and lease["valid"]:
                self.token = lease["fencing_token"]
                return lease
            time.sleep(POLL_S)
        raise TimeoutError(f"node {self.node} held no valid lease within {timeout}s")


class Timeline:
    def __init__(self):
        self.t0 = time.monotonic()

    def say(self, text):
        print(f"# t={time.monotonic() - self.t0:.2f}s {text}", flush=True)


def verify(pubkey_pem, message, signature_hex):
    """True when `signature_hex` is a valid ECDSA/SHA-256 signature of `message` (openssl)."""
    with tempfile.TemporaryDirectory(prefix="anya-verify-") as d:
        paths = {name: os.path.join(d, name) for name in ("pub.pem", "msg", "sig.der")}
        with open(paths["pub.pem"], "w") as f:
            f.write(pubkey_pem)
        with open(paths["msg"], "wb") as f:
            f.write(message.encode())
        with open(paths["sig.der"], "wb") as f:
            f.write(bytes.fromhex(signature_hex))
        out = subprocess.run(["openssl", "dgst", "-sha256", "-verify", paths["pub.pem"],
                              "-signature", paths["sig.der"], paths["msg"]],
                             capture_output=True, text=True, timeout=30)
        return out.returncode == 0 and "Verified OK" in out.stdout


def check_record(signer, expected, refused_messages):
    """Each expected message signed exactly once, under its token; the refused ones never; the
    tokens never decrease along the record; every signature verifies with GET /pubkey's key."""
    record = signer.record()
    messages = [r["message"] for r in record]
    for message, token in expected.items():
        check(messages.count(message) == 1, f"{message} signed {messages.count(message)} times")
        entry = next(r for r in record if r["message"] == message)
        check(entry["fencing_token"] == token, f"{message}: token {entry['fencing_token']}")
    for message in refused_messages:
        check(message not in messages, f"{message} was signed: {record}")
    tokens = [r["fencing_token"] for r in record]
    check(tokens == sorted(tokens), f"tokens decrease along the record: {tokens}")
    code, key = signer.request("GET", "/pubkey")
    check(code == 200 and key["curve"] == "secp256k1", f"GET /pubkey: {code} {key}")
    for r in record:
        check(verify(key["public_key_pem"], r["message"], r["signature"]),
              f"the signature of {r['message']} does not verify")
    if len(record) >= 2:  # the check itself can fail: a signature does not fit another message
        check(not verify(key["public_key_pem"], record[0]["message"],
                         record[1]["signature"]), "openssl verified a mismatched signature")
    return record


def test_a_paused_leaders_late_request_is_refused_and_stays_refused():
    c = Cluster(BINARY, 3)
    signer = Signer(os.path.join(c.dir, "signer"))
    tl = Timeline()
    try:
        c.start_all()
        old = c.wait_leader(timeout=LEADER_TIMEOUT_S)
        signer.start()
        tl.say(f"signer listening on 127.0.0.1:{signer.port}")
        old_worker = Worker(c, old)
        lease = old_worker.take_token()
        t1 = old_worker.token
        tl.say(f"node {old} leads, token {t1} (lease valid, {lease['remaining_ms']} ms left)")
        code, body = signer.sign("M0: pay 1 BTC to alice", t1)
        check(code == 200 and not body["already_signed"], f"M0 with token {t1}: {code} {body}")
        tl.say(f"worker on node {old} signs M0 with token {t1}: {code}")

        c.kill(old, signal.SIGSTOP)
        tl.say(f"node {old} paused (SIGSTOP); its worker still holds token {t1}")
        others = [i for i in (1, 2, 3) if i != old]
        new = c.wait_leader(timeout=LEADER_TIMEOUT_S, among=others, exclude=(old,))
        new_worker = Worker(c, new)
        new_worker.take_token()
        t2 = new_worker.token
        tl.say(f"node {new} leads, token {t2}")
        check(t2 > t1, f"the new leadership's token {t2} is not above {t1}")
        code, body = signer.sign("M2: pay 1 BTC to bob", t2)
        check(code == 200 and not body["already_signed"], f"M2 with token {t2}: {code} {body}")
        m2_signature = body["signature"]
        tl.say(f"worker on node {new} signs M2 with token {t2}: {code}")
        code, body = signer.sign("M2: pay 1 BTC to bob", t2)
        check(code == 200 and body["already_signed"] and body["signature"] == m2_signature,
              f"a retry of M2 was not answered with its first signature: {code} {body}")
        tl.say(f"worker on node {new} retries M2: {code}, the first signature, not signed again")

        c.kill(old, signal.SIGCONT)
        tl.say(f"node {old} woken (SIGCONT)")
        code, body = signer.sign("M1: pay 1 BTC to mallory", t1)
        tl.say(f"worker on node {old} sends its late M1 with token {t1}: {code} "
               f"{body.get('message') if isinstance(body, dict) else body}")
        check(code == 409 and body["error"] == "conflict", f"late M1: {code} {body}")
        check(f"fencing token {t1} is below {t2}" in body["message"], f"message: {body}")
        check_woken_node(c, old, t1, tl)

        signer.stop()
        signer.start()
        tl.say("signer restarted")
        code, body = signer.sign("M1: pay 1 BTC to mallory", t1)
        check(code == 409 and f"fencing token {t1} is below {t2}" in body["message"],
              f"M1 after the restart: {code} {body}")
        tl.say(f"worker on node {old} retries M1 with token {t1}: {code} again")
        code, body = signer.sign("M2: pay 1 BTC to bob", t2)
        check(code == 200 and body["already_signed"] and body["signature"] == m2_signature,
              f"M2 after the restart: {code} {body}")
        code, body = signer.request("GET", "/fencing")
        check(code == 200 and body["highest_token"] == t2, f"GET /fencing: {code} {body}")

        record = check_record(signer, {"M0: pay 1 BTC to alice": t1, "M2: pay 1 BTC to bob": t2},
                              ["M1: pay 1 BTC to mallory"])
        tl.say("record: " + ", ".join(f"{r['message'].split(':')[0]} (token {r['fencing_token']})"
                                      for r in record) + "; M1 never signed")
    finally:
        signer.close()
        c.close()


def check_woken_node(c, old, t1, tl):
    """The woken leader must not claim the old leadership's lease: its successor was elected
    after that lease ran out, so a lease still valid under t1 would break lease exclusivity."""
    worker = Worker(c, old)
    lease = worker.lease()
    if lease is None:
        st = c.status(old) or {}
        tl.say(f"node {old} no longer leads: {st.get('role')}, leader {st.get('leader')}, "
               f"term {st.get('term')}")
        return
    tl.say(f"node {old} answers ctl lease: token {lease['fencing_token']}, "
           f"valid {lease['valid']}")
    check(not (lease["valid"] and lease["fencing_token"] == t1),
          f"the woken node claims a valid lease under the old token: {lease}")


def test_the_signer_refuses_bad_input_naming_the_field():
    d = tempfile.mkdtemp(prefix="anya-signer-")
    signer = Signer(os.path.join(d, "signer"))
    try:
        signer.start()
        cases = [
            ({"message": "x"}, 400, "fencing_token: missing"),
            ({"fencing_token": 3}, 400, "message: missing"),
            ({"message": "x", "fencing_token": "3"}, 400, "fencing_token: expected"),
            ({"message": "x", "fencing_token": 0}, 400, "fencing_token: 0 is not a token"),
            ({"message": "x", "fencing_token": -2}, 400, "fencing_token: expected"),
            ({"message": "x", "fencing_token": 1.5}, 400, "fencing_token: expected"),
            ({"message": "x", "fencing_token": 2 ** 64}, 400, "fencing_token: expected"),
            ({"message": 7, "fencing_token": 3}, 400, "message: expected a string"),
            ({"message": "x", "fencing_token": 3, "fencing_tokn": 4}, 400, "fencing_tokn: unknown"),
            ({"message": "", "fencing_token": 3}, 400, "message: 0 bytes"),
            ({"message": "x" * 5000, "fencing_token": 3}, 400, "message: 5000 bytes"),
            ("[1, 2]", 400, "body must be a JSON object"),
            ("{\"message\": ", 400, "body is not valid JSON"),
            ("x" * 40000, 413, "body over"),
        ]
        for body, want_code, want_text in cases:
            code, reply = signer.request("POST", "/sign", body)
            check(code == want_code and isinstance(reply, dict) and
                  reply["message"].startswith(want_text),
                  f"{str(body)[:60]}: {code} {reply}; expected {want_code} {want_text}")
        code, reply = signer.request("GET", "/sign")
        check(code == 405, f"GET /sign: {code} {reply}")
        code, reply = signer.request("GET", "/nowhere")
        check(code == 404 and "/nowhere" in reply["message"], f"GET /nowhere: {code} {reply}")
        check(signer.record() == [], "a refused request left a record")
        code, reply = signer.request("GET", "/fencing")
        check(code == 200 and reply["highest_token"] == 0, "a refused request moved the token")
        for args, field in [(["--listen", "0.0.0.0:0", "--dir", d], "--listen"),
                            (["--listen", "127.0.0.1:http", "--dir", d], "--listen"),
                            (["--listen", "127.0.0.1:0"], "--dir")]:
            out = run_signer(*args)
            check(out.returncode == 2 and field in out.stderr,
                  f"{args}: exit {out.returncode}: {out.stderr}")
    finally:
        signer.close()
        shutil.rmtree(d, ignore_errors=True)


def test_the_signer_refuses_a_damaged_or_rolled_back_fencing_state():
    d = tempfile.mkdtemp(prefix="anya-signer-")
    signer = Signer(os.path.join(d, "signer"))
    state = os.path.join(signer.dir, "fencing.state")
    try:
        signer.start()
        shutil.copy(state, os.path.join(d, "state-before"))  # token 0, for the rollback below
        code, body = signer.sign("first", 5)
        check(code == 200, f"sign: {code} {body}")
        signer.stop()
        good = open(state, "rb").read()

        damaged = bytearray(good)
        damaged[13] ^= 0x01  # a bit of the token
        with open(state, "wb") as f:
            f.write(damaged)
        out = run_signer("--listen", "127.0.0.1:0", "--dir", signer.dir)
        check(out.returncode == 1 and "byte offset 20 (crc32c)" in out.stderr and
              state in out.stderr, f"damaged state: exit {out.returncode}: {out.stderr}")
        check(open(state, "rb").read() == bytes(damaged), "the damaged file was changed")

        shutil.copy(os.path.join(d, "state-before"), state)
        out = run_signer("--listen", "127.0.0.1:0", "--dir", signer.dir)
        check(out.returncode == 1 and "rolled back" in out.stderr,
              f"rolled-back state: exit {out.returncode}: {out.stderr}")

        # A last record line cut short (a crash while appending) is dropped on the next start:
        # its signature was never answered, so nobody holds it.
        with open(state, "wb") as f:
            f.write(good)
        with open(os.path.join(signer.dir, "record.jsonl"), "a") as f:
            f.write('{"message": "torn", "fencing_to')
        notes = signer.start()
        check("dropped a last line cut short" in notes, f"start after a torn append: {notes}")
        check([r["message"] for r in signer.record()] == ["first"], "the torn line stayed")
        code, body = signer.sign("second", 4)
        check(code == 409 and "fencing token 4 is below 5" in body["message"],
              f"token 4 after the restart: {code} {body}")
        signer.stop()

        # The key signs transactions: one others may read stops the start.
        os.chmod(os.path.join(signer.dir, "signer.key"), 0o644)
        out = run_signer("--listen", "127.0.0.1:0", "--dir", signer.dir)
        check(out.returncode == 2 and "chmod 600" in out.stderr,
              f"a key readable by others: exit {out.returncode}: {out.stderr}")
    finally:
        signer.close()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_tap(globals(), sys.argv[3:]))
