"""`mongo2delta vacuum`, judged by what a user checks: the files no version inside the retention
needs are gone (data files, deletion vector files, files never committed), the current version
still reads the same in delta-rs and Spark, versions inside the retention still time-travel,
_delta_log and hidden files are never touched, a retention below the table's is refused without
--force, and a dry run deletes nothing."""
import datetime as dt
import json
import os
import re
import time

import pyarrow.parquet as pq
from deltalake import DeltaTable

from conftest import run_m2d
from delta_log import all_files
from test_optimize import GOLDEN, DeltaLogReplay, canon, copy_table, commit, latest_version, rs_rows, spark_rows, write_inputs

DAY = 24 * 3600


def vacuum(table, *args, **kw):
    return run_m2d("vacuum", "--table", table, *args, **kw)


def age(path, days):
    t = time.time() - days * DAY
    os.utime(path, (t, t))


def test_vacuum_after_optimize(tmp_path, spark):
    table = tmp_path / "t"
    run_m2d("load", "--input", write_inputs(tmp_path / "in", files=8, docs=20), "--table", table,
            "--partition-by", "country", check=True)
    run_m2d("optimize", "--table", table, check=True)
    v_opt = latest_version(table)
    compacted_away = sorted(a["remove"]["path"] for a in commit(table, v_opt) if "remove" in a)
    assert len(compacted_away) == 24
    # three more commits: version 10 is checkpointed, with the optimize's tombstones in it
    run_m2d("load", "--input", write_inputs(tmp_path / "in2", files=3, docs=20, first_id=1000), "--table", table,
            check=True)
    ckpt = pq.read_table(table / "_delta_log" / f"{10:020d}.checkpoint.parquet").to_pylist()
    assert sorted(r["remove"]["path"] for r in ckpt if r["remove"]) == compacted_away
    v = latest_version(table)
    before = rs_rows(table)
    before_opt = rs_rows(table, v_opt - 1)

    # files that were never committed: an old one, a fresh one (a writer still at work), and
    # names vacuum must leave alone whatever their age
    old_stray = table / "country=fr" / "part-00000-stray-old.c000.snappy.parquet"
    old_stray.write_bytes(b"x" * 100)
    age(old_stray, 30)
    fresh_stray = table / "part-00000-stray-fresh.c000.snappy.parquet"
    fresh_stray.write_bytes(b"y" * 10)
    for hidden in (table / "_SUCCESS", table / "_tmp" / "part-0.parquet", table / ".hidden.parquet"):
        hidden.parent.mkdir(exist_ok=True)
        hidden.write_bytes(b"z")
        age(hidden, 30)
    log_before = all_files(table / "_delta_log")

    # default retention (7 days): only the old stray goes; the files optimize removed are kept
    # (removed minutes ago), so the version before optimize still reads
    p = vacuum(table, check=True)
    assert "1 file(s) deleted, 100 bytes" in p.stderr and "25 newer unreferenced file(s) kept" in p.stderr
    assert not old_stray.exists() and fresh_stray.exists()
    assert rs_rows(table, v_opt - 1) == before_opt
    assert [c[0]["commitInfo"]["operation"] for c in (commit(table, v + 1), commit(table, v + 2))] == [
        "VACUUM START", "VACUUM END"]
    assert commit(table, v + 2)[0]["commitInfo"]["operationMetrics"]["numDeletedFiles"] == "1"
    v += 2

    # a shorter retention is refused without --force, and says why
    files = all_files(table)
    p = vacuum(table, "--retain-hours", 0)
    assert p.returncode == 2
    msg = p.stderr.strip().splitlines()[-1]
    assert "--force" in msg and "168 hours" in msg and "time travel" in msg
    assert all_files(table) == files and latest_version(table) == v

    # a dry run lists what would go, deletes and commits nothing
    p = vacuum(table, "--retain-hours", 0, "--force", "--dry-run", check=True)
    listed = sorted(line.split("\t")[0] for line in p.stdout.splitlines())
    assert listed == sorted(compacted_away + [fresh_stray.name])
    assert "would delete 25 file(s)" in p.stderr
    assert all_files(table) == files and latest_version(table) == v

    p = vacuum(table, "--retain-hours", 0, "--force", check=True)
    assert "25 file(s) deleted" in p.stderr
    left = all_files(table)
    assert not set(compacted_away) & set(left) and fresh_stray.name not in left
    assert {"_SUCCESS", "_tmp/part-0.parquet", ".hidden.parquet"} <= set(left)
    assert set(log_before) <= set(all_files(table / "_delta_log"))  # the log only grew
    # the current version reads the same, in delta-rs and in Spark
    assert rs_rows(table) == before
    assert spark_rows(spark, table) == before
    assert DeltaTable(str(table)).history(1)[0]["operation"] == "VACUUM END"
    # the version before optimize lost its files: time travel to it fails, and says so
    p = run_m2d("cat", "--table", table, "--version", v_opt - 1)
    assert p.returncode == 1 and "cannot open" in p.stderr

    # nothing left to delete: nothing deleted, no commit
    p = vacuum(table, "--retain-hours", 0, "--force", check=True)
    assert "0 file(s) deleted" in p.stderr and latest_version(table) == v + 2


def test_vacuum_deletion_vector_table(tmp_path, spark):
    table = tmp_path / "dv"
    copy_table(GOLDEN / "dv-partitioned-with-checkpoint", table, mtime=1688691720)  # when Spark wrote them
    before = spark_rows(spark, table)
    run_m2d("optimize", "--table", table, check=True)  # version 16, folds the deletion vectors
    refs16 = set(DeltaFiles(table, 16).referenced())

    # default retention: what Spark removed in 2023 goes (data files and the deletion vector
    # files of replaced vectors); what optimize removed just now stays, though its files are old
    p = vacuum(table, check=True)
    deleted = int(re.search(r": (\d+) file\(s\) deleted", p.stderr).group(1))
    left = set(all_files(table))
    assert deleted > 0
    assert DeltaFiles(table, 15).referenced() <= left  # what version 15 reads stays
    assert "part=0/part-00000-8387c699-30b1-4734-a791-9278d560ec19.c000.snappy.parquet" not in left  # removed in 2023
    assert any(f.startswith("deletion_vector_") for f in DeltaFiles(table, 12).referenced() - left)
    assert spark_rows(spark, table) == before
    assert spark_rows(spark, table, version=15) == before  # time travel inside the retention

    p = vacuum(table, "--retain-hours", 0, "--force", check=True)
    left = {f for f in all_files(table) if not f.startswith("_delta_log/")}
    crcs = {f for f in left if os.path.basename(f).startswith(".")}
    assert left - crcs == refs16
    # the Hadoop checksum files that stay are those of the files that stay
    assert crcs == {os.path.join(os.path.dirname(f), f".{os.path.basename(f)}.crc") for f in refs16} & crcs
    assert not any("deletion_vector" in f for f in left)
    assert spark_rows(spark, table) == before


class DeltaFiles:
    """The data and deletion vector files a version of a table references (tests only: JSON
    commits from 0, storage type 'u' vectors without a prefix)."""

    def __init__(self, table, version):
        self.table, self.version = table, version

    def referenced(self):
        import uuid
        out = set()
        for a in DeltaLogReplay(self.table, self.version).live():
            out.add(a["path"])
            dv = a.get("deletionVector")
            if dv and dv["storageType"] == "u":
                out.add(f"deletion_vector_{uuid.UUID(bytes=z85(dv['pathOrInlineDv'][-20:]))}.bin")
        return out


def z85(s):
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
    out = b""
    for i in range(0, len(s), 5):
        n = 0
        for c in s[i:i + 5]:
            n = n * 85 + alphabet.index(c)
        out += n.to_bytes(4, "big")
    return out


def add_protocol(table, protocol):
    """Commits a protocol upgrade to the table, as another writer (Spark, Databricks) would."""
    v = latest_version(table) + 1
    (table / "_delta_log" / f"{v:020d}.json").write_text(
        json.dumps({"commitInfo": {"timestamp": int(time.time() * 1000), "operation": "UPGRADE PROTOCOL"}}) + "\n"
        + json.dumps({"protocol": protocol}) + "\n")
    return v


def test_tables_with_features_vacuum_does_not_know_are_left_alone(tmp_path):
    """PROTOCOL.md's VACUUM Protocol Check: a writer feature vacuum does not know (its files could
    look unreferenced), a reader feature it cannot read, or a writer version beyond 7 refuses the
    table, naming what it is; nothing is deleted and nothing committed. A feature whose files vacuum
    does know (row tracking) does not stop it."""
    refused = {
        "future": {"minReaderVersion": 1, "minWriterVersion": 7, "writerFeatures": ["appendOnly", "futureFeature"]},
        "v8": {"minReaderVersion": 1, "minWriterVersion": 8},
        "variant": {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["variantType-preview"],
                    "writerFeatures": ["variantType-preview"]},
    }
    named = {"future": "'futureFeature'", "v8": "writer version 8", "variant": "variantType-preview"}
    inputs = write_inputs(tmp_path / "in", files=2, docs=5)
    for name, protocol in [*refused.items(), ("rows", {"minReaderVersion": 1, "minWriterVersion": 7,
                                                        "writerFeatures": ["appendOnly", "rowTracking"]})]:
        table = tmp_path / name
        run_m2d("load", "--input", inputs, "--table", table, check=True)
        v = add_protocol(table, protocol)
        stray = table / "part-00000-stray.c000.snappy.parquet"
        stray.write_bytes(b"x" * 10)
        age(stray, 30)
        files = all_files(table)
        p = vacuum(table, "--retain-hours", 0, "--force")
        if name in refused:
            assert p.returncode == 1, (name, p.stderr)
            assert named[name] in p.stderr and "not vacuumed" in p.stderr, p.stderr
            assert all_files(table) == files and latest_version(table) == v
        else:
            assert p.returncode == 0, p.stderr
            assert not stray.exists() and latest_version(table) == v + 2
