"""A real anya-ha cluster on 127.0.0.1 for integration tests and benchmarks: real processes
(`anya-ha agent`), real TLS with certificates made by `anya-ha dev --prepare`, real disks.

Every wait is bounded; every process started is killed in close(), even when a test fails."""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import traceback


def free_base_port(nodes):
    """A base port P such that the peer (P+i), admin (P+100+i) and health (P+200+i) ports of
    nodes 1..nodes are free right now."""
    for _ in range(200):
        base = random.randrange(20000, 50000)
        ports = [base + offset + i for offset in (0, 100, 200) for i in range(1, nodes + 1)]
        ok = True
        for p in ports:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range found")


class Cluster:
    def __init__(self, binary, nodes=3, workdir=None, extra_config=None):
        self.binary = binary
        self.nodes = nodes
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="anya-it-")
        self.base = free_base_port(nodes)
        self.procs = {}
        out = subprocess.run([binary, "dev", "--prepare", "--nodes", str(nodes), "--dir", self.dir,
                              "--base-port", str(self.base)], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError("anya-ha dev --prepare failed: " + out.stderr)
        if extra_config:
            for i in range(1, nodes + 1):
                self.edit_config(i, extra_config)
        self.ctx = self.client_context(os.path.join(self.dir, "client.crt"),
                                       os.path.join(self.dir, "client.key"))

    # ---- files ----
    def config_path(self, i):
        return os.path.join(self.dir, str(i), "config.toml")

    def edit_config(self, i, replacements):
        path = self.config_path(i)
        with open(path) as f:
            text = f.read()
        for old, new in replacements.items():
            if old not in text:
                raise RuntimeError(f"{path}: no '{old}' to replace")
            text = text.replace(old, new)
        with open(path, "w") as f:
            f.write(text)

    def client_context(self, cert, key, ca=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(ca or os.path.join(self.dir, "ca.crt"))
        ctx.load_cert_chain(cert, key)
        return ctx

    def admin_port(self, i):
        return self.base + 100 + i

    def health_port(self, i):
        return self.base + 200 + i

    def log(self, i):
        with open(os.path.join(self.dir, str(i), "agent.log"), errors="replace") as f:
            return f.read()

    # ---- processes ----
    def start(self, i, config=None, env=None):
        """Starts node i; `env` adds variables (e.g. LD_PRELOAD for libfaketime)."""
        assert i not in self.procs or self.procs[i].poll() is not None, f"node {i} running"
        log = open(os.path.join(self.dir, str(i), "agent.log"), "a")
        self.procs[i] = subprocess.Popen([self.binary, "agent", "--config",
                                          config or self.config_path(i)],
                                         stdout=log, stderr=log,
                                         env=dict(os.environ, **env) if env else None)
        log.close()

    def start_all(self):
        for i in range(1, self.nodes + 1):
            self.start(i)

    def alive(self, i):
        return i in self.procs and self.procs[i].poll() is None

    def live_nodes(self):
        return [i for i in range(1, self.nodes + 1) if self.alive(i)]

    def kill(self, i, sig=signal.SIGKILL):
        self.procs[i].send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            return self.procs[i].wait(timeout=15)
        return None

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)
        if self.own_dir and os.environ.get("ANYA_KEEP_TEST_DIRS") is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- admin API ----
    def request(self, i, method, path, body=None, timeout=2.0, headers=None, ctx=None):
        """(status, parsed JSON or text). Raises OSError when the node cannot be reached."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.admin_port(i), timeout=timeout,
                                           context=ctx or self.ctx)
        try:
            data = None if body is None else (body if isinstance(body, (bytes, str))
                                              else json.dumps(body))
            conn.request(method, path, body=data, headers=headers or {})
            r = conn.getresponse()
            raw = r.read().decode()
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, raw
        finally:
            conn.close()

    def status(self, i, timeout=1.0):
        try:
            code, body = self.request(i, "GET", "/v1/status", timeout=timeout)
            return body if code == 200 else None
        except (OSError, ssl.SSLError, http.client.HTTPException):
            return None

    def wait_leader(self, timeout=10.0, among=None, exclude=()):
        """The leader that a majority of the live nodes (or `among`) agree on."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            nodes = among or self.live_nodes()
            views = {}
            for i in nodes:
                st = self.status(i)
                if st and st["leader"] is not None:
                    views[i] = (st["leader"], st["term"])
            counts = {}
            for leader_term in views.values():
                counts[leader_term] = counts.get(leader_term, 0) + 1
            for (leader, term), n in counts.items():
                if n > len(nodes) // 2 and leader not in exclude and self.alive(leader):
                    st = self.status(leader)
                    if st and st["role"] == "leader" and st["term"] == term:
                        return leader
            time.sleep(0.02)
        raise TimeoutError(f"no leader within {timeout}s among {among or self.live_nodes()}")

    def put(self, key, value, via=None, timeout=1.0, prev_revision=None):
        """Writes through `via` (or any live node), following not_leader hints once.
        Returns (status, body)."""
        body = {"value": value}
        if prev_revision is not None:
            body["prev_revision"] = prev_revision
        node = via or self.live_nodes()[0]
        for _ in range(3):
            code, reply = self.request(node, "PUT", "/v1/kv/" + key, body, timeout=timeout)
            if code == 421 and isinstance(reply, dict) and reply.get("leader"):
                node = reply["leader"]
                continue
            return code, reply
        return code, reply

    def get(self, key, via, timeout=3.0):
        """Reads through `via`. A new leader answers 503 busy until it has applied an entry of
        its own term; like any client, this asks again until `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            code, reply = self.request(via, "GET", "/v1/kv/" + key)
            busy = code == 503 and isinstance(reply, dict) and reply.get("error") == "busy"
            if not busy or time.monotonic() >= deadline:
                return code, reply
            time.sleep(0.02)

    def metric(self, i, name, labels=None):
        code, text = self.request(i, "GET", "/metrics")
        assert code == 200
        total = 0.0
        found = False
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            if head != name and not head.startswith(name + "{"):
                continue
            if labels and not all(f'{k}="{v}"' in head for k, v in labels.items()):
                continue
            total += float(value)
            found = True
        return total if found else None


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def run_tap(namespace, argv):
    """Runs every test_* function of `namespace` (or those named in argv) as one TAP case each;
    returns the exit code."""
    tests = [(name, fn) for name, fn in namespace.items()
             if name.startswith("test_") and callable(fn)]
    if argv:
        tests = [(n, f) for n, f in tests if n in argv]
    print(f"1..{len(tests)}", flush=True)
    failed = 0
    for number, (name, fn) in enumerate(tests, 1):
        started = time.monotonic()
        try:
            fn()
            print(f"ok {number} - {name} ({time.monotonic() - started:.1f}s)", flush=True)
        except Exception:  # a failed check or an unexpected error: report it, go on
            failed += 1
            print(f"not ok {number} - {name}", flush=True)
            for line in traceback.format_exc().splitlines():
                print("# " + line, flush=True)
    return 1 if failed else 0
