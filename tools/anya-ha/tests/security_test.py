#!/usr/bin/env python3
"""Security tests against real `anya-ha agent` processes on 127.0.0.1: who may do what on the
admin plane, identities bound to nodes, revocation and reloads, the audit log, the health
listener, bad `members add` input, and floods that must not lock the operators out. Prints TAP
(one case per test). Usage: security_test.py ANYA_HA_BINARY [TEST_NAME...]

Before and after each refused input, the cluster's term, commit index, configuration version and
the key it guards are compared: a refusal must change nothing."""
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster, check, run_tap  # noqa: E402

BINARY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/tools/anya-ha"


def issue_client(c, name, role=None):
    """A client certificate from the cluster CA; bound to `role` on every node when given
    (the caller restarts the nodes to apply it)."""
    prefix = os.path.join(c.dir, f"client-{name}")
    out = subprocess.run([BINARY, "certs", "issue", "--ca-dir", c.dir, "--client", name,
                          "--out", prefix], capture_output=True, text=True)
    check(out.returncode == 0, out.stderr)
    if role:
        for i in range(1, c.nodes + 1):
            c.edit_config(i, {"[auth.clients]\n": f'[auth.clients]\n"{name}" = "{role}"\n'})
    return c.client_context(prefix + ".crt", prefix + ".key")


def no_cert_context(c):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(os.path.join(c.dir, "ca.crt"))
    return ctx


def fingerprint(c, leader):
    """What a refused request must leave as it was."""
    st = c.status(leader)
    code, body = c.get("wallet/primary", leader)
    value = body.get("value") if code == 200 and isinstance(body, dict) else None
    return st["term"], st["commit_index"], st["config_version"], value


def ctl(c, *args, env_extra=None, token=None, cert=True):
    env = dict(os.environ)
    env["ANYA_HA_ENDPOINTS"] = ",".join(f"https://127.0.0.1:{c.admin_port(i)}"
                                        for i in range(1, c.nodes + 1))
    env["ANYA_HA_CACERT"] = os.path.join(c.dir, "ca.crt")
    for k in ("ANYA_HA_CERT", "ANYA_HA_KEY", "ANYA_HA_TOKEN"):
        env.pop(k, None)
    if cert:
        env["ANYA_HA_CERT"] = os.path.join(c.dir, "client.crt")
        env["ANYA_HA_KEY"] = os.path.join(c.dir, "client.key")
    if token:
        env["ANYA_HA_TOKEN"] = token
    env.update(env_extra or {})
    return subprocess.run([BINARY, "ctl", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def started_cluster(setup=None):
    c = Cluster(BINARY, 3)
    try:
        if setup:
            setup(c)
        c.start_all()
        leader = c.wait_leader()
        code, body = c.put("wallet/primary", "xpub-original", via=leader)
        check(code == 200, f"seed write: {code} {body}")
        return c, leader
    except Exception:
        c.close()
        raise


def test_each_role_gets_what_it_may_and_refusals_change_nothing():
    holder = {}

    def setup(c):
        holder["viewer"] = issue_client(c, "prom", "viewer")
        holder["operator"] = issue_client(c, "deployer", "operator")
        holder["stranger"] = issue_client(c, "stranger")
        holder["node2"] = c.client_context(os.path.join(c.dir, "2", "node.crt"),
                                           os.path.join(c.dir, "2", "node.key"))
        holder["none"] = no_cert_context(c)

    c, leader = started_cluster(setup)
    try:
        before = fingerprint(c, leader)
        refused = [
            ("viewer", "PUT", "/v1/kv/wallet/primary", {"value": "evil"}, 403),
            ("viewer", "POST", "/v1/leader/transfer", None, 403),
            ("operator", "POST", "/v1/members", {"id": 9, "address": "127.0.0.1:1"}, 403),
            ("operator", "PUT", "/v1/config", {"x": 1}, 403),
            ("stranger", "GET", "/v1/status", None, 403),
            ("stranger", "PUT", "/v1/kv/wallet/primary", {"value": "evil"}, 403),
            ("node2", "PUT", "/v1/kv/wallet/primary", {"value": "evil"}, 403),
            ("node2", "POST", "/v1/leader/transfer", None, 403),
            ("none", "GET", "/metrics", None, 401),
            ("none", "PUT", "/v1/kv/wallet/primary", {"value": "evil"}, 401),
        ]
        for who, method, path, body, expected in refused:
            code, reply = c.request(leader, method, path, body, ctx=holder[who])
            check(code == expected, f"{who} {method} {path}: {code} {reply}, wanted {expected}")
        allowed = [
            ("viewer", "GET", "/v1/status", None),
            ("viewer", "GET", "/v1/kv/wallet/primary", None),
            ("viewer", "GET", "/metrics", None),
            ("operator", "GET", "/v1/lease", None),
        ]
        for who, method, path, body in allowed:
            code, reply = c.request(leader, method, path, body, ctx=holder[who])
            check(code == 200, f"{who} {method} {path}: {code} {reply}")
        check(fingerprint(c, leader) == before, f"a refusal changed the cluster: {before} -> "
              f"{fingerprint(c, leader)}")
        code, reply = c.request(leader, "PUT", "/v1/kv/deploy/v", {"value": "2"},
                                ctx=holder["operator"])
        check(code == 200, f"operator write: {code} {reply}")
        check((c.metric(leader, "anya_admin_refused_total", {"reason": "forbidden"}) or 0) >= 8,
              "forbidden refusals not counted")
        check((c.metric(leader, "anya_admin_refused_total",
                        {"reason": "unauthenticated"}) or 0) >= 2,
              "unauthenticated refusals not counted")
        check("refused admin request" in c.log(leader) and "lacks permission" in c.log(leader),
              "no log line says why a request was refused")
    finally:
        c.close()


def test_tokens_are_made_used_and_revoked_by_admins_only():
    c, leader = started_cluster()
    try:
        out = ctl(c, "token", "create", "--name", "ci", "--role", "operator", "--ttl", "1h")
        check(out.returncode == 0, out.stdout + out.stderr)
        token = out.stdout.strip()
        check(token.startswith("anya."), f"not a token: {token!r}")
        token_id = token.split(".")[1]
        out = ctl(c, "kv", "put", "deploy/x", "1", token=token, cert=False)
        check(out.returncode == 0, "token write: " + out.stderr)
        out = ctl(c, "members", "add", "9", "127.0.0.1:9", token=token, cert=False)
        check(out.returncode == 1 and "forbidden" in out.stderr, out.stderr)
        out = ctl(c, "-o", "json", "token", "list")
        check(out.returncode == 0 and token_id in out.stdout, out.stdout + out.stderr)
        check(token.split(".")[2] not in out.stdout, "the secret is listed")
        for i in range(1, 4):
            log = c.log(i) + open(os.path.join(c.dir, str(i), "data", "audit.log")).read()
            check(token.split(".")[2] not in log, f"node {i} wrote the token's secret down")
        # An operator token cannot make tokens.
        out = ctl(c, "token", "create", "--name", "x", "--role", "admin", token=token,
                  cert=False)
        check(out.returncode == 1 and "forbidden" in out.stderr, out.stderr)
        out = ctl(c, "token", "revoke", token_id)
        check(out.returncode == 0, out.stderr)
        deadline = time.monotonic() + 10
        while True:
            out = ctl(c, "kv", "put", "deploy/x", "2", token=token, cert=False)
            if out.returncode != 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        check(out.returncode == 1 and "unauthenticated" in out.stderr,
              "a revoked token still works: " + out.stderr)
        out = ctl(c, "status", token="anya.0123456789abcdef." + "0" * 64, cert=False)
        check(out.returncode == 1 and "unauthenticated" in out.stderr, out.stderr)
    finally:
        c.close()


def test_audit_log_records_mutations_and_refusals_and_detects_tampering():
    holder = {}

    def setup(c):
        holder["viewer"] = issue_client(c, "prom", "viewer")

    c, leader = started_cluster(setup)
    try:
        code, _ = c.request(leader, "PUT", "/v1/kv/wallet/primary", {"value": "evil"},
                            ctx=holder["viewer"])
        check(code == 403, f"viewer write: {code}")
        audit = os.path.join(c.dir, str(leader), "data", "audit.log")
        mode = os.stat(audit).st_mode & 0o777
        check(mode == 0o600, f"audit.log mode {oct(mode)}")
        with open(audit) as f:
            records = [json.loads(line) for line in f]
        actions = [(r["actor"], r["action"], r["outcome"]) for r in records]
        check(("client:admin", "kv.write", "requested") in actions, f"{actions}")
        check(("client:admin", "kv.write", "ok") in actions, f"{actions}")
        check(("client:prom", "auth.forbidden", "refused") in actions, f"{actions}")
        check(any(a[1] == "leader.changed" for a in actions), f"{actions}")
        check(all("xpub-original" not in json.dumps(r) for r in records), "a value was recorded")
        secret = os.path.join(c.dir, "audit.secret")
        out = subprocess.run([BINARY, "audit", "verify", audit, "--secret-file", secret],
                             capture_output=True, text=True)
        check(out.returncode == 0 and "ok" in out.stdout, out.stdout + out.stderr)
        c.kill(leader, signal.SIGKILL)
        with open(audit) as f:
            lines = f.readlines()
        lines[1] = lines[1].replace('"kv.write"', '"kv.read"')
        with open(audit, "w") as f:
            f.writelines(lines)
        out = subprocess.run([BINARY, "audit", "verify", audit, "--secret-file", secret],
                             capture_output=True, text=True)
        check(out.returncode == 1 and "seq 2" in out.stderr, out.stdout + out.stderr)
        # A node whose audit chain is broken refuses to start rather than write past it.
        c.start(leader)
        deadline = time.monotonic() + 10
        while c.alive(leader) and time.monotonic() < deadline:
            time.sleep(0.1)
        check(not c.alive(leader), "started on a tampered audit log")
        check("audit" in c.log(leader)[-2000:], c.log(leader)[-2000:])
    finally:
        c.close()


def test_a_members_audit_file_cut_short_is_seen_from_the_cluster():
    c, leader = started_cluster()
    try:
        follower = [i for i in (1, 2, 3) if i != leader][0]
        for _ in range(5):  # refusals: records in the follower's own audit log
            code, _ = c.request(follower, "GET", "/v1/status", ctx=no_cert_context(c))
            check(code == 401, f"no credential on node {follower}: {code}")
        audit = os.path.join(c.dir, str(follower), "data", "audit.log")
        with open(audit) as f:
            lines = f.readlines()
        head = None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and head is None:
            code, body = c.request(c.wait_leader(), "GET", "/v1/audit/heads")
            check(code == 200, f"audit heads: {code} {body}")
            for h in body["heads"]:
                if h["node"] == str(follower) and h["seq"] >= len(lines):
                    head = h
            time.sleep(0.5)
        check(head is not None, f"node {follower}'s audit head was never recorded")
        c.kill(follower, signal.SIGKILL)
        with open(audit) as f:
            lines = f.readlines()
        with open(audit, "w") as f:
            f.writelines(lines[:-2])
        secret = os.path.join(c.dir, "audit.secret")
        out = subprocess.run([BINARY, "audit", "verify", audit, "--secret-file", secret],
                             capture_output=True, text=True)
        check(out.returncode == 0, "a cut chain is still a valid chain: " + out.stderr)
        out = subprocess.run([BINARY, "audit", "verify", audit, "--secret-file", secret,
                              "--head-seq", str(head["seq"]), "--head-mac", head["mac"]],
                             capture_output=True, text=True)
        check(out.returncode == 1 and "truncated" in out.stderr, out.stdout + out.stderr)
        # Restarted, the node reports a lower head than the cluster recorded: said loudly.
        c.start(follower)
        deadline = time.monotonic() + 40
        leader = c.wait_leader()
        while time.monotonic() < deadline and "has lost records" not in c.log(leader):
            time.sleep(0.5)
            leader = c.wait_leader()
        check("has lost records" in c.log(leader), "the leader did not notice the cut")
    finally:
        c.close()


def test_a_node_started_with_another_nodes_certificate_refuses_to_start():
    c = Cluster(BINARY, 3)
    try:
        c.edit_config(3, {'cert = "node.crt"': f'cert = "{c.dir}/1/node.crt"',
                          'key = "node.key"': f'key = "{c.dir}/1/node.key"'})
        c.start(3)
        code = c.procs[3].wait(timeout=30)
        check(code == 2, f"exit code {code}")
        log = c.log(3)
        check("names node 1" in log and "node 3" in log, log[-1500:])
    finally:
        c.close()


def test_a_data_directory_others_may_write_is_refused():
    c = Cluster(BINARY, 3)
    try:
        data = os.path.join(c.dir, "1", "data")
        os.makedirs(data, exist_ok=True)
        os.chmod(data, 0o777)
        c.start(1)
        code = c.procs[1].wait(timeout=30)
        check(code == 2, f"exit code {code}")
        check("writable by group or others" in c.log(1), c.log(1)[-1500:])
        os.chmod(data, 0o700)
        c.start_all()
        c.wait_leader()
        wal = os.path.join(data, "wal")
        for root, dirs, files in os.walk(data):
            for name in files:
                mode = os.stat(os.path.join(root, name)).st_mode & 0o777
                check(mode & 0o077 == 0, f"{root}/{name} has mode {oct(mode)}")
        check(os.stat(wal).st_mode & 0o077 == 0, f"wal dir mode {oct(os.stat(wal).st_mode)}")
    finally:
        c.close()


def test_sighup_reloads_and_a_revoked_certificate_is_refused():
    holder = {}

    def setup(c):
        holder["temp"] = issue_client(c, "temp", "viewer")
        # A CRL must exist when the nodes start; begin with an unrelated revocation.
        issue_client(c, "retired")
        out = subprocess.run([BINARY, "certs", "revoke", "--dir", c.dir, "--cert",
                              os.path.join(c.dir, "client-retired.crt")],
                             capture_output=True, text=True)
        check(out.returncode == 0, out.stderr)
        for i in range(1, 4):
            c.edit_config(i, {'key = "node.key"\n':
                              f'key = "node.key"\ncrl = "{c.dir}/crl.pem"\n'})

    c, leader = started_cluster(setup)
    try:
        code, _ = c.request(leader, "GET", "/v1/status", ctx=holder["temp"])
        check(code == 200, f"before revocation: {code}")
        before = fingerprint(c, leader)
        out = subprocess.run([BINARY, "certs", "revoke", "--dir", c.dir, "--cert",
                              os.path.join(c.dir, "client-temp.crt")],
                             capture_output=True, text=True)
        check(out.returncode == 0, out.stderr)
        for i in range(1, 4):
            c.kill(i, signal.SIGHUP)
        time.sleep(1.0)
        for i in range(1, 4):
            check(c.alive(i), f"SIGHUP stopped node {i}: {c.log(i)[-800:]}")
            check("reloading TLS files" in c.log(i), f"node {i} did not log the reload")
            check((c.metric(i, "anya_tls_reloads_total") or 0) >= 1, f"node {i}: no reload")
        try:
            code, _ = c.request(leader, "GET", "/v1/status", ctx=holder["temp"])
            refused = False
        except (ssl.SSLError, ConnectionError, OSError, http.client.HTTPException):
            refused = True
        check(refused, f"a revoked certificate still got {code}")
        check("revoked" in c.log(leader), "the refusal does not say the certificate is revoked")
        code, _ = c.request(leader, "GET", "/v1/status")
        check(code == 200, "the admin's certificate stopped working")
        check(c.wait_leader() == leader and fingerprint(c, leader) == before,
              f"the reloads or the refusal changed the cluster: {before} -> "
              f"{fingerprint(c, leader)}")
    finally:
        c.close()


def test_health_listener_serves_only_health_without_credentials():
    c, leader = started_cluster()
    try:
        for path, want in (("/healthz", 200), ("/readyz", 200), ("/metrics", 200),
                           ("/v1/status", 404), ("/v1/kv/wallet/primary", 404)):
            conn = http.client.HTTPConnection("127.0.0.1", c.health_port(leader), timeout=5)
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read().decode()
            conn.close()
            check(r.status == want, f"{path}: {r.status} {body[:200]}")
            check("xpub-original" not in body, f"{path} leaked a value")
        conn = http.client.HTTPConnection("127.0.0.1", c.health_port(leader), timeout=5)
        conn.request("PUT", "/healthz", body="{}")
        r = conn.getresponse()
        r.read()
        check(r.status == 404, f"PUT /healthz: {r.status}")
    finally:
        c.close()


def test_members_add_refuses_bad_input_and_changes_nothing():
    c, leader = started_cluster()
    try:
        before = fingerprint(c, leader)
        node1_peer = f"127.0.0.1:{c.base + 1}"
        cases = [
            ({"id": 2, "address": "127.0.0.1:1"}, 409, "already a member"),
            ({"id": 18446744073709551615, "address": "127.0.0.1:1"}, 400, "outside"),
            ({"id": 9, "address": node1_peer}, 409, "node 1"),
            ({"id": 9, "address": "not an address"}, 400, "address"),
            ({"id": 0, "address": "127.0.0.1:1"}, 400, "id"),
        ]
        for body, want, says in cases:
            code, reply = c.request(leader, "POST", "/v1/members", body)
            check(code == want and says in json.dumps(reply),
                  f"{body}: {code} {reply}, wanted {want} naming {says!r}")
        check(fingerprint(c, leader) == before, "a refused members add changed the cluster")
        check((c.metric(leader, "anya_admin_requests_failed_total", {"status": "409"}) or 0) >= 2,
              "the refused members adds are not counted")
        check("already a member" in c.log(leader), "no log line says why members add was refused")
    finally:
        c.close()


def free_ports(count):
    """Ports free right now (the kernel's choice), all different."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def join(c, token, node, pin, out_dir, via=1):
    return subprocess.run([BINARY, "join", "--endpoint", f"https://127.0.0.1:{c.admin_port(via)}",
                           "--token", token, "--ca-pin", pin, "--node", str(node), "--dir",
                           out_dir, "--ip", "127.0.0.1"], capture_output=True, text=True,
                          timeout=60)


def test_a_new_node_joins_with_a_one_time_token_and_the_ca_pin():
    c, leader = started_cluster()
    try:
        pin = subprocess.run([BINARY, "certs", "pin", "--dir", c.dir], capture_output=True,
                             text=True).stdout.strip()
        check(pin.startswith("sha256:"), f"pin: {pin!r}")
        out = ctl(c, "token", "create", "--join", "--name", "node-4", "--ttl", "1h")
        check(out.returncode == 0, out.stderr)
        token = out.stdout.strip()
        new_dir = os.path.join(c.dir, "4")
        # A wrong pin: the token is never sent, so it stays good.
        out = join(c, token, 4, "sha256:" + "0" * 64, new_dir)
        check(out.returncode == 1 and "not sending the token" in out.stderr, out.stderr)
        # A member's id: refused before the token is spent.
        out = join(c, token, 2, pin, new_dir)
        check(out.returncode == 1 and "already a member" in out.stderr, out.stderr)
        out = join(c, token, 4, pin, new_dir)
        check(out.returncode == 0, out.stdout + out.stderr)
        check(os.stat(os.path.join(new_dir, "node.key")).st_mode & 0o077 == 0, "key mode")
        # Spent: a second use, even for another id, gets nothing.
        out = join(c, token, 5, pin, os.path.join(c.dir, "5"))
        check(out.returncode == 1 and "401" in out.stderr, out.stderr)
        out = ctl(c, "token", "create", "--join", "--name", "short", "--ttl", "1s")
        check(out.returncode == 0, out.stderr)
        time.sleep(1.5)
        out = join(c, out.stdout.strip(), 6, pin, os.path.join(c.dir, "6"))
        check(out.returncode == 1 and "expired" in out.stderr, out.stderr)
        # The certificate works: node 4 joins the cluster with it and becomes a voter.
        with open(c.config_path(3)) as f:
            text = f.read()
        peer4, admin4, health4 = free_ports(3)
        for old, new in (("node_id = 3", "node_id = 4"),
                         (f'listen = "127.0.0.1:{c.base + 3}"', f'listen = "127.0.0.1:{peer4}"'),
                         (f'advertise = "127.0.0.1:{c.base + 3}"',
                          f'advertise = "127.0.0.1:{peer4}"'),
                         (f'listen = "127.0.0.1:{c.base + 103}"',
                          f'listen = "127.0.0.1:{admin4}"'),
                         (f'health_listen = "127.0.0.1:{c.base + 203}"',
                          f'health_listen = "127.0.0.1:{health4}"'),
                         ("join = false", "join = true")):
            check(old in text, f"node 3's config has no {old!r}")
            text = text.replace(old, new)
        os.makedirs(os.path.join(c.dir, "4"), exist_ok=True)
        config4 = os.path.join(c.dir, "4", "config.toml")
        with open(config4, "w") as f:
            f.write(text)  # its paths are relative: node.crt, node.key, data in DIR/4
        c.start(4, config=config4)
        out = ctl(c, "members", "add", "4", f"127.0.0.1:{peer4}")
        check(out.returncode == 0, out.stderr)
        deadline = time.monotonic() + 20
        voter = False
        while time.monotonic() < deadline and not voter:
            st = c.status(c.wait_leader(among=[1, 2, 3]))
            voter = any(m["id"] == 4 and m["voter"] for m in st["members"])
            time.sleep(0.2)
        check(voter, "node 4 never became a voter: " + c.log(4)[-1500:])
        with open(os.path.join(c.dir, str(leader), "data", "audit.log")) as f:
            audit = f.read()
        check('"node.join"' in audit, "the join is not in the audit log")
        check('"member.added"' in audit and '"member.promoted"' in audit,
              "the membership changes are not in the audit log")
        check(token.split(".")[2] not in audit, "the join token's secret was recorded")
    finally:
        c.close()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def hold_idle(port, count):
    held = []
    for _ in range(count):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            held.append(s)
        except OSError:
            s.close()
    return held


def test_a_flood_of_idle_connections_locks_nobody_out():
    c, leader = started_cluster()
    follower = [i for i in (1, 2, 3) if i != leader][0]
    held = []
    try:
        term, _, config_version, value = fingerprint(c, leader)
        lines_before = c.log(leader).count("\n")
        held += hold_idle(c.admin_port(leader), 300)
        latencies = []
        for _ in range(5):
            t0 = time.monotonic()
            code, _ = c.request(leader, "GET", "/v1/status", timeout=10)
            latencies.append(time.monotonic() - t0)
            check(code == 200, f"status during the admin flood: {code}")
        out = ctl(c, "kv", "put", "during/flood", "1")
        check(out.returncode == 0, "ctl during the flood: " + out.stderr)
        evicted = c.metric(leader, "anya_admin_connections_refused_total") or 0
        check(evicted > 0, "the admin flood's evictions are not in /metrics")
        conn = http.client.HTTPConnection("127.0.0.1", c.health_port(leader), timeout=10)
        conn.request("GET", "/healthz")
        check(conn.getresponse().status == 200, "healthz during the flood")
        conn.close()
        baseline = rss_kb(c.procs[follower].pid)
        held += hold_idle(c.base + follower, 3000)
        time.sleep(1.0)
        during = rss_kb(c.procs[follower].pid)
        code, _ = c.put("during/peer-flood", "1", via=leader, timeout=10)
        check(code == 200, f"write during the peer flood: {code}")
        for s in held:
            s.close()
        held = []
        time.sleep(2.0)
        after = rss_kb(c.procs[follower].pid)
        new_lines = c.log(leader).count("\n") - lines_before
        print(f"# admin status latency during 300 idle connections: median "
              f"{sorted(latencies)[2] * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
              f"follower RSS {baseline} KB before, {during} KB during 3000 idle peer "
              f"connections, {after} KB after; leader log lines during the flood: {new_lines}",
              flush=True)
        check(after < baseline + 40 * 1024, f"memory did not come back: {baseline} -> {after} KB")
        check(during < baseline + 100 * 1024, f"memory grew to {during} KB from {baseline} KB")
        check(new_lines < 200, f"{new_lines} log lines during the flood")
        after_term, _, after_config, after_value = fingerprint(c, leader)
        check((after_term, after_config, after_value) == (term, config_version, value),
              "the floods cost the cluster its leader, its configuration or its value")
    finally:
        for s in held:
            s.close()
        c.close()


if __name__ == "__main__":
    sys.exit(run_tap(globals(), sys.argv[2:]))
