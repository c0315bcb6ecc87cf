"""V2 checkpoints (PROTOCOL.md "V2 Checkpoint Table Feature"), as Spark 4 and Databricks write
them for `delta.checkpointPolicy = v2`: a UUID-named JSON checkpoint whose adds are in a Parquet
sidecar under _delta_log/_sidecars. mongo2delta's load, sync and optimize write to such tables,
our writer's own checkpoints on them are UUID-named v2 ones, log cleanup starts from them
without breaking the checkpoints it keeps, and Spark reads rows equal to what went in (the
collection, for sync). delta-rs 1.1.4 reads no v2 checkpoint (Spark's golden v2 tables fail in
it too), so Spark is the judge."""
import json
import os
import re
import time

from bson_mapping import check_spark_table
import delta_log
from conftest import run_m2d

UUID_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\.(json|parquet)$")
DAY = 24 * 3600


def uuid_checkpoints(table):
    """{version: [name, ...]} of the UUID-named checkpoints in the log."""
    out = {}
    for name in os.listdir(delta_log.log_dir(table)):
        m = UUID_CHECKPOINT.match(name)
        if m:
            out.setdefault(int(m.group(1)), []).append(name)
    return out


def sidecars(table):
    d = delta_log.log_dir(table) / "_sidecars"
    return sorted(n for n in os.listdir(d) if n.endswith(".parquet")) if d.is_dir() else []


def spark_checkpoint(spark, table):
    """Spark's own checkpoint of the table at its latest version (a v2 one, with a sidecar)."""
    jvm = spark._jvm
    jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, str(table))
    log.checkpoint()
    v = delta_log.latest_version(table)
    names = uuid_checkpoints(table).get(v, [])
    assert any(n.endswith(".json") for n in names), f"Spark wrote no UUID-named v2 checkpoint at {v}: {names}"
    assert sidecars(table), "Spark's v2 checkpoint has no sidecar"
    return v


def spark_pairs(spark, table):
    return sorted((r["_id"], r["n"]) for r in spark.read.format("delta").load(str(table)).collect())


def our_checkpoint_after(table, v):
    """The UUID-named Parquet checkpoints our writer made after version v."""
    return [n for ver, names in uuid_checkpoints(table).items() if ver > v for n in names if n.endswith(".parquet")]


def age_log(table, days):
    """The commits and sidecars as if written days ago."""
    t = time.time() - days * DAY
    log = delta_log.log_dir(table)
    for path in [log / n for n in os.listdir(log) if n.endswith(".json")] + [log / "_sidecars" / n for n in sidecars(table)]:
        os.utime(path, (t, t))


def test_v2_checkpoint_tables_take_load_sync_and_optimize(mongo, mongo_db, tmp_path, spark):
    from test_optimize import optimize, sync_once
    from test_sync import settle, workload

    # --- a table Spark creates with v2 checkpoints; load appends, our checkpoint, cleanup
    table = tmp_path / "loaded"
    spark.sql(f"CREATE TABLE delta.`{table}` (_id BIGINT, n BIGINT) USING delta TBLPROPERTIES "
              "('delta.checkpointPolicy'='v2', 'delta.checkpointInterval'='3', "
              "'delta.logRetentionDuration'='interval 1 days')")
    spark.sql(f"INSERT INTO delta.`{table}` VALUES (0, 0), (1, 10), (2, 20)")
    protocol = delta_log.actions(table, "protocol")[-1]
    assert "v2Checkpoint" in protocol["readerFeatures"]
    spark_v = spark_checkpoint(spark, table)
    want = [(0, 0), (1, 10), (2, 20)]
    for k in range(4):  # one commit per file: the interval is crossed
        docs = [{"_id": 100 + 10 * k + i, "n": k * 1000 + i} for i in range(5)]
        want += [(d["_id"], d["n"]) for d in docs]
        src = delta_log.write_json(tmp_path / f"in{k}.json", docs, canonical=False)
        run_m2d("load", "--input", src, "--table", table, check=True)
    ours = our_checkpoint_after(table, spark_v)
    assert ours, f"no v2 checkpoint of ours after version {spark_v}: {sorted(os.listdir(delta_log.log_dir(table)))}"
    last = json.loads((delta_log.log_dir(table) / "_last_checkpoint").read_text())
    assert last["v2Checkpoint"]["path"] in ours
    assert spark_pairs(spark, table) == sorted(want)
    # the commits grow old: the next checkpoint of ours removes the log before the one it starts
    # from, Spark's checkpoint and all, and then Spark's sidecar, which no kept checkpoint names
    age_log(table, 3)
    assert sidecars(table)
    for k in range(4, 7):
        docs = [{"_id": 100 + 10 * k + i, "n": k * 1000 + i} for i in range(5)]
        want += [(d["_id"], d["n"]) for d in docs]
        run_m2d("load", "--input", delta_log.write_json(tmp_path / f"in{k}.json", docs, canonical=False),
                "--table", table, check=True)
    assert not (delta_log.log_dir(table) / f"{0:020d}.json").exists(), "log cleanup removed nothing"
    # Spark's checkpoint went with the commits before ours: what Spark reads now starts from ours
    assert spark_v not in uuid_checkpoints(table)
    assert sidecars(table) == []
    p = optimize(table, check=True)
    assert "file(s) removed" in p.stderr
    assert spark_pairs(spark, table) == sorted(want)
    p = run_m2d("cat", "--table", table, check=True)
    assert sorted((r["_id"], r["n"]) for r in map(json.loads, p.stdout.splitlines())) == sorted(want)

    # --- a mirror sync keeps, switched to v2 checkpoints by Spark, then synced and optimized
    mongo_db.c.insert_many([{"_id": i, "n": i, "tags": [f"t{i % 5}"], "nested": {"a": i % 7}} for i in range(200)])
    mirror = tmp_path / "mirror"
    settle()
    sync_once(mongo, mongo_db.name, mirror)
    spark.sql(f"ALTER TABLE delta.`{mirror}` SET TBLPROPERTIES ('delta.checkpointPolicy'='v2', "
              "'delta.checkpointInterval'='2')")
    spark_v = spark_checkpoint(spark, mirror)

    def check():
        check_spark_table(spark, mirror, list(mongo_db.c.find()))

    check()
    workload(mongo_db.c, 120, 200, seed=11)
    sync_once(mongo, mongo_db.name, mirror)
    assert our_checkpoint_after(mirror, spark_v), "sync crossed the interval but wrote no v2 checkpoint"
    check()
    optimize(mirror, check=True)
    check()
    workload(mongo_db.c, 40, 200, seed=12)
    sync_once(mongo, mongo_db.name, mirror)
    check()
