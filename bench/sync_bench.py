"""Sync benchmark: `mongo2delta sync` against what a user would otherwise write in Python,
side by side in one run, against one MongoDB-wire test server (scripts/mongo-test-server,
mongo-java-server with its in-memory backend and oplog, started and stopped here).

Part 1, latency and throughput at fixed offered rates (--rates; "max": unthrottled).
  writer:   a process of its own writes at the offered rate with pymongo, events by threes: the
            insert of a new document, a $set on one inserted a while before, the delete of an
            older one, so that the collection keeps about --live-docs documents (the test
            server's updateLookup scans the collection: at 40,000 documents it delivers about
            1,000 update events a second). Inserts and updates carry the event number `ev` and
            the client's clock when the request was sent, `w_ms`. The writes due at a moment go
            in one unordered bulk_write (at most 999), so that one Python process can offer
            thousands of events a second; unthrottled, --max-events in bulks of 999 back to back.
  consumers, one after the other, each in its own process, into a change-log table of its own:
    mongo2delta: `mongo2delta sync --mode changelog --initial skip --max-batch-docs B
                 --max-latency L` (--sync-mode both: a mirror as well);
    Python:      pymongo `watch(full_document='updateLookup')`, one row per event (`_op`,
                 `_cluster_time` {t, i}, `_txn_seq`, `_id`, `document`, the change log's
                 columns, with the schema given), appended with
                 `deltalake.write_deltalake(mode='append')` when the batch holds B events or L ms
                 after its first event (checked after every event and whenever the stream is
                 empty; when it is, the loop sleeps 20 ms, as sync does: the test server's getMore
                 returns at once instead of waiting).
  measured: every change-log row is mapped to the commit that added its file (the commit JSON's
            add paths and its commitInfo timestamp, ms) and, by its _cluster_time, to the oplog
            entry of its write; latency = the commit's timestamp minus the entry's wall time (the
            server's clock when it wrote; its difference from w_ms is in the JSON). Every write
            of the run must be in the change log exactly once. Achieved events/s = events /
            (commit of the last event - write of the first). Also the consumer's CPU and peak
            RSS and the server's CPU during the run. A short run of each side first warms the
            JVM up (not measured).
Part 2, one batch of U updates (--updates) applied to a table of N rows (--rows-small,
--rows-large).
  table:    N documents (_id int, n, price, name, country, v, w_ms) as mongoexport JSON lines,
            loaded by `mongo2delta load` into a Delta table (cached in --out between runs).
  mongo2delta: the collection holds only the U documents the batch updates (as in the table: a
            10,000,000-document collection with its oplog does not fit the Java server's heap);
            `mongo2delta sync --mode mirror --initial skip --max-batch-docs U --max-latency 3600000`
            on a copy of the table (the key index is built from the table at start), then U
            updateOne $set {v, w_ms} on random _ids: they land in one batch; the figure is that
            batch's "mirror ... ms" log line; the start-up with the key index and the process are
            given separately. Then (the default strategy) the same sync again on the table it left,
            with no event: the start-up with the key index read from its cache, and its peak RSS.
  delta-rs: the same U updated rows (full rows, the table's schema) as a pyarrow table; on
            another copy of the table, DeltaTable(t).merge(source, predicate='t._id = s._id',
            source_alias='s', target_alias='t').when_matched_update_all()
            .when_not_matched_insert_all().execute(), timed around execute().
  After each, the table must hold N distinct _ids and the U updated rows their new values (read
  by delta-rs, or by `mongo2delta cat` for a table with deletion vectors, which delta-rs 1.1
  does not read). With `--merge-strategy` in `mongo2delta sync --help`, sync runs with its
  default (deletion vectors) and with `--merge-strategy rewrite` (copy-on-write), or with the
  strategies given with --merge-strategies.
Usage: python bench/sync_bench.py [--quick] [--parts latency,batch] [--rates 500,2000,5000,max]
       [--duration S] [--max-events N] [--rows-small N] [--rows-large N] [--updates U] [--out DIR]"""
import argparse
import datetime as dt
import json
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import harness  # bench/harness.py
from harness import Server, clear_oplog

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = os.environ.get("M2D_BIN", str(ROOT / "build" / "mongo2delta"))
DB = "bench_sync"
COUNTRIES = ["US", "DE", "FR", "IN", "BR", "JP", "GB", "CN", "NG", "MX"]
INSERT_BASE = 1_000_000_000  # _ids of the writer's inserts (int32, as the pre-filled ones)
POLL_S = 0.02                # the Python loop's pause on an empty stream (sync's usleep(20000))
GEN_FORMAT = 1               # bump when the part 2 rows change, so cached tables are rebuilt
LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z)\s")
BATCH_LINE = re.compile(r"batch (\d+): (\d+) events \(through event (\d+)\) committed in ([\d.]+) ms "
                        r"\(change log ([\d.]+) ms, mirror ([\d.]+) ms\)")


# --- part 1: the documents, the writer, the Python consumer --------------------------------

def live_doc(i, ev, w_ms):
    return {"_id": i, "ev": ev, "w_ms": w_ms, "n": i % 1000, "price": (i % 1000) * 0.25, "name": f"user-{i}",
            "country": COUNTRIES[i % 10], "tags": [f"tag{(i + k) % 50}" for k in range(1 + i % 3)],
            "s": {"a": i % 100, "b": i * 0.5, "c": f"c{i % 1000}"}}


def event_op(e, live):
    """Event e of the writer: (op, _id). Events go by threes: the insert of document live + k,
    the update of document k + live/2, the delete of document k (k = e // 3), so that each
    document is inserted, updated once and deleted, and the collection holds about `live`
    documents (documents 0 .. live-1 are put there before the consumer starts)."""
    k, r = divmod(e, 3)
    return ("insert", live + k) if r == 0 else ("update", k + live // 2) if r == 1 else ("delete", k)


def prefill(coll, live):
    w = time.time() * 1000
    coll.insert_many([live_doc(i, -1, w) for i in range(live)], ordered=False)


def writer_child(uri, coll, rate, total, live):
    """Offers `total` events at `rate` events/s (0: as fast as it can); prints what it achieved."""
    from pymongo import DeleteOne, InsertOne, MongoClient, UpdateOne
    c = MongoClient(uri)[DB][coll]
    rate, total, live = float(rate), int(total), int(live)
    ev, bulks, behind = 0, 0, 0.0
    t0 = time.perf_counter()
    while ev < total:
        now = time.perf_counter()
        due = total if rate <= 0 else min(total, int((now - t0) * rate) + 1)
        if due <= ev:
            time.sleep(max(0.0, t0 + ev / rate - now))
            continue
        if rate > 0:
            behind = max(behind, now - (t0 + ev / rate))
        hi = min(due, ev + 999)
        w = time.time() * 1000
        ops = []
        for e in range(ev, hi):
            op, i = event_op(e, live)
            ops.append(InsertOne(live_doc(i, e, w)) if op == "insert" else
                       UpdateOne({"_id": i}, {"$set": {"ev": e, "w_ms": w, "n": e % 1000}}) if op == "update" else
                       DeleteOne({"_id": i}))
        # unordered: the inserts, then the updates, then the deletes (live/2 documents apart)
        c.bulk_write(ops, ordered=False)
        bulks += 1
        ev = hi
    s = time.perf_counter() - t0
    print(json.dumps({"events": total, "seconds": s, "events/s": total / s, "bulks": bulks, "max behind s": behind}))


def loop_child(uri, coll, table, max_docs, max_latency_ms, idle_s, ready, ts_t, ts_i):
    """The alternative: pymongo change stream -> deltalake.write_deltalake(mode='append')."""
    import pyarrow as pa
    from bson import Timestamp
    from deltalake import write_deltalake
    from pymongo import MongoClient
    c = MongoClient(uri)[DB][coll]
    max_docs, latency, idle_s = int(max_docs), float(max_latency_ms) / 1000, float(idle_s)
    rows, first, seq, batches = [], None, 0, 0
    # the change log's schema, given (the user knows the collection's documents)
    i64, f64, s = pa.int64(), pa.float64(), pa.string()
    document = pa.struct([("_id", i64), ("ev", i64), ("w_ms", f64), ("n", i64), ("price", f64), ("name", s),
                          ("country", s), ("tags", pa.list_(s)), ("s", pa.struct([("a", i64), ("b", f64), ("c", s)]))])
    schema = pa.schema([("_op", s), ("_cluster_time", pa.struct([("t", i64), ("i", i64)])), ("_txn_seq", i64),
                        ("_id", i64), ("document", document)])

    def flush():
        nonlocal rows, first, batches
        write_deltalake(table, pa.Table.from_pylist(rows, schema=schema), mode="append")
        rows, first, batches = [], None, batches + 1

    # mongo-java-server answers the opening aggregate without an operationTime, which pymongo
    # needs when given no start: start right after the last oplog entry
    with c.watch(full_document="updateLookup", start_at_operation_time=Timestamp(int(ts_t), int(ts_i))) as cs:
        open(ready, "w").close()
        last_event = time.monotonic()
        while True:
            ch = cs.try_next()
            now = time.monotonic()
            if ch is not None:
                seq += 1
                doc = ch.get("fullDocument")
                key = (ch.get("documentKey") or {}).get("_id", doc.get("_id") if doc else None)
                ct = ch["clusterTime"]
                rows.append({"_op": ch["operationType"], "_cluster_time": {"t": ct.time, "i": ct.inc},
                             "_txn_seq": seq, "_id": key, "document": doc})
                if first is None:
                    first = now
                last_event = now
                if len(rows) >= max_docs or now - first >= latency:
                    flush()
                continue
            if rows and now - first >= latency:
                flush()
            if now - last_event >= idle_s:
                break
            time.sleep(POLL_S)
    if rows:
        flush()
    print(json.dumps({"events": seq, "batches": batches}))


def changelog_rows(table):
    """[(cluster time (t, i), commit timestamp ms)] of the change-log table's rows, from its JSON
    commits (add paths, commitInfo timestamp); and the number of commits that added rows. Adds
    with dataChange false (sync's background compaction) hold rows already counted."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from urllib.parse import unquote
    rows, commits = [], 0
    for f in sorted((pathlib.Path(table) / "_delta_log").glob("*.json")):
        ts, adds = None, []
        for line in open(f):
            a = json.loads(line)
            if "commitInfo" in a:
                ts = a["commitInfo"]["timestamp"]
            elif "add" in a and a["add"].get("dataChange", True):  # not the rewrites of compaction
                adds.append(a["add"]["path"])
        commits += bool(adds)
        for p in adds:
            ct = pq.read_table(pathlib.Path(table) / unquote(p), columns=["_cluster_time"]).column("_cluster_time")
            rows += [((t, i), ts) for t, i in zip(pc.struct_field(ct, "t").to_pylist(), pc.struct_field(ct, "i").to_pylist())]
    return rows, commits


def oplog_writes(client, coll, after):
    """{(t, i): (server wall ms, client w_ms or None)} of the collection's oplog entries after `after`."""
    out = {}
    for o in client["local"]["oplog.rs"].find({"ns": f"{DB}.{coll}", "ts": {"$gt": after}}, {"ts": 1, "wall": 1, "o": 1}):
        doc = o.get("o") or {}
        w = doc.get("w_ms", (doc.get("$set") or {}).get("w_ms"))
        wall = o["wall"].replace(tzinfo=dt.timezone.utc).timestamp() * 1000
        out[(o["ts"].time, o["ts"].inc)] = (wall, w)
    return out


def pct(xs, q):
    import numpy as np
    return float(np.percentile(np.array(xs), q)) if xs else float("nan")


def latency_run(server, client, side, rate, total, a, work, tag):
    """One consumer against one writer; returns the measurements."""
    coll = f"{tag}_{side}"
    table = work / f"changelog-{tag}-{side}"
    shutil.rmtree(table, ignore_errors=True)
    client[DB].drop_collection(coll)
    clear_oplog(client)
    prefill(client[DB][coll], a.live_docs)
    last = client["local"]["oplog.rs"].find().sort("ts", -1).limit(1).next()["ts"]
    err = work / f"{tag}-{side}.log"
    if side == "mongo2delta":
        cmd = [BIN, "sync", "--uri", server.uri, "--db", DB, "--collection", coll, "--table", table,
               "--mode", a.sync_mode, "--initial", "skip", "--max-batch-docs", a.max_batch_docs,
               "--max-latency", a.max_latency, "--stop-when-idle", a.idle]
        if a.sync_mode != "changelog":
            # mirror/both: the mirror is `table`; the change log (what is measured) goes aside
            cmd[cmd.index("--table") + 1] = work / f"mirror-{tag}"
            shutil.rmtree(work / f"mirror-{tag}", ignore_errors=True)
            if a.sync_mode == "both":
                cmd += ["--changelog-table", table]
        ready = table / "_delta_log" / "00000000000000000000.json"
    else:
        ready = work / f"{tag}-{side}.ready"
        ready.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--child-loop", server.uri, coll, table, a.max_batch_docs, a.max_latency,
               a.idle, ready, last.time, last.inc + 1]
    cpu0, load0 = server.cpu(), os.getloadavg()[0]
    iso = harness.Isolated(cmd, err)
    deadline = time.time() + 60
    while not ready.exists():
        if not iso.running() or time.time() > deadline:
            iso.wait()
            raise SystemExit(f"{side} did not start: {iso.log()[-2000:]}")
        time.sleep(0.02)
    time.sleep(0.3)
    w = harness.run_isolated([sys.executable, __file__, "--child-writer", server.uri, coll, rate, total,
                                a.live_docs])
    wr = harness.last_json_line(w["out"])
    r = iso.wait(timeout=3600)
    server_cpu, load1 = server.cpu() - cpu0, os.getloadavg()[0]
    writes = oplog_writes(client, coll, last)
    rows, commits = changelog_rows(table)
    got = {}
    for ct, ts in rows:
        got.setdefault(ct, []).append(ts)
    missing = [ct for ct in writes if ct not in got]
    extra = [ct for ct in got if ct not in writes]
    twice = [ct for ct, v in got.items() if len(v) > 1]
    if len(writes) != total or missing or extra or twice:
        raise SystemExit(f"{side} at {rate or 'max'} events/s: {len(writes)} writes in the oplog (expected {total}), "
                         f"{len(missing)} not in the change log, {len(extra)} rows not of the run's writes, "
                         f"{len(twice)} twice, in {table}")
    lat = [got[ct][0] - wall for ct, (wall, _) in writes.items()]
    first_w = min(wall for wall, _ in writes.values())
    last_c = max(ts for _, ts in rows)
    # the server's clock against the client's (w_ms, sent with the bulk), for inserts and updates
    sent = [wall - w for wall, w in writes.values() if w is not None]
    res = {"offered events/s": rate or "max", "side": side, "events": total,
           "writer events/s": wr["events/s"], "writer max behind s": wr["max behind s"],
           "achieved events/s": total / ((last_c - first_w) / 1000), "p50 ms": pct(lat, 50),
           "p99 ms": pct(lat, 99), "max ms": max(lat), "commits": commits, "events/commit": total / commits,
           "consumer CPU s": r["cpu"], "consumer CPU us/event": r["cpu"] / total * 1e6,
           "consumer peak RSS MiB": r["rss_mib"], "server CPU s": server_cpu,
           "write: server wall - client send, p50 / p99 ms": [pct(sent, 50), pct(sent, 99)],
           "load average before/after": [load0, load1]}
    if side == "mongo2delta":
        res["summary"] = r["err"].strip().splitlines()[-1] if r["err"].strip() else ""
    client[DB].drop_collection(coll)
    clear_oplog(client)
    if not a.keep:
        shutil.rmtree(table, ignore_errors=True)
        shutil.rmtree(work / f"mirror-{tag}", ignore_errors=True)
    return res


def part_latency(server, client, a, work):
    results = []
    rates = [0 if r == "max" else int(r) for r in a.rates.split(",")]
    # warm-up, not measured: the JVM compiles the server's hot paths first
    for side in ["mongo2delta", "python"]:
        latency_run(server, client, side, 2000, min(6000, a.max_events - a.max_events % 3), a, work, "warmup")
    for k, rate in enumerate(rates):
        total = a.max_events if rate == 0 else int(rate * a.duration)
        total -= total % 3
        # alternate which side goes first
        for side in ["mongo2delta", "python"][::1 if k % 2 == 0 else -1]:
            res = latency_run(server, client, side, rate, total, a, work, f"r{rate or 'max'}")
            results.append(res)
            sys.stderr.write(json.dumps(res) + "\n")
    return results


# --- part 2: one batch of updates into a table of N rows ------------------------------------

def row(i):
    return {"_id": i, "n": i % 1000, "price": (i % 1000) * 0.25, "name": f"user-{i}", "country": COUNTRIES[i % 10],
            "v": i % 7, "w_ms": float(i)}


def updated(i):
    """The $set of the batch's update of _id i (deterministic, so delta-rs merges the same rows)."""
    return {"v": 100 + i % 7, "w_ms": i + 0.5}


def base_table(n, work):
    """`mongo2delta load` of N rows exported as JSON lines; kept in work between runs."""
    table = work / f"table-{n}"
    stamp = work / f"table-{n}.done"
    want = f"{GEN_FORMAT} {n}"
    if stamp.exists() and stamp.read_text() == want and table.exists():
        return table, None
    shutil.rmtree(table, ignore_errors=True)
    src = work / f"rows-{n}.json"
    t0 = time.perf_counter()
    # v and w_ms vary: a column of one value is written as one RLE run that mongo2delta's
    # reader refuses when it is long ("more dictionary indices than the page can hold")
    with open(src, "w") as f:
        for k in range(0, n, 100_000):
            f.write("".join(f'{{"_id":{i},"n":{i % 1000},"price":{(i % 1000) * 0.25!r},"name":"user-{i}",'
                            f'"country":"{COUNTRIES[i % 10]}","v":{i % 7},"w_ms":{float(i)!r}}}\n'
                            for i in range(k, min(n, k + 100_000))))
    gen = time.perf_counter() - t0
    r = harness.run_isolated([BIN, "load", "--input", src, "--table", table])
    src.unlink()
    stamp.write_text(want)
    sys.stderr.write(f"table of {n:,} rows: JSON lines in {gen:.1f} s, `mongo2delta load` {r['wall']:.1f} s\n")
    return table, {"rows": n, "export s": gen, "load s": r["wall"], "load peak RSS MiB": r["rss_mib"]}


def copy_table(src, dst):
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)


def verify_table(table, n, ids):
    """N rows, and the updated rows hold their new values: read by delta-rs, or by `mongo2delta cat`
    when the table has deletion vectors (delta-rs 1.1 does not read them). Returns the reader."""
    import pyarrow.compute as pc
    import pyarrow.json as pj
    from deltalake import DeltaTable
    proto = json.loads(subprocess.run([BIN, "inspect", "--table", table, "--json"], capture_output=True, text=True,
                                      check=True).stdout).get("protocol") or {}
    if "deletionVectors" in (proto.get("readerFeatures") or []):
        reader = "mongo2delta cat"
        out = pathlib.Path(str(table) + ".cat.jsonl")
        with open(out, "w") as f:
            subprocess.run([BIN, "cat", "--table", table, "--columns", "_id,v,w_ms"], stdout=f, check=True)
        tab = pj.read_json(out)
        out.unlink()
    else:
        reader = "delta-rs"
        tab = DeltaTable(str(table)).to_pyarrow_dataset().to_table(columns=["_id", "v", "w_ms"])
    assert tab.num_rows == n, f"{table}: {tab.num_rows} rows ({reader}), expected {n}"
    assert pc.count_distinct(tab["_id"]).as_py() == n, f"{table}: _ids repeat ({reader})"
    got = tab.filter(pc.is_in(tab["_id"], pa_array(ids))).to_pylist()
    assert len(got) == len(ids), f"{table}: {len(got)} rows of the {len(ids)} updated _ids ({reader})"
    for r in got:
        want = updated(r["_id"])
        assert r["v"] == want["v"] and r["w_ms"] == want["w_ms"], f"{table}: {r}, expected {want} ({reader})"
    return reader


def pa_array(xs):
    import pyarrow as pa
    return pa.array(xs)


def log_time(line):
    m = LOG_TS.match(line)
    return dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp() \
        if m else None


INDEX_READY = re.compile(r"key index: \d+ documents")  # built or loaded (a line before may say why it is built)
INDEX_BYTES = re.compile(r"\(([\d.]+) MiB, ([\d.]+) bytes a document\)")


def index_bytes(line):
    m = INDEX_BYTES.search(line)
    return float(m.group(2)) if m else None


def restart_sync(cmd, t, err):
    """The same sync again on the table it left (no change since, no new event): the start-up
    with the key index's cache, the process's peak RSS."""
    start = time.time()
    r = harness.run_isolated(cmd)
    lines = r["err"].splitlines()
    line = next((l for l in lines if INDEX_READY.search(l)), None)
    return {"start-up to key index s": log_time(line) - start if line else None,
            "from the cache": bool(line and "loaded from its cache" in line),
            "key index bytes a document": index_bytes(line or ""), "process wall s": r["wall"], "CPU s": r["cpu"],
            "peak RSS MiB": r["rss_mib"], "cache MiB": (t / "_mongo2delta" / "keyindex.bin").stat().st_size / 2**20
            if (t / "_mongo2delta" / "keyindex.bin").exists() else None, "log": line}


def sync_batch(server, client, table, n, ids, strategy, a, work):
    from pymongo import UpdateOne
    coll = f"batch_{n}"
    t = work / f"sync-{n}-{strategy or 'default'}"
    copy_table(table, t)
    client[DB].drop_collection(coll)
    clear_oplog(client)
    c = client[DB][coll]
    for k in range(0, len(ids), 10_000):
        c.insert_many([row(i) for i in ids[k:k + 10_000]], ordered=False)
    err = work / f"sync-{n}.log"
    cmd = [BIN, "sync", "--uri", server.uri, "--db", DB, "--collection", coll, "--table", t, "--mode", "mirror",
           "--initial", "skip", "--max-batch-docs", len(ids), "--max-latency", 3_600_000, "--stop-when-idle", a.idle]
    if strategy:
        cmd += ["--merge-strategy", strategy]
    start = time.time()
    iso = harness.Isolated(cmd, err)
    while not INDEX_READY.search(iso.log()):
        if not iso.running():
            iso.wait()
            raise SystemExit(f"sync did not start: {iso.log()[-2000:]}")
        time.sleep(0.05)
    order = list(ids)
    random.Random(7).shuffle(order)
    w0 = time.time()
    for k in range(0, len(order), 1000):
        c.bulk_write([UpdateOne({"_id": i}, {"$set": updated(i)}) for i in order[k:k + 1000]], ordered=False)
    w1 = time.time()
    r = iso.wait(timeout=7200)
    lines = r["err"].splitlines()
    index_line = next(l for l in lines if INDEX_READY.search(l))
    batches = [(l, BATCH_LINE.search(l)) for l in lines if BATCH_LINE.search(l)]
    if len(batches) != 1 or int(batches[0][1].group(2)) != len(ids):
        # which updates did not come through, and when the server wrote them
        from deltalake import DeltaTable
        v = {r["_id"]: r["v"] for r in DeltaTable(str(t)).to_pyarrow_table(columns=["_id", "v"]).to_pylist()}
        lost = [i for i in order if v.get(i) != updated(i)["v"]]
        op = {o["o2"]["_id"]: (o["ts"], o["wall"].isoformat()) for o in client["local"]["oplog.rs"].find(
            {"ns": f"{DB}.{coll}", "op": "u"}, {"ts": 1, "wall": 1, "o2": 1})}
        raise SystemExit(f"expected one batch of {len(ids)} events (sync started at "
                         f"{dt.datetime.fromtimestamp(start, dt.timezone.utc).isoformat()}, updates written from "
                         f"{dt.datetime.fromtimestamp(w0, dt.timezone.utc).isoformat()}):\n" + r["err"][-3000:] +
                         f"\nnot applied: {len(lost)}, at positions {[order.index(i) for i in lost][:20]} of the "
                         f"writes, oplog {[op.get(i) for i in lost][:20]}; first oplog updates "
                         f"{sorted(op.values())[:3]}")
    line, m = batches[0]
    committed = log_time(line)
    mirror_s = float(m.group(6)) / 1000
    reader = verify_table(t, n, ids)
    inspect = json.loads(subprocess.run([BIN, "inspect", "--table", t, "--json"], capture_output=True, text=True,
                                        check=True).stdout)
    restart = restart_sync(cmd, t, err) if not strategy else None
    res = {"rows": n, "tool": "mongo2delta sync" + (f" --merge-strategy {strategy}" if strategy else ""),
           "apply s": mirror_s, "start-up to key index s": log_time(index_line) - start,
           "key index bytes a document": index_bytes(index_line), "restart, table unchanged": restart,
           "start to batch committed s": committed - start, "updates written s": w1 - w0,
           "first update to batch committed s": committed - w0,
           "process wall s (incl. --stop-when-idle)": r["wall"],
           "peak RSS MiB": r["rss_mib"], "CPU s": r["cpu"], "files after": inspect.get("numFiles"),
           "protocol": inspect.get("protocol"), "verified by": reader, "log": [index_line, line]}
    client[DB].drop_collection(coll)
    clear_oplog(client)
    if not a.keep:
        shutil.rmtree(t, ignore_errors=True)
    return res


def merge_child(table, source):
    import pyarrow.parquet as pq
    t0 = time.perf_counter()
    from deltalake import DeltaTable
    dtab = DeltaTable(table)
    src = pq.read_table(source)
    t1 = time.perf_counter()
    metrics = (dtab.merge(src, predicate="t._id = s._id", source_alias="s", target_alias="t")
               .when_matched_update_all().when_not_matched_insert_all().execute())
    t2 = time.perf_counter()
    print(json.dumps({"merge s": t2 - t1, "open s": t1 - t0, "metrics": metrics}, default=str))


def deltars_batch(table, n, ids, a, work):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import DeltaTable
    t = work / f"merge-{n}"
    copy_table(table, t)
    schema = DeltaTable(str(t)).to_pyarrow_dataset().schema
    rows = [{**row(i), **updated(i)} for i in ids]
    src = pa.Table.from_pylist(rows).append_column("_rescued_data", pa.nulls(len(rows), pa.string()))
    src = src.select(schema.names).cast(schema)
    source = work / f"merge-source-{n}.parquet"
    pq.write_table(src, source)
    r = harness.run_isolated([sys.executable, __file__, "--child-merge", t, source])
    out = harness.last_json_line(r["out"])
    reader = verify_table(t, n, ids)
    m = out["metrics"]
    res = {"rows": n, "tool": "delta-rs merge", "apply s": out["merge s"], "open table + read source s": out["open s"],
           "process wall s": r["wall"], "peak RSS MiB": r["rss_mib"], "CPU s": r["cpu"],
           "files after": len(DeltaTable(str(t)).file_uris()), "verified by": reader,
           "merge metrics": {k: m.get(k) for k in ("num_target_rows_updated", "num_target_rows_copied",
                                                    "num_target_files_added", "num_target_files_removed",
                                                    "scan_time_ms", "rewrite_time_ms", "execution_time_ms")}}
    if not a.keep:
        shutil.rmtree(t, ignore_errors=True)
    source.unlink()
    return res


def sync_strategies(a):
    help_text = subprocess.run([BIN, "sync", "--help"], capture_output=True, text=True).stdout
    if a.merge_strategies is not None:  # "": the default alone
        if "--merge-strategy" not in help_text:
            raise SystemExit("--merge-strategies given, but `mongo2delta sync --help` has no --merge-strategy")
        return [s or None for s in a.merge_strategies.split(",")]
    # the default strategy (not passed), and rewrite when the binary has the option
    return [None, "rewrite"] if "--merge-strategy" in help_text else [None]


def part_batch(server, client, a, work):
    results, tables = [], []
    strategies = sync_strategies(a)
    for n in (a.rows_small, a.rows_large):
        table, made = base_table(n, work)
        if made:
            tables.append(made)
        ids = sorted(random.Random(n).sample(range(n), min(a.updates, n)))
        for strategy in strategies:
            res = sync_batch(server, client, table, n, ids, strategy, a, work)
            results.append(res)
            sys.stderr.write(json.dumps(res) + "\n")
        res = deltars_batch(table, n, ids, a, work)
        results.append(res)
        sys.stderr.write(json.dumps(res) + "\n")
    return results, tables


# --- the run -------------------------------------------------------------------------------

def machine():
    import deltalake
    import pyarrow
    import pymongo
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    jars = sorted(p.name for p in (ROOT / ".cache" / "jars" / "mongo").glob("mongo-java-server-[0-9]*.jar"))
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return harness.machine(pyarrow=pyarrow.__version__, deltalake=deltalake.__version__, pymongo=pymongo.version,
                           java=java, server=jars, commit=commit, date=dt.date.today().isoformat(),
                           load_average=os.getloadavg())


def print_tables(a, lat, batch):
    if lat:
        print(f"\nsync --mode {a.sync_mode}, --max-batch-docs {a.max_batch_docs}, --max-latency {a.max_latency} ms "
              f"(Python loop: the same rule); latency = commit timestamp - the oplog entry's wall time; max: "
              f"{a.max_events:,} events as fast as the writer goes")
        print("| offered events/s | consumer | writer events/s | achieved events/s | p50 ms | p99 ms | max ms | "
              "commits (events each) | consumer CPU s (µs/event) | consumer peak RSS | server CPU s |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in lat:
            off = r["offered events/s"]
            print(f"| {off if off == 'max' else f'{off:,}'} | {r['side']} | {r['writer events/s']:,.0f} | "
                  f"{r['achieved events/s']:,.0f} | {r['p50 ms']:,.0f} | {r['p99 ms']:,.0f} | {r['max ms']:,.0f} | "
                  f"{r['commits']} ({r['events/commit']:,.0f}) | {r['consumer CPU s']:.1f} ({r['consumer CPU us/event']:.0f}) | "
                  f"{r['consumer peak RSS MiB']:,.0f} MiB | {r['server CPU s']:.1f} |")
    if batch:
        print(f"\none batch of {a.updates:,} updates (random _ids) applied to a table of N rows")
        print("| tool | N | apply batch s | large / small | start-up (key index) s | start to batch committed s "
              "(updates written) | process wall s | peak RSS | CPU s | files after |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        small = {r["tool"]: r["apply s"] for r in batch if r["rows"] == a.rows_small}
        for r in batch:
            ratio = f"{r['apply s'] / small[r['tool']]:.1f}" if r["rows"] == a.rows_large and small.get(r["tool"]) else ""
            if "start-up to key index s" in r:
                start = f"{r['start-up to key index s']:.1f}"
                committed = f"{r['start to batch committed s']:.1f} ({r['updates written s']:.1f})"
                wall = f"{r['process wall s (incl. --stop-when-idle)']:.1f} (with the idle exit)"
            else:
                start = f"{r['open table + read source s']:.1f} (open, read source)"
                committed, wall = "", f"{r['process wall s']:.1f}"
            print(f"| {r['tool']} | {r['rows']:,} | {r['apply s']:.2f} | {ratio} | {start} | {committed} | {wall} | "
                  f"{r['peak RSS MiB']:,.0f} MiB | {r['CPU s']:.1f} | {r['files after']} |")
        restarts = [r for r in batch if r.get("restart, table unchanged")]
        if restarts:
            print("\nthe key index: built at the first start, read from its cache at a restart on the unchanged table")
            print("| N | bytes a document | start-up, built s | peak RSS, built | restart (cache) s | from the cache | "
                  "peak RSS, restart | restart CPU s | cache file |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
            for r in restarts:
                x = r["restart, table unchanged"]
                print(f"| {r['rows']:,} | {r['key index bytes a document']} | {r['start-up to key index s']:.1f} | "
                      f"{r['peak RSS MiB']:,.0f} MiB | {x['start-up to key index s']:.2f} | {x['from the cache']} | "
                      f"{x['peak RSS MiB']:,.0f} MiB | {x['CPU s']:.2f} | {x['cache MiB']:.0f} MiB |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, to try the benchmark (not to record)")
    ap.add_argument("--parts", default="latency,batch")
    ap.add_argument("--rates", default=None, help="offered events/s, comma-separated; max: unthrottled "
                                                   "[500,2000,5000,max]")
    ap.add_argument("--duration", type=float, default=None, help="seconds of writing per offered rate [20]")
    ap.add_argument("--max-events", type=int, default=None, help="events of the unthrottled run [200000]")
    ap.add_argument("--live-docs", type=int, default=3000,
                    help="documents in the collection while the writer runs (each inserted, updated, deleted): "
                         "the test server's updateLookup scans the collection, so its cost grows with it")
    ap.add_argument("--max-batch-docs", default="1000")
    ap.add_argument("--max-latency", default="200", help="ms")
    ap.add_argument("--sync-mode", default="changelog", choices=["changelog", "both"],
                    help="part 1: sync's --mode (the change log is what is measured)")
    ap.add_argument("--idle", default="3", help="--stop-when-idle of the consumers, s")
    ap.add_argument("--rows-small", type=int, default=None, help="[100000]")
    ap.add_argument("--rows-large", type=int, default=None, help="[10000000]")
    ap.add_argument("--updates", type=int, default=None, help="updates in the batch [10000]")
    ap.add_argument("--merge-strategies", default=None,
                    help="sync's --merge-strategy values to run, comma-separated (empty item: the default); "
                         "by default the default and rewrite when `sync --help` lists the option")
    ap.add_argument("--server-heap", default="6g", help="the test server's -Xmx")
    ap.add_argument("--out", default=None, help="work directory, kept (part 2's tables are reused); "
                                                "default: a temporary one")
    ap.add_argument("--keep", action="store_true", help="keep the tables of every run in --out")
    a = ap.parse_args()
    q = a.quick
    a.rates = a.rates or ("500,2000,max" if q else "500,2000,5000,max")
    a.duration = a.duration or (5 if q else 20)
    a.max_events = a.max_events or (20_000 if q else 200_000)
    a.rows_small = a.rows_small or (10_000 if q else 100_000)
    a.rows_large = a.rows_large or (200_000 if q else 10_000_000)
    a.updates = a.updates or (1_000 if q else 10_000)
    work = pathlib.Path(a.out or tempfile.mkdtemp(prefix="m2d-sync-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    parts = a.parts.split(",")

    import pymongo
    info = machine()
    t_start = time.time()
    server = Server(a.server_heap)
    client = pymongo.MongoClient(server.uri)
    lat, batch, tables = [], [], []
    try:
        if "latency" in parts:
            lat = part_latency(server, client, a, work)
        if "batch" in parts:
            batch, tables = part_batch(server, client, a, work)
    finally:
        client.close()
        server.stop()
    print(json.dumps({"machine": info, "minutes": (time.time() - t_start) / 60, "load average at the end": os.getloadavg(),
                      "server heap": a.server_heap, "options": {k: v for k, v in vars(a).items()},
                      "latency": lat, "batch": batch, "tables made": tables}, indent=1, default=str))
    print_tables(a, lat, batch)
    if not a.out:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-writer":
        writer_child(*sys.argv[2:7])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-loop":
        loop_child(*sys.argv[2:11])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-merge":
        merge_child(*sys.argv[2:4])
    else:
        main()
