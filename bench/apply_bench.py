#!/usr/bin/python3
"""Apply throughput, CPU, latency and memory of the replicator against the target's own ingest
ceiling, measured in one run on one machine (bench/README.md). Run through bench/run.sh, which
builds and starts the throwaway servers (test/support/db/with-dbs.sh sets MOLT_TEST_*).
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def fail(message):
    print(f"apply_bench: {message}", file=sys.stderr)
    sys.exit(1)


# ---- CPU and memory from /proc ----------------------------------------------------------------

def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    # The command name is in parentheses and may hold spaces.
    return text[text.rindex(")") + 2:].split()


def own_cpu(pid):
    """Seconds of CPU used by the process (all threads) and its reaped children."""
    f = stat_fields(pid)
    return sum(int(x) for x in f[11:15]) / TICK


def tree_cpu(pid):
    """A server with a process per session (PostgreSQL): itself, its reaped children (counted by
    the kernel into its own figures when it waits for them) and its live children. Read again
    when a child was reaped during the scan (it would be in neither figure, or in both)."""
    while True:
        before = own_cpu(pid)
        total = before
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                f = stat_fields(entry)
            except OSError:
                continue
            if f[1] == str(pid):
                total += (int(f[11]) + int(f[12])) / TICK
        if own_cpu(pid) == before:
            return total


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


# ---- the servers -------------------------------------------------------------------------------

class Target:
    def __init__(self, kind, env, staging_url):
        self.kind = kind
        self.staging_url = staging_url
        if kind == "postgres":
            self.url = env["MOLT_TEST_PG_URL"]
            self.pid = int(env["MOLT_TEST_PG_PID"])
            self.path = "/appdb/public"
            self.progress = "public._replicator_progress"
            self.cpu = lambda: tree_cpu(self.pid)
        else:
            self.url = env["MOLT_TEST_MYSQL_URL"]
            self.pid = int(env["MOLT_TEST_MYSQL_PID"])
            self.path = "/appdb"
            self.progress = "appdb._replicator_progress"
            self.cpu = lambda: own_cpu(self.pid)
        m = re.match(r"\w+://(\w+):(\w+)@([\d.]+):(\d+)/(\w+)", self.url)
        self.user, self.password, self.host, self.port, self.db = m.groups()

    def client(self, sql_file=None):
        """The database's own command-line client, reading SQL from a file or stdin."""
        if self.kind == "postgres":
            cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                   f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.db}"
                   "?sslmode=disable"]
            if sql_file:
                cmd += ["-f", sql_file]
        else:
            cmd = ["mariadb", "--no-defaults", "-h", self.host, "-P", self.port, "-u", self.user,
                   f"-p{self.password}", self.db]
        return cmd

    def run_sql(self, sql):
        r = subprocess.run(self.client(), input=sql, text=True, capture_output=True)
        if r.returncode != 0:
            fail(f"{self.kind}: {r.stderr.strip()}")
        return r.stdout

    def reset(self, schema_file):
        with open(schema_file) as f:
            schema = f.read()
        self.run_sql(schema + "DROP TABLE IF EXISTS _replicator_progress;\n")
        if self.kind == "postgres":
            self.run_sql("VACUUM ANALYZE;")


def reset_staging(admin_url):
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", admin_url, "-c",
                        "DROP SCHEMA IF EXISTS _replicator CASCADE"], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"staging: {r.stderr.strip()}")


# ---- the replicator ----------------------------------------------------------------------------

class Replicator:
    def __init__(self, binary, workdir, name, flags):
        self.name = name
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "start", "--tlsSelfSigned", "--disableAuthentication",
                                      "--bindAddr", "127.0.0.1:0", *flags],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        self.port = None
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                self.dump()
                fail(f"replicator {name} exited with {self.proc.returncode}")
            with open(self.log_path) as f:
                for line in f:
                    if "Server listening" in line:
                        m = re.search(r'address[=":]*[\d.]+:(\d+)', line)
                        if m:
                            self.port = int(m.group(1))
            time.sleep(0.05)
        if self.port is None:
            self.dump()
            self.stop()
            fail(f"replicator {name} did not start")

    def dump(self):
        with open(self.log_path) as f:
            sys.stderr.write(f.read()[-4000:])

    def cpu(self):
        return own_cpu(self.proc.pid)

    def peak_rss_mib(self):
        return peak_rss_mib(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---- one measurement ---------------------------------------------------------------------------

def workload_args(a, shape, mix, rows=None):
    return ["--shape", shape, "--mix", mix, "--rows", str(rows or a.rows), "--batch",
            str(a.batch), "--connections", str(a.connections)]


def ceiling(a, target, files):
    before = target.cpu()
    start = time.monotonic()
    procs = [subprocess.Popen(target.client(f) if target.kind == "postgres" else target.client(),
                              stdin=None if target.kind == "postgres" else open(f),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for f in files]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            fail(f"ceiling client ({target.kind}): {err.decode().strip()[:2000]}")
    seconds = time.monotonic() - start
    return {"seconds": seconds, "db_cpu": target.cpu() - before}


def through_replicator(a, target, shape, mix, mode, workdir, rows=None, extra=None,
                       flags_extra=None, name=None):
    flags = ["--targetConn", target.url, *(flags_extra or [])]
    if mode == "immediate":
        flags.append("--immediate")
    else:
        flags += ["--stagingConn", target.staging_url, "--stagingCreateSchema"]
    rep = Replicator(a.replicator, workdir, name or f"{target.kind}-{shape}-{mix}-{mode}", flags)
    try:
        url = f"https://127.0.0.1:{rep.port}{target.path}?insecure_tls_skip_verify=true"
        cmd = [a.sender, "send", *workload_args(a, shape, mix, rows), "--url", url]
        if mode == "consistent":
            cmd += ["--resolved-interval", str(a.resolved_ms), "--target", target.url,
                    "--progress-table", target.progress]
        cmd += extra or []
        perf = None
        if a.perf:
            # The replicator's CPU profile over the sender's run (perf's own CPU is not the
            # replicator's: own_cpu reads the replicator's process only).
            data = os.path.join(a.perf, f"{rep.name}.data")
            if os.path.exists(data):
                os.remove(data)  # so that a run perf did not record cannot show an older one
            perf_log = open(os.path.join(workdir, f"{rep.name}.perf.log"), "w")
            perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-g", "-p",
                                     str(rep.proc.pid), "-o", data],
                                    stdout=perf_log, stderr=subprocess.STDOUT)
        db_before, rep_before = target.cpu(), rep.cpu()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        db_cpu, rep_cpu = target.cpu() - db_before, rep.cpu() - rep_before
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
            perf_log.close()
            if not os.path.exists(data):
                with open(perf_log.name) as f:
                    fail(f"perf recorded nothing into {data}: {f.read().strip()[:2000]}")
        if r.returncode != 0:
            rep.dump()
            fail(f"sender: {r.stderr.strip()}")
        out = json.loads(r.stdout)
        out.update({"db_cpu": db_cpu, "replicator_cpu": rep_cpu,
                    "peak_rss_mib": rep.peak_rss_mib()})
        return out
    finally:
        rep.stop()


def scenario(a, target, shape, mix, workdir, pg_admin_staging):
    sqldir = os.path.join(workdir, f"{target.kind}-{shape}-{mix}")
    subprocess.run([a.sender, "sql", *workload_args(a, shape, mix), "--dialect", target.kind,
                    "--out", sqldir], check=True)
    schema = os.path.join(sqldir, "schema.sql")
    result = {"target": target.kind, "shape": shape, "mix": mix, "rows": a.rows}
    # The best set-based statement: multi-row VALUES upserts; on PostgreSQL also statements
    # prepared once per session taking one array per column. The faster is the ceiling.
    forms = ["values"]
    if target.kind == "postgres":
        forms.append("arrays")
        subprocess.run([a.sender, "sql", *workload_args(a, shape, mix), "--dialect", target.kind,
                        "--out", sqldir, "--statement", "arrays"], check=True)
    ceilings = {}
    for form in forms:
        prefix = "ceiling" if form == "values" else "ceiling-arrays"
        files = [os.path.join(sqldir, f"{prefix}.{k}.sql") for k in range(a.connections)]
        target.reset(schema)
        c = ceiling(a, target, files)
        ceilings[form] = dict(c, rows_per_second=a.rows / c["seconds"], statement=form)
        progress(f"  {target.kind} {shape} {mix} ceiling ({form}): "
                 f"{ceilings[form]['rows_per_second']:,.0f} rows/s")
    result["ceilings"] = ceilings
    result["ceiling"] = max(ceilings.values(), key=lambda c: c["rows_per_second"])
    for mode in a.modes:
        target.reset(schema)
        reset_staging(pg_admin_staging)
        result[mode] = through_replicator(a, target, shape, mix, mode, workdir)
        progress(f"  {target.kind} {shape} {mix} {mode}: "
                 f"{result[mode]['rows_per_second']:,.0f} rows/s")
    return result


# Userscripts: the same rows with no script, a pass-through script and a column filter (the
# cookbook's "Filter columns"), in immediate mode, where the script runs in the request.
USERSCRIPTS = {
    "passthrough": """import * as api from "replicator@v2";
api.configureTargetSchema("@SCHEMA@", {
  onRowUpsert: (row, meta) => row,
  onRowDelete: (row, meta) => row,
});
""",
    "filter": """import * as api from "replicator@v2";
api.configureTargetSchema("@SCHEMA@", {
  onRowUpsert: (row, meta) => {
    if (meta.table === "bench_t") {
      delete row["s"];
    }
    return row;
  },
  onRowDelete: (row, meta) => row,
});
""",
}


def userscripts(a, target, workdir):
    sqldir = os.path.join(workdir, f"{target.kind}-narrow-insert")
    subprocess.run([a.sender, "sql", *workload_args(a, "narrow", "insert"), "--dialect",
                    target.kind, "--out", sqldir], check=True)
    schema = target.path.strip("/").replace("/", ".")
    out = {"target": target.kind}
    for name in ("none", "passthrough", "filter"):
        flags = []
        if name != "none":
            path = os.path.join(workdir, f"{name}.ts")
            with open(path, "w") as f:
                f.write(USERSCRIPTS[name].replace("@SCHEMA@", schema))
            flags = ["--userscript", path]
        target.reset(os.path.join(sqldir, "schema.sql"))
        r = through_replicator(a, target, "narrow", "insert", "immediate", workdir,
                               flags_extra=flags, name=f"{target.kind}-userscript-{name}")
        out[name] = r
        progress(f"  {target.kind} narrow insert immediate, userscript {name}: "
                 f"{r['rows_per_second']:,.0f} rows/s")
    for name in ("passthrough", "filter"):
        out[f"{name}_x"] = out[name]["rows_per_second"] / out["none"]["rows_per_second"]
    return out


def progress(text):
    print(text, file=sys.stderr, flush=True)


def ratios(r):
    base = r["ceiling"]
    out = {}
    for mode in ("immediate", "consistent"):
        m = r.get(mode)
        if not m:
            continue
        out[mode] = {
            "throughput_x": m["rows_per_second"] / base["rows_per_second"],
            "db_cpu_per_row_x": ((m["db_cpu"] / m["rows"]) / (base["db_cpu"] / r["rows"])
                                 if base["db_cpu"] else 0),
            "replicator_cpu_s_per_million": m["replicator_cpu"] / m["rows"] * 1e6,
            "replicator_cpu_vs_db": m["replicator_cpu"] / m["db_cpu"] if m["db_cpu"] else 0,
        }
    return out


def table(results, latency, backlog, scripts=None):
    lines = ["| target | rows | mix | ceiling rows/s | immediate rows/s | × | consistent rows/s | × "
             "| DB CPU/row × (imm / cons) | replicator CPU ÷ DB (imm / cons) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        x = r["ratios"]

        def rate(mode):
            return f"{r[mode]['rows_per_second']:,.0f}" if mode in r else "—"

        def ratio(mode, key):
            return f"{x[mode][key]:.2f}" if mode in x else "—"

        lines.append(
            f"| {r['target']} | {r['shape']} | {r['mix']} "
            f"| {r['ceiling']['rows_per_second']:,.0f} ({r['ceiling']['statement']}) "
            f"| {rate('immediate')} | {ratio('immediate', 'throughput_x')} "
            f"| {rate('consistent')} | {ratio('consistent', 'throughput_x')} "
            f"| {ratio('immediate', 'db_cpu_per_row_x')} / {ratio('consistent', 'db_cpu_per_row_x')} "
            f"| {ratio('immediate', 'replicator_cpu_vs_db')} / "
            f"{ratio('consistent', 'replicator_cpu_vs_db')} |")
    if latency:
        lines.append("")
        lines.append(
            f"Latency, consistent mode, {latency['target']} narrow inserts at "
            f"{latency['rate']:,.0f} rows/s (half the measured maximum), resolved every "
            f"{latency['resolved_ms']} ms: resolved timestamp → applied p50 "
            f"{latency['latency_p50_ms']:.0f} ms, p99 {latency['latency_p99_ms']:.0f} ms "
            f"({latency['latency_samples']} samples; target p99 ≤ {2 * latency['resolved_ms'] + 250} ms).")
    if backlog:
        lines.append(
            f"Backlog: {backlog['rows']:,} rows staged before one resolved timestamp "
            f"({backlog['target']}, narrow): peak RSS {backlog['peak_rss_mib']:.0f} MiB "
            f"(target ≤ 256 MiB), applied at {backlog['rows_per_second']:,.0f} rows/s overall.")
    for u in scripts or []:
        lines.append(
            f"Userscripts ({u['target']}, narrow inserts, immediate): no script "
            f"{u['none']['rows_per_second']:,.0f} rows/s; pass-through "
            f"{u['passthrough']['rows_per_second']:,.0f} ({u['passthrough_x']:.2f}×); column "
            f"filter {u['filter']['rows_per_second']:,.0f} ({u['filter_x']:.2f}×) "
            f"(target ≥ 0.5×).")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--build", default="build/bench", help="the build tree (preset bench)")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--resolved-ms", type=int, default=1000)
    p.add_argument("--targets", default="postgres,mysql")
    p.add_argument("--shapes", default="narrow,wide")
    p.add_argument("--mixes", default="insert,mixed")
    p.add_argument("--modes", default="immediate,consistent")
    p.add_argument("--latency-seconds", type=float, default=20, help="0: skip")
    p.add_argument("--backlog-rows", type=int, default=1_000_000, help="0: skip")
    p.add_argument("--userscripts", default="postgres,mysql",
                   help="targets to measure userscripts on (immediate mode, narrow inserts); "
                        "'' to skip")
    p.add_argument("--json", default=None, help="where to write the results (default BUILD/apply_bench.json)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (replicator logs, SQL)")
    p.add_argument("--perf", default=None, metavar="DIR",
                   help="profile the replicator of each run (perf record -e cpu-clock -g) into "
                        "DIR/<run>.data; read with perf report -i")
    a = p.parse_args()
    a.modes = a.modes.split(",")
    a.replicator = os.path.join(a.build, "bin", "replicator")
    a.sender = os.path.join(a.build, "bench", "apply_bench_sender")
    for b in (a.replicator, a.sender):
        if not os.access(b, os.X_OK):
            fail(f"{b} is missing: build with bench/run.sh")
    if a.perf:
        if not shutil.which("perf"):
            fail("--perf needs perf (apt-get install linux-perf)")
        os.makedirs(a.perf, exist_ok=True)
    for tool in ("psql", "mariadb"):
        if not shutil.which(tool):
            fail(f"{tool} is missing (apt-get install postgresql-client mariadb-client)")
    env = os.environ
    if "MOLT_TEST_PG_URL" not in env:
        fail("no servers: run through bench/run.sh (or test/support/db/with-dbs.sh)")

    # Staging in a second database of the PostgreSQL server.
    admin = env["MOLT_TEST_PG_ADMIN_URL"]
    subprocess.run(["psql", "-X", "-q", admin, "-c", "DROP DATABASE IF EXISTS staging", "-c",
                    "CREATE DATABASE staging OWNER app"], check=True, capture_output=True)
    staging_url = re.sub(r"/appdb\?", "/staging?", env["MOLT_TEST_PG_URL"])
    staging_admin = re.sub(r"/postgres\?", "/staging?", admin)

    workdir = tempfile.mkdtemp(prefix="apply-bench.")
    info = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "rows": a.rows,
            "batch": a.batch, "connections": a.connections, "resolved_ms": a.resolved_ms}
    results, latency, backlog, scripts = [], None, None, []
    try:
        targets = {k: Target(k, env, staging_url) for k in filter(None, a.targets.split(","))}
        for kind, target in targets.items():
            for shape in a.shapes.split(","):
                for mix in a.mixes.split(","):
                    r = scenario(a, target, shape, mix, workdir, staging_admin)
                    r["ratios"] = ratios(r)
                    results.append(r)
        first = next(iter(targets.values()), None)
        consistent = [r for r in results if r["target"] == first.kind and r["shape"] == "narrow"
                      and r["mix"] == "insert" and "consistent" in r]
        if a.latency_seconds > 0 and consistent:
            rate = consistent[0]["consistent"]["rows_per_second"] / 2
            sqldir = os.path.join(workdir, f"{first.kind}-narrow-insert")
            first.reset(os.path.join(sqldir, "schema.sql"))
            reset_staging(staging_admin)
            latency = through_replicator(a, first, "narrow", "insert", "consistent", workdir,
                                         extra=["--rate", f"{rate:.0f}", "--duration",
                                                str(a.latency_seconds)])
            latency.update(target=first.kind, rate=rate, resolved_ms=a.resolved_ms)
            progress(f"  latency p50 {latency['latency_p50_ms']:.0f} ms, p99 {latency['latency_p99_ms']:.0f} ms")
        if a.backlog_rows > 0 and "consistent" in a.modes and first:
            sqldir = os.path.join(workdir, f"{first.kind}-narrow-insert")
            subprocess.run([a.sender, "sql", *workload_args(a, "narrow", "insert"), "--dialect",
                            first.kind, "--out", sqldir], check=True)
            first.reset(os.path.join(sqldir, "schema.sql"))
            reset_staging(staging_admin)
            # One resolved timestamp, after every row is staged.
            saved = a.resolved_ms
            a.resolved_ms = 24 * 3600 * 1000
            backlog = through_replicator(a, first, "narrow", "insert", "consistent", workdir,
                                         rows=a.backlog_rows)
            a.resolved_ms = saved
            backlog.update(target=first.kind)
            progress(f"  backlog of {a.backlog_rows:,} rows: peak RSS {backlog['peak_rss_mib']:.0f} MiB")
        for kind in filter(None, a.userscripts.split(",")):
            target = targets.get(kind) or Target(kind, env, staging_url)
            scripts.append(userscripts(a, target, workdir))
    finally:
        if a.keep:
            progress(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    out = {"run": info, "results": results, "latency": latency, "backlog": backlog,
           "userscripts": scripts}
    path = a.json or os.path.join(a.build, "apply_bench.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print(table(results, latency, backlog, scripts))
    print(f"\n(JSON: {path})")


if __name__ == "__main__":
    main()
