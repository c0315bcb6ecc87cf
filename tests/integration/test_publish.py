"""mongo2delta publish: tables written by Spark (deletion vectors, partitions, decimals,
timestamps, nested structs and arrays, UPDATE and DELETE) into collections that equal the
table; round trips snapshot -> publish that give the original documents back, types included;
incremental publishes that write exactly what changed; a publish killed midway."""
import datetime as dt
import decimal
import random
import signal
import subprocess
import time

import pytest
from bson import Decimal128, json_util
from bson.codec_options import CodecOptions

from bson_mapping import JSON_OPTIONS
from conftest import TESTDATA, run_m2d, start_m2d

UTC = dt.timezone.utc
SAMPLES = sorted((TESTDATA / "mongodb-sample").glob("*/*.json"))
TZ = CodecOptions(tz_aware=True)


def publish(mongo, table, db, coll, *extra, **kw):
    return run_m2d("publish", "--table", table, "--uri", mongo.uri, "--db", db, "--collection", coll, *extra, **kw)


def spark_table(spark, path):
    """A table as Spark writes it today: deletion vectors on, partitioned, with decimal,
    timestamp, nested struct and array columns; then an UPDATE and a DELETE."""
    spark.sql(f"""CREATE TABLE delta.`{path}` (id BIGINT, region STRING, amount DECIMAL(12,2),
                 at TIMESTAMP, profile STRUCT<name: STRING, score: DOUBLE, tags: ARRAY<STRING>>,
                 visits ARRAY<INT>) USING DELTA PARTITIONED BY (region)
                 TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')""")
    rows = ", ".join(
        f"({i}, '{['eu', 'us', 'asia'][i % 3]}', {i}.{i % 100:02d}, TIMESTAMP '2024-03-0{1 + i % 9} 10:00:0{i % 10}.{i:06d}', "
        f"named_struct('name', 'n{i}', 'score', {i / 4}, 'tags', array('a{i % 4}', 'b')), array({i}, {i + 1}))"
        for i in range(60))
    spark.sql(f"INSERT INTO delta.`{path}` VALUES {rows}")
    spark.sql(f"UPDATE delta.`{path}` SET amount = amount + 1000, profile.name = 'updated' WHERE id % 7 = 0")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 10 = 3")


def expected_from_spark(spark, path):
    """The table's rows as the documents publish must write (the inverse mapping)."""
    out = {}
    for r in spark.read.format("delta").load(str(path)).collect():
        d = {"id": r.id, "region": r.region, "amount": Decimal128(r.amount),
             "at": r.at.replace(tzinfo=UTC).replace(microsecond=r.at.microsecond // 1000 * 1000),
             "profile": {"name": r.profile.name, "score": r.profile.score, "tags": list(r.profile.tags)},
             "visits": list(r.visits)}
        out[r.id] = d
    return out


def collection_docs(coll, key="id"):
    docs = {}
    for d in coll.with_options(codec_options=TZ).find():
        d.pop("_id", None) if key != "_id" else None
        docs[d[key]] = d
    return docs


def test_a_spark_table_with_deletion_vectors(mongo, mongo_db, tmp_path, spark):
    path = tmp_path / "spark"
    spark_table(spark, path)
    p = publish(mongo, path, mongo_db.name, "out", "--key", "id", check=True)
    assert "54 upserted" in p.stderr and ", 0 failed" in p.stderr
    want = expected_from_spark(spark, path)
    assert len(want) == 54  # 60 rows, 6 deleted
    got = collection_docs(mongo_db.out)
    assert got == want
    assert isinstance(mongo_db.out.find_one()["id"], int)


def test_incremental_writes_exactly_the_changes(mongo, mongo_db, tmp_path, spark):
    path = tmp_path / "spark"
    spark_table(spark, path)
    publish(mongo, path, mongo_db.name, "out", "--key", "id", "--incremental", "--delete-missing", check=True)
    # Spark changes 3 rows, inserts 2, deletes 4
    spark.sql(f"UPDATE delta.`{path}` SET amount = 1.5 WHERE id IN (1, 2, 4)")
    spark.sql(f"""INSERT INTO delta.`{path}` VALUES
                  (100, 'eu', 1.00, TIMESTAMP '2024-05-01 00:00:00', named_struct('name', 'x', 'score', 1.0, 'tags', array('t')), array(1)),
                  (101, 'us', 2.00, TIMESTAMP '2024-05-02 00:00:00', named_struct('name', 'y', 'score', 2.0, 'tags', array()), array())""")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id IN (5, 6, 8, 9)")
    p = publish(mongo, path, mongo_db.name, "out", "--key", "id", "--incremental", "--delete-missing", check=True)
    assert "2 upserted, 3 modified (3 matched), 4 deleted, 0 failed" in p.stderr, p.stderr
    assert collection_docs(mongo_db.out) == expected_from_spark(spark, path)
    p = publish(mongo, path, mongo_db.name, "out", "--key", "id", "--incremental", "--delete-missing", check=True)
    assert "up to date" in p.stderr


def test_incremental_after_copy_on_write_rewrites(mongo, mongo_db, tmp_path, spark):
    """Without deletion vectors an UPDATE rewrites whole files: only the changed rows are written."""
    path = tmp_path / "cow"
    spark.range(0, 200).selectExpr("id", "id * 2 AS v").repartition(2).write.format("delta").save(str(path))
    publish(mongo, path, mongo_db.name, "out", "--key", "id", "--incremental", check=True)
    spark.sql(f"UPDATE delta.`{path}` SET v = -1 WHERE id IN (3, 150)")
    p = publish(mongo, path, mongo_db.name, "out", "--key", "id", "--incremental", check=True)
    assert "0 upserted, 2 modified (2 matched)" in p.stderr, p.stderr
    assert mongo_db.out.count_documents({"v": -1}) == 2


def read_export(path):
    return [json_util.loads(line, json_options=JSON_OPTIONS) for line in path.read_text().splitlines() if line.strip()]


def comparable(d):
    """A document as canonical Extended JSON (types included, key order not)."""
    import json
    return json.loads(json_util.dumps(d, json_options=JSON_OPTIONS))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}.{p.stem}")
def test_round_trip_of_the_sample_collections(path, mongo, mongo_db, tmp_path):
    docs = read_export(path)
    mongo_db.src.insert_many([dict(d) for d in docs])
    table = tmp_path / "t"
    run_m2d("snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "src", "--table", table, check=True)
    publish(mongo, table, mongo_db.name, "back", "--mode", "replace", check=True)
    back = {json_util.dumps(d["_id"]): comparable(d) for d in mongo_db.back.with_options(codec_options=TZ).find()}
    assert len(back) == len(docs)
    for d in docs:
        assert back[json_util.dumps(d["_id"])] == comparable(d), d["_id"]


def test_round_trip_of_types(mongo, mongo_db, tmp_path):
    """ObjectId, UUID, Decimal128, BSON timestamps, dates, binary, regex, int32 and int64, nested
    arrays of ObjectIds, and values that only fit _rescued_data come back as themselves."""
    import uuid
    from bson import Binary, Int64, ObjectId, Regex, Timestamp, MinKey, Code
    docs = []
    for i in range(20):
        docs.append({"_id": ObjectId(), "i32": i, "i64": Int64(i * 10**10), "d": i / 3,
                     "dec": Decimal128(f"{i}.{i:02d}"), "when": dt.datetime(2020, 1, 1 + i, 3, 4, 5, 6000, tzinfo=UTC),
                     "uid": Binary(uuid.UUID(int=i).bytes, 4), "bin": Binary(bytes([i, 1, 2]), 0),
                     "ts": Timestamp(1600000000 + i, i), "re": Regex("^a", "i"), "code": Code("x=1"),
                     "refs": [ObjectId(), ObjectId()], "nested": {"a": [{"b": i}], "k": MinKey()},
                     "mixed": i if i % 2 else f"s{i}", "empty": {}})
    mongo_db.src.insert_many([dict(d) for d in docs])
    table = tmp_path / "t"
    run_m2d("snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "src", "--table", table, check=True)
    publish(mongo, table, mongo_db.name, "back", "--mode", "replace", check=True)
    back = {d["_id"]: comparable(d) for d in mongo_db.back.with_options(codec_options=TZ).find()}
    for d in docs:
        assert back[d["_id"]] == comparable(d)


def test_killed_publish_then_rerun(mongo, mongo_db, tmp_path):
    docs = [{"_id": i, "v": i * 2, "s": "x" * (i % 30)} for i in range(60000)]
    src = tmp_path / "in.json"
    src.write_text("".join(json_util.dumps(d) + "\n" for d in docs))
    table = tmp_path / "t"
    run_m2d("load", "--input", src, "--table", table, check=True)
    rnd = random.Random(3)
    for _ in range(2):
        proc = start_m2d("publish", "--table", table, "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "out",
                         "--incremental", "--batch-size", "500", stdout=None, stderr=subprocess.DEVNULL, text=False)
        time.sleep(rnd.uniform(0.5, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    publish(mongo, table, mongo_db.name, "out", "--incremental", check=True)
    got = {d["_id"]: d for d in mongo_db.out.find()}
    assert got == {d["_id"]: d for d in docs}
    p = publish(mongo, table, mongo_db.name, "out", "--incremental", check=True)
    assert "up to date" in p.stderr


def test_usage_errors(mongo, tmp_path):
    p = run_m2d("publish", "--table", tmp_path / "none", "--uri", mongo.uri, "--db", "d", "--collection", "c")
    assert p.returncode == 2 and "not a Delta table" in p.stderr
    p = run_m2d("publish", "--table", tmp_path, "--uri", mongo.uri, "--db", "d", "--collection", "c", "--mode", "merge")
    assert p.returncode == 2 and "--mode" in p.stderr


def test_a_spark_table_with_column_mapping_and_checkpoints(mongo, mongo_db, tmp_path, spark):
    path = tmp_path / "cm"
    spark.sql(f"""CREATE TABLE delta.`{path}` (id BIGINT, `first name` STRING, n INT) USING DELTA
                 TBLPROPERTIES ('delta.columnMapping.mode' = 'name', 'delta.checkpointInterval' = '2')""")
    for i in range(5):
        spark.sql(f"INSERT INTO delta.`{path}` VALUES ({i}, 'p{i}', {i * 10})")
    spark.sql(f"ALTER TABLE delta.`{path}` RENAME COLUMN n TO amount")
    assert list((path / "_delta_log").glob("*.checkpoint.parquet"))
    publish(mongo, path, mongo_db.name, "out", "--key", "id", check=True)
    got = {d["id"]: d for d in mongo_db.out.find({}, {"_id": 0})}
    assert got == {i: {"id": i, "first name": f"p{i}", "amount": i * 10} for i in range(5)}


def test_from_version_composite_keys_and_insert_mode(mongo, mongo_db, tmp_path):
    """--from-version N publishes what versions N and later changed; --key a,b identifies
    documents by two fields; --mode insert inserts (a second insert of the same rows fails,
    counted, exit 1)."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.json").write_text("".join(json_util.dumps({"_id": i, "k1": i % 3, "k2": i, "v": i}) + "\n"
                                        for i in range(30)))
    (src / "b.json").write_text("".join(json_util.dumps({"_id": i, "k1": i % 3, "k2": i, "v": i}) + "\n"
                                        for i in range(30, 40)))
    table = tmp_path / "t"
    run_m2d("load", "--input", src / "a.json", "--table", table, check=True)  # version 0
    run_m2d("load", "--input", src / "b.json", "--table", table, check=True)  # version 1
    p = publish(mongo, table, mongo_db.name, "only_new", "--from-version", 1, "--key", "k1,k2", check=True)
    assert "10 upserted" in p.stderr
    assert sorted(d["k2"] for d in mongo_db.only_new.find()) == list(range(30, 40))
    p = publish(mongo, table, mongo_db.name, "ins", "--mode", "insert", check=True)
    assert "40 inserted" in p.stderr and mongo_db.ins.count_documents({}) == 40
    p = publish(mongo, table, mongo_db.name, "ins", "--mode", "insert")
    assert p.returncode == 1 and "40 failed" in p.stderr and "duplicate" in p.stderr.lower()
    assert mongo_db.ins.count_documents({}) == 40
