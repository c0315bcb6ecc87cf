"""mongo2delta kafka-ingest: change events from Kafka into a mirror table and a change log,
exactly once. kafka-produce follows a random workload into a topic while kafka-ingest applies the
topic; afterwards the mirror (read by Spark) equals the collection and the change log holds one
row per event, in each partition's offset order; the same with either command killed (SIGKILL)
and restarted, with several instances in one group, and with records that cannot be applied."""
import json
import os
import random
import signal
import time
import uuid

import pytest
from deltalake import DeltaTable

from bson_mapping import check_spark_table
import delta_log
from conftest import run_m2d, start_m2d
from test_kafka_produce import seed, start_produce, wait_copied
from test_sync import settle, workload

N_OPS = int(os.environ.get("M2D_KAFKA_INGEST_OPS", "5000"))  # the end-to-end run (the 5,000)
N_OPS_FAULTS = int(os.environ.get("M2D_KAFKA_INGEST_FAULT_OPS", "1500"))  # the runs with kills and restarts


def spawn(args):
    return start_m2d(*args)


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


def drain_produce(mongo, db, brokers, prefix):
    """kafka-produce once more until the stream is quiet: what happened after a SIGTERM'd run read
    its last event goes to the topic too (a resumed run, exactly once)."""
    p = run_m2d("kafka-produce", "--uri", mongo.uri, "--db", db, "--collection", "c", "--brokers", brokers,
                "--topic-prefix", prefix, "--stop-when-idle", "4", check=True, timeout=300)
    assert "resum" in p.stderr, p.stderr[-2000:]


def changelog(log):
    cols = ["_op", "_id", "_kafka_topic", "_kafka_partition", "_kafka_offset"]
    rows = DeltaTable(str(log)).to_pyarrow_table(columns=cols).to_pylist()
    return sorted(rows, key=lambda r: (r["_kafka_topic"], r["_kafka_partition"], r["_kafka_offset"]))


def txns(table):
    """appId -> version of the table's txn actions, as its log says (the newest per appId)."""
    return {t["appId"]: t["version"] for t in delta_log.actions(table, "txn")}


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
    check_spark_table(spark, table, list(mongo_db.c.find()))
    check_changelog(changelog(log), ids, done)
    # the tables hold the partition's position: the last offset + 1 (a transaction marker may follow it)
    app = f"mongo2delta-kafka:g1:{topic}:0"
    last = max(r["_kafka_offset"] for r in changelog(log))
    assert txns(table)[app] == txns(log)[app] == last + 1
    # a rerun of the same group finds nothing new
    p = run_m2d("kafka-ingest", "--brokers", kafka.bootstrap, "--topic", topic, "--group", "g1", "--table", table,
                "--mode", "both", "--changelog-table", log, "--stop-when-idle", "5", check=True, timeout=120)
    assert "0 records" in p.stderr, p.stderr[-2000:]


def make_topic(kafka, topic, partitions, **config):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config)])
    for f in fs.values():
        f.result(timeout=60)


def topic_records(kafka, topic):
    """{(partition, offset)} of every committed record of the topic (read_committed)."""
    return {(p, o) for p, o, _, _ in kafka.read_all(topic, idle=4)}


def check_exactly_once(kafka, topic, log, table, mongo_db, spark, ids, done):
    """The change log holds every committed record of the topic once; the mirror equals the collection;
    the tables' txn versions are each partition's last offset + 1."""
    rows = changelog(log)
    got = [(r["_kafka_partition"], r["_kafka_offset"]) for r in rows]
    assert len(got) == len(set(got)), "a record applied twice"
    want = topic_records(kafka, topic)
    assert set(got) == want, (sorted(want - set(got))[:10], sorted(set(got) - want)[:10])
    assert len(rows) == len(ids) + len(done), (len(rows), len(ids), len(done))
    # per _id, the operations in the order MongoDB applied them (an _id is in one partition); the
    # only ones missing are updates the test server could not name (see check_changelog)
    seen, want = {}, {}
    for r in rows:
        if r["_id"] is not None:
            seen.setdefault(r["_id"], []).append(r["_op"])
    for i in sorted(ids):
        want.setdefault(i, []).append("insert")
    for op, _id in done:
        want.setdefault(_id, []).append(op)
    unnamed = sum(r["_id"] is None for r in rows)
    missing = 0
    for _id, ops in want.items():
        applied = seen.get(_id, [])
        k = 0
        for op in ops:
            if k < len(applied) and applied[k] == op:
                k += 1
            else:
                assert op == "update", (_id, applied, ops)
                missing += 1
        assert k == len(applied), (_id, applied, ops)
    assert missing == unnamed, (missing, unnamed)
    check_spark_table(spark, table, list(mongo_db.c.find()))
    last = {}
    for p, o in got:
        last[p] = max(last.get(p, -1), o)
    t_m, t_l = txns(table), txns(log)
    for p, o in last.items():
        app = f"mongo2delta-kafka:g:{topic}:{p}"
        assert t_m[app] >= o + 1 and t_l[app] >= o + 1, (p, o, t_m.get(app), t_l.get(app))


def kill_rounds(kafka, mongo, mongo_db, tmp_path, spark, kills, partitions, which, seed_):
    """A workload while kafka-produce and kafka-ingest run; SIGKILL at random moments (of the
    commands in `which`), each restarted at once; at the end both finish and the tables are exact."""
    rnd = random.Random(seed_)
    ids = seed(mongo_db.c, 500)
    prefix = f"k{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}.{mongo_db.name}.c"
    make_topic(kafka, topic, partitions)
    table, log = tmp_path / "mirror", tmp_path / "log"
    settle()
    produce = start_produce(mongo, mongo_db.name, kafka.bootstrap, prefix)
    wait_copied(kafka, prefix)
    ingest = start_ingest(kafka.bootstrap, topic, "g", table, log)
    done = []
    per_round = max(N_OPS_FAULTS // (kills + 1), 50)
    for k in range(kills):
        done += workload(mongo_db.c, per_round, 500, seed=100 + k)
        time.sleep(rnd.uniform(0, 1.5))
        victims = {"produce": ["produce"], "ingest": ["ingest"], "both": ["produce", "ingest"],
                   "either": [rnd.choice(["produce", "ingest"])]}[which]
        if "produce" in victims:
            produce.send_signal(signal.SIGKILL)
            produce.wait()
            produce = start_produce(mongo, mongo_db.name, kafka.bootstrap, prefix)
        if "ingest" in victims:
            ingest.send_signal(signal.SIGKILL)
            ingest.wait()
            ingest = start_ingest(kafka.bootstrap, topic, "g", table, log)
    done += workload(mongo_db.c, per_round, 500, seed=199)
    time.sleep(2)
    produce.send_signal(signal.SIGTERM)
    finish(produce)
    drain_produce(mongo, mongo_db.name, kafka.bootstrap, prefix)
    # the produce side is done: let ingest drain the topic, then stop it
    ingest.send_signal(signal.SIGTERM)
    finish(ingest)
    p = run_m2d("kafka-ingest", "--brokers", kafka.bootstrap, "--topic", topic, "--group", "g", "--table", table,
                "--mode", "both", "--changelog-table", log, "--stop-when-idle", "6", check=True, timeout=300)
    assert "Sanitizer" not in p.stderr
    check_exactly_once(kafka, topic, log, table, mongo_db, spark, ids, done)


def test_ingest_and_produce_killed_and_restarted_exactly_once(kafka, mongo, mongo_db, tmp_path, spark):
    kill_rounds(kafka, mongo, mongo_db, tmp_path, spark, kills=3, partitions=3, which="either", seed_=7)


@pytest.mark.long
@pytest.mark.parametrize("which", ["produce", "ingest", "both"])
def test_killed_ten_times_exactly_once(kafka, mongo, mongo_db, tmp_path, spark, which):
    kill_rounds(kafka, mongo, mongo_db, tmp_path, spark, kills=10, partitions=3, which=which, seed_=11)


class LoggedIngest:
    """A kafka-ingest instance whose log goes to a file, so that the test can wait for what it
    says (a partition assigned, a batch committed) while it runs."""

    def __init__(self, path, brokers, topic, group, table, log):
        self.path = path
        args = ["kafka-ingest", "--brokers", brokers, "--topic", topic, "--group", group, "--table", table,
                "--max-latency", "300", "--max-batch-docs", "300", "--compact-every", "5",
                "--mode", "both", "--changelog-table", log]
        self.file = open(path, "w")
        self.proc = start_m2d(*args, stderr=self.file)

    def text(self):
        return self.path.read_text(errors="replace")

    def committed_records(self):
        """Records of the batches it committed so far (its "batch: N records ... committed" lines)."""
        import re
        return sum(int(n) for n in re.findall(r"batch: (\d+) records", self.text()))

    def finish(self, timeout=600):
        self.proc.wait(timeout=timeout)
        self.file.close()
        err = self.text()
        assert "Sanitizer" not in err and "runtime error:" not in err, err[-3000:]
        assert self.proc.returncode == 0, err[-3000:]
        return err


def wait_until(cond, what, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"waited {timeout} s for {what}")


def group_assignment(kafka, group):
    """{member id: [partitions]} of a consumer group that is stable, else None (rebalancing)."""
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    d = admin.describe_consumer_groups([group])[group].result(timeout=30)
    if d.state != ConsumerGroupState.STABLE:
        return None
    return {m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions) for m in d.members}


def wait_for_members(kafka, group, n):
    """Until the group is stable with n members, each holding at least one partition."""
    def ok():
        a = group_assignment(kafka, group)
        return a is not None and len(a) == n and all(a.values())
    wait_until(ok, f"group {group} stable with {n} members holding partitions")


def test_three_instances_in_a_group_with_a_kill_and_a_join(kafka, mongo, mongo_db, tmp_path, spark):
    """Three kafka-ingest instances share a 6-partition topic; one is killed and another joins mid-run
    (two rebalances): the mirror equals the collection, each partition's records applied once, and
    every instance did part of the work. The test waits for the group to settle after each change
    (the broker says who holds which partition) and for the instances to commit, so what it checks
    does not depend on how fast the machine is."""
    ids = seed(mongo_db.c, 500)
    prefix = f"s{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}.{mongo_db.name}.c"
    make_topic(kafka, topic, 6)
    table, log = tmp_path / "mirror", tmp_path / "log"
    settle()
    produce = start_produce(mongo, mongo_db.name, kafka.bootstrap, prefix)
    wait_copied(kafka, prefix)
    group = [LoggedIngest(tmp_path / f"ingest{i}.log", kafka.bootstrap, topic, "g", table, log) for i in range(3)]
    wait_for_members(kafka, "g", 3)
    done = workload(mongo_db.c, N_OPS_FAULTS // 3, 500, seed=31)
    # each of the three holds partitions and every partition gets operations (500 ids, keyed by _id)
    wait_until(lambda: all(g.committed_records() > 0 for g in group), "each of three instances to commit")
    group[1].proc.send_signal(signal.SIGKILL)  # its partitions move to the others after the session timeout
    group[1].proc.wait()
    group[1].file.close()
    wait_for_members(kafka, "g", 2)
    before = [g.committed_records() for g in (group[0], group[2])]
    done += workload(mongo_db.c, N_OPS_FAULTS // 3, 500, seed=32)
    wait_until(lambda: group[0].committed_records() > before[0] and group[2].committed_records() > before[1],
               "both survivors to commit after the rebalance")
    group.append(LoggedIngest(tmp_path / "ingest3.log", kafka.bootstrap, topic, "g", table, log))  # joins
    wait_for_members(kafka, "g", 3)
    done += workload(mongo_db.c, N_OPS_FAULTS // 3, 500, seed=33)
    wait_until(lambda: group[3].committed_records() > 0, "the instance that joined to commit")
    time.sleep(2)
    produce.send_signal(signal.SIGTERM)
    finish(produce)
    drain_produce(mongo, mongo_db.name, kafka.bootstrap, prefix)
    time.sleep(5)
    errs = []
    for g in (group[0], group[2], group[3]):
        g.proc.send_signal(signal.SIGTERM)
        errs.append(g.finish())
    assert all("rebalances" in e for e in errs)
    p = run_m2d("kafka-ingest", "--brokers", kafka.bootstrap, "--topic", topic, "--group", "g", "--table", table,
                "--mode", "both", "--changelog-table", log, "--stop-when-idle", "6", check=True, timeout=300)
    check_exactly_once(kafka, topic, log, table, mongo_db, spark, ids, done)
    # all six partitions' positions are in both tables
    assert {a for a in txns(table) if a.startswith(f"mongo2delta-kafka:g:{topic}:")} == \
        {f"mongo2delta-kafka:g:{topic}:{p}" for p in range(6)}


def test_a_broker_restart_under_both_commands(mongo, mongo_db, tmp_path, spark):
    from conftest import KafkaTestServer
    server = KafkaTestServer(data=tmp_path / "kafka").start()
    try:
        ids = seed(mongo_db.c, 300)
        prefix = "r"
        topic = f"{prefix}.{mongo_db.name}.c"
        table, log = tmp_path / "mirror", tmp_path / "log"
        settle()
        produce = start_produce(mongo, mongo_db.name, server.bootstrap, prefix)
        wait_copied(server, prefix)
        ingest = start_ingest(server.bootstrap, topic, "g", table, log)
        done = workload(mongo_db.c, N_OPS_FAULTS // 4, 300, seed=41)
        port = server.port
        assert server.stop() == 0
        done += workload(mongo_db.c, N_OPS_FAULTS // 8, 300, seed=42)  # while the broker is away
        time.sleep(3)
        server.start(port=port)
        done += workload(mongo_db.c, N_OPS_FAULTS // 8, 300, seed=43)
        time.sleep(3)
        produce.send_signal(signal.SIGTERM)
        finish(produce, timeout=600)
        drain_produce(mongo, mongo_db.name, server.bootstrap, prefix)
        time.sleep(8)
        ingest.send_signal(signal.SIGTERM)
        err = finish(ingest)
        p = run_m2d("kafka-ingest", "--brokers", server.bootstrap, "--topic", topic, "--group", "g", "--table", table,
                    "--mode", "both", "--changelog-table", log, "--stop-when-idle", "6", check=True, timeout=300)
        print(err[-5000:], p.stderr[-3000:])
        check_exactly_once(server, topic, log, table, mongo_db, spark, ids, done)
    finally:
        server.stop()


# topics that take a 20 MB record (the test broker's segments are smaller than that)
BIG = {"max.message.bytes": str(25 << 20), "segment.bytes": str(64 << 20)}


def poison_topic(kafka, n_good=20):
    """A topic of good change events with three poison records among them: invalid JSON, a change
    event without _id, a 20 MB value. Returns (topic, good documents, poison offsets)."""
    topic = f"poison-{uuid.uuid4().hex[:6]}"
    make_topic(kafka, topic, 1, **BIG)
    p = kafka.producer(**{"message.max.bytes": 25 << 20, "enable.idempotence": True})
    good, poison = [], {}

    def event(i):
        doc = {"_id": i, "n": i, "s": f"v{i}"}
        good.append(doc)
        return json.dumps({"_id": {"_data": f"{i:08x}"}, "operationType": "insert", "documentKey": {"_id": i},
                           "fullDocument": doc, "ns": {"db": "d", "coll": "c"}})

    values = [event(i) for i in range(n_good // 2)]
    values.append(("invalid JSON", '{"operationType": "insert", "fullDocument": {"_id": 1'))
    values.append(("without _id", json.dumps({"operationType": "insert", "fullDocument": {"n": 1},
                                               "ns": {"db": "d", "coll": "c"}})))
    values.append(("20 MB", json.dumps({"operationType": "insert", "documentKey": {"_id": "big"},
                                         "fullDocument": {"_id": "big", "blob": "x" * (20 << 20)}})))
    values += [event(i) for i in range(n_good // 2, n_good)]
    for n, v in enumerate(values):
        if isinstance(v, tuple):
            poison[n] = v[0]
            v = v[1]
        failed = []
        p.produce(topic, key=json.dumps({"_id": n}), value=v, on_delivery=lambda e, m: e and failed.append(e))
        p.flush(60)
        assert not failed, failed
    return topic, good, poison


def test_poison_records_go_to_the_dead_letter_topic(kafka, tmp_path):
    topic, good, poison = poison_topic(kafka)
    dlq = f"{topic}.dlq"
    make_topic(kafka, dlq, 1, **BIG)
    table = tmp_path / "mirror"
    p = run_m2d("kafka-ingest", "--brokers", kafka.bootstrap, "--topic", topic, "--group", "g", "--table", table,
                "--merge-strategy", "rewrite", "--dead-letter-topic", dlq, "--stop-when-idle", "5", check=True,
                timeout=300)
    assert "3 dead-lettered" in p.stderr, p.stderr[-2000:]
    rows = DeltaTable(str(table)).to_pyarrow_table().to_pylist()
    assert sorted((r["_id"], r["n"], r["s"]) for r in rows) == [(d["_id"], d["n"], d["s"]) for d in good]
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition
    c = kafka.consumer(f"dlq-{uuid.uuid4().hex[:6]}", **{"fetch.message.max.bytes": 25 << 20})
    c.assign([TopicPartition(dlq, 0, OFFSET_BEGINNING)])
    got, deadline = [], time.time() + 60
    while len(got) < 3 and time.time() < deadline:
        m = c.poll(1)
        if m is not None and not m.error():
            got.append(m)
    c.close()
    assert len(got) == 3
    reasons = {"invalid JSON": "invalid JSON", "without _id": "without _id", "20 MB": "16 MiB"}
    for m in got:
        h = {k: v.decode() for k, v in m.headers()}
        off = int(h["__connect.errors.offset"])
        assert h["__connect.errors.topic"] == topic and h["__connect.errors.partition"] == "0"
        assert reasons[poison[off]] in h["__connect.errors.exception.message"], (poison[off], h)
        assert json.loads(m.key()) == {"_id": off}  # the original key and value, untouched
    assert len(got[2].value()) > 20 << 20


def test_a_poison_record_without_a_dead_letter_topic_stops_the_run(kafka, tmp_path):
    topic, good, poison = poison_topic(kafka)
    table = tmp_path / "mirror"
    p = run_m2d("kafka-ingest", "--brokers", kafka.bootstrap, "--topic", topic, "--group", "g", "--table", table,
                "--merge-strategy", "rewrite", "--max-latency", "100000", "--stop-when-idle", "5", timeout=300)
    assert p.returncode == 1, p.stderr[-2000:]
    first = min(poison)
    assert f"topic {topic} partition 0 offset {first} cannot be applied: " in p.stderr and "invalid JSON" in p.stderr
    assert "--dead-letter-topic" in p.stderr
    # what came before it is committed, nothing after it
    rows = DeltaTable(str(table)).to_pyarrow_table().to_pylist()
    assert sorted(r["_id"] for r in rows) == [d["_id"] for d in good[:first]]
    assert txns(table)[f"mongo2delta-kafka:g:{topic}:0"] == first
    # a rerun stops at the same record: nothing is skipped
    p = run_m2d("kafka-ingest", "--brokers", kafka.bootstrap, "--topic", topic, "--group", "g", "--table", table,
                "--merge-strategy", "rewrite", "--stop-when-idle", "5", timeout=300)
    assert p.returncode == 1 and f"offset {first} cannot be applied" in p.stderr


def test_metrics_and_inspect_show_the_partitions(kafka, tmp_path):
    """--metrics-port: records consumed, batches, commit latency, lag per partition, rebalances;
    inspect: the next offset of each partition the table holds."""
    import urllib.error
    import urllib.request
    from test_sync import free_port
    topic = f"m-{uuid.uuid4().hex[:6]}"
    make_topic(kafka, topic, 2)
    p = kafka.producer()
    for i in range(100):
        doc = {"_id": i, "n": i}
        p.produce(topic, key=json.dumps({"_id": i}), partition=i % 2,
                  value=json.dumps({"operationType": "insert", "documentKey": {"_id": i}, "fullDocument": doc}))
    p.flush(60)
    table, port = tmp_path / "t", free_port()
    proc = spawn(["kafka-ingest", "--brokers", kafka.bootstrap, "--topic", topic, "--group", "gm", "--table", table,
                  "--max-latency", "100", "--metrics-port", port, "--stop-when-idle", "8"])
    try:
        deadline, values = time.time() + 60, {}
        want = f'mongo2delta_kafka_records_consumed_total{{topic="{topic}"}}'
        while time.time() < deadline:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except urllib.error.URLError:  # not listening yet
                time.sleep(0.3)
                continue
            values = {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in page.splitlines()
                      if ln and not ln.startswith("#")}
            lags = [values.get(f'mongo2delta_kafka_consumer_lag{{topic="{topic}",partition="{q}"}}') for q in (0, 1)]
            # records are counted as they are consumed, batches once committed: wait for both
            if values.get(want) == 100 and lags == [0, 0] and values.get("mongo2delta_kafka_batches_total", 0) >= 1 \
                    and values.get("mongo2delta_kafka_commit_seconds_count") == values["mongo2delta_kafka_batches_total"]:
                break
            time.sleep(0.5)
        assert values.get(want) == 100, values
        assert lags == [0, 0], lags
        assert values["mongo2delta_kafka_batches_total"] >= 1
        assert values["mongo2delta_kafka_commit_seconds_count"] == values["mongo2delta_kafka_batches_total"]
        assert values["mongo2delta_kafka_rebalances_total"] >= 1
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    info = json.loads(run_m2d("inspect", "--table", table, "--json", check=True).stdout)
    assert info["kafka"] == {"gm": {topic: {"0": 50, "1": 50}}}, info["kafka"]
    text = run_m2d("inspect", "--table", table, check=True).stdout
    assert f"kafka:         group gm, topic {topic}: [0] next offset 50 [1] next offset 50" in text, text
