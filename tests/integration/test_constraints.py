"""What a table created by Spark asks of every row and commit: CHECK constraints
(delta.constraints.<name>), NOT NULL columns (nullable false, nested too) and delta.appendOnly.
`mongo2delta load` writes documents that satisfy them (Spark reads them back, the schema keeps
its NOT NULL columns); a document breaking one is refused with the constraint's or column's
name and the table's version stays; a constraint whose expression mongo2delta does not evaluate
refuses the table up front; sync refuses to update or delete rows of an append-only mirror."""
import json
import subprocess

import pytest
from bson import Int64
from deltalake import DeltaTable

from conftest import run_m2d
from delta_log import write_json
from test_sync import settle, spawn_m2d


def version(table):
    return DeltaTable(str(table)).version()


def good(i):
    return {"_id": Int64(i), "code": f"c{i}", "qty": 1 + i % 900, "name": "abc"[i % 3],
            "addr": {"city": f"city{i % 5}", "zip": None if i % 4 == 0 else f"{10000 + i}"}}


@pytest.fixture
def table(tmp_path, spark):
    t = tmp_path / "t"
    spark.sql(f"""CREATE TABLE delta.`{t}` (_id BIGINT NOT NULL, code STRING NOT NULL, qty INT, name STRING,
                  addr STRUCT<city: STRING NOT NULL, zip: STRING>) USING delta""")
    spark.sql(f"ALTER TABLE delta.`{t}` ADD CONSTRAINT qty_range CHECK (qty > 0 AND qty < 1000)")
    spark.sql(f"ALTER TABLE delta.`{t}` ADD CONSTRAINT known_name CHECK (name IN ('a', 'b', 'c') OR name IS NULL)")
    return t


def spark_rows(spark, t):
    # collected as rows: pyarrow refuses a null struct whose child is NOT NULL
    return sorted((r.asDict(recursive=True) for r in spark.read.format("delta").load(str(t)).collect()),
                  key=lambda r: r["_id"])


def test_load_writes_rows_that_satisfy_the_constraints(tmp_path, spark, table):
    src = tmp_path / "good.json"
    # "extra" is a new column: the table's schema grows
    docs = [dict(good(i), extra=i) for i in range(50)] + [{"_id": Int64(50), "code": "c50", "qty": 7, "addr": None}]
    write_json(src, docs)
    run_m2d("load", "--input", src, "--table", table, check=True)
    rows = spark_rows(spark, table)
    assert [(r["_id"], r["code"], r["qty"], r["name"], r["addr"], r["extra"]) for r in rows] == \
        [(int(d["_id"]), d["code"], d["qty"], d.get("name"), d["addr"], d.get("extra")) for d in docs]
    # the schema grew and kept what Spark declared
    schema = spark.read.format("delta").load(str(table)).schema
    assert not schema["_id"].nullable and not schema["code"].nullable and schema["qty"].nullable
    assert not schema["addr"].dataType["city"].nullable and schema["addr"].dataType["zip"].nullable
    conf = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{table}`").collect()}
    assert conf["delta.constraints.qty_range"] == "qty > 0 AND qty < 1000"
    # Spark still enforces them on the table we wrote
    with pytest.raises(Exception, match="qty_range"):  # noqa: PT011 (Spark's own exception class)
        spark.sql(f"INSERT INTO delta.`{table}` VALUES (999, 'x', 0, 'a', named_struct('city', 'c', 'zip', 'z'), 1, NULL)")


@pytest.mark.parametrize("bad,names", [
    ({"qty": 0}, ["qty_range", "qty = 0"]),
    ({"qty": 1000}, ["qty_range", "qty = 1000"]),
    ({"qty": None}, ["qty_range", "qty = NULL"]),
    ({"qty": "many"}, ["qty_range", "qty = 'many'"]),
    ({"name": "z"}, ["known_name", "name = 'z'"]),
    ({"code": None}, ["'code'", "NOT NULL"]),
    ({"code": "drop"}, ["'code'", "NOT NULL"]),
    ({"addr": {"zip": "1"}}, ["'addr.city'", "NOT NULL"]),
    ({"addr": {"city": None, "zip": "1"}}, ["'addr.city'", "NOT NULL"]),
])
def test_a_document_breaking_a_constraint_is_refused(tmp_path, spark, table, bad, names):
    base = tmp_path / "base.json"
    write_json(base, [good(i) for i in range(10)])
    run_m2d("load", "--input", base, "--table", table, check=True)
    before = version(table)
    doc = dict(good(77), **bad)
    if bad.get("code") == "drop":
        del doc["code"]
    src = tmp_path / "bad.json"
    write_json(src, [good(i) for i in range(100, 120)] + [doc] + [good(i) for i in range(120, 130)])
    p = run_m2d("load", "--input", src, "--table", table)
    assert p.returncode == 1, p.stderr
    for n in names:
        assert n in p.stderr, p.stderr
    assert "_id 77" in p.stderr and "nothing was committed" in p.stderr, p.stderr
    assert version(table) == before
    assert [r["_id"] for r in spark_rows(spark, table)] == list(range(10))
    # the batch's files were removed: only the first load's data files remain
    referenced = set(DeltaTable(str(table)).files())
    on_disk = {str(f.relative_to(table)) for f in table.rglob("*.parquet")}
    assert on_disk == referenced


def test_a_constraint_outside_the_subset_refuses_the_table(tmp_path, spark):
    t = tmp_path / "t"
    spark.sql(f"CREATE TABLE delta.`{t}` (_id BIGINT, name STRING) USING delta")
    spark.sql(f"ALTER TABLE delta.`{t}` ADD CONSTRAINT short_name CHECK (length(name) < 10)")
    src = tmp_path / "d.json"
    write_json(src, [{"_id": Int64(1), "name": "a"}])
    before = version(t)
    p = run_m2d("load", "--input", src, "--table", t)
    assert p.returncode == 1, p.stderr
    assert "short_name" in p.stderr and "does not support" in p.stderr, p.stderr
    assert "functions are not supported" in p.stderr and "length" in p.stderr, p.stderr
    assert version(t) == before
    assert spark.read.format("delta").load(str(t)).count() == 0


def test_append_only_table_takes_appends_and_refuses_updates(tmp_path, spark, mongo, mongo_db):
    """sync keeps a mirror; once the table is append-only (set by Spark), a new document still goes
    in, an update (which removes the row's old version) is refused naming delta.appendOnly."""
    mongo_db.c.insert_many([{"_id": i, "n": i} for i in range(20)])
    t = tmp_path / "mirror"
    settle()
    args = ["sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", t,
            "--max-latency", "200", "--stop-when-idle", "3"]
    proc = spawn_m2d(args)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    spark.sql(f"ALTER TABLE delta.`{t}` SET TBLPROPERTIES ('delta.appendOnly' = 'true')")
    # an insert: appended
    proc = spawn_m2d(args)
    settle()
    mongo_db.c.insert_one({"_id": 100, "n": 100})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert sorted(r["_id"] for r in spark_rows(spark, t)) == list(range(20)) + [100]
    before = version(t)
    # an update: refused, nothing committed
    proc = spawn_m2d(args)
    settle()
    mongo_db.c.update_one({"_id": 3}, {"$set": {"n": -3}})
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError("sync did not stop on an append-only table: " + err[-2000:])
    assert proc.returncode == 1, err
    assert "delta.appendOnly" in err and "append-only" in err, err
    assert version(t) == before
    rows = spark_rows(spark, t)
    assert [(r["_id"], r["n"]) for r in rows] == [(i, i) for i in range(20)] + [(100, 100)]
    hist = spark.sql(f"DESCRIBE HISTORY delta.`{t}`").collect()
    assert all(json.dumps(h["operation"]) for h in hist)


def test_sync_and_optimize_on_a_table_with_a_check_constraint(tmp_path, spark, mongo, mongo_db):
    """A mirror Spark gave a CHECK constraint: sync applies inserts, updates and deletes that keep
    it, optimize rewrites the files, Spark reads the collection; an update that breaks it stops
    sync with the constraint's name and nothing of its batch committed."""
    from bson_mapping import check_spark_table
    from delta_log import latest_version
    from test_optimize import sync_once

    mongo_db.c.insert_many([{"_id": i, "qty": 1 + i % 50} for i in range(100)])
    t = tmp_path / "mirror"
    settle()
    sync_once(mongo, mongo_db.name, t)
    spark.sql(f"ALTER TABLE delta.`{t}` ADD CONSTRAINT positive_qty CHECK (qty > 0)")

    def check():
        check_spark_table(spark, t, list(mongo_db.c.find()))

    for i in range(0, 100, 3):
        mongo_db.c.update_one({"_id": i}, {"$inc": {"qty": 100}})
    mongo_db.c.delete_many({"_id": {"$in": list(range(1, 100, 7))}})
    mongo_db.c.insert_many([{"_id": 1000 + i, "qty": 5} for i in range(10)])
    sync_once(mongo, mongo_db.name, t)
    check()
    run_m2d("optimize", "--table", t, check=True)
    check()
    before = latest_version(t)
    mongo_db.c.update_one({"_id": 2}, {"$set": {"qty": -1}})
    p = run_m2d("sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", t,
                "--max-latency", "200", "--stop-when-idle", "3", timeout=300)
    assert p.returncode == 1 and "positive_qty" in p.stderr and "_id 2" in p.stderr, p.stderr[-2000:]
    assert latest_version(t) == before
    rows = {r["_id"]: r["qty"] for r in spark_rows(spark, t)}
    assert rows[2] == 3  # as it was
