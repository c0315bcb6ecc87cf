"""Which columns get statistics in the add actions we write: the table's
delta.dataSkippingNumIndexedCols (the first N columns, 32 when unset, -1 for all) and
delta.dataSkippingStatsColumns (named columns, nested ones with a dot), as Spark collects them.
Checked against Spark's own stats for the same rows in a twin table with the same properties,
and the values against the rows read back."""
import json

import pytest
from bson import Int64, json_util
from deltalake import DeltaTable

from conftest import run_m2d
from spark_fixture import spark  # noqa: F401  (fixture)

COLUMNS = "_id BIGINT, a INT, s STRUCT<x: INT, y: STRING>, b STRING, c DOUBLE, tags ARRAY<STRING>, d INT"


def docs(n=20):
    return [{"_id": Int64(i), "a": i * 3, "s": {"x": 100 - i, "y": f"y{i:02d}"}, "b": f"b{i % 7}", "c": i / 4,
             "tags": ["t", str(i)], "d": None if i % 2 else i} for i in range(n)]


def write_json(path, rows):
    path.write_text("".join(json_util.dumps(d, json_options=json_util.CANONICAL_JSON_OPTIONS) + "\n" for d in rows))


def add_stats(table):
    """The stats of the table's live files, parsed (the logs here have no checkpoint)."""
    live = {}
    for f in sorted((table / "_delta_log").glob("*.json")):
        for a in map(json.loads, f.read_text().splitlines()):
            if "add" in a:
                live[a["add"]["path"]] = json.loads(a["add"]["stats"])
            elif "remove" in a:
                live.pop(a["remove"]["path"], None)
    return list(live.values())


def keys(section):
    """A stats section's column paths ('s.x'), sorted."""
    out = []
    for k, v in section.items():
        out += [f"{k}.{p}" for p in keys(v)] if isinstance(v, dict) else [k]
    return sorted(out)


def without_arrays(paths):
    # Spark counts nulls of an array column too; mongo2delta gives arrays and maps no stats
    return [p for p in paths if p != "tags"]


@pytest.mark.parametrize("props,expected", [
    ({"delta.dataSkippingNumIndexedCols": "3"}, ["_id", "a", "s.x"]),
    ({"delta.dataSkippingNumIndexedCols": "5"}, ["_id", "a", "b", "s.x", "s.y"]),
    ({"delta.dataSkippingNumIndexedCols": "-1"}, ["_id", "a", "b", "c", "d", "s.x", "s.y"]),
    ({"delta.dataSkippingStatsColumns": "b, S.y,`d`"}, ["b", "d", "s.y"]),
    ({"delta.dataSkippingStatsColumns": "s"}, ["s.x", "s.y"]),
])
def test_load_collects_stats_for_the_columns_spark_does(tmp_path, spark, props, expected):
    tblprops = ", ".join(f"'{k}' = '{v}'" for k, v in props.items())
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for t in (ours, theirs):
        spark.sql(f"CREATE TABLE delta.`{t}` ({COLUMNS}) USING delta TBLPROPERTIES ({tblprops})")
    rows = docs()
    src = tmp_path / "docs.json"
    write_json(src, rows)
    run_m2d("load", "--input", src, "--table", ours, check=True)
    spark.createDataFrame([{k: v if not isinstance(v, Int64) else int(v) for k, v in r.items()} for r in rows],
                          schema=COLUMNS).coalesce(1).write.format("delta").mode("append").save(str(theirs))

    (mine,), (spark_stats,) = add_stats(ours), add_stats(theirs)
    assert mine["numRecords"] == spark_stats["numRecords"] == len(rows)
    assert keys(mine["minValues"]) == keys(mine["maxValues"]) == keys(spark_stats["minValues"]) == expected
    # load added its _rescued_data column to the table (schema and files), last: counted in the file's order
    rescued = mine["nullCount"].pop("_rescued_data", None)
    assert rescued == (len(rows) if props.get("delta.dataSkippingNumIndexedCols") == "-1" else None)
    assert keys(mine["nullCount"]) == without_arrays(keys(spark_stats["nullCount"]))
    # the bounds themselves are Spark's
    assert mine["minValues"] == spark_stats["minValues"] and mine["maxValues"] == spark_stats["maxValues"]
    assert mine["nullCount"] == {k: v for k, v in spark_stats["nullCount"].items() if k != "tags"}
    # and Spark reads our rows (and our _rescued_data column, empty: every value fit)
    def read(t):
        return sorted((r.asDict(recursive=True) for r in spark.read.format("delta").load(str(t)).collect()),
                      key=lambda r: r["_id"])
    mine_rows = read(ours)
    assert all(r.pop("_rescued_data") is None for r in mine_rows)
    assert mine_rows == read(theirs)


def test_a_new_table_gets_stats_for_its_first_32_columns(tmp_path):
    # 40 top-level fields besides _id: the first 32 columns of the file (in its order) get stats
    rows = [dict({"_id": Int64(i)}, **{f"f{k:02d}": i * k for k in range(40)}) for i in range(5)]
    src = tmp_path / "wide.json"
    write_json(src, rows)
    table = tmp_path / "t"
    run_m2d("load", "--input", src, "--table", table, check=True)
    (stats,) = add_stats(table)
    order = DeltaTable(str(table)).schema().to_arrow().names
    indexed = [n for n in order if n != "_rescued_data"][:32]
    assert sorted(stats["minValues"]) == sorted(indexed)
    assert all(stats["minValues"][n] == min(r[n] for r in rows) for n in indexed if n != "_id")
    assert all(stats["maxValues"][n] == max(r[n] for r in rows) for n in indexed if n != "_id")
    assert sorted(stats["nullCount"]) == sorted(indexed)


def test_a_bad_num_indexed_cols_is_refused_before_anything_is_written(tmp_path, spark):
    table = tmp_path / "t"
    spark.sql(f"CREATE TABLE delta.`{table}` (_id BIGINT, a INT) USING delta")
    # Spark validates the property itself, so the bad value comes from a commit of another writer
    log = table / "_delta_log"
    (meta,) = [a for a in map(json.loads, (log / "00000000000000000000.json").read_text().splitlines())
               if "metaData" in a]
    meta["metaData"]["configuration"]["delta.dataSkippingNumIndexedCols"] = "many"
    (log / "00000000000000000001.json").write_text(json.dumps(meta) + "\n")
    src = tmp_path / "docs.json"
    write_json(src, [{"_id": Int64(1), "a": 1}])
    proc = run_m2d("load", "--input", src, "--table", table)
    assert proc.returncode == 1, proc.stderr
    assert "delta.dataSkippingNumIndexedCols" in proc.stderr and "'many'" in proc.stderr
    assert sorted(p.name for p in log.glob("*.json")) == ["00000000000000000000.json", "00000000000000000001.json"]
    assert not list(table.glob("*.parquet"))
