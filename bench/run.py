#!/usr/bin/env python3
"""Clairon benchmarks: one command per target, on this machine, PostgreSQL on the same host.

    python3 bench/run.py ingest       # POST /api/v1/notifications, 1 recipient (of 1,000) x 2 channels, 64 clients (wrk)
    python3 bench/run.py batch        # one POST for 5,000 recipients, repeated
    python3 bench/run.py drain-inapp  # 100,000 pending in-app deliveries (1,000 recipients) drained; RSS sampled
    python3 bench/run.py drain-smtp   # 20,000 pending emails drained into Postfix's smtp-sink
    python3 bench/run.py idle         # idle RSS after start-up
    python3 bench/run.py ws-latency   # HTTP -> open WebSocket latency at 1,000 notifications/s (1,000 sockets)
    python3 bench/run.py ws-fanout    # one request for 10,000 recipients, each with an open WebSocket
    python3 bench/run.py all

Needs: a release build (`cargo build --release -p clairon-bootstrap`, done here if missing),
`wrk` and Postfix's `smtp-sink` (Debian packages wrk and postfix), `psql`, for the ws-* benchmarks
the Rust load client `tests/examples/realtime_load.rs` (built here in release), PostgreSQL on
127.0.0.1:5432 (user postgres, trust). Each run uses a fresh database, dropped afterwards.
Results are printed as Markdown rows for BENCHMARKS.md and appended as JSON to bench/results.jsonl.
"""
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "clairon")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
KEY = "bench-key"


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def psql(db, sql):
    return sh("psql", "-q", "-At", "-v", "ON_ERROR_STOP=1", f"{PG}/{db}", "-c", sql)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


class Server:
    """A `clairon serve` on a fresh PostgreSQL database."""

    def __init__(self, extra_env=None, database=None):
        self.db = database or f"clairon_bench_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
        if database is None:
            psql("postgres", f"CREATE DATABASE {self.db}")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="clairon-bench-")
        env = dict(os.environ)
        env.update({
            "CLAIRON_DATABASE_URL": f"{PG}/{self.db}",
            "CLAIRON_BIND": f"127.0.0.1:{self.port}",
            "CLAIRON_API_KEYS": KEY,
            "CLAIRON_EMAIL_OUTBOX_DIR": os.path.join(self.dir, "outbox"),
            "CLAIRON_TEMPLATES_DIR": os.path.join(ROOT, "templates"),
            "CLAIRON_DATABASE_POOL_SIZE": "16",
            "CLAIRON_LOG": "warn",
            # The benchmarks measure the engine, not the per-key rate limit (100 req/s by default).
            "CLAIRON_RATE_LIMIT_PER_SEC": "0",
        })
        env.update(extra_env or {})
        self.proc = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "w"))
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(self.url + "/health", timeout=1)
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("clairon did not start: " + open(os.path.join(self.dir, "log")).read())

    def call(self, method, path, body):
        req = urllib.request.Request(self.url + path, method=method, data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, json.loads(r.read())

    def stop(self, drop=True):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
        if drop:
            psql("postgres", f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.max, self.running = pid, 0, True

    def run(self):
        while self.running:
            try:
                self.max = max(self.max, rss_kib(self.pid))
            except Exception:
                return
            time.sleep(0.05)


def smtp_sink():
    port = free_port()
    proc = subprocess.Popen(["smtp-sink", "-c", "-u", os.environ.get("USER", "root") if os.geteuid() else "nobody",
                             f"127.0.0.1:{port}", "2048"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return proc, port


def record(name, result):
    result = {"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result}
    with open(os.path.join(ROOT, "bench", "results.jsonl"), "a") as f:
        f.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=1))


def register(server, n):
    recipients = [{"id": f"r-{i}", "name": f"Recipient {i}", "email": f"r{i}@example.org"} for i in range(n)]
    for i in range(0, n, 2000):  # 2,000 per import keeps the body under the 256 KiB limit
        server.call("POST", "/api/v1/recipients/import", {"recipients": recipients[i:i + 2000]})


def ingest():
    sink, port = smtp_sink()
    server = Server({"CLAIRON_CHANNELS": "in_app,email", "CLAIRON_SMTP_URL": f"smtp://127.0.0.1:{port}", "CLAIRON_SMTP_POOL_SIZE": "8"})
    try:
        register(server, 1000)
        lua = os.path.join(ROOT, "bench", "post_notification.lua")
        duration = os.environ.get("BENCH_SECONDS", "20")
        out = sh("wrk", "-t2", "-c64", f"-d{duration}s", "--latency", "-s", lua, server.url + "/api/v1/notifications")
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
        p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        persisted = int(psql(server.db, "SELECT count(*) FROM notifications"))
        record("ingest", {"requests_per_s": rps, "p99_ms": p99_ms, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
                          "notifications_persisted": persisted, "clients": 64, "seconds": int(duration)})
        print(out)
    finally:
        server.stop()
        sink.terminate()


def batch():
    sink, port = smtp_sink()
    server = Server({"CLAIRON_CHANNELS": "in_app,email", "CLAIRON_SMTP_URL": f"smtp://127.0.0.1:{port}"})
    try:
        register(server, 5000)
        ids = [f"r-{i}" for i in range(5000)]
        times = []
        for i in range(int(os.environ.get("BENCH_ROUNDS", "10"))):
            start = time.perf_counter()
            status, body = server.call("POST", "/api/v1/notifications", {"recipient_ids": ids, "title": f"Batch {i}", "body": "One request, 5,000 recipients."})
            times.append(time.perf_counter() - start)
            assert status == 202 and len(body["notifications"]) == 5000
        best, median = min(times), sorted(times)[len(times) // 2]
        record("batch", {"recipients_per_request": 5000, "rounds": len(times), "median_s": round(median, 4), "best_s": round(best, 4),
                         "notifications_per_s_median": round(5000 / median), "notifications_per_s_best": round(5000 / best)})
    finally:
        server.stop()
        sink.terminate()


FILL = """
INSERT INTO recipients (id, name, email, created_at, updated_at, last_seq)
  SELECT 'bench-r-' || r, 'Bench Recipient ' || r, 'bench' || r || '@example.org', now(), now(), {n}
  FROM generate_series(0, 999) AS r;
INSERT INTO notifications (id, recipient_id, kind, priority, title, body, metadata, event_type, created_at, seq)
  SELECT 'bn-' || lpad(i::text, 9, '0'), 'bench-r-' || (i % 1000), 'info', 1, 'Title ' || i, 'Body ' || i, '{{}}', 'custom', now(), i
  FROM generate_series(1, {n}) AS i;
INSERT INTO deliveries (id, notification_id, recipient_id, channel, status, priority, attempts, next_attempt_at, created_at, updated_at)
  SELECT 'bd-' || lpad(i::text, 9, '0'), 'bn-' || lpad(i::text, 9, '0'), 'bench-r-' || (i % 1000), '{channel}', 'pending', 1, 0, now(), now(), now()
  FROM generate_series(1, {n}) AS i;
"""


def drain(channel, n, extra_env):
    db = f"clairon_bench_{os.getpid()}_{channel}"
    psql("postgres", f"CREATE DATABASE {db}")
    # Create the schema with a first start, then fill with the server stopped.
    Server(extra_env, database=db).stop(drop=False)
    psql(db, FILL.format(n=n, channel=channel))
    start = time.perf_counter()
    server = Server(extra_env, database=db)
    sampler = RssSampler(server.proc.pid)
    sampler.start()
    try:
        while True:
            left = int(psql(db, "SELECT count(*) FROM deliveries WHERE status IN ('pending','sending','retrying')"))
            if left == 0:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - start
        sampler.running = False
        sent = int(psql(db, "SELECT count(*) FROM deliveries WHERE status = 'sent'"))
        record(f"drain-{channel}", {"deliveries": n, "sent": sent, "seconds": round(elapsed, 2), "deliveries_per_s": round(n / elapsed),
                                     "max_rss_mib": round(sampler.max / 1024, 1), "note": "time includes process start-up"})
    finally:
        server.stop()


def drain_inapp():
    drain("in_app", int(os.environ.get("BENCH_DELIVERIES", "100000")), {"CLAIRON_CHANNELS": "in_app"})


def drain_smtp():
    sink, port = smtp_sink()
    try:
        drain("email", int(os.environ.get("BENCH_DELIVERIES", "20000")),
              {"CLAIRON_CHANNELS": "in_app,email", "CLAIRON_SMTP_URL": f"smtp://127.0.0.1:{port}", "CLAIRON_SMTP_POOL_SIZE": "16"})
    finally:
        sink.terminate()


def idle():
    server = Server({"CLAIRON_CHANNELS": "in_app"})
    try:
        time.sleep(5)
        record("idle", {"rss_mib": round(rss_kib(server.proc.pid) / 1024, 1)})
    finally:
        server.stop()


LOAD = os.path.join(ROOT, "target", "release", "examples", "realtime_load")
SECRET = "bench-token-secret-bench-token-secret"


def realtime(mode, recipients, *args):
    if not os.path.exists(LOAD) or os.environ.get("BENCH_REBUILD"):
        subprocess.run(["cargo", "build", "--release", "-p", "clairon-tests", "--example", "realtime_load"], cwd=ROOT, check=True)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 10,000 sockets on each side
    server = Server({"CLAIRON_CHANNELS": "in_app", "CLAIRON_TOKEN_SECRET": SECRET})
    try:
        register(server, recipients)
        out = sh(LOAD, mode, server.url, KEY, str(recipients), *map(str, args))
        record(f"ws-{mode}", json.loads(out.strip().splitlines()[-1]))
    finally:
        server.stop()


def ws_latency():
    realtime("latency", 1000, os.environ.get("BENCH_RATE", "1000"), os.environ.get("BENCH_SECONDS", "15"))


def ws_fanout():
    realtime("fanout", int(os.environ.get("BENCH_RECIPIENTS", "10000")), os.environ.get("BENCH_ROUNDS", "3"))


def main():
    if not os.path.exists(BIN) or os.environ.get("BENCH_REBUILD"):
        subprocess.run(["cargo", "build", "--release", "-p", "clairon-bootstrap"], cwd=ROOT, check=True)
    benches = {"ingest": ingest, "batch": batch, "drain-inapp": drain_inapp, "drain-smtp": drain_smtp, "idle": idle,
               "ws-latency": ws_latency, "ws-fanout": ws_fanout}
    names = sys.argv[1:] or ["all"]
    for name in (list(benches) if names == ["all"] else names):
        benches[name]()


if __name__ == "__main__":
    main()
