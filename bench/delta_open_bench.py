"""Delta open benchmark: mongo2delta's log replay against delta-rs, side by side in one run, on
the same two tables.

  commits: 10,000 commits (versions 0..9,999), each adding one data file, with a classic
           checkpoint every 10 commits (10, 20, ..., 9,990) and _last_checkpoint: an open reads
           the checkpoint of 9,990 (9,991 adds) and the 9 JSON commits after it, after listing
           a _delta_log of 11,000 files.
  files:   100,000 files in the latest snapshot: 100 commits of 1,000 adds each (versions
           0..99), a classic checkpoint at 99, then 5 JSON commits that each remove one file
           and add another (versions 100..104).

The commits are JSON files written here by following delta-io/delta PROTOCOL.md; the
checkpoints are written by delta-rs (DeltaTable(path, version=v).create_checkpoint()), so they
do not depend on our code. Every add names a real Parquet file (10 rows, written by pyarrow)
whose size and statistics are the add's.

Measured, each in its own process, the two sides alternately, --reps times, median:
  mongo2delta: `mongo2delta inspect --table T --json --timing` (replay to the latest snapshot,
               file list printed), the wall time of the whole process, and in-process the time
               --timing prints on stderr: delta_snapshot_load_ex alone (listing, checkpoint,
               commits, reconciliation, ending with the live files sorted by path);
  delta-rs:    DeltaTable(T) then .file_uris() in a Python process; the clock covers only those
               two calls (not the interpreter's start nor `import deltalake`).
Peak memory is each process's maximum RSS (for delta-rs that includes Python and its imports,
given separately). Before timing, both sides must agree on the version and the set of paths.
Usage: python bench/delta_open_bench.py [--workdir DIR] [--reps N] [--only commits|files]"""
import argparse
import json
import os
import pathlib
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import harness  # bench/harness.py

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = os.environ.get("M2D_BIN", str(ROOT / "build" / "mongo2delta"))
GEN_FORMAT = 1  # bump when the generated tables change, so cached tables are rebuilt

TABLES = {
    # commits of adds_per_commit adds; a checkpoint at every multiple of checkpoint_every
    # (0: none) and, with checkpoint_last, at the last of them; then tail_rewrites commits that
    # each remove one file and add one
    "commits": {"commits": 10_000, "adds_per_commit": 1, "checkpoint_every": 10, "checkpoint_last": False,
                "tail_rewrites": 0},
    "files": {"commits": 100, "adds_per_commit": 1_000, "checkpoint_every": 0, "checkpoint_last": True,
              "tail_rewrites": 5},
}

SCHEMA = {"type": "struct", "fields": [
    {"name": "id", "type": "long", "nullable": True, "metadata": {}},
    {"name": "name", "type": "string", "nullable": True, "metadata": {}},
]}
ROWS_PER_FILE = 10
LOAD_BEFORE = None
T0_MS = 1_700_000_000_000


def data_file(table, n):
    """Writes data file n (ids n*10 .. n*10+9) and returns its add action."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    name = f"part-00000-{uuid.UUID(int=(0xDE17A << 96) | n)}-c000.snappy.parquet"
    ids = list(range(n * ROWS_PER_FILE, (n + 1) * ROWS_PER_FILE))
    names = [f"user-{i:09d}" for i in ids]
    path = table / name
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64()), "name": pa.array(names)}), path, compression="snappy")
    stats = {"numRecords": ROWS_PER_FILE, "minValues": {"id": ids[0], "name": names[0]},
             "maxValues": {"id": ids[-1], "name": names[-1]}, "nullCount": {"id": 0, "name": 0}}
    return {"add": {"path": name, "partitionValues": {}, "size": path.stat().st_size,
                    "modificationTime": T0_MS + n, "dataChange": True,
                    "stats": json.dumps(stats, separators=(",", ":"))}}


def commit_info(version, op="WRITE", mode="Append"):
    return {"commitInfo": {"timestamp": T0_MS + version * 1000, "operation": op,
                           "operationParameters": {"mode": mode}, "isBlindAppend": mode == "Append",
                           "engineInfo": "mongo2delta-bench"}}


def write_commit(log, version, actions):
    tmp = log / f".{version:020d}.json.tmp"
    tmp.write_text("".join(json.dumps(a, separators=(",", ":")) + "\n" for a in actions))
    os.rename(tmp, log / f"{version:020d}.json")


def generate(table, p):
    """Writes the table described by p into the empty directory table."""
    from deltalake import DeltaTable
    log = table / "_delta_log"
    log.mkdir(parents=True)
    n = 0  # data files so far
    for v in range(p["commits"]):
        actions = [commit_info(v)]
        if v == 0:
            actions += [{"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
                        {"metaData": {"id": str(uuid.UUID(int=0xBE4C4)), "format": {"provider": "parquet", "options": {}},
                                      "schemaString": json.dumps(SCHEMA, separators=(",", ":")),
                                      "partitionColumns": [], "configuration": {}, "createdTime": T0_MS}}]
        for _ in range(p["adds_per_commit"]):
            actions.append(data_file(table, n))
            n += 1
        write_commit(log, v, actions)
        every, last = p["checkpoint_every"], p["checkpoint_last"] and v == p["commits"] - 1
        if (every and v > 0 and v % every == 0) or last:
            DeltaTable(str(table), version=v).create_checkpoint()
    # rewrites after the last checkpoint: remove file k, add a new one
    for k in range(p["tail_rewrites"]):
        v = p["commits"] + k
        old = f"part-00000-{uuid.UUID(int=(0xDE17A << 96) | k)}-c000.snappy.parquet"
        remove = {"remove": {"path": old, "deletionTimestamp": T0_MS + v * 1000, "dataChange": True,
                             "extendedFileMetadata": True, "partitionValues": {},
                             "size": (table / old).stat().st_size}}
        write_commit(log, v, [commit_info(v, "WRITE", "Overwrite"), remove, data_file(table, n)])
        n += 1


def table_for(workdir, name):
    """The table `name`, generated unless a complete copy with the same parameters is there."""
    p = dict(TABLES[name], format=GEN_FORMAT)
    key = "-".join(f"{k}{v}" for k, v in sorted(p.items()))
    table = workdir / f"{name}-{key}"
    stamp = table / ".complete"
    if stamp.exists() and json.loads(stamp.read_text()) == p:
        return table
    if table.exists():
        shutil.rmtree(table)
    table.mkdir(parents=True)
    t0 = time.perf_counter()
    print(f"generating {table} ...", file=sys.stderr, flush=True)
    generate(table, p)
    stamp.write_text(json.dumps(p))
    print(f"generated {table} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return table


def child(table):
    """delta-rs side, in a fresh process: prints seconds, version, number of files, RSS."""
    import resource
    from deltalake import DeltaTable
    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    dt = DeltaTable(table)
    uris = dt.file_uris()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": seconds, "cpu": cpu, "version": dt.version(), "numFiles": len(uris),
                      "rss_imports_mib": rss_imports}))



def run_isolated(cmd):
    """(the child's JSON result, wall seconds, peak RSS MiB, CPU seconds, stderr) of cmd, alone."""
    r = harness.run_isolated(cmd)
    return harness.last_json_line(r["out"]), r["wall"], r["rss_mib"], r["cpu"], r["err"]


TIMING = re.compile(r"inspect timing: log replay ([0-9.]+) ms wall, ([0-9.]+) ms CPU")


def ours_cmd(table):
    return [BIN, "inspect", "--table", str(table), "--json", "--timing"]


def theirs_cmd(table):
    return [sys.executable, __file__, "--child", str(table)]


def check_agree(table):
    """Both sides read the same version and the same set of paths (outside the clock)."""
    from deltalake import DeltaTable
    ours, _, _, _, _ = run_isolated(ours_cmd(table))
    dt = DeltaTable(str(table))
    theirs = dt.get_add_actions(flatten=True).column("path").to_pylist()
    assert ours["version"] == dt.version(), (ours["version"], dt.version())
    assert ours["numFiles"] == len(theirs) == len(ours["files"]), (ours["numFiles"], len(theirs))
    assert sorted(ours["files"]) == sorted(theirs), "the two sides list different files"
    return {"version": ours["version"], "numFiles": ours["numFiles"], "checkpointVersion": ours["checkpointVersion"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default=None, help="where the tables are generated and kept (default: a temporary directory)")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--only", choices=sorted(TABLES), action="append")
    a = ap.parse_args()
    tmp = None
    if a.workdir:
        workdir = pathlib.Path(a.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="m2d-delta-bench-")
        workdir = pathlib.Path(tmp.name)
    results = []
    global LOAD_BEFORE
    LOAD_BEFORE = os.getloadavg()
    for name in a.only or list(TABLES):
        table = table_for(workdir, name)
        shape = check_agree(table)
        log_files = len(os.listdir(table / "_delta_log"))
        # warm-up, untimed: the page cache holds the log on both sides alike
        run_isolated(ours_cmd(table))
        run_isolated(theirs_cmd(table))
        o_wall, o_rss, o_cpu, t_sec, t_wall, t_rss, t_cpu, t_rss0, t_ocpu = [], [], [], [], [], [], [], [], []
        o_sec, o_ocpu = [], []
        for _ in range(a.reps):
            r, wall, rss, cpu, err = run_isolated(ours_cmd(table))
            assert r["numFiles"] == shape["numFiles"] and r["version"] == shape["version"]
            o_wall.append(wall), o_rss.append(rss), o_cpu.append(cpu)
            m = TIMING.search(err)
            o_sec.append(float(m.group(1)) / 1000), o_ocpu.append(float(m.group(2)) / 1000)
            r, wall, rss, cpu, _ = run_isolated(theirs_cmd(table))
            assert r["numFiles"] == shape["numFiles"] and r["version"] == shape["version"]
            t_sec.append(r["seconds"]), t_wall.append(wall), t_rss.append(rss), t_cpu.append(cpu)
            t_rss0.append(r["rss_imports_mib"]), t_ocpu.append(r["cpu"])
        med = statistics.median
        results.append({
            "table": name, **shape, "log files": log_files, "params": TABLES[name],
            "mongo2delta s (process)": med(o_wall), "mongo2delta CPU s": med(o_cpu), "mongo2delta peak MiB": max(o_rss),
            "mongo2delta s (replay)": med(o_sec), "mongo2delta CPU s (replay)": med(o_ocpu),
            "delta-rs s (open + file_uris)": med(t_sec), "delta-rs s (process)": med(t_wall), "delta-rs CPU s (process)": med(t_cpu),
            "delta-rs CPU s (open + file_uris)": med(t_ocpu),
            "delta-rs peak MiB": max(t_rss), "delta-rs MiB after imports": med(t_rss0),
            "ratio": med(t_sec) / med(o_wall), "ratio, processes": med(t_wall) / med(o_wall),
            "ratio, in-process": med(t_sec) / med(o_sec),
            "all mongo2delta s": o_wall, "all delta-rs s": t_sec, "all delta-rs s (process)": t_wall,
            "load average before": LOAD_BEFORE, "load average after": os.getloadavg(),
        })
    print(json.dumps({"machine": machine(), "reps": a.reps, "results": results}, indent=1))
    print_table(results)
    if tmp:
        tmp.cleanup()


def print_table(results):
    print("\n| table | version / files / log files | mongo2delta (process) | mongo2delta replay (in-process) "
          "| delta-rs open + file_uris | ratio, our process | ratio, in-process "
          "| delta-rs (process) | ratio, processes | peak RSS mongo2delta | peak RSS delta-rs (after imports) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    cpu_rows = []
    for r in results:
        o, oi = r["mongo2delta s (process)"], r["mongo2delta s (replay)"]
        t, tp = r["delta-rs s (open + file_uris)"], r["delta-rs s (process)"]
        print(f"| {r['table']} | {r['version']:,} / {r['numFiles']:,} / {r['log files']:,} | {o * 1000:,.0f} ms "
              f"| {oi * 1000:,.0f} ms | {t * 1000:,.0f} ms | **{t / o:.2f}** | **{t / oi:.2f}** | {tp * 1000:,.0f} ms | {tp / o:.2f} "
              f"| {r['mongo2delta peak MiB']:,.0f} MiB | {r['delta-rs peak MiB']:,.0f} MiB ({r['delta-rs MiB after imports']:,.0f}) |")
        oc, oic = r["mongo2delta CPU s"], r["mongo2delta CPU s (replay)"]
        tc, tpc = r["delta-rs CPU s (open + file_uris)"], r["delta-rs CPU s (process)"]
        cpu_rows.append(f"| {r['table']} | {oc * 1000:,.0f} ms | {oic * 1000:,.0f} ms | {tc * 1000:,.0f} ms "
                        f"| **{tc / oc:.2f}** | **{tc / oic:.2f}** | {tpc * 1000:,.0f} ms | {tpc / oc:.2f} |")
    print("\nCPU time (user + system, all threads):\n")
    print("| table | mongo2delta (process) | mongo2delta replay (in-process) | delta-rs open + file_uris "
          "| ratio, our process | ratio, in-process | delta-rs (process) | ratio, processes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(cpu_rows))


def machine():
    import deltalake
    import pyarrow
    gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return harness.machine(deltalake=deltalake.__version__, pyarrow=pyarrow.__version__, gcc=gcc)

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
