"""Optimize benchmark: `mongo2delta optimize` against delta-rs's optimize.compact() on the same
table of many small files, side by side in one run.

  table:   N rows (_id long, n int, qty long, price double, name string (all distinct), country
           string (10 distinct), ts date, s {a int, b double, c string}, tags array of 0-3
           strings; the same values as bench/publish_bench.py's table), loaded with `mongo2delta load` from F JSON-lines files, one commit and one
           small data file each; made once and kept in --out for the next run.
  sides:   mongo2delta: `mongo2delta optimize --table T` (files under 32 MB compacted into files
           near 128 MB, the rows checked against the new files before the commit);
           mongo2delta-before (with --bin-before B): the same with binary B, e.g. an earlier build;
           delta-rs: DeltaTable(T).optimize.compact(target_size=128 MiB) in a process of its own.
Each measurement runs on a fresh copy of the table, in its own process; its clock is the
process's wall time end to end. Afterwards the table must hold N rows with the same sum of qty,
in fewer files.
Usage: python bench/optimize_bench.py [--rows N] [--files F] [--rounds R] [--out DIR] [--bin-before B]"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import harness  # bench/harness.py

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = os.environ.get("M2D_BIN", str(ROOT / "build" / "mongo2delta"))
TARGET = 128 << 20
COUNTRIES = ["US", "DE", "FR", "IN", "BR", "JP", "GB", "CN", "NG", "MX"]


def write_inputs(d, n, files):
    """The JSON lines, made column-wise with pyarrow.compute (a Python loop is far slower)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    d.mkdir(parents=True, exist_ok=True)
    # tags depend on i % 4 (how many) and i % 50 (the first): one of 100 texts
    tag_texts = pa.array([",".join(f'"tag{(i + k) % 50}"' for k in range(i % 4)) for i in range(100)])
    countries = pa.array(COUNTRIES)
    per = n // files
    for f in range(files):
        ids = np.arange(f * per, n if f == files - 1 else (f + 1) * per, dtype=np.int64)
        s = lambda v: pc.cast(pa.array(v), pa.string())
        parts = ['{"_id":', s(ids), ',"n":', s(ids % 1000), ',"qty":', s(ids * 7 + 5_000_000_000),
                 ',"price":', s((ids % 1000) * 25), 'e-2,"name":"user-', s(ids), '","country":"',
                 pc.take(countries, pa.array(ids % 10)), '","ts":{"$date":{"$numberLong":"', s(1700000000000 + ids),
                 '"}},"s":{"a":', s(ids % 100), ',"b":', s(ids * 5), 'e-1,"c":"c', s(ids % 1000), '"},"tags":[',
                 pc.take(tag_texts, pa.array(ids % 100)), ']}']
        lines = pc.binary_join_element_wise(*parts, "")
        (d / f"part-{f:05d}.json").write_text("\n".join(lines.to_pylist()) + "\n")


def check(table, n, qty_sum, files_before):
    import pyarrow.compute as pc
    from deltalake import DeltaTable
    dt = DeltaTable(str(table))
    t = dt.to_pyarrow_dataset().to_table(columns=["qty"])
    files = len(dt.files())
    assert t.num_rows == n, f"{table}: {t.num_rows} rows, expected {n}"
    assert pc.sum(t["qty"]).as_py() == qty_sum, f"{table}: the rows changed"
    assert files < files_before, f"{table}: {files} files, no fewer than {files_before}"
    return files


def delta_rs_child(table):
    from deltalake import DeltaTable
    m = DeltaTable(table).optimize.compact(target_size=TARGET)
    print(json.dumps({"files removed": m.get("numFilesRemoved"), "files added": m.get("numFilesAdded")}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--files", type=int, default=200, help="input files, hence small data files")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "build" / "bench-optimize"))
    ap.add_argument("--bin-before", default=None, help="another mongo2delta binary, measured as side mongo2delta-before")
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    base = out / f"table-{a.rows}-{a.files}"
    if not (base / "_delta_log").exists():
        t0 = time.perf_counter()
        inputs = out / "inputs"
        shutil.rmtree(inputs, ignore_errors=True)
        write_inputs(inputs, a.rows, a.files)
        t1 = time.perf_counter()
        shutil.rmtree(base, ignore_errors=True)
        harness.run_isolated([BIN, "load", "--input", str(inputs), "--table", str(base), "--quiet"])
        shutil.rmtree(inputs, ignore_errors=True)
        sys.stderr.write(f"table: {a.rows:,} rows in {a.files} files: inputs {t1 - t0:.0f} s, load {time.perf_counter() - t1:.0f} s\n")
    from deltalake import DeltaTable
    import pyarrow.compute as pc
    files_before = len(DeltaTable(str(base)).files())
    qty_sum = pc.sum(DeltaTable(str(base)).to_pyarrow_dataset().to_table(columns=["qty"])["qty"]).as_py()
    size = sum(f.stat().st_size for f in base.glob("*.parquet"))

    sides = ["mongo2delta"] + (["mongo2delta-before"] if a.bin_before else []) + ["delta-rs"]
    bins = {"mongo2delta": BIN, "mongo2delta-before": a.bin_before}
    results = []
    for rnd in range(a.rounds):
        for side in sides[::1 if rnd % 2 == 0 else -1]:
            run = out / "run"
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(base, run)
            if side == "delta-rs":
                cmd = [sys.executable, __file__, "--child", str(run)]
            else:
                cmd = [bins[side], "optimize", "--table", str(run), "--target-size", str(TARGET)]
            load0 = os.getloadavg()[0]
            r = harness.run_isolated(cmd)
            files_after = check(run, a.rows, qty_sum, files_before)
            res = {"round": rnd + 1, "side": side, "seconds": r["wall"], "rows/s": a.rows / r["wall"],
                   "peak RSS MiB": r["rss_mib"], "CPU s": r["cpu"], "files before/after": [files_before, files_after],
                   "load average before/after": [load0, os.getloadavg()[0]]}
            results.append(res)
            sys.stderr.write(json.dumps(res) + "\n")
            shutil.rmtree(run, ignore_errors=True)
    best = {s: min((r for r in results if r["side"] == s), key=lambda r: r["seconds"]) for s in sides}
    import deltalake
    import pyarrow
    print(json.dumps({"machine": harness.machine(deltalake=deltalake.__version__, pyarrow=pyarrow.__version__),
                      "rows": a.rows, "input files": files_before, "table MiB": size / 2**20, "runs": results}, indent=1))
    print(f"\noptimize of {a.rows:,} rows in {files_before} files ({size / 2**20:,.0f} MiB)")
    print("| side | seconds | rows/s | CPU s | peak RSS | files after |")
    print("| --- | --- | --- | --- | --- | --- |")
    for s in sides:
        r = best[s]
        print(f"| {s} | {r['seconds']:.1f} | {r['rows/s']:,.0f} | {r['CPU s']:.1f} | {r['peak RSS MiB']:,.0f} MiB | "
              f"{r['files before/after'][1]} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        delta_rs_child(sys.argv[2])
    else:
        main()
