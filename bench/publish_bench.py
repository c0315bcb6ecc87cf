"""Publish benchmark: `mongo2delta publish` against pymongo bulk writes fed by delta-rs/pyarrow,
side by side in one run, writing the same Delta table into the same MongoDB-wire server.

  table:   N rows (_id long, n int, qty long, price double, score double, name string (all
           distinct), country string (10 distinct), ts timestamp, s struct<a int, b double,
           c string>, tags array<string> (0-3 of 50)), written once with delta-rs write_deltalake.
  server:  one scripts/mongo-test-server (mongo-java-server, in-memory backend) for the whole run.
  sides:   mongo2delta: `mongo2delta publish --table T ... --mode upsert|insert --batch-size 1000`;
           pymongo: DeltaTable(T).to_pyarrow_table(), record batches of 1,000 rows, to_pylist(),
           then bulk_write([UpdateOne({_id}, {$set: rest}, upsert=True), ...], ordered=False)
           (upsert) or insert_many(rows, ordered=False) (insert).
Each measurement runs in its own process, into a fresh collection, alternating sides; its clock
is the process's wall time end to end (start-up and reading the table included). Afterwards the
collection must hold N documents and a sample of them must equal the table's rows; it is then
dropped. The server's CPU time during each run is read from /proc, to show when the server,
not the client, is the bottleneck.
The summary takes each side's fastest run of each mode (with --rounds 2 or more, each side has
gone first once).
With --bin-before B a third side, mongo2delta-before, runs binary B (e.g. an earlier build) in
the same way, to compare two builds in one run.
Usage: python bench/publish_bench.py [--rows N] [--rounds R] [--modes upsert,insert] [--out DIR] [--bin-before B]"""
import argparse
import datetime as dt
import json
import os
import pathlib
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time

import harness  # bench/harness.py
from harness import Server, clear_oplog

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = os.environ.get("M2D_BIN", str(ROOT / "build" / "mongo2delta"))
BATCH = 1000
DB = "bench_publish"


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
        "_id": pa.array(ids),
        "n": pa.array((ids % 1000).astype(np.int32)),
        "qty": pa.array(ids * 7 + 5_000_000_000),
        "price": pa.array((ids % 1000) * 0.25),
        "score": pa.array(ids / 3.0),
        "name": pc.binary_join_element_wise("user-", id_str, ""),
        "country": pa.array(countries[ids % 10]),
        # whole milliseconds: BSON dates hold milliseconds, so both sides store the same value
        "ts": pa.array(1700000000000000 + ids * 1000, pa.timestamp("us", tz="UTC")),
        "s": pa.StructArray.from_arrays(
            [pa.array((ids % 100).astype(np.int32)), pa.array(ids * 0.5),
             pc.binary_join_element_wise("c", pc.cast(pa.array(ids % 1000), pa.string()), "")],
            names=["a", "b", "c"]),
        "tags": pa.ListArray.from_arrays(pa.array(offsets), tags),
    })


def pymongo_child(table, uri, coll, mode):
    """The pymongo side, in its own process: read the table with delta-rs/pyarrow, write it."""
    t0 = time.perf_counter()
    from deltalake import DeltaTable
    from pymongo import MongoClient, UpdateOne
    t_import = time.perf_counter()
    tab = DeltaTable(table).to_pyarrow_table()
    t_read = time.perf_counter()
    c = MongoClient(uri)[DB][coll]
    written = 0
    for rb in tab.to_batches(max_chunksize=BATCH):
        rows = rb.to_pylist()
        if mode == "upsert":
            ops = []
            for r in rows:
                key = r.pop("_id")
                ops.append(UpdateOne({"_id": key}, {"$set": r}, upsert=True))
            res = c.bulk_write(ops, ordered=False)
            written += res.upserted_count + res.modified_count
        else:
            res = c.insert_many(rows, ordered=False)
            written += len(res.inserted_ids)
    t_end = time.perf_counter()
    print(json.dumps({"written": written, "import_s": t_import - t0, "read_s": t_read - t_import,
                      "write_s": t_end - t_read}))



def field_types(doc):
    return {k: type(v).__name__ for k, v in doc.items()}


def verify(client, coll, n, expected):
    """N documents, and the sampled ones equal the table's rows; returns the sampled documents."""
    from bson.codec_options import CodecOptions
    c = client[DB].get_collection(coll, codec_options=CodecOptions(tz_aware=True))
    count = c.count_documents({})
    assert count == n, f"{coll}: {count} documents, expected {n}"
    got = {d["_id"]: d for d in c.find({"_id": {"$in": list(expected)}})}
    for k, want in expected.items():
        assert got.get(k) == want, f"{coll}: _id {k}:\n got  {got.get(k)}\n want {want}"
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=2, help="alternations of the two sides per mode")
    ap.add_argument("--modes", default="upsert,insert")
    ap.add_argument("--server-heap", default=None,
                    help="the test server's -Xmx (e.g. 10g); by default the JVM's, a quarter of the memory. "
                         "N documents and their N oplog entries live in it: too small a heap makes the "
                         "server spend most of each run in garbage collection")
    ap.add_argument("--out", default=None, help="where to put the table (default: a temporary directory)")
    ap.add_argument("--bin-before", default=None, help="another mongo2delta binary, measured as side mongo2delta-before")
    a = ap.parse_args()
    out = pathlib.Path(a.out or tempfile.mkdtemp(prefix="m2d-publish-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    table_path = out / "table"
    shutil.rmtree(table_path, ignore_errors=True)

    import pymongo
    from deltalake import DeltaTable, write_deltalake
    t0 = time.perf_counter()
    table = make_table(a.rows)
    write_deltalake(str(table_path), table)
    sys.stderr.write(f"table: {a.rows:,} rows written in {time.perf_counter() - t0:.1f} s\n")
    # the sample that each collection must hold, from the table as delta-rs reads it
    rnd = random.Random(42)
    sample = sorted({0, a.rows - 1, *(rnd.randrange(a.rows) for _ in range(48))})
    expected = {r["_id"]: r for r in DeltaTable(str(table_path)).to_pyarrow_table().take(sample).to_pylist()}
    del table

    server = Server(a.server_heap)
    client = pymongo.MongoClient(server.uri)
    results, types = [], {}
    try:
        # warm-up, not measured: the JVM compiles the server's hot paths before the first
        # measured run, so that neither side pays for it alone
        warm = out / "warmup"
        shutil.rmtree(warm, ignore_errors=True)
        write_deltalake(str(warm), make_table(min(a.rows, 50_000)))
        for mode in a.modes.split(","):
            harness.run_isolated([BIN, "publish", "--table", str(warm), "--uri", server.uri, "--db", DB,
                          "--collection", "warm_m2d", "--mode", mode])
            harness.run_isolated([sys.executable, __file__, "--child", str(warm), server.uri, "warm_pymongo", mode])
            client[DB].drop_collection("warm_m2d")
            client[DB].drop_collection("warm_pymongo")
        clear_oplog(client)
        run_no = 0
        sides = ["mongo2delta"] + (["mongo2delta-before"] if a.bin_before else []) + ["pymongo"]
        bins = {"mongo2delta": BIN, "mongo2delta-before": a.bin_before}
        for mode in a.modes.split(","):
            for rnd_no in range(a.rounds):
                # alternate which side goes first, so that neither always meets the server in
                # the same state
                for side in sides[::1 if rnd_no % 2 == 0 else -1]:
                    run_no += 1
                    coll = f"{side}_{mode}_{run_no}"
                    client[DB].drop_collection(coll)
                    if side != "pymongo":
                        cmd = [bins[side], "publish", "--table", str(table_path), "--uri", server.uri, "--db", DB,
                               "--collection", coll, "--mode", mode, "--batch-size", str(BATCH)]
                    else:
                        cmd = [sys.executable, __file__, "--child", str(table_path), server.uri, coll, mode]
                    cpu0, gc0, load0 = server.cpu(), server.gc_seconds(), os.getloadavg()[0]
                    r = harness.run_isolated(cmd)
                    server_cpu, gc1, load1 = server.cpu() - cpu0, server.gc_seconds(), os.getloadavg()[0]
                    got = verify(client, coll, a.rows, expected)
                    types.setdefault(side, field_types(got[sample[-1]]))
                    extra = json.loads(r["out"].strip().splitlines()[-1]) if side == "pymongo" else \
                        {"summary": r["err"].strip().splitlines()[-1] if r["err"].strip() else ""}
                    res = {"mode": mode, "round": rnd_no + 1, "side": side, "seconds": r["wall"], "docs/s": a.rows / r["wall"],
                           "peak RSS MiB": r["rss_mib"], "client CPU s": r["cpu"], "server CPU s": server_cpu,
                           "server CPU share": server_cpu / r["wall"],
                           "server GC s": None if gc0 is None or gc1 is None else gc1 - gc0, "server RSS MiB": server.rss_mib(),
                           "server peak RSS MiB": server.rss_mib("VmHWM"), "load average before/after": [load0, load1],
                           **extra}
                    results.append(res)
                    sys.stderr.write(json.dumps(res) + "\n")
                    client[DB].drop_collection(coll)
                    clear_oplog(client)
    finally:
        client.close()
        server.stop()

    rows = []
    for mode in a.modes.split(","):
        best = {}
        for side in sides:
            best[side] = min((r for r in results if r["mode"] == mode and r["side"] == side), key=lambda r: r["seconds"])
        m, p = best["mongo2delta"], best["pymongo"]
        before = best.get("mongo2delta-before")
        rows.append({"mode": mode, "mongo2delta docs/s": m["docs/s"], "pymongo docs/s": p["docs/s"],
                     **({"mongo2delta-before docs/s": before["docs/s"], "before seconds / after seconds": before["seconds"] / m["seconds"],
                         "mongo2delta-before client CPU s": before["client CPU s"],
                         "mongo2delta-before peak MiB": before["peak RSS MiB"]} if before else {}),
                     "ratio": p["seconds"] / m["seconds"],
                     "mongo2delta peak MiB": m["peak RSS MiB"], "pymongo peak MiB": p["peak RSS MiB"],
                     "mongo2delta client CPU s": m["client CPU s"], "pymongo client CPU s": p["client CPU s"],
                     "server CPU share (m2d / pymongo)": [m["server CPU share"], p["server CPU share"]],
                     "server CPU s (m2d / pymongo)": [m["server CPU s"], p["server CPU s"]],
                     "server GC s (m2d / pymongo)": [m["server GC s"], p["server GC s"]]})
    print(json.dumps({"machine": machine(), "rows": a.rows, "server heap": a.server_heap or "JVM default", "runs": results, "summary": rows,
                      "field types (mongo2delta / pymongo)": types}, indent=1, default=str))
    print_table(a.rows, rows)
    if not a.out:
        shutil.rmtree(out, ignore_errors=True)


def print_table(n, rows):
    print(f"\npublish {n:,} rows")
    print("| mode | mongo2delta docs/s | pymongo docs/s | ratio | peak RSS m2d | peak RSS pymongo | client CPU s m2d / pymongo | server CPU s m2d / pymongo (GC s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    gc = lambda v: "?" if v is None else f"{v:.1f}"
    for r in rows:
        s, g = r["server CPU s (m2d / pymongo)"], r["server GC s (m2d / pymongo)"]
        print(f"| {r['mode']} | {r['mongo2delta docs/s']:,.0f} | {r['pymongo docs/s']:,.0f} | {r['ratio']:.2f} | "
              f"{r['mongo2delta peak MiB']:,.0f} MiB | {r['pymongo peak MiB']:,.0f} MiB | "
              f"{r['mongo2delta client CPU s']:.1f} / {r['pymongo client CPU s']:.1f} | "
              f"{s[0]:.1f} ({gc(g[0])}) / {s[1]:.1f} ({gc(g[1])}) |")
    if rows and "mongo2delta-before docs/s" in rows[0]:
        print("\n| mode | mongo2delta-before docs/s | mongo2delta docs/s | before s / after s | client CPU s before / after | peak RSS before / after |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print(f"| {r['mode']} | {r['mongo2delta-before docs/s']:,.0f} | {r['mongo2delta docs/s']:,.0f} | "
                  f"{r['before seconds / after seconds']:.2f} | {r['mongo2delta-before client CPU s']:.1f} / "
                  f"{r['mongo2delta client CPU s']:.1f} | {r['mongo2delta-before peak MiB']:,.0f} / {r['mongo2delta peak MiB']:,.0f} MiB |")


def machine():
    import deltalake
    import pyarrow
    import pymongo
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    jars = sorted(p.name for p in (ROOT / ".cache" / "jars" / "mongo").glob("mongo-java-server-[0-9]*.jar"))
    return harness.machine(pyarrow=pyarrow.__version__, deltalake=deltalake.__version__, pymongo=pymongo.version,
                           java=java, server=jars, date=dt.date.today().isoformat())

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        pymongo_child(*sys.argv[2:6])
    else:
        main()
