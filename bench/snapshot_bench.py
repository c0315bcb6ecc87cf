"""Snapshot benchmark: `mongo2delta snapshot --workers 2` against the MongoDB Spark Connector
(pyspark, local[2], spark.read.format("mongodb") ... .write.format("delta")), side by side in
one run, on the same collection of the same MongoDB-wire test server.

  documents:  N documents of about 1 KB (made here, deterministic by index): an ObjectId _id,
              a nested customer document (with a nested address), an array of 1-5 line-item
              documents (Decimal128 prices), strings, dates, Decimal128 totals, int32/int64/
              double/bool fields, an array of strings, and fields missing from some documents.
  server:     one scripts/mongo-test-server (mongo-java-server, in-memory backend) for the run.
  sides:      mongo2delta: `mongo2delta snapshot --uri U --db D --collection C --table T --workers 2`;
              Spark: a process of its own that starts a SparkSession (local[2], the connector
              and Delta jars from .cache/jars), then runs read.format("mongodb").load()
              .write.format("delta").save(T); its session start-up and its job are timed apart.
  partitioners: each of the connector's partitioners is first tried on a small collection
              (--probe-docs) to say which work against the test server and how the others fail;
              the timed Spark run uses --partitioner (default: the connector's default,
              SamplePartitioner, when it works, else the first that does).
Each side's clock is its process's wall time end to end. The server's CPU time during each run
is read from /proc and the sides' CPU from rusage, to name the bottleneck. Afterwards both tables
are read with delta-rs (an independent reader): N rows each, and a sample of rows compared with
the documents they came from.
Then the type comparison: one document per BSON type (bson_mapping.ONE_PER_TYPE, the table
tests/integration/test_snapshot.py pins for our side) snapshotted by both; what each side's
table holds (Delta type from the table's schema, value as delta-rs reads it) is printed as a
Markdown table for bench/RESULTS.md.
Usage: python bench/snapshot_bench.py [--docs N] [--server-heap 10g] [--rounds R] [--out DIR]"""
import argparse
import datetime as dt
import decimal
import glob
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import time

import harness  # bench/harness.py
from harness import Server

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
BIN = os.environ.get("M2D_BIN", str(ROOT / "build" / "mongo2delta"))
DB = "bench_snapshot"
PART = "com.mongodb.spark.sql.connector.read.partitioner."
PARTITIONERS = ["SamplePartitioner", "PaginateBySizePartitioner", "PaginateIntoPartitionsPartitioner",
                "SinglePartitionPartitioner", "AutoBucketPartitioner", "ShardedPartitioner"]
BASE_MS = 1_700_000_000_000
CITIES = ["Lisbon", "Berlin", "Paris", "Pune", "Recife", "Osaka", "Leeds", "Chengdu", "Lagos", "Puebla"]
STATUS = ["new", "paid", "shipped", "delivered", "returned"]
WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
         "labore et dolore magna aliqua").split()


def make_doc(i):
    """Document i (about 1 KB of BSON), the same on every call."""
    from bson.decimal128 import Decimal128
    from bson.int64 import Int64
    from bson.objectid import ObjectId
    r = random.Random(i)
    ts = BASE_MS + i * 1000
    items = []
    for k in range(1 + i % 5):
        items.append({"sku": f"SKU-{r.randrange(100000):05d}", "name": " ".join(r.choices(WORDS, k=3)),
                      "qty": r.randint(1, 9), "price": Decimal128(f"{r.randrange(100, 99999) / 100:.2f}"),
                      "discount": r.random() / 4})
    total = sum(decimal.Decimal(str(it["price"])) * it["qty"] for it in items)
    d = {"_id": ObjectId(ts.to_bytes(8, "big")[-4:].hex() + i.to_bytes(8, "big").hex()),
         "seq": i,
         "customer": {"name": f"customer {i % 50000}", "email": f"c{i % 50000}@example.com",
                      "address": {"street": f"{r.randrange(1, 999)} {r.choice(WORDS)} street",
                                  "city": CITIES[i % 10], "zip": f"{r.randrange(100000):05d}"}},
         "items": items,
         "total": Decimal128(f"{total:.2f}"),
         "status": STATUS[i % 5],
         "created": dt.datetime.fromtimestamp(ts / 1000, dt.timezone.utc),
         "score": r.random() * 100,
         "views": Int64(i * 7919 + 5_000_000_000),
         "active": i % 3 != 0,
         "tags": [r.choice(WORDS) for _ in range(i % 4)],
         "text": " ".join(r.choices(WORDS, k=30))}
    if i % 4:
        d["updated"] = dt.datetime.fromtimestamp((ts + 86_400_000) / 1000, dt.timezone.utc)
    if i % 7 == 0:
        d["note"] = " ".join(r.choices(WORDS, k=12))
    if i % 10 == 0:
        d["customer"]["phone"] = f"+1-555-{i % 10000:04d}"
    return d


def insert_docs(client, coll, n, batch=5000):
    """Inserts documents 0..n-1; the server's oplog (in its heap) is emptied as it goes."""
    import pymongo
    c = client[DB][coll]
    for s in range(0, n, batch):
        docs = [make_doc(i) for i in range(s, min(n, s + batch))]
        for attempt in range(5):  # a loaded machine's server can stall past a heartbeat: again
            try:
                c.insert_many(docs, ordered=False)
                break
            except pymongo.errors.BulkWriteError as e:
                if any(x["code"] != 11000 for x in e.details["writeErrors"]):
                    raise
                break  # the rest went in before the connection was lost
            except pymongo.errors.PyMongoError:
                if attempt == 4:
                    raise
                time.sleep(5)
        if s % 100_000 == 0:
            harness.clear_oplog(client)


def jars():
    out = []
    for profile in ("mongospark", "delta"):
        found = sorted(glob.glob(str(ROOT / ".cache" / "jars" / profile / "*.jar")))
        if not found:
            raise SystemExit(f".cache/jars/{profile} is empty: run scripts/bootstrap")
        out += found
    return out


# --- the Spark side, in a process of its own ----------------------------------------------

def spark_session():
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]").appName("snapshot-bench")
             .config("spark.jars", ",".join(jars()))
             .config("spark.driver.memory", os.environ.get("BENCH_SPARK_DRIVER_MEMORY", "4g"))
             .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
             .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.range(1).count()  # the session is up and an executor ran a task
    return spark


def java_error(e):
    """The innermost cause of a py4j/pyspark exception, and the chain of causes."""
    java = getattr(e, "java_exception", None)
    causes = []
    while java is not None:
        causes.append(f"{java.getClass().getName()}: {java.getMessage()}")
        java = java.getCause()
    return (causes[-1] if causes else str(e).splitlines()[0])[:600], causes[:6]


def mongo_to_delta(spark, uri, coll, table, partitioner):
    df = (spark.read.format("mongodb").option("connection.uri", uri).option("database", DB)
          .option("collection", coll).option("partitioner", PART + partitioner).load())
    df.write.format("delta").mode("overwrite").save(table)
    return df


def jvm_cpu(spark):
    """CPU seconds of the session's JVM so far (it outlives this process by a moment, so the
    wrapper's rusage does not see it)."""
    try:
        f = open(f"/proc/{spark.sparkContext._gateway.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError):
        return None


def spark_child(uri, coll, table, partitioner, out_json):
    t0 = time.perf_counter()
    spark = spark_session()
    t_up = time.perf_counter()
    cpu_up = jvm_cpu(spark)
    res = {"startup_s": t_up - t0, "jvm_cpu_startup_s": cpu_up}
    try:
        mongo_to_delta(spark, uri, coll, table, partitioner)
        t_end = time.perf_counter()
        # one file per task that had rows (df.rdd.getNumPartitions() would plan the read again:
        # PaginateIntoPartitions' queries a second time)
        res.update(ok=True, job_s=t_end - t_up, partitions=sum("add" in a for a in log_actions(table)))
    except Exception as e:  # a partitioner the test server cannot serve: say why
        err, chain = java_error(e)
        res.update(ok=False, error=err, chain=chain, job_s=time.perf_counter() - t_up)
    cpu_end = jvm_cpu(spark)
    res["jvm_cpu_job_s"] = None if cpu_end is None or cpu_up is None else cpu_end - cpu_up
    spark.stop()
    res["total_s"] = time.perf_counter() - t0
    pathlib.Path(out_json).write_text(json.dumps(res))


def spark_types_child(uri, root, out_json):
    """Each collection t_F (one document per BSON type) into ROOT/F, in one session: the
    connector infers each one's schema alone, and a type it cannot read fails only its own."""
    import bson_mapping as bm
    spark = spark_session()
    res = {}
    for field, *_ in bm.ONE_PER_TYPE:
        try:
            mongo_to_delta(spark, uri, "t_" + field, str(pathlib.Path(root) / field), "SinglePartitionPartitioner")
            res[field] = {"ok": True}
        except Exception as e:
            res[field] = {"ok": False, "error": java_error(e)[0]}
    spark.stop()
    pathlib.Path(out_json).write_text(json.dumps(res))


def run_spark(uri, coll, table, partitioner, tmp, timeout=3600):
    out_json = tmp / f"spark-{coll}-{partitioner}.json"
    out_json.unlink(missing_ok=True)
    shutil.rmtree(table, ignore_errors=True)
    job = harness.Isolated([sys.executable, __file__, "--spark-child", uri, coll, str(table), partitioner, str(out_json)],
                           err_path=tmp / f"spark-{coll}-{partitioner}.log")
    r = job.wait(timeout=timeout, check=False)
    if not out_json.exists():
        raise SystemExit(f"the Spark child ({partitioner}) exited {r['rc']} without a result:\n{r['err'][-3000:]}")
    return {**r, **json.loads(out_json.read_text())}


def run_m2d(uri, coll, table, workers=2):
    shutil.rmtree(table, ignore_errors=True)
    return harness.run_isolated([BIN, "snapshot", "--uri", uri, "--db", DB, "--collection", coll,
                                 "--table", str(table), "--workers", str(workers)])


# --- checks with an independent reader (delta-rs) -----------------------------------------

def read_rows(table, ids):
    """The table's row count and its rows whose _id is in ids, read with delta-rs."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable
    t = DeltaTable(str(table)).to_pyarrow_table()
    sel = t.filter(pc.is_in(t["_id"], value_set=pa.array(ids)))
    return t.num_rows, {r["_id"]: r for r in sel.to_pylist()}


def same_doc(row, doc):
    """The fields a user would look at, compared (Decimal128 as decimal, dates as instants)."""
    def dec(v):
        return decimal.Decimal(str(v))
    problems = []

    def want(name, got, exp):
        if got != exp:
            problems.append(f"{name}: table {got!r}, document {exp!r}")
    want("seq", row["seq"], doc["seq"])
    want("customer.name", row["customer"]["name"], doc["customer"]["name"])
    want("customer.address.city", row["customer"]["address"]["city"], doc["customer"]["address"]["city"])
    want("customer.phone", row["customer"].get("phone"), doc["customer"].get("phone"))
    want("items", [(x["sku"], x["qty"], dec(x["price"])) for x in row["items"]],
         [(x["sku"], x["qty"], dec(x["price"])) for x in doc["items"]])
    want("total", dec(row["total"]), dec(doc["total"]))
    want("created", row["created"], doc["created"])
    want("updated", row.get("updated"), doc.get("updated"))
    want("views", row["views"], int(doc["views"]))
    want("score", row["score"], doc["score"])
    want("tags", row["tags"], doc["tags"])
    want("note", row.get("note"), doc.get("note"))
    return problems


def verify(tables, n, sample):
    docs = {str(d["_id"]): d for d in map(make_doc, sample)}
    out = {}
    for side, table in tables.items():
        count, rows = read_rows(table, list(docs))
        assert count == n, f"{side}: {count} rows, expected {n}"
        assert len(rows) == len(docs), f"{side}: {len(rows)} of the {len(docs)} sampled _ids found"
        for k, d in docs.items():
            p = same_doc(rows[k], d)
            assert not p, f"{side}: _id {k}: " + "; ".join(p)
        out[side] = {"rows": count, "sampled rows equal to their documents": len(docs)}
    return out


# --- one document per BSON type -------------------------------------------------------------

def log_actions(table):
    """The actions of a table's log (the tables here are written once, no checkpoint), read
    straight from _delta_log: delta-rs refuses Spark's "void" columns (a field only ever null)."""
    out = []
    for f in sorted((pathlib.Path(table) / "_delta_log").glob("*.json")):
        out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def delta_types(table):
    meta = [a["metaData"] for a in log_actions(table) if "metaData" in a][-1]
    return {f["name"]: f["type"] for f in json.loads(meta["schemaString"])["fields"]}


def table_pylist(table):
    """The rows of a table written once (every add, no removes), read with pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from urllib.parse import unquote
    parts = [pq.read_table(pathlib.Path(table) / unquote(a["add"]["path"]), coerce_int96_timestamp_unit="us")
             for a in log_actions(table) if "add" in a]
    if not parts:
        return []
    t = pa.concat_tables(parts, promote_options="default")
    # top-level timestamps as microseconds (Spark's INT96, and instants Python's datetime cannot hold)
    stamps = [f.name for f in t.schema if pa.types.is_timestamp(f.type)]
    for name in stamps:
        i = t.schema.get_field_index(name)
        t = t.set_column(i, name, t.column(i).cast(pa.timestamp("us")).cast(pa.int64()))
    rows = t.to_pylist()
    for r in rows:
        for name in stamps:
            r[name] = None if r[name] is None else Micros(r[name])
    return rows


class Micros(int):
    """A timestamp column's value, microseconds since the epoch."""

    def __str__(self):
        try:
            return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(self))).isoformat() + "Z"
        except OverflowError:
            return f"{int(self)} µs from the epoch (outside years 1-9999)"


def type_name(t):
    if isinstance(t, str):
        return t
    if t["type"] == "struct":
        return "struct<" + ", ".join(f"{f['name']}: {type_name(f['type'])}" for f in t["fields"]) + ">"
    if t["type"] == "array":
        return f"array<{type_name(t['elementType'])}>"
    if t["type"] == "map":
        return f"map<{type_name(t['keyType'])}, {type_name(t['valueType'])}>"
    return str(t)


def show(v):
    if isinstance(v, Micros):
        return str(v)
    if isinstance(v, bytes):
        return "bytes " + (v.hex(" ") if v else "(empty)")
    if isinstance(v, dt.datetime):
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(show(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


def type_rows(table):
    """{field: (Delta type, value)} of the table of ONE_PER_TYPE (the row whose _id is the field)."""
    types = delta_types(table)
    rows = {r["_id"]: r for r in table_pylist(table)}
    out = {}
    for key, row in rows.items():
        if key in types:
            value = show(row.get(key)) if key in row else "(not in the Parquet files)"
            if row.get("_rescued_data"):
                value += ", _rescued_data " + row["_rescued_data"]
            out[key] = (type_name(types[key]), value)
        else:
            out[key] = ("(no column)", show(row.get("_rescued_data")) if row.get("_rescued_data") else "missing")
    return out, types


def type_comparison(client, uri, tmp):
    """ONE_PER_TYPE into the collection one_per_type (snapshot reads it whole, as
    test_snapshot.py does) and each document also alone into t_F (for the connector)."""
    import bson
    from bson.raw_bson import RawBSONDocument
    import bson_mapping as bm
    opts = bson.CodecOptions(document_class=RawBSONDocument)
    refused = {}
    for name in ["one_per_type"] + ["t_" + f for f, *_ in bm.ONE_PER_TYPE]:
        client[DB].drop_collection(name)
    for field, value, *_ in bm.ONE_PER_TYPE:
        doc = RawBSONDocument(bm.encode({"_id": field, field: value}))
        for name in ("one_per_type", "t_" + field):
            try:
                client[DB].get_collection(name, codec_options=opts).insert_one(doc)
            except Exception as e:  # the test server refuses a few types (it closes the connection)
                refused[field] = type(e).__name__
    ours, theirs = tmp / "types_m2d", tmp / "types_spark"
    run_m2d(uri, "one_per_type", ours, workers=1)
    shutil.rmtree(theirs, ignore_errors=True)
    out_json = tmp / "spark-types.json"
    harness.run_isolated([sys.executable, __file__, "--spark-types-child", uri, str(theirs), str(out_json)])
    spark_res = json.loads(out_json.read_text())
    a, _ = type_rows(ours)
    rows = []
    for field, value, bson_name, example, *_ in bm.ONE_PER_TYPE:
        if field in refused:
            m = s = ("refused by the test server", "")
        else:
            m = a.get(field, ("no row", ""))
            if spark_res[field]["ok"]:
                b, _ = type_rows(theirs / field)
                s = b.get(field, ("no row", ""))
            else:
                s = ("fails the read", spark_res[field]["error"])
        rows.append({"field": field, "bson": bson_name, "example": example, "mongo2delta": m, "spark": s})
    return rows


def print_types(rows):
    print("\n| BSON type | stored | mongo2delta: Delta type | mongo2delta: value | Spark connector: Delta type | Spark connector: value |")
    print("| --- | --- | --- | --- | --- | --- |")
    esc = lambda s: str(s).replace("|", "\\|")
    for r in rows:
        print(f"| {r['bson']} | `{esc(r['example'])}` | {esc(r['mongo2delta'][0])} | `{esc(r['mongo2delta'][1])}` | "
              f"{esc(r['spark'][0])} | `{esc(r['spark'][1])}` |")


# --- the run --------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--probe-docs", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=1, help="alternations of the two sides")
    ap.add_argument("--server-heap", default="10g")
    ap.add_argument("--partitioner", default=None, help="for the timed Spark run (default: see above)")
    ap.add_argument("--skip-types", action="store_true")
    ap.add_argument("--partitioners", default=",".join(PARTITIONERS), help="the ones to try (comma-separated)")
    ap.add_argument("--types-only", action="store_true", help="the partitioners and the type comparison only")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    tmp = pathlib.Path(a.out or tempfile.mkdtemp(prefix="m2d-snapshot-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    import pymongo
    server = Server(a.server_heap)
    # generous timeouts: on a loaded machine the server's JVM can pause for seconds
    client = pymongo.MongoClient(server.uri, connectTimeoutMS=120_000, serverSelectionTimeoutMS=600_000)
    results = {"machine": machine(), "docs": a.docs, "server heap": a.server_heap}
    try:
        t0 = time.perf_counter()
        insert_docs(client, "probe", a.probe_docs)
        # which partitioners the test server can serve
        probe = {}
        for p in a.partitioners.split(",") if a.partitioners else []:
            r = run_spark(server.uri, "probe", tmp / f"probe-{p}", p, tmp, timeout=900)
            probe[p] = {"ok": r["ok"], "partitions": r.get("partitions"), "job_s": r["job_s"]} if r["ok"] else \
                {"ok": False, "error": r["error"], "chain": r["chain"]}
            sys.stderr.write(f"partitioner {p}: {json.dumps(probe[p])}\n")
        results["partitioners"] = probe
        if a.types_only or not a.skip_types:
            results["types"] = type_comparison(client, server.uri, tmp)
            sys.stderr.write(json.dumps(results["types"]) + "\n")
        if a.types_only:
            print_types(results["types"])
            return
        client[DB].drop_collection("probe")
        harness.clear_oplog(client)
        chosen = a.partitioner or next((p for p in probe if probe[p]["ok"]), None)
        if chosen is None:
            raise SystemExit("no partitioner of the Spark connector works against the test server")
        t1 = time.perf_counter()
        insert_docs(client, "docs", a.docs)
        harness.clear_oplog(client)
        stats = client[DB].command("collStats", "docs")
        sys.stderr.write(f"{a.docs:,} documents inserted in {time.perf_counter() - t1:.0f} s "
                         f"({stats.get('size', 0) / 2**20:.0f} MiB of BSON); server RSS {server.rss_mib():.0f} MiB\n")
        results["collection MiB"] = stats.get("size", 0) / 2**20
        # warm-up, not measured: the server's JVM compiles its hot paths (find, getMore)
        run_m2d(server.uri, "docs", tmp / "warm", workers=2)
        shutil.rmtree(tmp / "warm")
        runs = []
        for rnd_no in range(a.rounds):
            for side in (["mongo2delta", "spark"] if rnd_no % 2 == 0 else ["spark", "mongo2delta"]):
                table = tmp / f"{side}_{rnd_no}"
                cpu0, load0 = server.cpu(), os.getloadavg()[0]
                if side == "mongo2delta":
                    r = run_m2d(server.uri, "docs", table)
                    extra = {"summary": r["err"].strip().splitlines()[-1]}
                else:
                    r = run_spark(server.uri, "docs", table, chosen, tmp)
                    if not r["ok"]:
                        raise SystemExit(f"Spark ({chosen}) failed on the full collection: {r['error']}")
                    extra = {k: r[k] for k in ("startup_s", "job_s", "partitions", "jvm_cpu_startup_s", "jvm_cpu_job_s")}
                server_cpu = server.cpu() - cpu0
                res = {"side": side, "round": rnd_no + 1, "seconds": r["wall"], "docs/s": a.docs / r["wall"],
                       "client CPU s": r["cpu"], "client CPU share (of 2 cores)": r["cpu"] / r["wall"] / 2,
                       "peak RSS MiB": r["rss_mib"], "server CPU s": server_cpu,
                       "server CPU share (of 2 cores)": server_cpu / r["wall"] / 2,
                       "load average before/after": [load0, os.getloadavg()[0]], **extra}
                if side == "spark":
                    res["partitioner"] = chosen
                runs.append(res)
                sys.stderr.write(json.dumps(res) + "\n")
        results["runs"] = runs
        rnd = random.Random(42)
        sample = sorted({0, a.docs - 1, *(rnd.randrange(a.docs) for _ in range(48))})
        results["checks"] = verify({s: tmp / f"{s}_0" for s in ("mongo2delta", "spark")}, a.docs, sample)
        results["setup s"] = time.perf_counter() - t0
    finally:
        client.close()
        server.stop()
    m = min((r for r in results["runs"] if r["side"] == "mongo2delta"), key=lambda r: r["seconds"])
    s = min((r for r in results["runs"] if r["side"] == "spark"), key=lambda r: r["seconds"])
    results["summary"] = {"mongo2delta s": m["seconds"], "spark end to end s": s["seconds"],
                          "spark start-up s": s["startup_s"], "spark job s": s["job_s"],
                          "ratio end to end (spark / mongo2delta)": s["seconds"] / m["seconds"],
                          "ratio job only (spark job / mongo2delta)": s["job_s"] / m["seconds"]}
    print(json.dumps(results, indent=1, default=str))
    print(f"\nsnapshot {a.docs:,} documents ({results['collection MiB']:.0f} MiB of BSON), Spark partitioner {s['partitioner']}")
    print("| side | end to end s | of which Spark start-up s | docs/s | client CPU s (Spark: its JVM, start-up + job) | server CPU s | peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in (m, s):
        cpu = f"{r['client CPU s']:.1f}" if r["side"] == "mongo2delta" else \
            f"{r.get('jvm_cpu_startup_s') or 0:.1f} + {r.get('jvm_cpu_job_s') or 0:.1f}"
        print(f"| {r['side']} | {r['seconds']:.1f} | {r.get('startup_s', 0):.1f} | {r['docs/s']:,.0f} | "
              f"{cpu} | {r['server CPU s']:.1f} | {r['peak RSS MiB']:,.0f} |")
    print("\n| partitioner | against the test server |")
    print("| --- | --- |")
    for p, r in results["partitioners"].items():
        print(f"| {p} | " + (f"works ({r['partitions']} partition(s) for {a.probe_docs:,} documents)" if r["ok"]
                             else "fails: " + r["error"].replace("|", "\\|")) + " |")
    if "types" in results:
        print_types(results["types"])
    if not a.out:
        shutil.rmtree(tmp, ignore_errors=True)


def machine():
    import deltalake
    import pyspark
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    return harness.machine(pyspark=pyspark.__version__, deltalake=deltalake.__version__, java=java,
                           jars=sorted(os.path.basename(j) for j in jars()), date=dt.date.today().isoformat())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--spark-child":
        spark_child(*sys.argv[2:7])
    elif len(sys.argv) > 1 and sys.argv[1] == "--spark-types-child":
        spark_types_child(*sys.argv[2:5])
    else:
        main()
