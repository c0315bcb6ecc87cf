"""mongo2delta kafka-ingest: change events from Kafka into a mirror table and a change log,
exactly once. kafka-produce follows a random workload into a topic while kafka-ingest applies the
topic; afterwards the mirror (read by Spark) equals the collection and the change log holds one
row per event, in each partition's offset order; the same with either command killed (SIGKILL)
and restarted, with several instances in one group, and with records that cannot be applied."""
import json
import os
import random
import signal
import subprocess
import time
import uuid

import pytest
from deltalake import DeltaTable

from bson_mapping import check_table
from conftest import SANITIZER_ENV, m2d_bin, run_m2d
from parquet_jsonform import table_rows
from spark_fixture import spark  # noqa: F401  (fixture)
from test_kafka_produce import seed, start_produce, wait_copied
from test_sync import settle, workload

N_OPS = int(os.environ.get("M2D_KAFKA_INGEST_OPS", "5000"))


def spawn(args):
    return subprocess.Popen([m2d_bin()] + [str(a) for a in args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, **SANITIZER_ENV))


def start_ingest(brokers, topic, group, table, log=None, *extra, idle=None):
    args = ["kafka-ingest", "--brokers", brokers, "--topic", topic, "--group", group, "--table", table,
            "--max-latency", "300", "--max-batch-docs", "300", "--compact-every", "5", *extra]
    if log:
        args += ["--mode", "both", "--changelog-table", log]
    if idle:
        args += ["--stop-when-idle", idle]
    return spawn(args)


def finish(proc, timeout=600):
    _, err = proc.communicate(timeout=timeout)
    assert "Sanitizer" not in err and "runtime error:" not in err, err[-3000:]
    assert proc.returncode == 0, err[-3000:]
    return err


def changelog(log):
    cols = ["_op", "_id", "_kafka_topic", "_kafka_partition", "_kafka_offset"]
    rows = DeltaTable(str(log)).to_pyarrow_table(columns=cols).to_pylist()
    return sorted(rows, key=lambda r: (r["_kafka_topic"], r["_kafka_partition"], r["_kafka_offset"]))


def txns(table):
    """appId -> version of the table's txn actions, as its log says (the newest per appId)."""
    out = {}
    for f in sorted((table / "_delta_log").glob("*.json")):
        for line in f.read_text().splitlines():
            a = json.loads(line)
            if "txn" in a:
                out[a["txn"]["appId"]] = a["txn"]["version"]
    return out


def check_changelog(rows, initial_ids, done):
    """One row per record, in offset order: the copy of every existing document, then one per
    operation in the order MongoDB applied them (one partition)."""
    copies = [r for r in rows[:len(initial_ids)]]
    assert [(r["_op"], r["_id"]) for r in copies] == [("insert", i) for i in sorted(initial_ids)]
    events = rows[len(initial_ids):]
    assert len(events) == len(done), (len(events), len(done))
    for n, (r, (op, _id)) in enumerate(zip(events, done)):
        if r["_id"] is None:  # see test_sync.check_result: an update of a document deleted before its lookup
            assert r["_op"] == op == "update" and ("delete", _id) in done[n:], (n, r, op, _id)
        else:
            assert (r["_op"], r["_id"]) == (op, _id), (n, r, op, _id)
    offsets = [r["_kafka_offset"] for r in rows]
    assert offsets == sorted(set(offsets)), "an offset twice in the change log"


def test_produce_and_ingest_follow_a_random_workload(kafka, mongo, mongo_db, tmp_path, spark):
    ids = seed(mongo_db.c, 300)
    prefix = f"i{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}.{mongo_db.name}.c"
    table, log = tmp_path / "mirror", tmp_path / "log"
    settle()
    produce = start_produce(mongo, mongo_db.name, kafka.bootstrap, prefix, idle=10)
    wait_copied(kafka, prefix)
    ingest = start_ingest(kafka.bootstrap, topic, "g1", table, log, idle=25)
    done = workload(mongo_db.c, N_OPS, 300, seed=3)
    finish(produce)
    err = finish(ingest)
    assert f"{len(ids) + len(done)} records" in err, err[-2000:]
    check_table(table_rows(spark.read.format("delta").load(str(table)).toArrow()), list(mongo_db.c.find()))
    check_changelog(changelog(log), ids, done)
    # the tables hold the partition's position: the last offset + 1 (a transaction marker may follow it)
    app = f"mongo2delta-kafka:g1:{topic}:0"
    last = max(r["_kafka_offset"] for r in changelog(log))
    assert txns(table)[app] == txns(log)[app] == last + 1
    # a rerun of the same group finds nothing new
    p = run_m2d("kafka-ingest", "--brokers", kafka.bootstrap, "--topic", topic, "--group", "g1", "--table", table,
                "--mode", "both", "--changelog-table", log, "--stop-when-idle", "5", check=True, timeout=120)
    assert "0 records" in p.stderr, p.stderr[-2000:]
