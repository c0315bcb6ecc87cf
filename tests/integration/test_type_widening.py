"""Type widening (PROTOCOL.md "Type Widening"), as Spark 4 does it for `delta.enableTypeWidening`:
after ALTER TABLE ... CHANGE COLUMN ... TYPE, files written before hold the narrower type (int,
float, decimal(6,2)) and a reader must see the table's (int, long, double, decimal(10,4); the
golden tables of test_delta_cat add date -> timestamp_ntz and nested fields). cat reads the rows Spark reads; load appends to such a table, optimize rewrites
its old files, sync keeps a mirror whose column Spark widened, and Spark reads what went in."""
import decimal
import json

from bson import Decimal128, Int64

from bson_mapping import check_spark_table
import delta_log
from conftest import run_m2d


def spark_rows(spark, table):
    out = {}
    for r in spark.read.format("delta").load(str(table)).collect():
        out[r["_id"]] = (r["b"], r["n"], r["f"], None if r["amount"] is None else str(r["amount"]))
    return out


def cat_rows(table):
    p = run_m2d("cat", "--table", table, check=True)
    out = {}
    for line in p.stdout.splitlines():
        r = json.loads(line)
        out[r["_id"]] = (r.get("b"), r.get("n"), r.get("f"), r.get("amount"))
    return out


def test_a_widened_table_reads_as_spark_reads_it_and_takes_load_and_optimize(tmp_path, spark):
    table = tmp_path / "widened"
    spark.sql(f"CREATE TABLE delta.`{table}` (_id BIGINT, b TINYINT, n INT, f FLOAT, amount DECIMAL(6,2)) USING delta "
              "TBLPROPERTIES ('delta.enableTypeWidening' = 'true')")
    spark.sql(f"INSERT INTO delta.`{table}` VALUES (1, -128, 7, 3.4, 1234.56), (2, 127, -2147483648, -0.1, -0.01), "
              "(3, NULL, NULL, NULL, NULL)")
    for col, wide in [("b", "INT"), ("n", "BIGINT"), ("f", "DOUBLE"), ("amount", "DECIMAL(10,4)")]:
        spark.sql(f"ALTER TABLE delta.`{table}` CHANGE COLUMN {col} TYPE {wide}")
    spark.sql(f"INSERT INTO delta.`{table}` VALUES (4, 2147483647, 9223372036854775807, 1.234567890123, 123456.7891)")
    protocol = delta_log.actions(table, "protocol")[-1]
    assert any(f.startswith("typeWidening") for f in protocol["readerFeatures"]), protocol
    schema = json.loads(delta_log.actions(table, "metaData")[-1]["schemaString"])
    assert all(f["metadata"].get("delta.typeChanges") for f in schema["fields"] if f["name"] != "_id")
    want = spark_rows(spark, table)
    assert want[1] == (-128, 7, float(decimal.Decimal("3.4000000953674316")), "1234.5600")
    assert cat_rows(table) == want

    # load appends documents of the wide types
    docs = [{"_id": 100 + i, "b": 2 ** 20 + i, "n": Int64(2 ** 40 + i), "f": 0.5 + i, "amount": Decimal128(f"{i}.1234")}
            for i in range(5)]
    src = delta_log.write_json(tmp_path / "in.json", docs, canonical=False)
    run_m2d("load", "--input", src, "--table", table, check=True)
    for d in docs:
        want[d["_id"]] = (d["b"], int(d["n"]), d["f"], str(d["amount"].to_decimal()))
    assert spark_rows(spark, table) == want
    schema_after = json.loads(delta_log.actions(table, "metaData")[-1]["schemaString"])
    # the widened fields keep their history; the only new column keeps what would not fit
    after = {f["name"]: f for f in schema_after["fields"]}
    assert {f["name"]: after[f["name"]]["metadata"].get("delta.typeChanges") for f in schema["fields"]} == \
        {f["name"]: f["metadata"].get("delta.typeChanges") for f in schema["fields"]}
    assert set(after) - {f["name"] for f in schema["fields"]} == {"_rescued_data"}

    # optimize rewrites the narrow files into the wide types; nothing changes for a reader
    p = run_m2d("optimize", "--table", table, check=True)
    assert "file(s) removed" in p.stderr, p.stderr
    assert spark_rows(spark, table) == want
    assert cat_rows(table) == want


def test_a_mirror_whose_column_spark_widened_keeps_syncing(mongo, mongo_db, tmp_path, spark):
    from test_optimize import sync_once
    from test_sync import settle, workload

    mongo_db.c.insert_many([{"_id": i, "n": i, "tags": [f"t{i % 5}"], "nested": {"a": i % 7}} for i in range(200)])
    mirror = tmp_path / "mirror"
    settle()
    sync_once(mongo, mongo_db.name, mirror)
    fields = {f["name"]: f["type"] for f in json.loads(delta_log.actions(mirror, "metaData")[-1]["schemaString"])["fields"]}
    assert fields["n"] == "integer", fields
    spark.sql(f"ALTER TABLE delta.`{mirror}` SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true')")
    spark.sql(f"ALTER TABLE delta.`{mirror}` CHANGE COLUMN n TYPE BIGINT")

    def check():
        check_spark_table(spark, mirror, list(mongo_db.c.find()))

    check()
    workload(mongo_db.c, 120, 200, seed=21)
    mongo_db.c.insert_one({"_id": 10_000, "n": Int64(2 ** 40), "tags": [], "nested": {"a": 1}})
    sync_once(mongo, mongo_db.name, mirror)
    check()
    run_m2d("optimize", "--table", mirror, check=True)
    check()
    big = [r for r in spark.read.format("delta").load(str(mirror)).where("_id = 10000").collect()]
    assert big[0]["n"] == 2 ** 40
