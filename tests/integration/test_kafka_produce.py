"""mongo2delta kafka-produce: change streams into Kafka in the MongoDB Kafka source connector's
format. A random workload runs while kafka-produce follows it with --startup copy-existing; a
read_committed consumer sees every existing document once (marked as a copy) and then one record
per operation in order, keyed by the documentKey; the same with kafka-produce killed (SIGKILL)
and restarted, and with the broker restarted under it; the JSON forms differ as documented."""
import datetime
import json
import os
import random
import signal
import subprocess
import time
import uuid

import bson
import pytest

from conftest import SANITIZER_ENV, KafkaTestServer, m2d_bin, run_m2d
from test_sync import settle, workload

N_OPS = int(os.environ.get("M2D_KAFKA_OPS", "500"))


def start_produce(mongo, db, brokers, prefix, *extra, idle=None):
    args = [m2d_bin(), "kafka-produce", "--uri", mongo.uri, "--db", db, "--collection", "c", "--brokers", brokers,
            "--topic-prefix", prefix, "--startup", "copy-existing", "--max-latency", "200", "--max-batch", "100",
            *extra]
    if idle:
        args += ["--stop-when-idle", str(idle)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, **SANITIZER_ENV))


def finish(proc, timeout=300):
    _, err = proc.communicate(timeout=timeout)
    assert "Sanitizer" not in err and "runtime error:" not in err, err[-3000:]
    assert proc.returncode == 0, err[-3000:]
    return err


def records(kafka, topic, idle=5):
    """(key, value) of every committed record, both parsed; value None for a tombstone."""
    return [(json.loads(k) if k else None, json.loads(v) if v is not None else None)
            for _, _, k, v in kafka.read_all(topic, idle=idle)]


def check(recs, initial_ids, done, db):
    copies = [(k, v) for k, v in recs if v["_id"].get("copyingData") is True]
    assert [k["_id"] for k, _ in copies] == sorted(initial_ids), "each existing document exactly once, in _id order"
    for k, v in copies:
        assert v["operationType"] == "insert" and v["documentKey"] == k == {"_id": v["fullDocument"]["_id"]}
        assert v["ns"] == {"db": db, "coll": "c"} and v["_id"]["_id"] == k["_id"]
    assert recs[:len(copies)] == copies, "the copy comes first"
    events = recs[len(copies):]
    ops = [(v["operationType"], k["_id"] if k else None) for k, v in events]
    assert len(ops) == len(done), (len(ops), len(done))
    for n, ((op, _id), (want_op, want_id)) in enumerate(zip(ops, done)):
        if _id is None:
            # the test server names an updated document only through its looked-up full document
            # (its documentKey is the update itself): when the document was deleted before the
            # event was read, the event does not say which it was (MongoDB's documentKey does)
            assert op == want_op == "update" and ("delete", want_id) in done[n:], (n, op, want_op, want_id)
        else:
            assert (op, _id) == (want_op, want_id), (n, op, _id, want_op, want_id)
    for k, v in events:  # the connector's fields
        assert set(v) >= {"_id", "operationType", "clusterTime", "ns", "documentKey"}, v
        assert "_data" in v["_id"] and "$timestamp" in v["clusterTime"] and v["ns"] == {"db": db, "coll": "c"}
        if k:
            assert v["documentKey"]["_id"] == k["_id"]
        if v["operationType"] != "delete" and v.get("fullDocument") and "_id" in v["fullDocument"]:
            assert v["fullDocument"]["_id"] == k["_id"]  # (the test server's lookup after a replace has none)
    # each transaction's position went into the compacted offsets topic
    return copies, events


def wait_copied(kafka, prefix, timeout=120):
    """Until the offsets topic says the copy is over (documents written during the copy would be
    both copied and reported by the stream, as with the connector)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        recs = kafka.read_all(f"{prefix}.mongo2delta-offsets", idle=0.5)
        if recs and json.loads(recs[-1][3])["phase"] == "stream":
            return
        time.sleep(0.3)
    raise AssertionError("the copy did not end")


def seed(coll, n):
    coll.insert_many([{"_id": i, "n": i, "tags": [f"t{i % 5}"], "nested": {"a": i % 7}} for i in range(n)])
    return list(range(n))


def test_copy_existing_then_a_random_workload(kafka, mongo, mongo_db):
    ids = seed(mongo_db.c, 300)
    prefix = f"p{uuid.uuid4().hex[:6]}"
    settle()
    proc = start_produce(mongo, mongo_db.name, kafka.bootstrap, prefix, idle=8)
    wait_copied(kafka, prefix)
    done = workload(mongo_db.c, N_OPS, 300, seed=11)
    err = finish(proc)
    assert "300 document(s) copied" in err and f"{len(done)} change event(s)" in err, err
    check(records(kafka, f"{prefix}.{mongo_db.name}.c"), ids, done, mongo_db.name)
    offsets = kafka.read_all(f"{prefix}.mongo2delta-offsets", idle=3)
    key = f"mongo2delta-produce:{mongo_db.name}.c".encode()
    assert offsets and all(k == key for _, _, k, _ in offsets)
    last = json.loads(offsets[-1][3])
    assert last["phase"] == "stream" and last["seq"] == len(done) and last["resumeToken"]
    # nothing new: a rerun resumes from the offsets topic and writes nothing
    p = run_m2d("kafka-produce", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--brokers",
                kafka.bootstrap, "--topic-prefix", prefix, "--stop-when-idle", "3", check=True)
    assert "0 change event(s)" in p.stderr and "resumed" in p.stderr and "0 document(s) copied" in p.stderr
    assert len(kafka.read_all(f"{prefix}.{mongo_db.name}.c", idle=3)) == len(ids) + len(done)


def test_killed_and_restarted_exactly_once(kafka, mongo, mongo_db):
    n_docs = 2000  # a copy long enough to be killed in, at times
    ids = seed(mongo_db.c, n_docs)
    prefix = f"p{uuid.uuid4().hex[:6]}"
    rnd = random.Random(5)
    settle()
    proc = start_produce(mongo, mongo_db.name, kafka.bootstrap, prefix)
    wait_copied(kafka, prefix)
    done = []
    for round_ in range(3):
        time.sleep(rnd.uniform(0.5, 2.5))
        done += workload(mongo_db.c, N_OPS // 4, n_docs, seed=50 + round_)
        time.sleep(rnd.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = start_produce(mongo, mongo_db.name, kafka.bootstrap, prefix)
    done += workload(mongo_db.c, N_OPS // 4, n_docs, seed=59)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)  # commits the batch in hand, exits 0
    finish(proc)
    p = run_m2d("kafka-produce", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--brokers",
                kafka.bootstrap, "--topic-prefix", prefix, "--stop-when-idle", "4", check=True, timeout=300)
    assert "resumed" in p.stderr
    check(records(kafka, f"{prefix}.{mongo_db.name}.c"), ids, done, mongo_db.name)


def test_a_broker_restart_under_it(mongo, mongo_db, tmp_path):
    server = KafkaTestServer(data=tmp_path / "kafka").start()
    try:
        ids = seed(mongo_db.c, 200)
        settle()
        proc = start_produce(mongo, mongo_db.name, server.bootstrap, "r", idle=20)
        wait_copied(server, "r")
        done = workload(mongo_db.c, N_OPS // 2, 200, seed=21)
        port = server.port
        assert server.stop() == 0
        done += workload(mongo_db.c, N_OPS // 4, 200, seed=22)  # while the broker is away
        time.sleep(3)
        server.start(port=port)
        done += workload(mongo_db.c, N_OPS // 4, 200, seed=23)
        err = finish(proc, timeout=600)
        check(records(server, f"r.{mongo_db.name}.c"), ids, done, mongo_db.name)
        assert f"{len(done)} change event(s)" in err, err
    finally:
        server.stop()


def test_output_formats(kafka, mongo, mongo_db):
    oid = bson.ObjectId("5f15aab12435743f9bd126a4")
    when = datetime.datetime(2023, 5, 11, 8, 27, 7, tzinfo=datetime.timezone.utc)
    mongo_db.c.insert_one({"_id": oid, "i": 87, "l": bson.Int64(1 << 40), "d": 23.5, "when": when,
                           "dec": bson.Decimal128("12345.6789"), "bin": bson.Binary(b"I love formatting!", 0)})
    settle()  # else the insert, in the stream's first second, is an event too
    got = {}
    for form in ("extended-json", "relaxed-json", "simplified-json"):
        prefix = f"f{uuid.uuid4().hex[:6]}"
        run_m2d("kafka-produce", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--brokers",
                kafka.bootstrap, "--topic-prefix", prefix, "--output-format", form, "--stop-when-idle", "2",
                check=True)
        [(k, v)] = records(kafka, f"{prefix}.{mongo_db.name}.c", idle=3)
        got[form] = (k, v["fullDocument"])
    ext_key, ext = got["extended-json"]
    rel_key, rel = got["relaxed-json"]
    sim_key, sim = got["simplified-json"]
    # canonical Extended JSON: every number typed, dates as {"$numberLong": ms}
    assert ext_key == {"_id": {"$oid": str(oid)}}
    assert ext["i"] == {"$numberInt": "87"} and ext["l"] == {"$numberLong": str(1 << 40)}
    assert ext["d"] == {"$numberDouble": "23.5"} and ext["when"] == {"$date": {"$numberLong": "1683793627000"}}
    # relaxed: plain JSON numbers, dates as ISO-8601 strings in $date
    assert rel_key == ext_key and rel["i"] == 87 and rel["l"] == 1 << 40 and rel["d"] == 23.5
    assert rel["when"] == {"$date": "2023-05-11T08:27:07Z"} and rel["dec"] == {"$numberDecimal": "12345.6789"}
    # simplified (the connector's SimplifiedJson): ObjectId, Decimal128, dates and binary as strings
    assert sim_key == {"_id": str(oid)} and sim["_id"] == str(oid) and sim["dec"] == "12345.6789"
    assert sim["when"] == "2023-05-11T08:27:07Z" and sim["bin"] == "SSBsb3ZlIGZvcm1hdHRpbmch" and sim["l"] == 1 << 40
    # --full-document-only: the value is the document itself, a delete a tombstone
    prefix = f"o{uuid.uuid4().hex[:6]}"
    settle()
    proc = start_produce(mongo, mongo_db.name, kafka.bootstrap, prefix, "--full-document-only", idle=4)
    time.sleep(2)
    mongo_db.c.delete_one({"_id": oid})
    finish(proc)
    [(k1, v1), (k2, v2)] = records(kafka, f"{prefix}.{mongo_db.name}.c", idle=3)
    assert k1 == k2 == rel_key and v1["_id"] == {"$oid": str(oid)} and "operationType" not in v1 and v2 is None
