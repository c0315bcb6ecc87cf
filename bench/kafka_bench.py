"""Kafka benchmark (make bench-kafka): MongoDB -> Kafka -> Delta against sync and a Python consumer.

MongoDB -> Kafka -> Delta at fixed offered rates, against `sync` straight from the change stream,
kafka-produce alone, and a Python consumer of the same topic; side by side in one run, against one MongoDB-wire test server (scripts/mongo-test-server) and one Kafka
broker (scripts/kafka-test-server, Apache Kafka in KRaft mode), both started and stopped here.

The workload is sync_bench's (bench/sync_bench.py): a writer process (pymongo) offers events at a
fixed rate by threes, the insert of a new document, a $set on one inserted a while before, the
delete of an older one, so that the collection keeps --live-docs documents; inserts and updates
carry the event number `ev`. Each run starts from a fresh collection of --live-docs documents
(ev = -1) that every pipeline copies first (not measured), so that the mirror can be compared
with the collection at the end. Pipelines, one after the other for each rate (the order rotates),
each process measured alone (harness.Isolated: CPU, peak RSS):
  sync     `mongo2delta sync --mode mirror` (initial snapshot, then the change stream);
  produce  `mongo2delta kafka-produce --startup copy-existing` alone (change stream -> a topic of
           one partition, one Kafka transaction per batch): how fast events get into Kafka;
  kafka    the same kafka-produce + `mongo2delta kafka-ingest --mode mirror` (read_committed, the
           mirror by _id, a txn action per partition in each commit);
  python   the same kafka-produce + a Python consumer: confluent-kafka (read_committed, offsets
           committed after each Delta commit), micro-batches by the same rule as ours (--max-batch-docs
           records or --max-latency ms after the batch's first record), the batch's last event per
           _id applied with delta-rs's DeltaTable.merge (delete when matched and a delete, update
           when matched, insert when not matched: the same upsert/delete as our mirror, copy-on-write),
           or with --python-write append: write_deltalake(mode='append') of the documents (no
           deletes, a row per version: not a mirror).
All consumers commit a batch at --max-batch-docs events or --max-latency ms after its first;
kafka-produce commits a transaction at --max-batch-docs records or --produce-latency ms. No process
runs with --stop-when-idle: once the writer is done, the harness waits until the last process of
the pipeline has committed every event (its log lines), then stops each with SIGTERM, so that a
pipeline that fell behind is waited for (--drain-timeout).

Measured, for each event that leaves a row (inserts and updates: 2 of 3 events):
  write   the wall time of its oplog entry (the server's clock when it wrote; found by `ev`);
  commit  the modification time of the first Delta commit file (_delta_log/N.json) that adds a
          file holding a row with its `ev` (adds with dataChange false, compaction, are skipped):
          the moment a reader can see it;
  latency = commit - write. Achieved events/s = events / (the last data commit - the first write).
For the Kafka pipelines each event is also found in the topic (read back read_committed after the
run): `in Kafka` = the end of the producer transaction that holds it (kafka-produce --verbose logs
each "transaction N: K record(s)"; records are given to transactions in offset order), which
splits the latency into MongoDB -> Kafka (the change stream read and batching up to the record's
CreateTime, then the transaction) and Kafka -> Delta (fetch, batching, the Delta commit); for
kafka-produce alone, `in Kafka` is the end. Each consumer's batch commit times: sync's and
kafka-ingest's log lines, the Python consumer's own timer around merge/write_deltalake.
Checked after each run: every write is in the oplog; kafka-produce read exactly the events
written, and the topic holds the copies and one record per event; every insert and update is in
the table (an update whose document was deleted before the change stream looked it up has no
row, as in the collection: counted); the table equals the collection (sync and kafka: `mongo2delta
cat`, the mirrors have deletion vectors, which delta-rs 1.1 does not read; python merge: delta-rs)
or holds one row per insert and update (python append).
CPU seconds from the writer's start to the pipeline's exit (each process's total less what it had
used when the writer started, so not the start-up and the copy): the consumers', kafka-produce's,
the writer's, the MongoDB server's and the broker's JVMs (/proc), the whole machine's busy time
(/proc/stat) and so what the machine's other users took meanwhile (an estimate: on a VM
/proc/stat can read below the processes' own counts); peak RSS of our processes
(whole run), the JVMs' RSS after each run and their peak at the end; the 1-minute load average,
sampled every second.
Usage: python bench/kafka_bench.py [--quick] [--rates 500,2000,5000,max] [--duration S]
       [--max-events N] [--pipelines sync,produce,kafka,python] [--python-write merge|append]
       [--out DIR]"""
import argparse
import datetime as dt
import json
import os
import pathlib
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  bench/harness.py
import sync_bench as sb  # noqa: E402  the writer and its workload
from harness import ROOT, Server, clear_oplog  # noqa: E402

BIN = os.environ.get("M2D_BIN", str(ROOT / "build" / "mongo2delta"))
DB = "bench_kafka"
sb.DB = DB  # the writer's database (sync_bench's functions read the module's DB)
LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z)\s")
TXN_LINE = re.compile(r"transaction (\d+): (\d+) record\(s\), through event (\d+)")
SYNC_BATCH = re.compile(r"batch \d+: \d+ events \(through event (\d+)\) committed in ([\d.]+) ms")
WINDOW = "seconds from the writer's start to the pipeline's exit"
APPLIED = re.compile(r"^applied: (\d+) records", re.M)
INGEST_BATCH = re.compile(r"batch: (\d+) records \((\d+) events\) of \S+ committed in ([\d.]+) ms")
CLK = os.sysconf("SC_CLK_TCK")


# --- processes: JVMs, the machine ------------------------------------------------------------

def proc_cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK


def proc_mem_mib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine_busy_s():
    """CPU seconds the whole machine spent busy (all cores): /proc/stat's first line less idle, iowait."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / CLK


class LoadSampler(threading.Thread):
    """The 1-minute load average every second while a run goes on."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.done = [], threading.Event()
        self.start()

    def run(self):
        while not self.done.is_set():
            self.samples.append(os.getloadavg()[0])
            self.done.wait(1.0)

    def stop(self):
        self.done.set()
        self.join()
        return [min(self.samples), max(self.samples)] if self.samples else []


class Broker:
    """scripts/kafka-test-server (a bash script; the broker is its java child)."""

    def __init__(self, log_path):
        self.proc = subprocess.Popen([str(ROOT / "scripts" / "kafka-test-server"), "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=open(log_path, "w"), text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 240)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening on 127.0.0.1:"):
            self.stop()
            raise SystemExit(f"kafka-test-server did not start ({line!r}); its log: {log_path}")
        self.bootstrap = "127.0.0.1:" + line.split("127.0.0.1:")[1].split()[0]
        self.jvm = next(c for c in open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
                        if open(f"/proc/{c}/comm").read().strip() == "java")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- the Python consumer -----------------------------------------------------------------------

def doc_fields():
    import pyarrow as pa
    i64, f64, s = pa.int64(), pa.float64(), pa.string()
    return [("_id", i64), ("ev", i64), ("w_ms", f64), ("n", i64), ("price", f64), ("name", s), ("country", s),
            ("tags", pa.list_(s)), ("s", pa.struct([("a", i64), ("b", f64), ("c", s)]))]


def consumer_child(bootstrap, topic, group, table, max_docs, max_latency_ms, ready, live, how):
    """What a Python user writes: confluent-kafka (read_committed) -> delta-rs, in micro-batches.
    Logs "applied: N records" whenever its batch is empty again; SIGTERM: the batch in hand, then exit."""
    os.environ.setdefault("RUST_LOG", "error")  # not DataFusion's deprecation warning at every merge
    import pyarrow as pa
    from confluent_kafka import Consumer, KafkaError
    from deltalake import DeltaTable, write_deltalake
    max_docs, latency, live = int(max_docs), float(max_latency_ms) / 1000, int(live)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    fields = doc_fields()
    cols = [f for f, _ in fields]
    doc_schema = pa.schema(fields)
    src_schema = pa.schema([("_op", pa.string())] + fields)  # the schema given: the user knows the documents
    dtab = DeltaTable.create(table, schema=doc_schema)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    batch, n_batch, n_records, first = {}, 0, 0, None  # n_batch: events, n_records: with the skipped ones
    records, skipped, batches, flush_ms, is_ready, reported = 0, 0, 0, [], False, 0

    def flush():
        nonlocal batch, n_batch, n_records, first, batches
        t0 = time.perf_counter()
        if how == "merge":
            src = pa.Table.from_pylist(list(batch.values()), schema=src_schema)
            set_cols = {k: f"s.{k}" for k in cols}
            (dtab.merge(src, predicate="t._id = s._id", source_alias="s", target_alias="t")
             .when_matched_delete(predicate="s._op = 'delete'")
             .when_matched_update(set_cols)
             .when_not_matched_insert(set_cols, predicate="s._op <> 'delete'")
             .execute())
        else:  # append: the documents only (a delete has none)
            rows = [r for r in batch.values() if r["_op"] != "delete"]
            if rows:
                write_deltalake(table, pa.Table.from_pylist(rows, schema=src_schema).drop_columns(["_op"]),
                                mode="append")
        flush_ms.append([(time.perf_counter() - t0) * 1000, n_records])
        c.commit(asynchronous=True)  # after the Delta commit: at least once (no txn in the table)
        batch, n_batch, n_records, first, batches = {}, 0, 0, None, batches + 1

    while True:
        now = time.monotonic()
        wait = 0.1 if first is None else max(0.0, min(0.1, first + latency - now))
        for m in c.consume(num_messages=max_docs - n_batch, timeout=wait):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise SystemExit(f"consumer: {m.error()}")
            records += 1
            n_records += 1
            v = json.loads(m.value())
            op, doc = v.get("operationType"), v.get("fullDocument")
            if m.key() is None or (op != "delete" and doc is None):
                # an update looked up after its document was deleted (its delete follows): the
                # test server's documentKey of an update is the update itself, so without the
                # document kafka-produce has no key for it
                skipped += 1
                continue
            key = json.loads(m.key())["_id"]
            if op == "delete":
                row = {"_op": "delete", "_id": key}
            else:
                row = {"_op": "upsert", **{k: doc.get(k) for k in cols}}
            if first is None:
                first = time.monotonic()
            if how == "merge":
                batch.pop(key, None)  # the last event of an _id in the batch wins
                batch[key] = row
            else:
                batch[len(batch)] = row
            n_batch += 1
        now = time.monotonic()
        if batch and (n_batch >= max_docs or now - first >= latency):
            flush()
        if not is_ready and records >= live and not batch:
            open(ready, "w").close()
            is_ready = True
        if not batch and records != reported:
            sys.stderr.write(f"applied: {records} records\n")
            sys.stderr.flush()
            reported = records
        if stop:
            if batch:
                flush()
            break
    c.close()
    print(json.dumps({"records": records, "skipped": skipped, "batches": batches,
                      "batches ms, records": flush_ms}))


# --- measuring a run ---------------------------------------------------------------------------

def oplog_events(client, coll, after):
    """{ev: server wall ms} of the inserts and updates of the run, and the number of entries."""
    walls, n = {}, 0
    for o in client["local"]["oplog.rs"].find({"ns": f"{DB}.{coll}", "ts": {"$gt": after}}, {"op": 1, "wall": 1, "o": 1}):
        n += 1
        doc = o.get("o") or {}
        ev = doc.get("ev", (doc.get("$set") or {}).get("ev")) if o["op"] in ("i", "u") else None
        if ev is not None:
            walls[ev] = o["wall"].replace(tzinfo=dt.timezone.utc).timestamp() * 1000
    return walls, n


def table_commits(table):
    """{ev: mtime ms of the first commit adding a row with it}, the data commits' mtimes, and the
    commits' commitInfo timestamp minus their mtime (ms), from the table's JSON commits."""
    import pyarrow.parquet as pq
    from urllib.parse import unquote
    first, data_commits, skew, seen = {}, [], [], set()
    for f in sorted((pathlib.Path(table) / "_delta_log").glob("*.json")):
        mtime = f.stat().st_mtime_ns / 1e6
        adds, data = [], False
        for line in open(f):
            a = json.loads(line)
            if "commitInfo" in a and a["commitInfo"].get("timestamp"):
                skew.append(a["commitInfo"]["timestamp"] - mtime)
            for kind in ("add", "remove"):
                if kind in a and a[kind].get("dataChange", True):
                    data = True
                    if kind == "add" and a["add"]["path"] not in seen:
                        adds.append(a["add"]["path"])
        if data:
            data_commits.append(mtime)
        for p in adds:
            seen.add(p)
            for ev in pq.read_table(pathlib.Path(table) / unquote(p), columns=["ev"]).column("ev").to_pylist():
                if ev is not None and ev >= 0 and ev not in first:
                    first[ev] = mtime
    return first, data_commits, skew


def topic_events(bootstrap, topic, timeout=120):
    """[(offset, CreateTime ms, ev or None)] of the topic's records, read_committed, offset order."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-read-{uuid.uuid4().hex[:8]}",
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    out = []
    try:
        parts = c.list_topics(topic, timeout=30).topics[topic].partitions
        if len(parts) != 1:
            raise SystemExit(f"{topic}: {len(parts)} partitions, expected 1")
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    break
                raise SystemExit(f"reading {topic}: {m.error()}")
            doc = json.loads(m.value()).get("fullDocument") or {}
            out.append((m.offset(), m.timestamp()[1], doc.get("ev")))
    finally:
        c.close()
    return out


def log_time_ms(line):
    m = LOG_TS.match(line)
    return dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=dt.timezone.utc).timestamp() * 1000 if m else None


def in_kafka_times(produce_log, records, live):
    """{ev: the time its producer transaction ended}: records in offset order, given to the logged
    transactions by their record counts; and, for each transaction after the copy, (its record count,
    its duration: the end less its first record's CreateTime, set when kafka-produce sent it)."""
    txns = [(log_time_ms(l), int(m.group(2))) for l in produce_log.splitlines() if (m := TXN_LINE.search(l))]
    if sum(k for _, k in txns) != len(records):
        raise SystemExit(f"kafka-produce logged {sum(k for _, k in txns)} records in transactions, the topic holds "
                         f"{len(records)}")
    ends, stats, n = {}, [], 0
    for t, k in txns:
        if k and n >= live:  # not the copy's
            stats.append((k, t - min(ts for _, ts, _ in records[n:n + k])))
        for _, _, ev in records[n:n + k]:
            if ev is not None and ev >= 0:
                ends[ev] = t
        n += k
    return ends, stats


def check_mirror(client, coll, table, side, how):
    """The table equals the collection (python append: one row per insert and update); returns the
    reader and the row count."""
    want = {d["_id"]: d for d in client[DB][coll].find()}
    if side == "python":
        from deltalake import DeltaTable
        rows = DeltaTable(str(table)).to_pyarrow_table().to_pylist()
        reader = "delta-rs"
    else:
        out = subprocess.run([BIN, "cat", "--table", str(table)], capture_output=True, text=True, check=True).stdout
        rows = [json.loads(l) for l in out.splitlines()]
        reader = "mongo2delta cat"
    if side == "python" and how == "append":
        return reader, len(rows)
    got = {}
    for r in rows:
        r.pop("_rescued_data", None)
        if r["_id"] in got:
            raise SystemExit(f"{side}: _id {r['_id']} twice in {table}")
        got[r["_id"]] = r
    if got.keys() != want.keys():
        raise SystemExit(f"{side}: {table} holds {len(got)} documents, the collection {len(want)}: "
                         f"{len(got.keys() - want.keys())} extra, {len(want.keys() - got.keys())} missing")
    bad = [i for i in want if got[i] != want[i]]
    if bad:
        raise SystemExit(f"{side}: {len(bad)} documents differ, e.g. {got[bad[0]]} != {want[bad[0]]}")
    return reader, len(rows)


def pct(xs, q):
    return sb.pct(xs, q)


def wait_for(what, cond, procs, timeout=120):
    deadline = time.time() + timeout
    while not cond():
        dead = [n for n, p in procs.items() if not p.running()]
        if dead or time.time() > deadline:
            logs = "\n".join(f"--- {n}:\n{p.log()[-2000:]}" for n, p in procs.items())
            for p in procs.values():
                if p.running():
                    p.signal(signal.SIGKILL)
            raise SystemExit(f"waiting for {what}: {'exited: ' + ','.join(dead) if dead else 'timed out'}\n{logs}")
        time.sleep(0.05)


def run_one(env, side, rate, total, a, tag):
    server, broker, client, work = env["server"], env["broker"], env["client"], env["work"]
    coll = f"{tag}_{side}"
    table = work / f"{tag}-{side}"
    shutil.rmtree(table, ignore_errors=True)
    client[DB].drop_collection(coll)
    clear_oplog(client)
    sb.prefill(client[DB][coll], a.live_docs)
    last = client["local"]["oplog.rs"].find().sort("ts", -1).limit(1).next()["ts"]
    # kafka-produce starts the stream at the clock's second when the server gives no resume token
    # before an event (the test server): the prefill's inserts in that second would come again
    time.sleep(max(0.0, last.time + 1.05 - time.time()))
    procs, logs = {}, {}

    def start(name, cmd):
        logs[name] = work / f"{tag}-{side}-{name}.log"
        procs[name] = harness.Isolated(cmd, logs[name])

    prefix = topic = None
    if side == "sync":
        start("sync", [BIN, "sync", "--uri", server.uri, "--db", DB, "--collection", coll, "--table", table,
                       "--mode", "mirror", "--max-batch-docs", a.max_batch_docs, "--max-latency", a.max_latency])
        wait_for("sync's snapshot", lambda: f"key index: {a.live_docs} documents" in procs["sync"].log(), procs)
    else:
        prefix = f"{tag}{side}{uuid.uuid4().hex[:6]}"
        topic = f"{prefix}.{DB}.{coll}"
        # no --stop-when-idle for any process: each is stopped (SIGTERM) once it has everything, so
        # that a pipeline behind the writer is waited for
        start("produce", [BIN, "kafka-produce", "--uri", server.uri, "--db", DB, "--collection", coll,
                          "--brokers", broker.bootstrap, "--topic-prefix", prefix, "--startup", "copy-existing",
                          "--max-batch", a.max_batch_docs, "--max-latency", a.produce_latency, "--verbose"])
        wait_for("kafka-produce's copy", lambda: "following the change stream" in procs["produce"].log(), procs)
        group = f"g-{prefix}"
        if side == "produce":
            pass  # kafka-produce alone: how fast the change stream gets into Kafka
        elif side == "kafka":
            start("ingest", [BIN, "kafka-ingest", "--brokers", broker.bootstrap, "--topic", topic, "--group", group,
                             "--table", table, "--mode", "mirror", "--max-batch-docs", a.max_batch_docs,
                             "--max-latency", a.max_latency])
            wait_for("kafka-ingest's copy", lambda: sum(int(m.group(1)) for m in INGEST_BATCH.finditer(
                procs["ingest"].log())) >= a.live_docs, procs)
        else:
            ready = work / f"{tag}-{side}.ready"
            ready.unlink(missing_ok=True)
            start("consumer", [sys.executable, __file__, "--child-consumer", broker.bootstrap, topic, group, table,
                               a.max_batch_docs, a.max_latency, ready, a.live_docs, a.python_write])
            wait_for("the Python consumer's copy", ready.exists, procs)
    time.sleep(0.3)
    consumer = {"sync": "sync", "kafka": "ingest", "python": "consumer", "produce": "produce"}[side]
    cpu0 = {"mongo server": server.cpu(), "broker": proc_cpu(broker.jvm), "machine": machine_busy_s(),
            # the consumers' start-up and copy are not the run's
            **{n: proc_cpu(p.child_pid()) for n, p in procs.items()}}
    sampler = LoadSampler()
    t_write = time.time()
    w = harness.run_isolated([sys.executable, __file__, "--child-writer", server.uri, coll, rate, total, a.live_docs])
    wr = harness.last_json_line(w["out"])
    # done: the last process of the pipeline has committed every event (sync, kafka-produce alone:
    # through event `total`; kafka-ingest and the Python consumer: the copies and every event's record)
    done = {"sync": lambda log: any(int(m.group(1)) >= total for m in SYNC_BATCH.finditer(log)),
            "produce": lambda log: any(int(m.group(3)) >= total for m in TXN_LINE.finditer(log)),
            "ingest": lambda log: sum(int(m.group(1)) for m in INGEST_BATCH.finditer(log)) >= a.live_docs + total,
            "consumer": lambda log: any(int(m.group(1)) >= a.live_docs + total for m in APPLIED.finditer(log))}[consumer]
    wait_for(f"{consumer} to commit all {total} events", lambda: done(procs[consumer].log()), procs,
             timeout=a.drain_timeout)
    res = {}
    for name in [consumer] + (["produce"] if consumer != "produce" and "produce" in procs else []):
        procs[name].signal(signal.SIGTERM)
        res[name] = procs[name].wait(timeout=120)
    res_c, res_p = res[consumer], res.get("produce")
    cpu = {"mongo server": server.cpu() - cpu0["mongo server"], "broker": proc_cpu(broker.jvm) - cpu0["broker"],
           "machine": machine_busy_s() - cpu0["machine"]}
    for name, r in res.items():
        cpu[name] = r["cpu"] - cpu0[name]
    cpu["writer"] = w["cpu"]
    # what the machine's other users took meanwhile (the writer's start-up is counted as ours)
    cpu["others"] = cpu["machine"] - cpu["mongo server"] - cpu["broker"] - w["cpu"] - sum(cpu[n] for n in res)
    load = sampler.stop()
    wall_s = time.time() - t_write

    walls, n_oplog = oplog_events(client, coll, last)
    if n_oplog != total:
        raise SystemExit(f"{side}: {n_oplog} oplog entries, expected {total}")
    out = {"offered events/s": rate or "max", "pipeline": side, "events": total,
           "writer events/s": wr["events/s"], "writer max behind s": wr["max behind s"]}
    first = None
    if side != "produce":
        first, data_commits, skew = table_commits(table)
        # an update whose document was deleted before the lookup has no row: its delete is in the run
        missing = [ev for ev in walls if ev not in first]
        lost = [ev for ev in missing if not (ev % 3 == 1 and 3 * (ev // 3 + a.live_docs // 2) + 2 < total)]
        if lost:
            raise SystemExit(f"{side} at {rate or 'max'} events/s: {len(lost)} inserts/updates not in {table}, "
                             f"e.g. ev {lost[:5]}")
        lat = [first[ev] - walls[ev] for ev in walls if ev in first]
        reader, rows = check_mirror(client, coll, table, side, a.python_write)
        if side == "python" and a.python_write == "append":
            want = a.live_docs + len(walls) - len(missing)
            if rows != want:
                raise SystemExit(f"python append: {rows} rows, expected {want}")
        out.update({"achieved events/s": total / ((max(data_commits) - min(walls.values())) / 1000),
                    "p50 ms": pct(lat, 50), "p99 ms": pct(lat, 99), "max ms": max(lat), "measured events": len(lat),
                    "updates without a row (deleted before the lookup)": len(missing),
                    "data commits": sum(1 for t in data_commits if t >= min(walls.values())),
                    "commitInfo timestamp - commit file mtime, p50 / max ms": [pct(skew, 50), max(skew)],
                    "table rows": rows, "verified by": reader})
    out.update({"CPU s (from the writer's start)": cpu,
                "peak RSS MiB": {**{n: r["rss_mib"] for n, r in res.items()},
                                 "mongo server (now)": server.rss_mib(),
                                 "broker (now)": proc_mem_mib(broker.jvm, "VmRSS")},
                WINDOW: wall_s, "load average min / max": load})
    # each consumer's batch commits
    if side == "sync":  # the snapshot is not a batch
        ms = [float(m.group(2)) for m in SYNC_BATCH.finditer(res_c["err"])]
    elif side == "kafka":
        ms = after_copy([(float(m.group(3)), int(m.group(1))) for m in INGEST_BATCH.finditer(res_c["err"])],
                        a.live_docs)
    elif side == "python":
        ms = after_copy(harness.last_json_line(res_c["out"])["batches ms, records"], a.live_docs)
    else:
        ms = []
    if ms:
        out["batch commit ms p50 / p99 / max"] = [pct(ms, 50), pct(ms, 99), max(ms)]
        # the share of the run the consumer spent committing to Delta (the rest: waiting for events)
        out["consumer in Delta commits %"] = 100 * sum(ms) / (max(data_commits) - min(walls.values()))
    if side == "python":
        cr = harness.last_json_line(res_c["out"])
        out["python consumer"] = {k: cr[k] for k in ("records", "skipped", "batches")}
        out["python write"] = a.python_write
    if res_p:
        out["produce summary"] = res_p["err"].strip().splitlines()[-1]
        m = re.search(r"(\d+) change event\(s\)", out["produce summary"])
        if not m or int(m.group(1)) != total:
            raise SystemExit(f"{side}: kafka-produce read {m and m.group(1)} change events, the writer wrote {total}")
        recs = topic_events(broker.bootstrap, topic)
        in_kafka, txns = in_kafka_times(res_p["err"], recs, a.live_docs)
        created = {ev: ts for _, ts, ev in recs if ev is not None and ev >= 0}
        evs = [ev for ev in walls if ev in in_kafka and (first is None or ev in first)]
        to_k = [in_kafka[ev] - walls[ev] for ev in evs]
        read = [created[ev] - walls[ev] for ev in evs]
        txn = [in_kafka[ev] - created[ev] for ev in evs]
        out["MongoDB -> Kafka p50 / p99 ms"] = [pct(to_k, 50), pct(to_k, 99)]
        out["  of which change stream + batching (CreateTime - write) p50 / p99 ms"] = [pct(read, 50), pct(read, 99)]
        out["  of which the transaction (end - CreateTime) p50 / p99 ms"] = [pct(txn, 50), pct(txn, 99)]
        if first is not None:
            to_d = [first[ev] - in_kafka[ev] for ev in evs]
            out["Kafka -> Delta p50 / p99 ms"] = [pct(to_d, 50), pct(to_d, 99)]
        else:  # kafka-produce alone: its transactions are the end
            ends = sorted(in_kafka.values())
            out.update({"achieved events/s": total / ((ends[-1] - min(walls.values())) / 1000),
                        "p50 ms": pct(to_k, 50), "p99 ms": pct(to_k, 99), "max ms": max(to_k),
                        "measured events": len(to_k)})
        out["producer transactions (records each)"] = [len(txns), total / max(1, len(txns))]
        # the share of its time kafka-produce spent in Kafka transactions (the rest: reading the
        # change stream, or waiting for it), from the first write to its last transaction
        span = max(in_kafka.values()) - min(walls.values())
        out["kafka-produce in transactions %"] = 100 * sum(d for _, d in txns) / span
        out["transaction ms p50 / p99"] = [pct([d for _, d in txns], 50), pct([d for _, d in txns], 99)]
    if side in ("sync", "kafka"):
        out["consumer summary"] = res_c["err"].strip().splitlines()[-1]
    client[DB].drop_collection(coll)
    clear_oplog(client)
    if not a.keep:
        shutil.rmtree(table, ignore_errors=True)
    return out


# --- the run -----------------------------------------------------------------------------------

def machine_info():
    import confluent_kafka
    import deltalake
    import pyarrow
    import pymongo
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    jars = sorted(p.name for p in (ROOT / ".cache" / "jars" / "mongo").glob("mongo-java-server-[0-9]*.jar"))
    kafka = sorted(p.name for p in (ROOT / ".cache" / "jars" / "kafka").glob("kafka_*.jar"))
    rdkafka = subprocess.run(["pkg-config", "--modversion", "rdkafka"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return harness.machine(pyarrow=pyarrow.__version__, deltalake=deltalake.__version__, pymongo=pymongo.version,
                           confluent_kafka=confluent_kafka.__version__,
                           librdkafka_python=confluent_kafka.libversion()[0], librdkafka_mongo2delta=rdkafka,
                           java=java, mongo_server=jars, kafka=kafka, commit=commit,
                           date=dt.date.today().isoformat(), load_average=os.getloadavg())


def print_tables(a, results):
    def off(r):
        return r["offered events/s"] if r["offered events/s"] == "max" else f"{r['offered events/s']:,}"

    def two(r, key, f="{:,.0f}"):
        v = r.get(key)
        return " / ".join(f.format(x) for x in v[:2]) if v else ""

    print(f"\n--max-batch-docs {a.max_batch_docs}, --max-latency {a.max_latency} ms (consumers), kafka-produce "
          f"--max-latency {a.produce_latency} ms; latency = the Delta commit file's mtime - the oplog entry's wall "
          f"time (produce: the end of its Kafka transaction); python: {a.python_write}")
    print("| offered events/s | pipeline | writer events/s | achieved events/s | p50 ms | p99 ms | max ms | "
          "Delta commits | updates without a row | load avg |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {off(r)} | {r['pipeline']} | {r['writer events/s']:,.0f} | {r['achieved events/s']:,.0f} | "
              f"{r['p50 ms']:,.0f} | {r['p99 ms']:,.0f} | {r['max ms']:,.0f} | {r.get('data commits', '')} | "
              f"{r.get('updates without a row (deleted before the lookup)', '')} | "
              f"{' – '.join(f'{x:.1f}' for x in r['load average min / max'])} |")
    print("\nwhere the time goes (p50 / p99 ms)")
    print("| offered events/s | pipeline | MongoDB → Kafka | of which to CreateTime | Kafka → Delta | "
          "kafka-produce in transactions | transaction ms | consumer in Delta commits | batch commit ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        t, c = r.get("kafka-produce in transactions %"), r.get("consumer in Delta commits %")
        print(f"| {off(r)} | {r['pipeline']} | {two(r, 'MongoDB -> Kafka p50 / p99 ms')} | "
              f"{two(r, '  of which change stream + batching (CreateTime - write) p50 / p99 ms')} | "
              f"{two(r, 'Kafka -> Delta p50 / p99 ms')} | {f'{t:.0f} %' if t is not None else ''} | "
              f"{two(r, 'transaction ms p50 / p99')} | {f'{c:.0f} %' if c is not None else ''} | "
              f"{two(r, 'batch commit ms p50 / p99 / max')} |")
    print("\nCPU s from the writer's start to the pipeline's exit (window s), peak RSS")
    print("| offered events/s | pipeline | window s | CPU s: consumer | kafka-produce | writer | MongoDB server | broker | "
          "machine (2 cores) | others | peak RSS MiB: consumer | kafka-produce |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        c, m = r["CPU s (from the writer's start)"], r["peak RSS MiB"]
        name = {"sync": "sync", "kafka": "ingest", "python": "consumer", "produce": None}[r["pipeline"]]
        cells = [off(r), r["pipeline"], f"{r[WINDOW]:.0f}", f"{c[name]:.1f}" if name else "",
                 f"{c['produce']:.1f}" if "produce" in c else "", f"{c['writer']:.1f}", f"{c['mongo server']:.1f}",
                 f"{c['broker']:.1f}", f"{c['machine']:.1f}", f"{c['others']:.1f}", f"{m[name]:,.0f}" if name else "",
                 f"{m['produce']:,.0f}" if "produce" in m else ""]
        print("| " + " | ".join(cells) + " |")


def after_copy(batches, live):
    """The batches ([ms, records]) after those that held the --live-docs copies."""
    out, n = [], 0
    for ms, k in batches:
        if n >= live:
            out.append(ms)
        n += k
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs, to try the benchmark (not to record)")
    ap.add_argument("--rates", default=None, help="offered events/s, comma-separated; max: unthrottled "
                                                   "[500,2000,5000,max]")
    ap.add_argument("--duration", type=float, default=None, help="seconds of writing per offered rate [20]")
    ap.add_argument("--max-events", type=int, default=None, help="events of the unthrottled run [60000]")
    ap.add_argument("--pipelines", default="sync,produce,kafka,python", help="comma-separated [%(default)s]")
    ap.add_argument("--python-write", default="merge", choices=["merge", "append"],
                    help="the Python consumer: DeltaTable.merge (upserts and deletes) or write_deltalake append")
    ap.add_argument("--live-docs", type=int, default=3000,
                    help="documents in the collection while the writer runs (see bench/sync_bench.py)")
    ap.add_argument("--max-batch-docs", default="1000", help="events per Delta commit and records per Kafka "
                                                             "transaction at most")
    ap.add_argument("--max-latency", default="200", help="ms: a consumer's batch is committed this long after "
                                                         "its first event at the latest")
    ap.add_argument("--produce-latency", default="100", help="kafka-produce's --max-latency, ms")
    ap.add_argument("--drain-timeout", type=float, default=600,
                    help="s after the writer's end for a pipeline to commit every event")
    ap.add_argument("--server-heap", default="6g", help="the MongoDB test server's -Xmx")
    ap.add_argument("--out", default=None, help="work directory, kept (default: a temporary one, removed)")
    ap.add_argument("--keep", action="store_true", help="keep every run's table in --out")
    a = ap.parse_args()
    a.rates = a.rates or ("500,2000,max" if a.quick else "500,2000,5000,max")
    a.duration = a.duration or (5 if a.quick else 20)
    a.max_events = a.max_events or (15_000 if a.quick else 60_000)
    work = pathlib.Path(a.out or tempfile.mkdtemp(prefix="m2d-kafka-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    sides = a.pipelines.split(",")

    import pymongo
    info = machine_info()
    t_start = time.time()
    server = Server(a.server_heap)
    broker = None
    results = []
    try:
        broker = Broker(work / "broker.log")
        client = pymongo.MongoClient(server.uri)
        env = {"server": server, "broker": broker, "client": client, "work": work}
        # warm-up, not measured: both JVMs compile their hot paths first
        for side in sides:
            run_one(env, side, 2000, 6000, a, "warmup")
        rates = [0 if r == "max" else int(r) for r in a.rates.split(",")]
        for k, rate in enumerate(rates):
            total = a.max_events if rate == 0 else int(rate * a.duration)
            total -= total % 3
            for side in sides[k % len(sides):] + sides[:k % len(sides)]:  # the order rotates
                res = run_one(env, side, rate, total, a, f"r{rate or 'max'}")
                results.append(res)
                sys.stderr.write(json.dumps(res) + "\n")
        client.close()
        jvm_peaks = {"mongo server VmHWM MiB": server.rss_mib("VmHWM"),
                     "broker VmHWM MiB": proc_mem_mib(broker.jvm, "VmHWM")}
    finally:
        if broker:
            broker.stop()
        server.stop()
    print(json.dumps({"machine": info, "minutes": (time.time() - t_start) / 60,
                      "load average at the end": os.getloadavg(), "server heap": a.server_heap, **jvm_peaks,
                      "options": vars(a), "results": results}, indent=1, default=str))
    print_tables(a, results)
    if not a.out:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-writer":
        sb.writer_child(*sys.argv[2:7])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-consumer":
        consumer_child(*sys.argv[2:11])
    else:
        main()
