"""`mongo2delta optimize`, judged by what a user checks: the table's rows, read by independent
readers (delta-rs for our tables, Spark for tables with deletion vectors, pyarrow on the data
files themselves), are the same before and after; the file count went down; no deletion vector
is left; the commit is an OPTIMIZE with dataChange false; time travel to the version before
still reads the old files. Then the edges: a dry run, nothing to do, Spark's column-mapped
table with deletion vectors, and a concurrent writer that removes a file optimize is compacting (a
conflict, nothing committed, the table intact) or changes the schema meanwhile (retried)."""
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse

import pyarrow.parquet as pq
import pytest
from bson import json_util
from deltalake import DeltaTable

import delta_log
from conftest import TESTDATA, run_m2d, start_m2d
from delta_log import commit, data_files, latest_version

GOLDEN = TESTDATA / "delta-golden"
UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, tzinfo=UTC)


def write_inputs(root, files, docs, evolve_from=None, first_id=0):
    """files JSON-lines export files of docs documents each (one load commit each); from file
    evolve_from on, documents get a new top-level column and a new nested field."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(files):
        out = []
        for i in range(docs):
            n = first_id + f * docs + i
            d = {"_id": n, "name": f"doc-{n}", "country": ["fr", "de", "us"][n % 3], "qty": n % 17,
                 "at": T0 + dt.timedelta(seconds=n), "tags": [f"t{n % 4}"] * (n % 3),
                 "addr": {"city": f"c{n % 5}"}}
            if evolve_from is not None and f >= evolve_from:
                d["score"] = n / 4
                d["addr"]["zip"] = 10000 + n
            out.append(d)
        if f == 1:
            out[0]["qty"] = "seventeen"  # rescued into _rescued_data
        p = root / f"part{f:03d}.json"
        p.write_text("".join(json_util.dumps(d, json_options=json_util.CANONICAL_JSON_OPTIONS) + "\n" for d in out))
        paths.append(p)
    return root


def copy_table(src, dst, mtime=None):
    """A writable copy of a test table (testdata is never modified); mtime: the data files'
    modification time, as on the machine that wrote them, instead of the checkout's."""
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        os.chmod(p, os.stat(p).st_mode | 0o200)
        if mtime is not None and p.is_file() and "_delta_log" not in p.parts:
            os.utime(p, (mtime, mtime))
    return dst


def canon(rows):
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


def rs_rows(table, version=None):
    t = DeltaTable(str(table), version=version) if version is not None else DeltaTable(str(table))
    return canon(t.to_pyarrow_table().to_pylist())


def spark_rows(spark, table, version=None):
    r = spark.read.format("delta")
    if version is not None:
        r = r.option("versionAsOf", version)
    return canon(r.load(str(table)).toArrow().to_pylist())


def spark_live_files(spark, table):
    """Spark's own reconstruction of the latest version: [(path, has a deletion vector)]."""
    from pyspark.sql import DataFrame
    jvm = spark._jvm
    log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, str(table))
    snap = log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty())
    df = DataFrame(snap.allFiles().toDF(), spark)
    return [(r.path, r.deletionVector is not None) for r in df.select("path", "deletionVector").collect()]




def pyarrow_rows(table, adds, partition_cols=()):
    """The rows of the given add actions read by pyarrow straight from the files (no deletion
    vectors: the files hold exactly the table's rows), with their partition values."""
    rows = []
    for a in adds:
        t = pq.read_table(table / urllib.parse.unquote(a["path"]))
        stats = json.loads(a["stats"])
        assert t.num_rows == stats["numRecords"]
        for r in t.to_pylist():
            for c in partition_cols:
                v = a["partitionValues"][c]
                r[c] = int(v) if v is not None and v.lstrip("-").isdigit() else v
            rows.append(r)
    return rows


def optimize(table, *args, **kw):
    return run_m2d("optimize", "--table", table, *args, **kw)


def test_partitioned_table_of_many_small_commits(tmp_path):
    table = tmp_path / "t"
    run_m2d("load", "--input", write_inputs(tmp_path / "in", files=15, docs=40), "--table", table,
            "--partition-by", "country", check=True)
    v0 = latest_version(table)
    before = rs_rows(table)
    files0 = DeltaTable(str(table)).files()
    assert len(before) == 600 and len(files0) == 45

    p = optimize(table, check=True)
    assert f"45 file(s) removed" in p.stderr and "3 file(s) added" in p.stderr
    assert f"600 rows rewritten, 0 deletion vector(s) folded; table version {v0 + 1}" in p.stderr
    t = DeltaTable(str(table))
    assert t.version() == v0 + 1
    assert rs_rows(table) == before
    assert len(t.files()) == 3 and all(f.startswith("country=") for f in t.files())
    assert t.history(1)[0]["operation"] == "OPTIMIZE"

    acts = commit(table, v0 + 1)
    info = acts[0]["commitInfo"]
    assert info["operation"] == "OPTIMIZE" and info["operationMetrics"]["numRemovedFiles"] == "45"
    adds = [a["add"] for a in acts if "add" in a]
    removes = [a["remove"] for a in acts if "remove" in a]
    assert len(adds) == 3 and len(removes) == 45
    assert all(a["dataChange"] is False for a in adds + removes)
    assert sorted(r["path"] for r in removes) == sorted(files0)
    # pyarrow on the new files: exactly the table's rows (ids, no duplicates)
    raw = pyarrow_rows(table, adds, ["country"])
    assert sorted(r["_id"] for r in raw) == list(range(600))
    assert {(r["_id"], r["country"]) for r in raw} == {(n, ["fr", "de", "us"][n % 3]) for n in range(600)}
    # time travel: the version before reads the old files, the same rows
    old = DeltaTable(str(table), version=v0)
    assert sorted(old.files()) == sorted(files0)
    assert rs_rows(table, v0) == before
    # our own reader agrees
    cat = run_m2d("cat", "--table", table, check=True).stdout.splitlines()
    assert len(cat) == 600

    p = optimize(table, check=True)
    assert "nothing to do" in p.stderr and latest_version(table) == v0 + 1


def test_schema_evolved_table_and_bins_near_the_target(tmp_path):
    table = tmp_path / "t"
    run_m2d("load", "--input", write_inputs(tmp_path / "in", files=12, docs=30, evolve_from=6), "--table", table,
            check=True)
    v0 = latest_version(table)
    before = rs_rows(table)
    sizes = [a["add"]["size"] for v in range(v0 + 1) for a in commit(table, v) if "add" in a]
    assert len(sizes) == 12
    target = sum(sizes) // 3 + 1  # about three bins of four files
    p = optimize(table, "--target-size", target, "--min-file-size", "1MB", check=True)
    adds = [a["add"] for a in commit(table, v0 + 1) if "add" in a]
    assert 2 <= len(adds) <= 4, p.stderr
    assert rs_rows(table) == before
    # every new file has the evolved schema; the columns an old file lacked are null in it
    for a in adds:
        names = pq.read_schema(table / a["path"]).names
        assert {"_id", "score", "addr", "_rescued_data"} <= set(names)
    rows = {json.loads(r)["_id"]: json.loads(r) for r in run_m2d("cat", "--table", table, check=True).stdout.splitlines()}
    assert rows[0]["score"] is None and rows[0]["addr"] == {"city": "c0", "zip": None}
    assert rows[200]["score"] == 50.0 and rows[200]["addr"]["zip"] == 10200
    assert json_util.loads(rows[30]["_rescued_data"]) == {"qty": "seventeen"}
    assert rs_rows(table, v0) == before


def test_dry_run_changes_nothing(tmp_path):
    table = tmp_path / "t"
    run_m2d("load", "--input", write_inputs(tmp_path / "in", files=4, docs=10), "--table", table, check=True)
    v0, files0 = latest_version(table), data_files(table)
    p = optimize(table, "--dry-run", check=True)
    assert sorted(p.stdout.split()) == files0
    assert "dry run" in p.stderr and "would rewrite 4 file(s)" in p.stderr and "40 rows" in p.stderr
    assert latest_version(table) == v0 and data_files(table) == files0


def test_deletion_vectors_are_folded_away(tmp_path, spark):
    table = tmp_path / "dv"
    copy_table(GOLDEN / "dv-partitioned-with-checkpoint", table)
    before = spark_rows(spark, table)
    live0 = spark_live_files(spark, table)
    assert any(dv for _, dv in live0)

    p = optimize(table, check=True)
    assert "2 deletion vector(s) folded; table version 16" in p.stderr
    assert spark_rows(spark, table) == before
    live = spark_live_files(spark, table)
    assert not any(dv for _, dv in live)
    assert len(live) < len(live0)
    # the new files hold exactly the rows left (pyarrow, no deletion vector to apply)
    adds = [a["add"] for a in commit(table, 16) if "add" in a]
    removed = [a["remove"] for a in commit(table, 16) if "remove" in a]
    assert sum(1 for r in removed if r.get("deletionVector")) == 2
    assert all(a["dataChange"] is False for a in adds + removed)
    kept = [a for a in (DeltaLogReplay(table).live()) if a["path"] not in {x["path"] for x in adds}]
    raw = pyarrow_rows(table, adds, ["part"]) + pyarrow_rows(table, kept, ["part"])
    assert canon(raw) == before
    # time travel to the version before still applies the old deletion vectors
    assert spark_rows(spark, table, version=15) == before
    assert "nothing to do" in optimize(table, check=True).stderr


class DeltaLogReplay:
    """Just enough log replay for a table whose JSON commits are all there (tests only)."""

    def __init__(self, table, version=None):
        self.table, self.version = table, version

    def live(self):
        """The live add actions, reconciled by path and deletion vector (PROTOCOL.md)."""
        def key(a):
            dv = a.get("deletionVector") or {}
            return a["path"], dv.get("storageType"), dv.get("pathOrInlineDv"), dv.get("offset")

        files = {}
        for v, acts in delta_log.commits(self.table).items():
            if self.version is not None and v > self.version:
                break
            for a in acts:
                if "add" in a:
                    files[key(a["add"])] = a["add"]
                elif "remove" in a:
                    files.pop(key(a["remove"]), None)
        return list(files.values())


def test_a_spark_table_with_column_mapping_and_deletion_vectors(tmp_path, spark):
    """Spark's golden table (name mode, partitioned, deletion vectors): optimize folds the deletion
    vectors into new files named by physical names, and Spark reads the same rows."""
    table = tmp_path / "cm"
    copy_table(GOLDEN / "dv-with-columnmapping", table)
    v0 = latest_version(table)
    before = spark_rows(spark, table)
    p = optimize(table, check=True)
    assert "deletion vector(s) folded" in p.stderr and latest_version(table) == v0 + 1
    assert spark_rows(spark, table) == before
    added = [a for a in commit(table, v0 + 1) if "add" in a]
    assert added and all(k.startswith("col-") for a in added for k in a["add"]["partitionValues"])


def wait_stopped(proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        with open(f"/proc/{proc.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.05)
    raise AssertionError("optimize did not reach its commit")


def optimize_paused_before_commit(table):
    """optimize, stopped (SIGSTOP) right before it creates its commit file."""
    proc = start_m2d("optimize", "--table", table, stdout=subprocess.PIPE,
                     env={"MONGO2DELTA_FAULT": "put_if_absent:1:pause-before"})
    wait_stopped(proc)
    return proc


def resume(proc):
    os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert "Sanitizer" not in err and "runtime error:" not in err, err[-3000:]
    return proc.returncode, err


def test_concurrent_delete_of_a_compacted_file_is_a_conflict(tmp_path):
    table = tmp_path / "t"
    run_m2d("load", "--input", write_inputs(tmp_path / "in", files=6, docs=10), "--table", table, check=True)
    v0 = latest_version(table)
    proc = optimize_paused_before_commit(table)
    try:
        # another writer (delta-rs) deletes a row: it rewrites the file holding _id 23
        DeltaTable(str(table)).delete("_id = 23")
    finally:
        rc, err = resume(proc)
    assert rc == 1, err
    line = err.strip().splitlines()[-1]
    assert f"version {v0 + 1} of the table" in line and "removed the file part-" in line
    assert "run the command again" in line
    # the table is intact: the delete stands, no OPTIMIZE commit, no file of optimize left over
    assert latest_version(table) == v0 + 1
    rows = rs_rows(table)
    assert len(rows) == 59 and not any('"_id": 23,' in r for r in rows)
    assert set(data_files(table)) <= delta_log.added_paths(table)
    # run again: it compacts
    p = optimize(table, check=True)
    assert "table version" in p.stderr and rs_rows(table) == rows
    assert len(DeltaTable(str(table)).files()) == 1


def test_concurrent_schema_change_is_retried(tmp_path):
    table = tmp_path / "t"
    run_m2d("load", "--input", write_inputs(tmp_path / "in", files=5, docs=10), "--table", table, check=True)
    v0 = latest_version(table)
    before = rs_rows(table)
    proc = optimize_paused_before_commit(table)
    try:
        # another writer appends documents with a new column (a metaData change)
        run_m2d("load", "--input", write_inputs(tmp_path / "in2", files=1, docs=5, evolve_from=0, first_id=1000),
                "--table", table, check=True)
    finally:
        rc, err = resume(proc)
    assert rc == 0, err
    assert f"table version {v0 + 2}" in err
    assert commit(table, v0 + 2)[0]["commitInfo"]["operation"] == "OPTIMIZE"
    rows = [json.loads(r) for r in rs_rows(table)]
    assert len(rows) == 55
    # the rows compacted are those read before, with the new columns null
    old = []
    for r in rows:
        if r["_id"] < 1000:
            assert r.pop("score") is None and r["addr"].pop("zip") is None
            old.append(r)
    assert canon(old) == before
    assert len(DeltaTable(str(table)).files()) == 2  # the compacted file and the new load's


def sync_once(mongo, db, table):
    """One sync run of the mirror (deletion vectors for updates and deletes) until idle."""
    return run_m2d("sync", "--uri", mongo.uri, "--db", db, "--collection", "c", "--table", table,
                   "--max-latency", "200", "--max-batch-docs", "50", "--stop-when-idle", "2", timeout=300, check=True)


def test_a_synced_table_with_our_deletion_vectors(mongo, mongo_db, tmp_path, spark):
    """What sync writes (a mirror whose updates and deletes are deletion vectors) compacted
    between two sync runs, then vacuumed: the table equals the collection all along."""
    from bson_mapping import check_spark_table
    from test_sync import settle, workload

    def check():
        check_spark_table(spark, table, list(mongo_db.c.find()))

    mongo_db.c.insert_many([{"_id": i, "n": i, "tags": [f"t{i % 5}"], "nested": {"a": i % 7}} for i in range(200)])
    table = tmp_path / "mirror"
    settle()
    proc = start_m2d("sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", table,
                     "--max-latency", "200", "--max-batch-docs", "50", "--stop-when-idle", "4")
    time.sleep(2)  # the initial snapshot
    workload(mongo_db.c, 80, 200, seed=7)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    live = spark_live_files(spark, table)
    assert any(dv for _, dv in live), "sync wrote no deletion vector"
    before = spark_rows(spark, table)
    check()

    p = optimize(table, check=True)
    assert "deletion vector(s) folded" in p.stderr
    assert not any(dv for _, dv in spark_live_files(spark, table))
    assert spark_rows(spark, table) == before
    # sync goes on from the compacted table (its key index is rebuilt from the new files)
    workload(mongo_db.c, 30, 200, seed=8)
    sync_once(mongo, mongo_db.name, table)
    check()
    vacuum = run_m2d("vacuum", "--table", table, "--retain-hours", 0, "--force", check=True)
    assert "file(s) deleted" in vacuum.stderr
    check()
