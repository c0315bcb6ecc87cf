"""load --format kafka-connect-json: the files a Confluent S3 sink writes (default partitioner,
JsonFormat: topics/<topic>/partition=<p>/<topic>+<p>+<startOffset>.json, one record value per
line, flush.size records per file) into a mirror and a change log, exactly once.

A random workload runs on the test MongoDB server while kafka-produce follows it into a topic of
three partitions; the topic's records are read back with confluent-kafka and written out as the
sink would (by the offset of each file's first record). The files are loaded from a local folder
and from the S3 test server: the mirror equals the collection, the change log holds one row per
record in offset order, a rerun loads nothing, a file the sink wrote again is not applied twice,
files that come later are applied alone, and a missing file stops its partition (an error; with
--watch a wait) until it is there."""
import gzip
import json
import re
import signal
import time
import uuid
from typing import NamedTuple

import pytest
from deltalake import DeltaTable

from bson_mapping import check_table, check_spark_table
from conftest import run_m2d
from parquet_jsonform import table_rows
from test_kafka_ingest import finish, make_topic, spawn, txns
from test_kafka_produce import finish as finish_produce, seed, start_produce, wait_copied
from test_s3 import delta_rs, log_actions
from test_sync import settle, workload

PARTITIONS = 3


class Stream(NamedTuple):
    topic: str           # kafka-produce's topic (transactional: its offsets have commit markers between records)
    records: list        # [(partition, offset, key, value)] of it, read_committed
    plain_topic: str     # the same records written again by a plain producer: offsets without holes
    plain_records: list
    docs: list           # the collection after the workload


@pytest.fixture(scope="module")
def stream(kafka, mongo):
    """One workload followed by kafka-produce, shared by the tests (each writes its own files)."""
    client = mongo.client()
    db = client[f"t_load_kcj_{uuid.uuid4().hex[:8]}"]
    ids = seed(db.c, 200)
    prefix = f"l{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}.{db.name}.c"
    make_topic(kafka, topic, PARTITIONS)
    settle()
    produce = start_produce(mongo, db.name, kafka.bootstrap, prefix, idle=8)
    wait_copied(kafka, prefix)
    done = workload(db.c, 600, len(ids), seed=21)
    finish_produce(produce)
    records = kafka.read_all(topic, idle=4)
    assert len(records) == len(ids) + len(done), (len(records), len(ids), len(done))
    # a source without transactions (the MongoDB source connector without exactly-once support)
    plain_topic = f"{prefix}.plain"
    make_topic(kafka, plain_topic, PARTITIONS)
    producer = kafka.producer()
    for p, _, k, v in records:
        producer.produce(plain_topic, value=v, key=k, partition=p)
    assert producer.flush(60) == 0
    plain = kafka.read_all(plain_topic, idle=4)
    for p in range(PARTITIONS):
        offsets = [o for q, o, _, _ in plain if q == p]
        assert offsets == list(range(len(offsets))), f"partition {p}: offsets with holes"
    assert [(p, k, v) for p, _, k, v in plain] == [(p, k, v) for p, _, k, v in records]
    docs = list(db.c.find())
    yield Stream(topic, records, plain_topic, plain, docs)
    client.drop_database(db.name)
    client.close()


class SinkFile(NamedTuple):
    key: str         # the object name under the sink's bucket (topics.dir "topics")
    body: bytes
    partition: int
    start: int       # the offset of its first record, in its name
    records: list    # [(offset, key, value)] of its lines


def value_line(value, as_string):
    """A record value as the sink's JsonFormat writes it: the JSON the JsonConverter (schemas off)
    read, written again; or, behind a StringConverter, a JSON string holding the text."""
    text = json.dumps(json.loads(value), separators=(",", ":"))
    return json.dumps(text) if as_string else text


def sink_files(records, topic, flush_size, sizes=None, gz=(), as_string=()):
    """{partition: [SinkFile]}: what the S3 sink writes for records ([(partition, offset, key,
    value)] in offset order per partition), flush_size records per file, or as many as sizes[p]
    lists for the first files of partition p (a sink that rotated otherwise after a restart);
    partitions in gz compressed (s3.compression.type=gzip, .json.gz)."""
    by_p = {}
    for p, o, k, v in records:
        by_p.setdefault(p, []).append((o, k, v))
    out = {}
    for p, recs in sorted(by_p.items()):
        plan, files, i = list((sizes or {}).get(p, [])), [], 0
        while i < len(recs):
            chunk = recs[i:i + (plan.pop(0) if plan else flush_size)]
            ext = ".json.gz" if p in gz else ".json"
            key = f"topics/{topic}/partition={p}/{topic}+{p}+{chunk[0][0]:010d}{ext}"
            text = "".join(value_line(v, p in as_string) + "\n" for _, _, v in chunk).encode()
            files.append(SinkFile(key, gzip.compress(text) if p in gz else text, p, chunk[0][0], chunk))
            i += len(chunk)
        out[p] = files
    return out


def write(root, files):
    for f in files:
        path = root / f.key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("." + path.name)  # hidden until whole, as an upload is
        tmp.write_bytes(f.body)
        tmp.rename(path)


def expected_rows(files):
    """The change-log rows of these files' records: (partition, offset, _op, _id). The offset is the
    file's start offset + the line's index; _id None for an update whose document the test server
    could not name (kafka-produce wrote it without a key)."""
    out = []
    for f in files:
        for n, (_, k, v) in enumerate(f.records):
            key = json.loads(k) if k else None
            out.append((f.partition, f.start + n, json.loads(v)["operationType"], key["_id"] if key else None))
    return sorted(out)


def changelog(table, storage_options=None):
    cols = ["_kafka_partition", "_kafka_offset", "_op", "_id", "_kafka_topic"]
    rows = DeltaTable(str(table), storage_options=storage_options).to_pyarrow_table(columns=cols).to_pylist()
    return rows


def check_changelog(log, files, topic):
    rows = changelog(log)
    assert {r["_kafka_topic"] for r in rows} == {topic}
    got = sorted((r["_kafka_partition"], r["_kafka_offset"], r["_op"], r["_id"]) for r in rows)
    assert len(got) == len({g[:2] for g in got}), "a record twice in the change log"
    want = expected_rows(files)
    assert got == want, (len(got), len(want), [g for g in got if g not in want][:5], [w for w in want if w not in got][:5])


def load(*args, check=True):
    return run_m2d("load", "--format", "kafka-connect-json", *args, check=check, timeout=300)


def positions(table, topic):
    """partition -> the version of the table's txn for it."""
    prefix = f"mongo2delta-load-kafka:{topic}:"
    return {int(a[len(prefix):]): v for a, v in txns(table).items() if a.startswith(prefix)}


def end(files):
    return files[-1].start + len(files[-1].records)


def wait_for(cond, timeout=120, what="the condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def test_sink_files_from_a_local_folder_into_mirror_and_changelog(stream, tmp_path, spark):
    topic = stream.plain_topic
    sink, mirror, log = tmp_path / "sink", tmp_path / "mirror", tmp_path / "log"
    args = ["--input", sink, "--table", mirror, "--mode", "both", "--changelog-table", log]
    files = sink_files(stream.plain_records, topic, 7)
    first = {p: len(fs) // 3 for p, fs in files.items()}
    assert all(n >= 3 for n in first.values()) and all(len(files[p]) > first[p] + 4 for p in files)

    # the first third of every partition's files
    loaded = [f for p, fs in files.items() for f in fs[:first[p]]]
    write(sink, loaded)
    p = load(*args)
    assert f"{len(loaded)} file(s) loaded, 0 already loaded before; {sum(len(f.records) for f in loaded)} records " \
           f"of {PARTITIONS} partition(s)" in p.stderr, p.stderr[-2000:]
    check_changelog(log, loaded, topic)
    want = {q: end(fs[:first[q]]) for q, fs in files.items()}
    assert positions(mirror, topic) == positions(log, topic) == want

    # a rerun loads nothing; nor does one after the sink wrote two files again (same name, same content)
    versions = (DeltaTable(str(mirror)).version(), DeltaTable(str(log)).version())
    p = load(*args)
    assert f"0 file(s) loaded, {len(loaded)} already loaded before; 0 records" in p.stderr, p.stderr[-2000:]
    write(sink, [files[0][first[0] - 1], files[1][0]])
    p = load(*args)
    assert f"0 file(s) loaded, {len(loaded)} already loaded before; 0 records" in p.stderr, p.stderr[-2000:]
    assert (DeltaTable(str(mirror)).version(), DeltaTable(str(log)).version()) == versions

    # the sink restarted and rotated later: partition 0's last file written again from the same
    # start offset with three more records, the next files from there on
    sizes = [7] * (first[0] - 1) + [10]
    files[0] = sink_files([r for r in stream.plain_records if r[0] == 0], topic, 7, sizes={0: sizes})[0]
    straddling = files[0][first[0] - 1]
    assert len(straddling.records) == 10
    write(sink, [straddling])
    p = load(*args)
    assert "1 file(s) loaded" in p.stderr and " 3 records of" in p.stderr, p.stderr[-2000:]
    assert "only its records from offset" in p.stderr
    loaded = [f for q, fs in files.items() for f in fs[:first[q]]]
    check_changelog(log, loaded, topic)
    assert positions(log, topic)[0] == end(files[0][:first[0]])

    # more files come, one of partition 1 missing: an error naming the offsets; the other
    # partitions are loaded, partition 1 up to the missing file
    missing = files[1][first[1] + 2]
    held = files[0][-2:]  # kept for the --watch below
    later = [f for q, fs in files.items() for f in fs[first[q]:] if f is not missing and f not in held]
    write(sink, later)
    p = load(*args, check=False)
    assert p.returncode == 1, p.stderr[-2000:]
    assert f"[1]: offsets {missing.start} to {missing.start + len(missing.records) - 1} are in no file" in p.stderr, \
        p.stderr[-2000:]
    assert "run load again once the file is there" in p.stderr and "--allow-offset-gaps" in p.stderr
    assert positions(log, topic) == positions(mirror, topic) == {0: held[0].start, 1: missing.start, 2: end(files[2])}
    check_changelog(log, [f for f in loaded + later if f.partition != 1 or f.start < missing.start], topic)

    # --watch: new files of partition 0 are taken while partition 1 waits for its missing file,
    # which is taken when it appears, with the files after it
    watch = spawn(["load", "--format", "kafka-connect-json", *args, "--watch", "--interval", "200ms",
                   "--full-listing-every", "3"])
    try:
        write(sink, held)
        wait_for(lambda: positions(log, topic).get(0) == end(files[0]), what="partition 0's new files")
        assert positions(log, topic)[1] == missing.start
        write(sink, [missing])
        wait_for(lambda: positions(log, topic).get(1) == end(files[1]) and
                 positions(mirror, topic).get(1) == end(files[1]), what="partition 1's missing file")
    finally:
        watch.send_signal(signal.SIGTERM)
    err = finish(watch)
    assert "waiting for it" in err, err[-2000:]
    every = [f for fs in files.values() for f in fs]
    check_changelog(log, every, topic)
    # the offsets the change log gives are the records' own (the topic's offsets have no holes)
    assert sorted((r["_kafka_partition"], r["_kafka_offset"]) for r in changelog(log)) == \
        sorted((q, o) for q, o, _, _ in stream.plain_records)
    assert positions(mirror, topic) == positions(log, topic) == {q: end(fs) for q, fs in files.items()}
    check_spark_table(spark, mirror, stream.docs)


def test_sink_files_in_s3_of_a_transactional_topic(stream, s3_bucket, tmp_path):
    """kafka-produce writes in transactions: each commit marker takes an offset, so the sink's next
    file starts past the end of the one before. Without --allow-offset-gaps that is a missing file;
    with it the files load. Compressed files and values behind a StringConverter alike."""
    topic = stream.topic
    files = sink_files(stream.records, topic, 9, gz=(0, 2), as_string=(1,))
    c = s3_bucket.client
    for fs in files.values():
        for f in fs:
            c.put_object(Bucket=s3_bucket.name, Key=f"sink/{f.key}", Body=f.body)
    c.put_object(Bucket=s3_bucket.name, Key="sink/README.txt", Body=b"not a sink file")
    env = s3_bucket.env
    table = s3_bucket.url("lake/orders")
    args = ["--input", s3_bucket.url("sink/topics/"), "--table", table, "--merge-strategy", "rewrite",
            "--max-batch-docs", "100"]
    strict = run_m2d("load", "--format", "kafka-connect-json", *args, env=env, timeout=300)
    assert strict.returncode == 1 and "are in no file" in strict.stderr and "--allow-offset-gaps" in strict.stderr, \
        strict.stderr[-2000:]
    p = run_m2d("load", "--format", "kafka-connect-json", *args, "--allow-offset-gaps", env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    # the files before each partition's first hole, then the rest
    taken = [int(re.search(r"; (\d+) records of 3 partition\(s\)", q.stderr).group(1)) for q in (strict, p)]
    assert taken[0] > 0 and sum(taken) == sum(len(f.records) for fs in files.values() for f in fs), taken
    # a commit once the files taken hold 100 records
    commits = int(re.search(r"; (\d+) commit\(s\)", p.stderr).group(1))
    assert taken[1] // (100 + 9) <= commits <= taken[1] // 100 + 1, (commits, taken)
    check_table(table_rows(delta_rs(s3_bucket, table).to_pyarrow_table()), stream.docs)
    last = {}
    for _, a in log_actions(s3_bucket, "lake/orders"):
        if "txn" in a:
            last[a["txn"]["appId"]] = a["txn"]["version"]
    assert last == {f"mongo2delta-load-kafka:{topic}:{q}": end(fs) for q, fs in files.items()}
    p = run_m2d("load", "--format", "kafka-connect-json", *args, "--allow-offset-gaps", env=env, timeout=300)
    assert p.returncode == 0 and "0 file(s) loaded" in p.stderr and "0 records" in p.stderr, p.stderr[-2000:]


@pytest.mark.parametrize("fault", ["put_if_absent:2:crash-after", "put_if_absent:4:crash-after",
                                   "put_if_absent:3:crash-before", "create:5:crash-before"])
def test_killed_mid_load_and_run_again(stream, tmp_path, fault):
    """SIGKILL at a commit (the change log's is made first: crash-after kills between it and the
    mirror's) or while data files are written; the same command run again gives the exact tables."""
    topic = stream.plain_topic
    files = sink_files(stream.plain_records, topic, 8)
    every = [f for fs in files.values() for f in fs]
    sink, mirror, log = tmp_path / "sink", tmp_path / "mirror", tmp_path / "log"
    write(sink, every)
    args = ["--input", sink, "--table", mirror, "--mode", "both", "--changelog-table", log, "--merge-strategy",
            "rewrite", "--max-batch-docs", "60"]
    p = run_m2d("load", "--format", "kafka-connect-json", *args, env={"MONGO2DELTA_FAULT": fault}, timeout=300)
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr[-2000:])
    if fault.endswith("crash-after"):  # the change log holds a batch the mirror does not
        assert DeltaTable(str(log)).version() == DeltaTable(str(mirror)).version() + 1
        assert positions(log, topic) != positions(mirror, topic)
    p = load(*args)
    assert "0 rejected" in p.stderr, p.stderr[-2000:]
    check_changelog(log, every, topic)
    check_table(table_rows(DeltaTable(str(mirror)).to_pyarrow_table()), stream.docs)
    assert positions(mirror, topic) == positions(log, topic) == {q: end(fs) for q, fs in files.items()}


def test_a_bad_line_fails_its_file_or_goes_to_the_rejects(stream, tmp_path):
    topic = stream.plain_topic
    files = sink_files([r for r in stream.plain_records if r[0] == 0], topic, 5)[0][:3]
    lines = files[1].body.decode().splitlines(keepends=True)
    lines[2] = '{"operationType": "insert", "fullDocument": {"_id": \n'
    files[1] = files[1]._replace(body="".join(lines).encode())
    sink, log = tmp_path / "sink", tmp_path / "log"
    write(sink, files)
    args = ["--input", sink, "--table", log, "--mode", "changelog"]
    p = load(*args, check=False)
    assert p.returncode == 1, p.stderr[-2000:]
    assert f"{files[1].key}, line 3 (offset {files[1].start + 2} of {topic}[0])" in p.stderr, p.stderr[-2000:]
    assert "nothing of this file was committed" in p.stderr and "--rejects" in p.stderr
    check_changelog(log, files[:1], topic)  # the file before it is committed
    assert positions(log, topic) == {0: files[1].start}
    rejects = tmp_path / "rejects.jsonl"
    p = load(*args, "--rejects", rejects)
    assert "2 file(s) loaded" in p.stderr and "1 rejected" in p.stderr, p.stderr[-2000:]
    (r,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert r["file"].endswith(files[1].key) and r["lineNumber"] == 3 and r["offset"] == files[1].start + 2
    assert r["topic"] == topic and r["partition"] == 0 and r["line"] == lines[2].strip()
    bad = (0, files[1].start + 2)
    rows = sorted((x["_kafka_partition"], x["_kafka_offset"]) for x in changelog(log))
    assert rows == [w[:2] for w in expected_rows(files) if w[:2] != bad]
    assert positions(log, topic) == {0: end(files)}


def test_usage_errors(tmp_path):
    (tmp_path / "in").mkdir()
    p = load("--input", tmp_path / "in", "--table", tmp_path / "t", check=False)
    assert p.returncode == 2 and "no Kafka Connect sink files" in p.stderr, p.stderr
    p = run_m2d("load", "--input", tmp_path / "in", "--table", tmp_path / "t", "--mode", "both")
    assert p.returncode == 2 and "--mode applies to --format kafka-connect-json only" in p.stderr, p.stderr
    p = load("--input", tmp_path / "in", "--table", tmp_path / "t", "--record-format", "avro", check=False)
    assert p.returncode == 2 and "--record-format must be" in p.stderr, p.stderr
    (tmp_path / "in" / "t+0+0000000000.json").write_text("{}\n")
    p = load("--input", tmp_path / "in" / "t+0+0000000000.json", "--table", tmp_path / "t", check=False)
    assert p.returncode == 2 and "give the folder the sink writes to" in p.stderr, p.stderr


def test_plain_documents(kafka, mongo, mongo_db, tmp_path):
    """The source connector's publish.full.document.only (kafka-produce --full-document-only): each
    value is the document, upserted by _id. Without deletes: the sink drops tombstones
    (behavior.on.null.values=ignore) or fails on them, so its files cannot say what was deleted."""
    ids = seed(mongo_db.c, 60)
    prefix = f"d{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}.{mongo_db.name}.c"
    make_topic(kafka, topic, 2)
    settle()
    produce = start_produce(mongo, mongo_db.name, kafka.bootstrap, prefix, "--full-document-only", idle=6)
    wait_copied(kafka, prefix)
    for k in range(80):
        if k % 4 == 0:
            mongo_db.c.insert_one({"_id": 10_000 + k, "n": k, "nested": {"a": k}})
        elif k % 4 == 1:
            mongo_db.c.replace_one({"_id": ids[k % len(ids)]}, {"replaced": k, "tags": ["r"]})
        else:
            mongo_db.c.update_one({"_id": ids[k % len(ids)]}, {"$set": {"n": f"s{k}", "extra": k / 2}})
    finish_produce(produce)
    records = kafka.read_all(topic, idle=4)
    assert all(v is not None for _, _, _, v in records) and len(records) == len(ids) + 80
    files = sink_files(records, topic, 6)
    write(tmp_path / "sink", [f for fs in files.values() for f in fs])
    table = tmp_path / "mirror"
    p = load("--input", tmp_path / "sink", "--table", table, "--record-format", "documents", "--allow-offset-gaps",
             "--merge-strategy", "rewrite")
    assert f"{len(records)} records of 2 partition(s)" in p.stderr, p.stderr[-2000:]
    check_table(table_rows(DeltaTable(str(table)).to_pyarrow_table()), list(mongo_db.c.find()))
