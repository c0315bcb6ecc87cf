"""mongo2delta snapshot and load: collections (from the test server) and export files into
Delta tables that delta-rs and Spark read back as the documents, under the mapping of
docs/type-mapping.md; resumable after SIGKILL and Ctrl-C without duplicates."""
import datetime as dt
import decimal
import json
import os
import random
import signal
import time

import bson
import pymongo
import pytest
from bson import json_util
from bson.raw_bson import RawBSONDocument
from deltalake import DeltaTable

from bson_mapping import JSON_OPTIONS, ONE_PER_TYPE, check_table, encode, parse_rescued, check_spark_table
from conftest import TESTDATA, m2d_bin, run_m2d, start_m2d
from parquet_jsonform import table_rows

SAMPLES = sorted((TESTDATA / "mongodb-sample").glob("*/*.json"))


def read_export(path):
    return [json_util.loads(line, json_options=JSON_OPTIONS) for line in path.read_text().splitlines() if line.strip()]


def delta_rs_rows(table):
    return table_rows(DeltaTable(str(table)).to_pyarrow_table())


def snapshot(mongo, db, coll, table, *extra, **kw):
    return run_m2d("snapshot", "--uri", mongo.uri, "--db", db, "--collection", coll, "--table", table, *extra, **kw)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}.{p.stem}")
def test_sample_collection_through_snapshot(path, mongo, mongo_db, tmp_path, spark):
    docs = read_export(path)
    mongo_db[path.stem].insert_many([dict(d) for d in docs])
    table = tmp_path / path.stem
    p = snapshot(mongo, mongo_db.name, path.stem, table, "--workers", 2, check=True)
    assert f"{len(docs)} documents" in p.stderr
    check_table(delta_rs_rows(table), docs)
    check_spark_table(spark, table, docs)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}.{p.stem}")
def test_sample_collection_through_load(path, tmp_path):
    docs = read_export(path)
    table = tmp_path / path.stem
    run_m2d("load", "--input", path, "--table", table, check=True)
    check_table(delta_rs_rows(table), docs)


def generated(n, seed=7):
    """Documents with nested documents, arrays, mixed types, odd field names, missing fields."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        d = {"_id": i, "n": i * 3}
        if i % 3:
            d["name"] = f"doc {i}"
        if i % 5 == 0:
            d["mixed"] = "text" if i % 10 else i  # an integer column that meets strings: rescued
        else:
            d["mixed"] = i
        d["nested"] = {"a": rnd.randint(0, 100), "b": {"c": [rnd.random() for _ in range(i % 4)]}}
        d["odd name.with dot"] = i % 2 == 0
        d["tags"] = [f"t{j}" for j in range(i % 3)]
        out.append(d)
    return out


def insert(coll, docs, batch=20000):
    for s in range(0, len(docs), batch):
        coll.insert_many(docs[s:s + batch])


def test_generated_collection_with_two_workers(mongo, mongo_db, tmp_path):
    docs = generated(20000)
    insert(mongo_db.gen, docs)
    table = tmp_path / "gen"
    p = snapshot(mongo, mongo_db.name, "gen", table, "--workers", 2, check=True)
    assert "20000 documents" in p.stderr and "rescued into _rescued_data: mixed" in p.stderr
    rows = delta_rs_rows(table)
    check_table(rows, docs)
    assert sum(r["n"] for r in rows) == sum(d["n"] for d in docs)


def test_rerun_after_completion_reads_nothing(mongo, mongo_db, tmp_path):
    insert(mongo_db.c, generated(3000))
    table = tmp_path / "c"
    snapshot(mongo, mongo_db.name, "c", table, check=True)
    version = DeltaTable(str(table)).version()
    p = snapshot(mongo, mongo_db.name, "c", table, check=True)
    assert "already complete" in p.stderr
    assert DeltaTable(str(table)).version() == version


def test_restart_replaces_the_contents(mongo, mongo_db, tmp_path):
    docs = generated(3000)
    insert(mongo_db.c, docs)
    table = tmp_path / "c"
    snapshot(mongo, mongo_db.name, "c", table, check=True)
    mongo_db.c.delete_many({"_id": {"$gte": 1500}})
    p = snapshot(mongo, mongo_db.name, "c", table, "--restart", check=True)
    assert "1500 documents" in p.stderr
    check_table(delta_rs_rows(table), docs[:1500])


def test_another_collection_into_the_same_table_is_refused(mongo, mongo_db, tmp_path):
    insert(mongo_db.a, generated(100))
    insert(mongo_db.b, generated(100))
    table = tmp_path / "t"
    snapshot(mongo, mongo_db.name, "a", table, check=True)
    p = snapshot(mongo, mongo_db.name, "b", table)
    assert p.returncode == 2 and "another collection" in p.stderr and "--restart" in p.stderr


def test_filter_and_projection(mongo, mongo_db, tmp_path):
    docs = generated(2000)
    insert(mongo_db.c, docs)
    table = tmp_path / "c"
    snapshot(mongo, mongo_db.name, "c", table, "--filter", '{"n": {"$lt": 300}}', "--projection", '{"n": 1, "tags": 1}',
             check=True)
    want = [{"_id": d["_id"], "n": d["n"], "tags": d["tags"]} for d in docs if d["n"] < 300]
    check_table(delta_rs_rows(table), want)
    p = snapshot(mongo, mongo_db.name, "c", tmp_path / "x", "--filter", "{not json")
    assert p.returncode == 2 and "--filter" in p.stderr


def test_all_collections(mongo, mongo_db, tmp_path):
    sets = {"one": generated(500, 1), "two": generated(300, 2)}
    for name, docs in sets.items():
        insert(mongo_db[name], docs)
    run_m2d("snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--all-collections", "--table-root", tmp_path,
            check=True)
    for name, docs in sets.items():
        check_table(delta_rs_rows(tmp_path / name), docs)


def test_usage_errors(mongo, tmp_path):
    p = run_m2d("snapshot", "--uri", mongo.uri, "--db", "d", "--table", tmp_path / "t")
    assert p.returncode == 2 and "--collection" in p.stderr
    p = run_m2d("snapshot", "--uri", mongo.uri, "--db", "d", "--collection", "c", "--table", tmp_path / "t",
                "--workers", "0")
    assert p.returncode == 2


def start_snapshot(mongo, db, coll, table, binary=None):
    return start_m2d("snapshot", "--uri", mongo.uri, "--db", db, "--collection", coll, "--table", table,
                     "--workers", "2", binary=binary)


def committed_ids(table):
    if not (table / "_delta_log").exists() or not list((table / "_delta_log").glob("*.json")):
        return []
    return [r["_id"] for r in delta_rs_rows(table)]


def kill_trials(mongo, db, coll, docs, table, trials, seed, max_delay):
    """SIGKILL the snapshot at random moments, checking each time that the table is readable
    and holds no duplicate; then let it finish and compare with the collection."""
    rnd = random.Random(seed)
    release = os.path.join(os.path.dirname(m2d_bin()), "..", "mongo2delta")
    binary = release if os.path.exists(release) else None  # the optimized build gets further in the time
    for _ in range(trials):
        proc = start_snapshot(mongo, db, coll, table, binary)
        time.sleep(rnd.uniform(0.05, max_delay))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ids = committed_ids(table)
        assert len(ids) == len(set(ids)), "a document is in the table twice"
    p = snapshot(mongo, db, coll, table, "--workers", 2, check=True)
    rows = delta_rs_rows(table)
    check_table(rows, docs)
    return p


def test_sigkill_then_resume(mongo, mongo_db, tmp_path):
    docs = generated(60000)
    insert(mongo_db.k, docs)
    kill_trials(mongo, mongo_db.name, "k", docs, tmp_path / "k", trials=3, seed=11, max_delay=2.0)


@pytest.mark.long
def test_sigkill_ten_times_then_resume(mongo, mongo_db, tmp_path):
    docs = generated(300000)
    insert(mongo_db.k, docs)
    kill_trials(mongo, mongo_db.name, "k", docs, tmp_path / "k", trials=10, seed=5, max_delay=6.0)


def test_ctrl_c_keeps_what_is_committed(mongo, mongo_db, tmp_path):
    docs = generated(60000)
    insert(mongo_db.c, docs)
    table = tmp_path / "c"
    proc = start_snapshot(mongo, mongo_db.name, "c", table)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), err
    if proc.returncode == 130:
        assert "interrupted" in err and "run the same command" in err
    ids = committed_ids(table)
    assert len(ids) == len(set(ids))
    snapshot(mongo, mongo_db.name, "c", table, check=True)
    check_table(delta_rs_rows(table), docs)


def test_a_range_of_more_than_48_mb(mongo, mongo_db, tmp_path):
    """Documents as _ids cannot be cut into ranges: one range of 56 MB. Without a batchSize the
    test server sends it in one reply, beyond the 48 MB libmongoc accepts (MongoDB caps a reply
    at 16 MiB); snapshot must read it in batches."""
    pad = "x" * 8000
    for s in range(0, 7000, 500):
        mongo_db.big.insert_many([{"_id": {"k": i}, "pad": pad, "i": i} for i in range(s, s + 500)])
    table = tmp_path / "big"
    p = snapshot(mongo, mongo_db.name, "big", table, "--workers", 2, check=True)
    assert "7000 documents" in p.stderr and "1 range(s)" in p.stderr
    t = DeltaTable(str(table)).to_pyarrow_table()
    assert sorted(r["k"] for r in t.column("_id").to_pylist()) == list(range(7000))
    assert set(t.column("pad").to_pylist()) == {pad} and sum(t.column("i").to_pylist()) == sum(range(7000))


@pytest.mark.long
def test_a_million_documents(mongo, mongo_db, tmp_path):
    docs = generated(1_000_000)
    insert(mongo_db.m, docs, batch=50000)
    table = tmp_path / "m"
    p = snapshot(mongo, mongo_db.name, "m", table, "--workers", 2, check=True, timeout=3600)
    print(p.stderr)
    import re
    assert int(re.search(r"peak memory (\d+) MiB", p.stderr).group(1)) < 512  # the target for the defaults
    t = DeltaTable(str(table)).to_pyarrow_table(columns=["_id", "n", "nested"])
    ids = t.column("_id").to_pylist()
    assert len(ids) == len(docs) and set(ids) == {d["_id"] for d in docs}
    assert sum(t.column("n").to_pylist()) == sum(d["n"] for d in docs)
    assert sum(x["a"] for x in t.column("nested").to_pylist()) == sum(d["nested"]["a"] for d in docs)


def test_the_checker_notices_wrong_values(tmp_path):
    """check_table must fail on a changed value, a missing row and a value neither in its
    column nor rescued (or the tests above would prove nothing)."""
    from bson_mapping import Mismatch
    path = SAMPLES[0]
    docs = read_export(path)
    table = tmp_path / "t"
    run_m2d("load", "--input", path, "--table", table, check=True)
    rows = delta_rs_rows(table)
    check_table(rows, docs)
    col = next(k for k, v in rows[0].items() if isinstance(v, int) and k != "_id")
    bad = [dict(r) for r in rows]
    bad[0][col] += 1
    with pytest.raises(Mismatch):
        check_table(bad, docs)
    with pytest.raises(AssertionError):
        check_table(rows[1:], docs)
    bad = [dict(r) for r in rows]
    bad[0][col] = None
    with pytest.raises(Mismatch):
        check_table(bad, docs)


# What snapshot writes for one document per BSON type ({"_id": F, F: value}, the README's type
# table; bench/RESULTS.md sets it beside what the MongoDB Spark Connector writes), as delta-rs
# reads it: F -> (Delta type in the table's schema, mongo2delta.bsonType, value). None for the
# types the test server refuses (they reach snapshot only from a real server; the BSON corpus
# tests cover them through load).
ONE_PER_TYPE_TABLE = {
    "double": ("double", None, 1.5),
    "string": ("string", None, "héllo"),
    "document": ("struct<a: integer, b: string>", None, {"a": 1, "b": "x"}),
    "array": ("array<integer>", None, [1, 2]),
    "binary": ("binary", None, b"\x00\x01\x02"),
    "uuid": ("string", "uuid", "01234567-89ab-cdef-0123-456789abcdef"),
    "uuid_legacy": ("string", "uuidLegacy", "01234567-89ab-cdef-0123-456789abcdef"),
    "binary_md5": None,
    "undefined": ("string", None, None),  # the test server stores undefined as null
    "objectid": ("string", "objectId", "5f1a2b3c4d5e6f7081920a1b"),
    "bool": ("boolean", None, True),
    "date": ("timestamp", "date", dt.datetime(2021, 5, 6, 7, 8, 9, 123000, tzinfo=dt.timezone.utc)),
    "date_far": ("timestamp", "date", None),  # rescued: {"date_far": {"$date": {"$numberLong": ...}}}
    "null": ("string", None, None),
    "regex": ("string", "extjson", '{ "$regularExpression" : { "pattern" : "^a", "options" : "i" } }'),
    "dbpointer": None,
    "code": ("string", "extjson", '{ "$code" : "function() { return 1; }" }'),
    "symbol": None,
    "code_w_scope": None,
    "int32": ("integer", None, 7),
    "timestamp": ("struct<t: long, i: long>", "timestamp", {"t": 1600000000, "i": 7}),
    "int64": ("long", None, 5000000000),
    "decimal": ("decimal(4,2)", "decimal128", decimal.Decimal("-12.50")),
    "decimal_big": ("string", "decimal128", "1E+100"),
    "minkey": ("string", "extjson", '{ "$minKey" : 1 }'),
    "maxkey": ("string", "extjson", '{ "$maxKey" : 1 }'),
}


def delta_type_name(t):
    if isinstance(t, str):
        return t
    if t["type"] == "struct":
        return "struct<" + ", ".join(f"{f['name']}: {delta_type_name(f['type'])}" for f in t["fields"]) + ">"
    if t["type"] == "array":
        return f"array<{delta_type_name(t['elementType'])}>"
    return json.dumps(t)


def test_one_document_per_bson_type(mongo, mongo_db, tmp_path):
    assert [f for f, *_ in ONE_PER_TYPE] == list(ONE_PER_TYPE_TABLE)
    raw = mongo_db.get_collection("types", codec_options=bson.CodecOptions(document_class=RawBSONDocument))
    for field, value, *_ in ONE_PER_TYPE:
        doc = RawBSONDocument(encode({"_id": field, field: value}))
        if ONE_PER_TYPE_TABLE[field] is None:
            with pytest.raises(pymongo.errors.AutoReconnect):  # the test server closes the connection
                raw.insert_one(doc)
        else:
            raw.insert_one(doc)
    table = tmp_path / "types"
    snapshot(mongo, mongo_db.name, "types", table, check=True)
    dtab = DeltaTable(str(table))
    fields = {f["name"]: f for f in json.loads(dtab.schema().to_json())["fields"]}
    rows = {r["_id"]: r for r in dtab.to_pyarrow_table().to_pylist()}
    expected = {f: e for f, e in ONE_PER_TYPE_TABLE.items() if e is not None}
    assert sorted(rows) == sorted(expected)
    assert set(fields) == {"_id", "_rescued_data", *expected}
    for field, (delta_type, bson_type, value) in expected.items():
        f = fields[field]
        got = (delta_type_name(f["type"]), f["metadata"].get("mongo2delta.bsonType"), rows[field][field])
        assert got == (delta_type, bson_type, value), field
        assert all(r[field] is None for k, r in rows.items() if k != field), field
        rescued = parse_rescued(rows[field]["_rescued_data"]) if rows[field]["_rescued_data"] else {}
        if field == "date_far":
            assert rescued == {"date_far": bson.DatetimeMS(-77777777777777)}
        else:
            assert rescued == {}, field
