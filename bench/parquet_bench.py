"""Parquet engine benchmark: mongo2delta's C writer and reader against pyarrow, side by side in
one run, on the same rows (long, double, timestamp, low- and high-cardinality strings, a struct
of three fields, a list of strings).

  writing: `mongo2delta parquet bench-write` generates rows in C and writes them;
           pyarrow.parquet.write_table writes the same rows from an Arrow table held in memory
           (loaded from an Arrow IPC file before the clock starts), with one CPU thread.
  reading: `mongo2delta parquet bench-read` decodes every column of a file into memory;
           pyarrow.parquet.read_table does the same into Arrow arrays, with one CPU thread.
Each measurement runs in its own process; peak memory is that process's maximum RSS.
Usage: python bench/parquet_bench.py [--rows N] [--out DIR]"""
import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time

import harness  # bench/harness.py

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = os.environ.get("M2D_BIN", str(ROOT / "build" / "mongo2delta"))


def make_table(n):
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    ids = np.arange(n, dtype=np.int64)
    countries = np.array(["US", "DE", "FR", "IN", "BR", "JP", "GB", "CN", "NG", "MX"])
    lengths = ids % 4
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    total = int(offsets[-1])
    starts = np.repeat(offsets[:-1], lengths)
    tag_ids = (np.repeat(ids, lengths) + (np.arange(total) - starts)) % 50
    tags = pc.binary_join_element_wise("tag", pc.cast(pa.array(tag_ids), pa.string()), "")
    id_str = pc.cast(pa.array(ids), pa.string())
    return pa.table({
        "id": pa.array(ids),
        "value": pa.array((ids % 1000) * 0.25),
        "ts": pa.array(1700000000000000 + ids * 1000000, pa.timestamp("us", tz="UTC")),
        "country": pa.array(countries[ids % 10]),
        "user": pc.binary_join_element_wise("user-", id_str, ""),
        "s": pa.StructArray.from_arrays(
            [pa.array((ids % 100).astype(np.int32)), pa.array(ids * 0.5),
             pc.binary_join_element_wise("c", pc.cast(pa.array(ids % 1000), pa.string()), "")],
            names=["a", "b", "c"]),
        "tags": pa.ListArray.from_arrays(pa.array(offsets), tags),
    })


def child(kind, args):
    """Runs inside a fresh process; prints {"seconds": ...}."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    if kind == "pyarrow-write":
        ipc, out, codec = args
        with pa.memory_map(ipc) as src:
            table = pa.ipc.open_file(src).read_all()
            table = table.combine_chunks()  # the table in memory, as a user would have it
            t0 = time.perf_counter()
            pq.write_table(table, out, compression=codec)
            print(json.dumps({"seconds": time.perf_counter() - t0}))
    elif kind == "pyarrow-read":
        t0 = time.perf_counter()
        t = pq.read_table(args[0], use_threads=False)
        print(json.dumps({"seconds": time.perf_counter() - t0, "rows": t.num_rows}))


def measure(cmd):
    """Runs cmd in a child process; returns (its JSON output, its peak RSS in MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all children so far: run the smaller ones first
    return json.loads(p.stdout.strip().splitlines()[-1]), max(peak, before) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    out = pathlib.Path(a.out or tempfile.mkdtemp(prefix="m2d-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    import pyarrow as pa
    import pyarrow.parquet as pq

    ipc = out / "rows.arrow"
    table = make_table(a.rows)
    with pa.OSFile(str(ipc), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)
    del table

    results = []
    me = [sys.executable, __file__, "--child"]
    for codec in ["snappy", "zstd"]:
        ours_file, theirs_file = out / f"ours-{codec}.parquet", out / f"pyarrow-{codec}.parquet"
        # each measurement in a fresh process; RSS is measured per process by /proc-free means:
        # run under `python -c` wrappers so RUSAGE_CHILDREN covers one process at a time
        o, o_rss = run_isolated([BIN, "parquet", "bench-write", "--rows", str(a.rows), "--output", str(ours_file),
                                 "--compression", codec])
        t, t_rss = run_isolated(me + ["pyarrow-write", str(ipc), str(theirs_file), codec])
        # the same rows on both sides
        ours_tab, theirs_tab = pq.read_table(ours_file), pq.read_table(theirs_file)
        assert ours_tab.num_rows == theirs_tab.num_rows == a.rows
        assert ours_tab.slice(0, 100_000).equals(theirs_tab.slice(0, 100_000).cast(ours_tab.schema))
        del ours_tab, theirs_tab
        results.append({"what": f"write {a.rows:,} rows, {codec}",
                        "mongo2delta rows/s": a.rows / o["seconds"], "pyarrow rows/s": a.rows / t["seconds"],
                        "ratio": t["seconds"] / o["seconds"], "mongo2delta peak MiB": o_rss, "pyarrow peak MiB": t_rss,
                        "mongo2delta file MB": ours_file.stat().st_size / 1e6, "pyarrow file MB": theirs_file.stat().st_size / 1e6})
        for name, f in [("pyarrow's", theirs_file), ("our", ours_file)]:
            r, r_rss = run_isolated([BIN, "parquet", "bench-read", str(f)])
            p, p_rss = run_isolated(me + ["pyarrow-read", str(f)])
            results.append({"what": f"read {name} {codec} file",
                            "mongo2delta rows/s": a.rows / r["seconds"], "pyarrow rows/s": a.rows / p["seconds"],
                            "ratio": p["seconds"] / r["seconds"], "mongo2delta peak MiB": r_rss, "pyarrow peak MiB": p_rss})
    print(json.dumps({"machine": machine(), "rows": a.rows, "results": results}, indent=1))



def run_isolated(cmd):
    """(the child's JSON result, its peak RSS MiB): one process per measurement."""
    r = harness.run_isolated(cmd)
    return harness.last_json_line(r["out"]), r["rss_mib"]


def machine():
    import pyarrow
    return harness.machine(pyarrow=pyarrow.__version__)

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3:])
    else:
        main()
