"""Log cleanup (PROTOCOL.md "Metadata Cleanup"): a table with a short
delta.logRetentionDuration gets 200 commits from `mongo2delta load`; after a checkpoint our
writer removes the expired JSON commits and older checkpoints before the newest checkpoint that
is itself expired, keeps that checkpoint and everything after it, and every version from the
oldest kept checkpoint on reads the rows that were loaded up to it in Spark, delta-rs and our
`cat`. Time travel to a removed version fails naming the oldest readable one. With the default
retention (30 days) nothing is removed."""
import json
import time

from deltalake import DeltaTable

from conftest import run_m2d
from delta_log import last_checkpoint, log_files


def write_file(path, n):
    """File n holds two documents, _id 2n and 2n+1."""
    path.write_text("".join(json.dumps({"_id": i, "n": n, "name": f"doc-{i}"}) + "\n" for i in (2 * n, 2 * n + 1)))


def rows_of(records):
    return sorted((r["_id"], r["n"], r["name"]) for r in records)


def expected(files_committed):
    return sorted((i, n, f"doc-{i}") for n in range(files_committed) for i in (2 * n, 2 * n + 1))


def load_files(inp, first, last):
    inp.mkdir()
    for n in range(first, last + 1):
        write_file(inp / f"f{n:04d}.json", n)


def test_expired_commits_are_removed_and_the_rest_reads(tmp_path, spark):
    table = tmp_path / "table"
    # v0: file 0, by our writer; v1: Spark sets the properties
    load_files(tmp_path / "in0", 0, 0)
    run_m2d("load", "--input", tmp_path / "in0", "--table", table, check=True)
    spark.sql(f"ALTER TABLE delta.`{table}` SET TBLPROPERTIES ("
              "'delta.logRetentionDuration' = 'interval 1 second', 'delta.checkpointInterval' = '10')")
    # v2..v191: files 1..190; then past the retention, v192..v201: files 191..200
    load_files(tmp_path / "in1", 1, 190)
    run_m2d("load", "--input", tmp_path / "in1", "--table", table, check=True, timeout=300)
    time.sleep(2)
    load_files(tmp_path / "in2", 191, 200)
    run_m2d("load", "--input", tmp_path / "in2", "--table", table, check=True)

    files = log_files(table)
    latest = max(files["json"])
    assert latest == 201
    kept_cp = min(files["checkpoint.parquet"])
    # the checkpoint at 190 or later expired when 200 was checkpointed; all before it is gone
    assert kept_cp >= 190, files["checkpoint.parquet"]
    assert min(files["json"]) == kept_cp
    assert files["json"] == set(range(kept_cp, latest + 1))
    assert files["checkpoint.parquet"] == set(range(kept_cp, latest + 1, 10))
    last = last_checkpoint(table)
    assert last["version"] == 200

    def files_at(v):  # file n is in version n + 1 (v1 is Spark's ALTER TABLE)
        return v if v >= 1 else 1

    for v in range(kept_cp, latest + 1):
        want = expected(files_at(v))
        spark_rows = spark.read.format("delta").option("versionAsOf", v).load(str(table)).collect()
        assert rows_of(r.asDict() for r in spark_rows) == want, f"Spark, version {v}"
        rs = DeltaTable(str(table), version=v).to_pyarrow_table().to_pylist()
        assert rows_of(rs) == want, f"delta-rs, version {v}"
    p = run_m2d("cat", "--table", table, "--version", kept_cp, check=True)
    assert rows_of(json.loads(line) for line in p.stdout.splitlines()) == expected(files_at(kept_cp))

    # a removed version: a clear error naming the oldest readable one
    p = run_m2d("cat", "--table", table, "--version", 5)
    assert p.returncode == 2  # a version that cannot be asked for (usage), not a failure of the run
    assert "version 5 is no longer in the log" in p.stderr, p.stderr
    assert f"the oldest version that can be read is {kept_cp}" in p.stderr, p.stderr
    assert p.stdout == ""


def test_default_retention_removes_nothing(tmp_path):
    table = tmp_path / "table"
    load_files(tmp_path / "in", 0, 24)
    run_m2d("load", "--input", tmp_path / "in", "--table", table, check=True)
    time.sleep(1.5)
    load_files(tmp_path / "in2", 25, 30)
    run_m2d("load", "--input", tmp_path / "in2", "--table", table, check=True)
    files = log_files(table)
    assert files["json"] == set(range(0, 31))
    assert files["checkpoint.parquet"] == {10, 20, 30}
    for v in (0, 5, 30):
        rs = DeltaTable(str(table), version=v).to_pyarrow_table().to_pylist()
        assert rows_of(rs) == expected(v + 1)
