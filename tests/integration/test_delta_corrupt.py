"""Damaged tables and bad input files: every command fails with a message naming the file and
what is wrong in it, or goes on where the Delta protocol says it may (a stale or wrong
_last_checkpoint is only a hint), and a failing command changes nothing in the table.

- a commit cut mid-line: cat, inspect and load fail naming it; load writes nothing; an
  earlier version still reads;
- _last_checkpoint naming a checkpoint that is not there, an older one, garbage, or wrong
  sizes: our reader warns and finds the checkpoint by listing; rows are right (Spark agrees;
  delta-rs 1.1.4 refuses most of these tables, so it is no judge here);
- a checkpoint that is not Parquet: a clear error naming it, load writes nothing;
- a missing data file: cat fails naming it;
- a bad record (JSON line, BSON document, truncated BSON): load fails naming the file and the
  line or byte, nothing of that file is committed; with --rejects the record is set aside and
  the rest committed."""
import json
import os
import shutil

import bson
import pytest
from bson import json_util

import delta_log
from conftest import run_m2d
from delta_log import file_bytes, write_json

APP = "mongo2delta-load:"



def docs_of(k, n=3):
    return [{"_id": k * 100 + i, "k": k, "name": f"n{k}-{i}"} for i in range(n)]


def make_table(root, files):
    """A table of `files` commits, one input file of 3 documents each (_id k*100+i)."""
    (root / "in").mkdir()
    for k in range(files):
        write_json(root / "in" / f"f{k:03d}.json", docs_of(k), canonical=False)
    table = root / "table"
    run_m2d("load", "--input", root / "in", "--table", table, check=True)
    return table


def ids_upto(version):
    return sorted(d["_id"] for k in range(version + 1) for d in docs_of(k))


def cat_ids(table, *args):
    p = run_m2d("cat", "--table", table, *args)
    assert p.returncode == 0, p.stderr
    return sorted(json.loads(line)["_id"] for line in p.stdout.splitlines()), p.stderr


def committed_sources(table):
    return [t["appId"][len(APP):] for t in delta_log.actions(table, "txn")]


# --- a commit cut mid-line ------------------------------------------------------------------

@pytest.mark.parametrize("cut", [2, 1], ids=["last-commit", "middle-commit"])
def test_truncated_commit(tmp_path, cut):
    table = make_table(tmp_path, 3)
    commit = table / "_delta_log" / f"{cut:020d}.json"
    data = commit.read_bytes()
    second = data.index(b"\n") + 1  # cut in the middle of the second line (the add action)
    end = data.index(b"\n", second)
    commit.write_bytes(data[: (second + end) // 2])
    (tmp_path / "more").mkdir()
    write_json(tmp_path / "more" / "new.json", docs_of(50), canonical=False)
    before = file_bytes(table)

    for args in (["cat", "--table", table], ["inspect", "--table", table], ["inspect", "--table", table, "--json"],
                 ["load", "--input", tmp_path / "more", "--table", table]):
        p = run_m2d(*args)
        assert p.returncode == 1, (args, p.stderr)
        assert f"{commit.name}: line 2 is not a valid action" in p.stderr, (args, p.stderr)
        assert "the log is corrupt" in p.stderr
        assert p.stdout == ""
    assert file_bytes(table) == before, "a failed load must not write anything"

    # the versions before the damaged one still read
    got, _ = cat_ids(table, "--version", cut - 1)
    assert got == ids_upto(cut - 1)


# --- _last_checkpoint that does not match the log -------------------------------------------

def last_points_at(version):
    def damage(log):
        (log / "_last_checkpoint").write_text(
            json.dumps({"version": version, "size": 14, "sizeInBytes": 9000, "numOfAddFiles": version + 1}) + "\n")
    return damage


def checkpoint_gone(log):
    (log / f"{10:020d}.checkpoint.parquet").unlink()


def not_json(log):
    (log / "_last_checkpoint").write_text('{"version":10,"size"')


def wrong_sizes(log):
    (log / "_last_checkpoint").write_text('{"version":10,"size":999,"sizeInBytes":5,"numOfAddFiles":1}\n')


LAST_CHECKPOINT_CASES = {
    # damage, the warning our reader gives (None: none needed), the checkpoint it uses
    "names-missing-newer": (last_points_at(20), "names version 20, but the newest complete checkpoint is 10; using it", 10),
    "names-missing-older": (last_points_at(5), "names version 5, but the newest complete checkpoint is 10; using it", 10),
    "names-latest-commit": (last_points_at(11), "names version 11, but the newest complete checkpoint is 10; using it", 10),
    "checkpoint-gone": (checkpoint_gone, "names version 10, but there is no complete checkpoint; "
                        "replaying the JSON commits", None),
    "not-json": (not_json, "_last_checkpoint is not valid JSON; finding the checkpoint by listing", 10),
    "wrong-sizes": (wrong_sizes, None, 10),
}


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    """A table at version 11 with the checkpoint of version 10."""
    table = make_table(tmp_path_factory.mktemp("ckpt"), 12)
    log = table / "_delta_log"
    assert (log / f"{10:020d}.checkpoint.parquet").exists()
    assert json.loads((log / "_last_checkpoint").read_text())["version"] == 10
    return table


@pytest.mark.parametrize("case", sorted(LAST_CHECKPOINT_CASES))
def test_last_checkpoint_that_does_not_match(tmp_path, checkpointed, case, spark):
    damage, warning, used = LAST_CHECKPOINT_CASES[case]
    table = tmp_path / "table"
    shutil.copytree(checkpointed, table)
    damage(table / "_delta_log")

    got, err = cat_ids(table)
    assert got == ids_upto(11)
    if warning:
        assert "warn" in err and f"{table}/_delta_log/_last_checkpoint" in err and warning in err, err
    p = run_m2d("inspect", "--table", table, "--json", check=True)
    info = json.loads(p.stdout)
    assert (info["version"], info["numRecords"], info["checkpointVersion"]) == (11, 36, used)
    if warning:
        assert warning in p.stderr
    df = spark.read.format("delta").load(str(table))
    assert sorted(r["_id"] for r in df.select("_id").collect()) == ids_upto(11), "Spark"

    # a load appends as usual and leaves the hint alone (version 12 writes no checkpoint)
    hint = table / "_delta_log" / "_last_checkpoint"
    hint_before = hint.read_bytes() if hint.exists() else None
    (tmp_path / "more").mkdir()
    write_json(tmp_path / "more" / "new.json", docs_of(12), canonical=False)
    p = run_m2d("load", "--input", tmp_path / "more", "--table", table, check=True)
    assert "table version 12" in p.stderr
    assert (hint.read_bytes() if hint.exists() else None) == hint_before
    got, _ = cat_ids(table)
    assert got == ids_upto(12)


def test_checkpoint_that_is_not_parquet(tmp_path, checkpointed):
    table = tmp_path / "table"
    shutil.copytree(checkpointed, table)
    ck = table / "_delta_log" / f"{10:020d}.checkpoint.parquet"
    ck.write_bytes(ck.read_bytes()[:100])
    (tmp_path / "more").mkdir()
    write_json(tmp_path / "more" / "new.json", docs_of(12), canonical=False)
    before = file_bytes(table)
    for args in (["cat", "--table", table], ["inspect", "--table", table],
                 ["load", "--input", tmp_path / "more", "--table", table]):
        p = run_m2d(*args)
        assert p.returncode == 1, (args, p.stderr)
        assert f"reading checkpoint 10: {ck}: not a Parquet file" in p.stderr, p.stderr
    assert file_bytes(table) == before
    # versions before the checkpoint do not need it
    got, _ = cat_ids(table, "--version", 9)
    assert got == ids_upto(9)


# --- a missing data file --------------------------------------------------------------------

def test_missing_data_file(tmp_path):
    table = make_table(tmp_path, 3)
    actions = delta_log.commit(table, 1)
    (path,) = [a["add"]["path"] for a in actions if "add" in a]
    (table / path).unlink()
    p = run_m2d("cat", "--table", table)
    assert p.returncode == 1
    assert f"data file {path}: cannot open {table}/{path}: No such file or directory" in p.stderr, p.stderr
    got, _ = cat_ids(table, "--version", 0)
    assert got == ids_upto(0)


# --- bad records in the input ---------------------------------------------------------------

def bad_json_inputs(folder):
    """a.json and c.json good; b.json's line 3 (of 5) cut short."""
    folder.mkdir()
    a = write_json(folder / "a.json", docs_of(1), canonical=False)
    lines = [json_util.dumps(d) for d in docs_of(2, 5)]
    bad_line = lines[2][: len(lines[2]) // 2]
    lines[2] = bad_line
    (folder / "b.json").write_text("\n".join(lines) + "\n")
    c = write_json(folder / "c.json", docs_of(3), canonical=False)
    return a, os.path.realpath(folder / "b.json"), c, bad_line


def test_bad_json_line_fails_its_file(tmp_path):
    a, b, c, _ = bad_json_inputs(tmp_path / "in")
    table = tmp_path / "table"
    p = run_m2d("load", "--input", tmp_path / "in", "--table", table)
    assert p.returncode == 1
    assert f"{b}: line 3 is not a valid Extended JSON document" in p.stderr, p.stderr
    assert "nothing of this file was committed" in p.stderr
    # a.json went in before; nothing of b.json; the load stopped there
    assert committed_sources(table) == [a]
    got, _ = cat_ids(table)
    assert got == sorted(d["_id"] for d in docs_of(1))
    parquet = [f for f in os.listdir(table) if f.endswith(".parquet") or f.startswith(".")]
    assert len(parquet) == 1, parquet  # no data file of b.json left behind

    before = file_bytes(table)
    p = run_m2d("load", "--input", tmp_path / "in", "--table", table)
    assert p.returncode == 1 and f"{b}: line 3" in p.stderr
    assert "1 already loaded before" in p.stderr
    assert file_bytes(table) == before


def test_bad_json_line_with_rejects(tmp_path):
    a, b, c, bad_line = bad_json_inputs(tmp_path / "in")
    table, rejects = tmp_path / "table", tmp_path / "rejects.jsonl"
    p = run_m2d("load", "--input", tmp_path / "in", "--table", table, "--rejects", rejects, check=True)
    assert "3 file(s) loaded" in p.stderr and "1 rejected" in p.stderr, p.stderr
    (rej,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert rej["file"] == b and rej["line"].rstrip("\n") == bad_line
    assert f"{b}: line 3 is not a valid Extended JSON document" in rej["error"]
    assert committed_sources(table) == [a, b, c]
    want = sorted(d["_id"] for d in docs_of(1) + docs_of(2, 5) + docs_of(3) if d["_id"] != 202)
    got, _ = cat_ids(table)
    assert got == want
    # a rerun takes nothing and rejects nothing again
    p = run_m2d("load", "--input", tmp_path / "in", "--table", table, "--rejects", rejects, check=True)
    assert "0 file(s) loaded, 3 already loaded before" in p.stderr
    assert len(rejects.read_text().splitlines()) == 1


def bson_docs():
    return [bson.encode({"_id": 30 + i, "s": "xxxxx"}) for i in range(3)]


def test_bad_bson_document(tmp_path):
    docs = bson_docs()
    bad = bytearray(docs[1])
    bad[4] = 0x7F  # the first element's type byte: the framing stays sane, the document is not
    path = tmp_path / "dump.bson"
    path.write_bytes(docs[0] + bytes(bad) + docs[2])
    table = tmp_path / "table"
    p = run_m2d("load", "--input", path, "--table", table)
    assert p.returncode == 1
    assert f"{os.path.realpath(path)}: invalid BSON document at byte {len(docs[0])}" in p.stderr, p.stderr
    assert "nothing of this file was committed" in p.stderr
    assert not (table / "_delta_log").exists() or not committed_sources(table)

    rejects = tmp_path / "rejects.jsonl"
    p = run_m2d("load", "--input", path, "--table", table, "--rejects", rejects, check=True)
    assert "1 rejected" in p.stderr
    (rej,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert rej["file"] == os.path.realpath(path) and bytes.fromhex(rej["bson_hex"]) == bytes(bad)
    got, _ = cat_ids(table)
    assert got == [30, 32]


def test_truncated_bson_cannot_be_set_aside(tmp_path):
    """A BSON file ending inside a document: the framing is lost, so the file fails even with
    --rejects, naming where."""
    docs = bson_docs()
    path = tmp_path / "dump.bson"
    path.write_bytes(docs[0] + docs[1] + docs[2][:10])
    table, rejects = tmp_path / "table", tmp_path / "rejects.jsonl"
    for extra in ([], ["--rejects", rejects]):
        p = run_m2d("load", "--input", path, "--table", table, *extra)
        assert p.returncode == 1
        assert f"{os.path.realpath(path)}: truncated document at byte {2 * len(docs[0])}" in p.stderr, p.stderr
        assert not (table / "_delta_log").exists() or not committed_sources(table)
    assert rejects.read_text() == ""
