"""Tables written by the C layer (through `mongo2delta load`, one commit per input file) read
the same in delta-rs, Spark and our own `cat`, version by version: appends, schema evolution
(new top-level columns, new nested fields), rescued values, a checkpoint, partitions with
escaped values; Spark's DESCRIBE HISTORY works on them; Spark appends to our table and we
append after Spark."""
import datetime as dt
import json

import bson
import pyarrow.parquet as pq
import pytest
from bson import json_util
from deltalake import DeltaTable

import delta_log
from conftest import run_m2d
from delta_log import write_json
from parquet_jsonform import table_rows

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)


def doc(i, evolved=False):
    d = {"_id": i, "name": f"name-{i}", "qty": i % 7, "price": i * 1.25,
         "at": T0 + dt.timedelta(minutes=i, milliseconds=i % 1000),
         "tags": [f"t{i % 3}", f"t{i % 5}"] if i % 4 else [],
         "addr": {"city": f"c{i % 10}", "zip": 1000 + i}}
    if i % 11 == 0:
        del d["price"]  # missing fields are null
    if evolved:
        d["score"] = i / 3
        d["addr"]["street"] = f"s{i}"
    return d


def ts(v):
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond:06d}Z"


def expected_row(d, columns, addr_fields):
    """The JSON form of d under the mapping, for a table with these columns."""
    row = {c: None for c in columns}
    rescued = {}
    for k, v in d.items():
        if k == "qty" and isinstance(v, str):
            rescued[k] = v
        elif k == "at":
            row[k] = ts(v)
        elif k == "addr":
            row[k] = {f: v.get(f) for f in addr_fields}
        else:
            row[k] = v
    row["_rescued_data"] = rescued or None
    return row


def normalize(rows):
    """Rows keyed by _id, with _rescued_data parsed (its Extended JSON spacing is libbson's)."""
    out = {}
    for r in rows:
        r = dict(r)
        if isinstance(r.get("_rescued_data"), str):
            r["_rescued_data"] = json_util.loads(r["_rescued_data"])
        out[r["_id"]] = r
    return out


def write_bson(path, docs):
    path.write_bytes(b"".join(bson.encode(d) for d in docs))


def cat_rows(table, *args):
    p = run_m2d("cat", "--table", table, *args, check=True)
    return [json.loads(line) for line in p.stdout.splitlines()]


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A table of 12 commits: v0 plain, v1 schema evolution (from a .bson file), v2 values
    that do not fit (rescued), v3..v11 small appends (a checkpoint at 10). Returns the table
    path and, per version, the documents committed so far and the expected columns."""
    root = tmp_path_factory.mktemp("delta_write")
    inp = root / "in"
    inp.mkdir()
    files = []
    files.append([doc(i) for i in range(0, 100)])
    files.append([doc(i, evolved=True) for i in range(100, 150)])
    bad = [doc(i, evolved=True) for i in range(150, 160)]
    for d in bad[::3]:
        d["qty"] = "many"
    files.append(bad)
    for f in range(3, 12):
        files.append([doc(i, evolved=True) for i in range(f * 100, f * 100 + 10)])
    for n, docs in enumerate(files):
        (write_bson if n == 1 else write_json)(inp / f"f{n:02d}.{'bson' if n == 1 else 'json'}", docs)
    table = root / "table"
    p = run_m2d("load", "--input", inp, "--table", table, check=True)
    assert "12 file(s) loaded" in p.stderr
    versions = []
    base = ["_id", "name", "qty", "price", "at", "tags", "addr", "_rescued_data"]
    for v in range(12):
        columns = base + (["score"] if v >= 1 else [])
        addr = ["city", "zip"] + (["street"] if v >= 1 else [])
        docs = [d for f in files[: v + 1] for d in f]
        versions.append(normalize(expected_row(d, columns, addr) for d in docs))
    return table, versions, inp


def test_every_version_reads_the_same_in_delta_rs(history):
    table, versions, _ = history
    for v, expected in enumerate(versions):
        got = normalize(table_rows(DeltaTable(str(table), version=v).to_pyarrow_table()))
        assert got == expected, f"version {v}"


def test_every_version_reads_the_same_in_spark(history, spark):
    table, versions, _ = history
    for v in (0, 1, 2, 9, 10, 11):
        df = spark.read.format("delta").option("versionAsOf", v).load(str(table))
        assert normalize(table_rows(df.toArrow())) == versions[v], f"version {v}"


def test_every_version_reads_the_same_in_cat(history):
    table, versions, _ = history
    for v in (0, 1, 2, 10, 11):
        assert normalize(cat_rows(table, "--version", v)) == versions[v], f"version {v}"


def test_schema_evolution_is_recorded(history):
    table, _, _ = history
    fields = {f.name: f for f in DeltaTable(str(table), version=0).schema().fields}
    assert "score" not in fields
    schema = DeltaTable(str(table)).to_pyarrow_table().schema
    assert str(schema.field("score").type) == "double"
    assert [schema.field("addr").type.field(i).name for i in range(3)] == ["city", "zip", "street"]
    assert str(schema.field("qty").type) == "int32"
    assert str(schema.field("at").type).startswith("timestamp[us")


def test_checkpoint_every_ten_commits(history, tmp_path, spark):
    table, versions, _ = history
    assert delta_log.last_checkpoint(table)["version"] == 10
    cp = pq.read_table(delta_log.checkpoint_path(table, 10))
    adds = [a for a in cp.column("add").to_pylist() if a is not None]
    assert len(adds) == 11  # one data file per commit 0..10
    proto = [p for p in cp.column("protocol").to_pylist() if p is not None]
    assert proto == [{"minReaderVersion": 1, "minWriterVersion": 2, "readerFeatures": None, "writerFeatures": None}]
    info = json.loads(run_m2d("inspect", "--table", table, "--json", check=True).stdout)
    assert info["checkpointVersion"] == 10 and info["version"] == 11
    assert info["numRecords"] == len(versions[11])
    # the checkpoint alone stands for versions 0-10: without those JSON commits (as after log
    # cleanup) delta-rs, Spark and our reader still read the table
    import shutil
    t = tmp_path / "t"
    shutil.copytree(table, t)
    for v in range(11):
        delta_log.commit_path(t, v).unlink()
    assert normalize(table_rows(DeltaTable(str(t)).to_pyarrow_table())) == versions[11]
    assert normalize(table_rows(spark.read.format("delta").load(str(t)).toArrow())) == versions[11]
    assert normalize(cat_rows(t)) == versions[11]


def test_stats_bound_the_values(history):
    table, _, _ = history
    import pyarrow as pa
    actions = pa.record_batch(DeltaTable(str(table)).get_add_actions(flatten=True)).to_pylist()
    for a in actions:
        rows = pq.read_table(table / a["path"]).to_pylist()
        ids = [r["_id"] for r in rows]
        assert a["num_records"] == len(rows)
        assert a["min._id"] == min(ids) and a["max._id"] == max(ids)
        assert a["min.name"] == min(r["name"] for r in rows)
        assert a["null_count.price"] == sum(r["price"] is None for r in rows)
        assert a["min.addr.zip"] == min(r["addr"]["zip"] for r in rows)


def test_spark_uses_the_stats_and_history(history, spark):
    table, versions, _ = history
    df = spark.read.format("delta").load(str(table))
    assert df.filter("_id = 305").count() == 1
    hist = spark.sql(f"DESCRIBE HISTORY delta.`{table}`").orderBy("version").collect()
    assert [h.version for h in hist] == list(range(12))
    assert all(h.operation == "WRITE" for h in hist)
    assert hist[3].operationParameters["mode"] == "Append"
    assert hist[3].operationMetrics["numOutputRows"] == "10"


def test_spark_appends_then_we_append(history, spark, tmp_path):
    table, versions, inp = history
    import shutil
    t = tmp_path / "shared"
    shutil.copytree(table, t)
    from pyspark.sql import functions as F
    df = spark.read.format("delta").load(str(t)).filter("_id < 5").withColumn("_id", F.col("_id") + 100000)
    df.write.format("delta").mode("append").save(str(t))
    spark_rows = normalize(table_rows(spark.read.format("delta").load(str(t)).toArrow()))
    assert len(spark_rows) == len(versions[11]) + 5
    assert normalize(cat_rows(t)) == spark_rows
    more = tmp_path / "more.json"
    write_json(more, [doc(i, evolved=True) for i in range(5000, 5020)])
    run_m2d("load", "--input", more, "--table", t, check=True)
    after_spark = normalize(table_rows(spark.read.format("delta").load(str(t)).toArrow()))
    after_rs = normalize(table_rows(DeltaTable(str(t)).to_pyarrow_table()))
    assert after_spark == after_rs == normalize(cat_rows(t))
    assert len(after_spark) == len(spark_rows) + 20
    hist = spark.sql(f"DESCRIBE HISTORY delta.`{t}`").orderBy("version").collect()
    assert [h.version for h in hist] == list(range(14))


def test_rerun_takes_nothing_twice(history):
    table, versions, inp = history
    p = run_m2d("load", "--input", inp, "--table", table, check=True)
    assert "0 file(s) loaded, 12 already loaded before" in p.stderr
    assert DeltaTable(str(table)).version() == 11


PARTITION_VALUES = ["us", "a/b", "x y", "é", None, "", "50%", "k=v", "q?"]


def test_partitioned_table(tmp_path, spark):
    docs = [{"_id": i, "country": PARTITION_VALUES[i % len(PARTITION_VALUES)], "n": i} for i in range(90)]
    for d in docs:
        if d["country"] is None:
            del d["country"]
    src = tmp_path / "p.json"
    write_json(src, docs)
    table = tmp_path / "part"
    run_m2d("load", "--input", src, "--table", table, "--partition-by", "country", check=True)
    dirs = sorted(p.name for p in table.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert dirs == sorted(["country=us", "country=a%2Fb", "country=x y", "country=é", "country=__HIVE_DEFAULT_PARTITION__",
                           "country=50%25", "country=k%3Dv", "country=q%3F"])
    expected = {d["_id"]: {"_id": d["_id"], "country": d.get("country") or None, "n": d["n"], "_rescued_data": None}
                for d in docs}
    assert normalize(table_rows(DeltaTable(str(table)).to_pyarrow_table())) == expected
    assert normalize(table_rows(spark.read.format("delta").load(str(table)).toArrow())) == expected
    assert normalize(cat_rows(table)) == expected
    assert spark.read.format("delta").load(str(table)).filter("country = 'a/b'").count() == 10
    # the partitioning is the table's: appending without --partition-by keeps it
    more = tmp_path / "more.json"
    write_json(more, [{"_id": 1000, "country": "us", "n": 1}])
    run_m2d("load", "--input", more, "--table", table, check=True)
    assert DeltaTable(str(table)).metadata().partition_columns == ["country"]
    p = run_m2d("load", "--input", more, "--table", table, "--partition-by", "n")
    assert p.returncode == 2 and "partitioned by 'country'" in p.stderr


def test_partition_by_a_document_is_refused(tmp_path):
    src = tmp_path / "p.json"
    write_json(src, [{"_id": 1, "sub": {"a": 1}}])
    p = run_m2d("load", "--input", src, "--table", tmp_path / "t", "--partition-by", "sub")
    assert p.returncode == 2 and "cannot partition by 'sub'" in p.stderr
    assert delta_log.versions(tmp_path / "t") == []


def test_tables_with_features_the_writer_does_not_keep_are_refused(tmp_path):
    """A table another writer upgraded to a feature mongo2delta does not keep up (row tracking)
    or to a writer version beyond 7: load refuses it,
    naming the feature, and commits nothing; a table with only features it keeps (change data
    feed, domain metadata) takes the rows."""
    src = tmp_path / "d.json"
    write_json(src, [{"_id": 1, "n": 1}])
    more = tmp_path / "more.json"
    write_json(more, [{"_id": 2, "n": 2}])
    cases = {
        "rows": ({"minReaderVersion": 1, "minWriterVersion": 7, "writerFeatures": ["appendOnly", "rowTracking"]},
                 "'rowTracking'"),
        "v8": ({"minReaderVersion": 1, "minWriterVersion": 8}, "writer version 8"),
        "kept": ({"minReaderVersion": 1, "minWriterVersion": 7,
                  "writerFeatures": ["appendOnly", "invariants", "changeDataFeed", "domainMetadata"]}, None),
    }
    for name, (protocol, feature) in cases.items():
        table = tmp_path / name
        run_m2d("load", "--input", src, "--table", table, check=True)
        delta_log.commit_path(table, 1).write_text(json.dumps({"protocol": protocol}) + "\n")
        p = run_m2d("load", "--input", more, "--table", table)
        if feature:
            assert p.returncode == 1, (name, p.stderr)
            assert feature in p.stderr and "write to a new table" in p.stderr, p.stderr
            assert delta_log.versions(table) == [0, 1]
        else:
            assert p.returncode == 0, p.stderr
            assert sorted(r["_id"] for r in DeltaTable(str(table)).to_pyarrow_table().to_pylist()) == [1, 2]


def test_a_table_spark_made_gets_rescued_data_and_loses_nothing(tmp_path, spark):
    """A Spark table has no _rescued_data column: the first load adds it, so a value that does not
    fit its column (a string in a BIGINT) is kept there, as Extended JSON, and Spark reads it."""
    table = tmp_path / "spark_made"
    spark.sql(f"CREATE TABLE delta.`{table}` (_id BIGINT, n BIGINT) USING delta")
    spark.sql(f"INSERT INTO delta.`{table}` VALUES (1, 10)")
    src = write_json(tmp_path / "in.json", [{"_id": 2, "n": 20}, {"_id": 3, "n": "thirty"}], canonical=False)
    run_m2d("load", "--input", src, "--table", table, check=True)
    rows = {r["_id"]: r.asDict() for r in spark.read.format("delta").load(str(table)).collect()}
    assert rows[1] == {"_id": 1, "n": 10, "_rescued_data": None}
    assert rows[2] == {"_id": 2, "n": 20, "_rescued_data": None}
    assert rows[3]["n"] is None and json.loads(rows[3]["_rescued_data"]) == {"n": "thirty"}
    # optimize (rows rearranged) keeps the column and the value
    run_m2d("optimize", "--table", table, check=True)
    again = {r["_id"]: r.asDict() for r in spark.read.format("delta").load(str(table)).collect()}
    assert again == rows
