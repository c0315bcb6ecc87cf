"""mongo2delta kafka-produce: change streams into Kafka in the MongoDB Kafka source connector's
format. A random workload runs while kafka-produce follows it with --startup copy-existing; a
read_committed consumer sees every existing document once (marked as a copy) and then one record
per operation in order, keyed by the documentKey; the same with kafka-produce killed (SIGKILL)
and restarted, and with the broker restarted under it; the JSON forms differ as documented;
heartbeats move a quiet collection's stored position on with the oplog (so a restart resumes
after the history before it was lost); --metrics-port counts what the topics hold."""
import datetime
import json
import os
import random
import signal
import time
import urllib.error
import urllib.request
import uuid

import bson
import pytest
from pymongo.errors import OperationFailure

from conftest import KafkaTestServer, MongoTestServer, m2d_bin, run_m2d, start_m2d
from test_sync import free_port, settle, workload

N_OPS = int(os.environ.get("M2D_KAFKA_OPS", "500"))


def start_produce(mongo, db, brokers, prefix, *extra, idle=None):
    args = [m2d_bin(), "kafka-produce", "--uri", mongo.uri, "--db", db, "--collection", "c", "--brokers", brokers,
            "--topic-prefix", prefix, "--startup", "copy-existing", "--max-latency", "200", "--max-batch", "100",
            *extra]
    if idle:
        args += ["--stop-when-idle", str(idle)]
    return start_m2d(*args[1:], binary=args[0])


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


def positions(kafka, prefix, idle=2):
    """The positions in the offsets topic, oldest first, parsed."""
    return [json.loads(v) for _, _, _, v in kafka.read_all(f"{prefix}.mongo2delta-offsets", idle=idle)]


def summary_numbers(err):
    """(records, transactions, heartbeats) from kafka-produce's summary line."""
    import re
    m = re.search(r"(\d+) record\(s\) in (\d+) transaction\(s\) \(\d+ aborted and sent again\), (\d+) heartbeat",
                  err)
    assert m, err[-2000:]
    return tuple(int(x) for x in m.groups())


def test_heartbeats_keep_an_idle_position_fresh(kafka):
    """A quiet collection while another one of the database is written: the change stream's resume
    token moves on with the oplog, and kafka-produce stores it as the position (a heartbeat, no
    record in the collection's topic). The oplog then drops what came before (m2dForgetHistory,
    on a server of this test's own): the event's position cannot be resumed from any more, the
    heartbeat's can, and the restart sees the next event once."""
    server = MongoTestServer().start()
    client = server.client()
    try:
        db = client.hb
        prefix = f"h{uuid.uuid4().hex[:6]}"
        topic, hb_topic = f"{prefix}.hb.c", f"{prefix}.heartbeats"
        source = "mongo2delta-produce:hb.c"
        hb_args = ("--heartbeat-interval", "1", "--heartbeat-topic", hb_topic)
        proc = start_produce(server, "hb", kafka.bootstrap, prefix, *hb_args)
        wait_copied(kafka, prefix)
        db.c.insert_one({"_id": 1, "n": 1})
        deadline = time.time() + 60
        while time.time() < deadline and len(kafka.read_all(topic, idle=0.5)) < 1:
            time.sleep(0.3)
        [(k, v)] = records(kafka, topic, idle=1)
        assert k == {"_id": 1} and v["operationType"] == "insert"
        at_event = next(p for p in positions(kafka, prefix) if p["seq"] == 1)
        assert json.loads(at_event["resumeToken"]) == v["_id"]

        # the oplog rolls over: nothing before this moment can be resumed from
        client.admin.command("m2dForgetHistory", 1)
        # c stays quiet while another collection of the database is written
        for i in range(8):
            db.other.insert_one({"_id": i})
            time.sleep(0.5)
        deadline = time.time() + 30
        while time.time() < deadline:
            last = positions(kafka, prefix)[-1]
            if last["resumeToken"] != at_event["resumeToken"]:
                break
            time.sleep(0.5)
        time.sleep(4)  # the last writes' token too (the test server gives it once 2 s old)
        proc.send_signal(signal.SIGTERM)
        err = finish(proc)
        _, _, n_heartbeats = summary_numbers(err)

        stored = positions(kafka, prefix)
        last = stored[-1]
        assert last["phase"] == "stream" and last["seq"] == 1, last
        assert last["resumeToken"] != at_event["resumeToken"], "the position did not move on while c was quiet"
        assert len(kafka.read_all(topic, idle=1)) == 1, "a heartbeat is no record in the collection's topic"
        # one record per heartbeat in the heartbeat topic, each a new token; every position after
        # the event's is one of them (a heartbeat may also have come before the event: the stream's
        # first token, when it started from a time)
        beats = records(kafka, hb_topic, idle=1)
        assert [k for k, _ in beats] == [{"_id": source}] * n_heartbeats
        beat_tokens = [v["_id"] for _, v in beats]
        assert len({json.dumps(t, sort_keys=True) for t in beat_tokens}) == len(beat_tokens), beat_tokens
        after = [json.loads(p["resumeToken"]) for p in stored[stored.index(at_event) + 1:]]
        assert after and after == beat_tokens[-len(after):], (after, beat_tokens)

        # the event's position is gone from the server's history; the heartbeat's is not
        with pytest.raises(OperationFailure) as exc:
            db.c.watch(resume_after=json.loads(at_event["resumeToken"]))
        assert exc.value.code == 286, exc.value.details
        db.c.insert_one({"_id": 2, "n": 2})
        proc = start_produce(server, "hb", kafka.bootstrap, prefix, *hb_args, idle=5)
        err = finish(proc)
        assert "resumed" in err and "1 change event(s)" in err and "0 document(s) copied" in err, err
        recs = records(kafka, topic, idle=2)
        assert [(v["operationType"], k["_id"]) for k, v in recs] == [("insert", 1), ("insert", 2)]
        assert positions(kafka, prefix)[-1]["seq"] == 2
    finally:
        client.close()
        server.stop()


def test_heartbeats_off(kafka, mongo, mongo_db):
    """--heartbeat-interval 0: the position stays at the last event however the oplog moves."""
    prefix = f"z{uuid.uuid4().hex[:6]}"
    settle()
    proc = start_produce(mongo, mongo_db.name, kafka.bootstrap, prefix, "--heartbeat-interval", "0")
    wait_copied(kafka, prefix)
    mongo_db.c.insert_one({"_id": 1})
    deadline = time.time() + 60
    while time.time() < deadline and positions(kafka, prefix, idle=0.5)[-1]["seq"] < 1:
        time.sleep(0.3)
    for i in range(6):
        mongo_db.other.insert_one({"_id": i})
        time.sleep(0.5)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    _, _, n_heartbeats = summary_numbers(finish(proc))
    stored = positions(kafka, prefix)
    assert n_heartbeats == 0 and stored[-1]["seq"] == 1
    assert json.loads(stored[-1]["resumeToken"]) == records(kafka, f"{prefix}.{mongo_db.name}.c", idle=1)[0][1]["_id"]


def scrape(port):
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in page.splitlines()
            if ln and not ln.startswith("#")}


def test_metrics(kafka, mongo, mongo_db):
    """--metrics-port: the records counted per topic are those the topic holds, one transaction
    per position in the offsets topic, one heartbeat per heartbeat record."""
    ids = seed(mongo_db.c, 50)
    port = free_port()
    prefix = f"m{uuid.uuid4().hex[:6]}"
    topic, hb_topic = f"{prefix}.{mongo_db.name}.c", f"{prefix}.heartbeats"
    settle()
    proc = start_produce(mongo, mongo_db.name, kafka.bootstrap, prefix, "--metrics-port", str(port),
                         "--heartbeat-interval", "1", "--heartbeat-topic", hb_topic)
    try:
        wait_copied(kafka, prefix)
        done = workload(mongo_db.c, 120, 50, seed=7)
        src = f'source="{mongo_db.name}.c"'
        deadline, values = time.time() + 60, {}
        while time.time() < deadline:
            values = scrape(port)
            if values.get(f'mongo2delta_kafka_produce_records_total{{topic="{topic}"}}') == len(ids) + len(done):
                break
            time.sleep(0.3)
        assert values.get(f'mongo2delta_kafka_produce_records_total{{topic="{topic}"}}') == len(ids) + len(done), values
        assert abs(values[f"mongo2delta_kafka_produce_last_event_timestamp_seconds{{{src}}}"] - time.time()) < 120
        assert 0 <= values[f"mongo2delta_kafka_produce_lag_seconds{{{src}}}"] < 120
        # quiet, while another collection is written: heartbeats
        for i in range(6):
            mongo_db.other.insert_one({"_id": i})
            time.sleep(0.5)
        time.sleep(5)  # until the token stops moving (the test server gives it once 2 s old)
        values = scrape(port)
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
    finally:
        proc.send_signal(signal.SIGTERM)
        err = finish(proc)
    assert f"metrics (Prometheus text) on http://127.0.0.1:{port}/metrics" in err
    n_records, n_transactions, n_heartbeats = summary_numbers(err)
    assert values[f'mongo2delta_kafka_produce_records_total{{topic="{topic}"}}'] == n_records == len(
        kafka.read_all(topic, idle=2)) == len(ids) + len(done)
    assert values[f"mongo2delta_kafka_produce_transactions_total{{{src}}}"] == n_transactions == len(
        positions(kafka, prefix))
    assert values[f"mongo2delta_kafka_produce_commit_seconds_count{{{src}}}"] == n_transactions
    assert values[f"mongo2delta_kafka_produce_heartbeats_total{{{src}}}"] == n_heartbeats == len(
        kafka.read_all(hb_topic, idle=1)) >= 1
    assert values[f"mongo2delta_kafka_produce_aborted_transactions_total{{{src}}}"] == 0
    assert values[f'mongo2delta_kafka_produce_reconnects_total{{{src},server="mongodb"}}'] == 0
    assert values[f'mongo2delta_kafka_produce_reconnects_total{{{src},server="kafka"}}'] == 0
    assert f'mongo2delta_kafka_produce_records_total{{topic="{hb_topic}"}}' not in values
