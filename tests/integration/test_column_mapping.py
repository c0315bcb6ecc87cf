"""Column mapping (PROTOCOL.md "Column Mapping"), as Databricks turns it on by default: tables
Spark created with `delta.columnMapping.mode` name and id, a column renamed after data was
written. load appends to them (a new column and a new nested field get fresh ids and physical
names, maxColumnId grows), optimize rewrites their files, sync keeps a mirror Spark switched to
column mapping; Spark reads rows equal to what went in, cat reads what Spark reads, and our data
files name their columns by physical name with the ids as Parquet field ids."""
import json

import pyarrow.parquet as pq
import pytest

from bson_mapping import check_spark_table
import delta_log
from conftest import run_m2d

CM = "delta.columnMapping"


def spark_rows(spark, table):
    out = {}
    for r in spark.read.format("delta").load(str(table)).collect():
        d = r.asDict(recursive=True)
        out[d["_id"]] = d
    return out


def cat_rows(table):
    p = run_m2d("cat", "--table", table, check=True)
    return {r["_id"]: r for r in map(json.loads, p.stdout.splitlines())}


def schema_of(table):
    meta = delta_log.actions(table, "metaData")[-1]
    return meta, json.loads(meta["schemaString"])


def field(schema, name):
    return next(f for f in schema["fields"] if f["name"] == name)


def parquet_fields(path):
    """(name, field id) of each top-level column of a data file, and of the struct addr's children."""
    s = pq.read_schema(path)
    out = {}
    for f in s:
        fid = int(f.metadata[b"PARQUET:field_id"]) if f.metadata and b"PARQUET:field_id" in f.metadata else None
        out[f.name] = fid
        if hasattr(f.type, "num_fields"):
            for k in range(f.type.num_fields):
                c = f.type.field(k)
                out[f"{f.name}.{c.name}"] = int(c.metadata[b"PARQUET:field_id"]) if c.metadata else None
    return out


@pytest.mark.parametrize("mode", ["name", "id"])
def test_load_and_optimize_on_a_column_mapped_table_with_a_renamed_column(tmp_path, spark, mode):
    table = tmp_path / "cm"
    spark.sql(f"CREATE TABLE delta.`{table}` (_id BIGINT, n BIGINT, s STRING, addr STRUCT<city: STRING>) USING delta "
              f"TBLPROPERTIES ('{CM}.mode' = '{mode}')")
    spark.sql(f"INSERT INTO delta.`{table}` VALUES (1, 10, 'one', named_struct('city', 'Lyon')), "
              "(2, 20, 'two', named_struct('city', 'Oslo'))")
    spark.sql(f"ALTER TABLE delta.`{table}` RENAME COLUMN s TO label")
    meta0, schema0 = schema_of(table)
    max0 = int(meta0["configuration"][f"{CM}.maxColumnId"])
    assert field(schema0, "label")["metadata"][f"{CM}.physicalName"] != "label"

    docs = [{"_id": 100 + i, "n": 1000 + i, "label": f"l{i}", "addr": {"city": f"c{i}", "zip": 7000 + i},
             "extra": i * 0.5} for i in range(6)]
    src = delta_log.write_json(tmp_path / "in.json", docs, canonical=False)
    run_m2d("load", "--input", src, "--table", table, check=True)
    meta1, schema1 = schema_of(table)
    # the existing fields keep their ids and physical names; the new ones get fresh ones
    for f0 in schema0["fields"]:
        assert field(schema1, f0["name"])["metadata"][f"{CM}.id"] == f0["metadata"][f"{CM}.id"]
        assert field(schema1, f0["name"])["metadata"][f"{CM}.physicalName"] == f0["metadata"][f"{CM}.physicalName"]
    new_ids = [field(schema1, "extra")["metadata"][f"{CM}.id"],
               next(c for c in field(schema1, "addr")["type"]["fields"] if c["name"] == "zip")["metadata"][f"{CM}.id"]]
    assert all(i > max0 for i in new_ids) and len(set(new_ids)) == 2
    assert int(meta1["configuration"][f"{CM}.maxColumnId"]) >= max(new_ids)
    assert field(schema1, "extra")["metadata"][f"{CM}.physicalName"].startswith("col-")
    # our file: physical names, field ids; stats by physical name
    ours = delta_log.actions(table, "add")[-1]  # load's file, the last commit
    cols = parquet_fields(table / ours["path"])
    label = field(schema1, "label")["metadata"]
    assert cols[label[f"{CM}.physicalName"]] == label[f"{CM}.id"], cols
    assert "label" not in cols and "n" not in cols
    stats = json.loads(ours["stats"])
    assert label[f"{CM}.physicalName"] in stats["minValues"]

    want = {1: {"_id": 1, "n": 10, "label": "one", "addr": {"city": "Lyon", "zip": None}, "extra": None},
            2: {"_id": 2, "n": 20, "label": "two", "addr": {"city": "Oslo", "zip": None}, "extra": None}}
    for d in docs:
        want[d["_id"]] = {**{k: v for k, v in d.items()}}
    got = spark_rows(spark, table)
    for v in got.values():
        v.pop("_rescued_data", None)
    assert got == want

    p = run_m2d("optimize", "--table", table, check=True)
    assert "file(s) removed" in p.stderr, p.stderr
    after = spark_rows(spark, table)
    for v in after.values():
        v.pop("_rescued_data", None)
    assert after == want
    assert {k: {c: v.get(c) for c in ("n", "label")} for k, v in cat_rows(table).items()} == \
        {k: {c: v[c] for c in ("n", "label")} for k, v in want.items()}


def test_a_mirror_spark_switched_to_column_mapping_keeps_syncing(mongo, mongo_db, tmp_path, spark):
    from test_optimize import sync_once
    from test_sync import settle, workload

    mongo_db.c.insert_many([{"_id": i, "n": i, "tags": [f"t{i % 5}"], "nested": {"a": i % 7}} for i in range(200)])
    mirror = tmp_path / "mirror"
    settle()
    sync_once(mongo, mongo_db.name, mirror)
    spark.sql(f"ALTER TABLE delta.`{mirror}` SET TBLPROPERTIES ('{CM}.mode' = 'name')")

    def check():
        check_spark_table(spark, mirror, list(mongo_db.c.find()))

    check()
    workload(mongo_db.c, 120, 200, seed=31)
    mongo_db.c.insert_one({"_id": 5000, "n": 1, "tags": [], "nested": {"a": 1, "b": "new"}, "fresh": "yes"})
    sync_once(mongo, mongo_db.name, mirror)
    check()
    _, schema = schema_of(mirror)
    assert field(schema, "fresh")["metadata"][f"{CM}.physicalName"].startswith("col-")
    run_m2d("optimize", "--table", mirror, check=True)
    check()
    workload(mongo_db.c, 40, 200, seed=32)
    sync_once(mongo, mongo_db.name, mirror)
    check()


def test_sync_into_a_table_spark_created_in_id_mode(mongo, mongo_db, tmp_path, spark):
    """An empty table Spark created (id mode, as Databricks makes it) given to sync as the mirror:
    the collection's other fields become columns with ids of their own, files are read back by
    field id, and the mirror equals the collection through a workload and an optimize."""
    from test_optimize import sync_once
    from test_sync import settle, workload

    mirror = tmp_path / "mirror"
    spark.sql(f"CREATE TABLE delta.`{mirror}` (_id BIGINT, n BIGINT) USING delta TBLPROPERTIES ('{CM}.mode' = 'id')")
    mongo_db.c.insert_many([{"_id": i, "n": i, "tags": [f"t{i % 5}"], "nested": {"a": i % 7}} for i in range(200)])
    settle()
    sync_once(mongo, mongo_db.name, mirror)

    def check():
        check_spark_table(spark, mirror, list(mongo_db.c.find()))

    check()
    _, schema = schema_of(mirror)
    ids = [f["metadata"][f"{CM}.id"] for f in schema["fields"]]
    assert len(set(ids)) == len(ids) and {"tags", "nested"} <= {f["name"] for f in schema["fields"]}
    workload(mongo_db.c, 120, 200, seed=41)
    sync_once(mongo, mongo_db.name, mirror)
    check()
    run_m2d("optimize", "--table", mirror, check=True)
    check()
