"""Concurrent writers on one local Delta table: four `mongo2delta load` processes started
together, each appending its own 50 files (one commit each) to a table another load created.
Every commit must land exactly once at its own version (put-if-absent by link(2), retry at the
next version after a lost race), the log must stay valid for delta-rs and Spark, and the
checkpoints written every 10 commits (by whichever writer committed that version) must be
whole and readable. A second test has the writers change the schema while they race (new
columns): a writer that loses to a metaData commit re-reads the table and retries."""
import json
import os
import subprocess

import pyarrow.parquet as pq
import pytest
from bson import json_util
from deltalake import DeltaTable

import delta_log
from conftest import run_m2d, start_m2d

WRITERS = 4
FILES = 50          # per writer; one commit each
DOCS = 5            # per file
TIMEOUT = 600       # seconds for the racing loads together



def doc_id(w, f, i):
    return w * 100000 + f * 100 + i


def write_file(path, docs, canonical):
    opts = json_util.CANONICAL_JSON_OPTIONS if canonical else json_util.RELAXED_JSON_OPTIONS
    path.write_text("".join(json_util.dumps(d, json_options=opts) + "\n" for d in docs))


def make_inputs(root, writers, files, extra=lambda w, f: False):
    """root/seed (one document, creates the table) and root/w<k>/f<nnn>.json; returns
    {absolute path: [ids]} for every file."""
    seed = root / "seed"
    seed.mkdir()
    write_file(seed / "seed.json", [{"_id": -1, "w": -1, "f": -1, "i": 0, "name": "seed", "amount": 0.5}], True)
    ids = {os.path.realpath(seed / "seed.json"): [-1]}
    for w in range(writers):
        d = root / f"w{w}"
        d.mkdir()
        for f in range(files):
            docs = []
            for i in range(DOCS):
                x = {"_id": doc_id(w, f, i), "w": w, "f": f, "i": i, "name": f"w{w}-f{f}-{i}", "amount": i * 1.25}
                if extra(w, f):
                    x[f"x_{w}_{f}"] = i
                docs.append(x)
            p = d / f"f{f:03d}.json"
            write_file(p, docs, canonical=f % 2 == 0)
            ids[os.path.realpath(p)] = [x["_id"] for x in docs]
    return ids


def race(root, table, writers):
    """Starts one load per writer folder at once; returns their (returncode, stderr)."""
    procs = [start_m2d("load", "--input", root / f"w{w}", "--table", table, stdout=subprocess.PIPE)
             for w in range(writers)]
    out = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=TIMEOUT)
            out.append((p.returncode, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for rc, err in out:
        assert "Sanitizer" not in err and "runtime error:" not in err, err[-3000:]
        assert rc == 0, err[-3000:]
    return out


def sources_by_version(commits):
    """{version: the input file it committed}, checking each commit holds one txn for it."""
    out = {}
    for v, actions in commits.items():
        txns = [a["txn"] for a in actions if "txn" in a]
        assert len(txns) == 1, f"version {v}: {txns}"
        assert txns[0]["appId"].startswith("mongo2delta-load:") and txns[0]["version"] == 0
        out[v] = txns[0]["appId"][len("mongo2delta-load:"):]
        info = [a["commitInfo"] for a in actions if "commitInfo" in a]
        assert len(info) == 1 and info[0]["mongo2delta"]["source"] == out[v]
    return out


def ids_upto(by_version, ids, v):
    return sorted(i for ver, src in by_version.items() if ver <= v for i in ids[src])


def check_checkpoints(table, commits, checkpoints, by_version):
    """Every checkpoint holds protocol, metaData, and an add and a txn per file committed up to it."""
    for v in checkpoints:
        t = pq.read_table(delta_log.checkpoint_path(table, v)).to_pylist()
        adds = [r["add"]["path"] for r in t if r.get("add")]
        txns = {r["txn"]["appId"] for r in t if r.get("txn")}
        want_adds = sorted(a["add"]["path"] for ver in range(v + 1) for a in commits[ver] if "add" in a)
        assert sorted(adds) == want_adds, f"checkpoint {v}"
        assert txns == {"mongo2delta-load:" + by_version[ver] for ver in range(v + 1)}, f"checkpoint {v}"
        assert sum(1 for r in t if r.get("protocol")) == 1 and sum(1 for r in t if r.get("metaData")) == 1
    last = delta_log.last_checkpoint(table)
    # the hint may lag when two writers checkpoint at once; it must name a whole checkpoint
    assert last["version"] in checkpoints
    rows = pq.read_metadata(delta_log.checkpoint_path(table, last["version"])).num_rows
    assert last["size"] == rows


def test_four_writers_append_to_one_table(tmp_path, spark):
    ids = make_inputs(tmp_path, WRITERS, FILES)
    table = tmp_path / "table"
    run_m2d("load", "--input", tmp_path / "seed", "--table", table, check=True)

    results = race(tmp_path, table, WRITERS)
    for _, err in results:
        assert f"load: {FILES} file(s) loaded, 0 already loaded before" in err
        assert "checkpoint was not written" not in err, err

    total = WRITERS * FILES + 1
    commits, checkpoints = delta_log.commits(table), delta_log.checkpoints(table)
    assert sorted(commits) == list(range(total)), "versions must be contiguous from 0"
    by_version = sources_by_version(commits)
    assert sorted(by_version.values()) == sorted(ids), "every file committed exactly once"
    for v in range(1, total):
        assert sum(1 for a in commits[v] if "add" in a) == 1
        assert not any("metaData" in a or "protocol" in a for a in commits[v])
        assert commits[v][0]["commitInfo"]["readVersion"] < v
    assert checkpoints == list(range(10, total, 10))
    check_checkpoints(table, commits, checkpoints, by_version)

    info = json.loads(run_m2d("inspect", "--table", table, "--json", check=True).stdout)
    assert info["version"] == total - 1
    assert info["numFiles"] == total and info["numRecords"] == (total - 1) * DOCS + 1
    assert info["appTransactions"] == {"mongo2delta-load:" + p: 0 for p in ids}
    assert info["checkpointVersion"] == total - 1

    every = sorted(i for v in ids.values() for i in v)
    assert len(set(every)) == len(every)
    # delta-rs, at the latest version and at versions between and on checkpoints
    dt = DeltaTable(str(table))
    assert dt.version() == total - 1
    assert sorted(dt.to_pyarrow_table(columns=["_id"]).column("_id").to_pylist()) == every
    for v in (1, 9, 10, 55, 100, 137, 190):
        got = DeltaTable(str(table), version=v).to_pyarrow_table(columns=["_id"]).column("_id").to_pylist()
        assert sorted(got) == ids_upto(by_version, ids, v), f"delta-rs at version {v}"
    # our reader
    rows = [json.loads(line) for line in run_m2d("cat", "--table", table, check=True).stdout.splitlines()]
    assert sorted(r["_id"] for r in rows) == every
    # Spark: the latest version comes from checkpoint 200 (through _last_checkpoint), an older
    # one from checkpoint 150 and the JSON commits after it
    df = spark.read.format("delta").load(str(table))
    assert sorted(r["_id"] for r in df.select("_id").collect()) == every
    old = spark.read.format("delta").option("versionAsOf", 157).load(str(table))
    assert sorted(r["_id"] for r in old.select("_id").collect()) == ids_upto(by_version, ids, 157)
    hist = spark.sql(f"DESCRIBE HISTORY delta.`{table}`").select("version").collect()
    assert sorted(r["version"] for r in hist) == list(range(total))


def test_writers_changing_the_schema_while_racing(tmp_path, spark):
    """Some files bring a new column (a metaData commit); a writer that loses a version to one
    must adopt the new schema and retry, keeping its own columns."""
    files = 15
    extra = lambda w, f: f % 5 == 2  # noqa: E731
    ids = make_inputs(tmp_path, WRITERS, files, extra)
    table = tmp_path / "table"
    run_m2d("load", "--input", tmp_path / "seed", "--table", table, check=True)
    race(tmp_path, table, WRITERS)

    total = WRITERS * files + 1
    commits, checkpoints = delta_log.commits(table), delta_log.checkpoints(table)
    assert sorted(commits) == list(range(total))
    by_version = sources_by_version(commits)
    assert sorted(by_version.values()) == sorted(ids)
    assert checkpoints == list(range(10, total, 10))
    check_checkpoints(table, commits, checkpoints, by_version)

    new_cols = {f"x_{w}_{f}" for w in range(WRITERS) for f in range(files) if extra(w, f)}
    every = sorted(i for v in ids.values() for i in v)
    t = DeltaTable(str(table)).to_pyarrow_table()
    assert new_cols <= set(t.column_names)
    rows = t.to_pylist()
    assert sorted(r["_id"] for r in rows) == every
    for r in rows:
        for c in new_cols:
            w, f = map(int, c[2:].split("_"))
            assert r[c] == (r["i"] if (r["w"], r["f"]) == (w, f) else None), (c, r)
        assert r["_rescued_data"] is None
    df = spark.read.format("delta").load(str(table))
    assert new_cols <= set(df.columns)
    got = df.select("_id", "w", "f", *sorted(new_cols)).collect()
    assert sorted(r["_id"] for r in got) == every
    for r in got:
        set_cols = [c for c in new_cols if r[c] is not None]
        assert set_cols == ([f"x_{r['w']}_{r['f']}"] if extra(r["w"], r["f"]) else []), r
