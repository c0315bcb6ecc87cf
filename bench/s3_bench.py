"""Snapshot into a bucket against snapshot into a local folder, and against delta-rs writing the
same rows into the same bucket (make bench-s3).

One run, side by side, each measured in a process of its own (harness.run_isolated):
  local     mongo2delta snapshot --workers 2 of N documents into a local table
  s3        the same into s3://bench/snapshot on the S3 test server (MinIO on loopback), with the
            requests and bytes mongo2delta sent (its --verbose closing line)
  delta-rs  deltalake.write_deltalake of the same rows (read back from the local table into
            memory first, outside the clock) into s3://bench/deltalake on the same server; and
            what a delta-rs user runs end to end: pymongo -> pyarrow.Table.from_pylist ->
            write_deltalake into the same bucket
Prints one JSON object; bench/RESULTS.md records it."""
import argparse
import json
import os
import pathlib
import random
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from harness import ROOT, Server, machine, run_isolated  # noqa: E402

KEY, SECRET = "m2d-test", "m2d-test-secret"


def documents(n, seed=5):
    rnd = random.Random(seed)
    countries = ["DE", "FR", "US", "BR", "IN", "JP", "NG", "MX", "SE", "KR"]
    for i in range(n):
        yield {"_id": i, "customer": f"c{rnd.randrange(100000)}", "country": countries[i % 10],
               "total": round(rnd.random() * 500, 2), "items": rnd.randrange(1, 9),
               "status": rnd.choice(["paid", "shipped", "open"]), "created": 1_700_000_000 + i,
               "address": {"city": f"city {rnd.randrange(5000)}", "zip": f"{rnd.randrange(99999):05d}"},
               "tags": [f"t{rnd.randrange(40)}" for _ in range(rnd.randrange(4))]}


def start_s3():
    proc = subprocess.Popen([str(ROOT / "scripts" / "s3-test-server"), "--port", "0"], stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    if not line.startswith("listening on 127.0.0.1:"):
        proc.terminate()
        raise SystemExit(f"s3-test-server did not start: {line!r}")
    return proc, "http://127.0.0.1:" + line.split("127.0.0.1:")[1].split()[0]


def child_write(args):
    """Runs in its own process: the rows into memory (outside the clock), write_deltalake timed."""
    import pyarrow  # noqa: F401
    from deltalake import DeltaTable, write_deltalake
    table = DeltaTable(args.read).to_pyarrow_table()
    t = time.perf_counter()
    write_deltalake(args.write, table, storage_options=json.loads(args.options))
    print(json.dumps({"rows": table.num_rows, "write_seconds": time.perf_counter() - t}))


def child_e2e(args):
    """Runs in its own process: what a delta-rs user writes for the same job, end to end: the
    collection through pymongo into an Arrow table, then write_deltalake into the bucket."""
    import pyarrow as pa
    import pymongo
    from deltalake import write_deltalake
    t = time.perf_counter()
    coll = pymongo.MongoClient(args.uri).bench.orders
    docs = list(coll.find(batch_size=10000))
    table = pa.Table.from_pylist(docs)
    read_s = time.perf_counter() - t
    write_deltalake(args.write, table, storage_options=json.loads(args.options))
    print(json.dumps({"rows": table.num_rows, "seconds": time.perf_counter() - t, "read_seconds": read_s}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--workdir", default=str(ROOT / "build" / "bench-s3"))
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--child-write", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-e2e", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--uri")
    ap.add_argument("--read")
    ap.add_argument("--write")
    ap.add_argument("--options")
    a = ap.parse_args()
    if a.child_write:
        return child_write(a)
    if a.child_e2e:
        return child_e2e(a)
    work = pathlib.Path(a.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    binary = str(ROOT / "build" / "mongo2delta")
    server = Server(heap="8g")
    s3, endpoint = start_s3()
    try:
        import boto3
        import pymongo
        client = pymongo.MongoClient(server.uri)
        coll = client.bench.orders
        batch = []
        for d in documents(a.docs):
            batch.append(d)
            if len(batch) == 20000:
                coll.insert_many(batch, ordered=False)
                batch = []
        if batch:
            coll.insert_many(batch, ordered=False)
        client["local"]["oplog.rs"].delete_many({})
        s3c = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                           region_name="us-east-1")
        s3c.create_bucket(Bucket="bench")
        env = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
               "AWS_ENDPOINT_URL": endpoint}
        snap = [binary, "snapshot", "--uri", server.uri, "--db", "bench", "--collection", "orders", "--workers", "2"]
        os.environ.update(env)
        # alternating, twice each, the faster of each kept (the first run warms the test server's JIT)
        locals_, remotes = [], []
        for rep in range(a.reps):
            shutil.rmtree(work / "local", ignore_errors=True)
            locals_.append(run_isolated(snap + ["--table", str(work / "local")]))
            if rep:
                for page in s3c.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="snapshot/"):
                    for o in page.get("Contents", []):
                        s3c.delete_object(Bucket="bench", Key=o["Key"])
            remotes.append(run_isolated(snap + ["--table", "s3://bench/snapshot", "--verbose"]))
        local = min(locals_, key=lambda r: r["wall"])
        remote = min(remotes, key=lambda r: r["wall"])
        m = re.search(r"object store: (\d+) requests .*?, (\d+) bytes sent, (\d+) received", remote["err"])
        requests, sent = int(m.group(1)), int(m.group(2))
        parquet_bytes = sum(o["Size"] for page in s3c.get_paginator("list_objects_v2").paginate(
            Bucket="bench", Prefix="snapshot/") for o in page.get("Contents", []) if o["Key"].endswith(".parquet"))
        opts = dict(env, AWS_ALLOW_HTTP="true")
        dr = run_isolated([sys.executable, __file__, "--child-write", "--read", str(work / "local"),
                           "--write", "s3://bench/deltalake", "--options", json.dumps(opts)])
        drj = json.loads(dr["out"].strip().splitlines()[-1])
        e2e = run_isolated([sys.executable, __file__, "--child-e2e", "--uri", server.uri,
                            "--write", "s3://bench/deltalake-e2e", "--options", json.dumps(opts)])
        e2ej = json.loads(e2e["out"].strip().splitlines()[-1])
        import deltalake
        result = {
            "machine": machine(deltalake=deltalake.__version__),
            "documents": a.docs,
            "local": {"seconds": round(local["wall"], 2), "docs_per_s": round(a.docs / local["wall"]),
                      "rss_mib": round(local["rss_mib"]), "cpu_s": round(local["cpu"], 2)},
            "s3": {"seconds": round(remote["wall"], 2), "docs_per_s": round(a.docs / remote["wall"]),
                   "rss_mib": round(remote["rss_mib"]), "cpu_s": round(remote["cpu"], 2), "requests": requests,
                   "bytes_sent": sent, "bytes_sent_per_doc": round(sent / a.docs, 1),
                   "parquet_bytes": parquet_bytes},
            "s3_over_local": round(remote["wall"] / local["wall"], 3),
            "all_runs_seconds": {"local": [round(r["wall"], 2) for r in locals_],
                                 "s3": [round(r["wall"], 2) for r in remotes]},
            "delta_rs_write_deltalake": {"write_seconds": round(drj["write_seconds"], 2),
                                         "process_seconds": round(dr["wall"], 2), "rss_mib": round(dr["rss_mib"]),
                                         "rows": drj["rows"]},
            "delta_rs_write_over_our_whole_snapshot": round(drj["write_seconds"] / remote["wall"], 3),
            "pymongo_pyarrow_write_deltalake": {"seconds": round(e2ej["seconds"], 2),
                                                "read_seconds": round(e2ej["read_seconds"], 2),
                                                "process_seconds": round(e2e["wall"], 2),
                                                "rss_mib": round(e2e["rss_mib"]), "rows": e2ej["rows"]},
            "their_end_to_end_over_ours": round(e2ej["seconds"] / remote["wall"], 3),
        }
        print(json.dumps(result, indent=2))
    finally:
        s3.terminate()
        s3.wait()
        server.stop()


if __name__ == "__main__":
    main()
