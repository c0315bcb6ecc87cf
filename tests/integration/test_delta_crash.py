"""What survives a failed or killed `mongo2delta load`: the table stays readable at its latest
version, its rows are exactly those of the input files whose commits exist (never part of a
file), and running the load again takes the rest, so every document ends up in the table
exactly once.

(a) A deterministic fault matrix through the fault-injecting store (MONGO2DELTA_FAULT): the
Nth put_if_absent (a commit), create (a data or checkpoint file opened) or finish (one
published) fails, or kills the process just before or just after the real call; on a fresh
table, and on a table at version 8 so that the load also writes the checkpoint of version 10.
A small model of the calls a load makes predicts, for every case, the exit, the commits, and
which checkpoint files exist.
(b) Random SIGKILLs: loads of 30 files killed at a seeded random time (0.05 s to 1.5 s, or to
the time a whole load takes when shorter), judged by delta-rs, Spark and our own reader, then
run again to completion (M2D_KILL_TRIALS=N for more than 20 trials)."""
import json
import os
import random
import shutil
import subprocess
import time

import bson
import pytest
from bson import json_util
from deltalake import DeltaTable

import delta_log
from conftest import SANITIZER_ENV, M2DProcess, check_sanitizers, m2d_bin, run_m2d

APP = "mongo2delta-load:"



# --- inputs and the table as the log says it is --------------------------------------------

def write_input(path, docs, canonical=True):
    """A mongodump .bson file, or mongoexport JSON lines (canonical or relaxed Extended JSON)."""
    if path.suffix == ".bson":
        path.write_bytes(b"".join(bson.encode(d) for d in docs))
    else:
        opts = json_util.CANONICAL_JSON_OPTIONS if canonical else json_util.RELAXED_JSON_OPTIONS
        path.write_text("".join(json_util.dumps(d, json_options=opts) + "\n" for d in docs))
    return os.path.realpath(path)


def load_commits(table):
    """{version: {"source": input file, "adds": [paths]}} from the JSON commits, checking each
    holds exactly one txn of the load; and the names of the other files in _delta_log."""
    log = delta_log.log_dir(table)
    commits = {}
    if not log.exists():
        return commits, []
    for v, actions in delta_log.commits(table).items():
        txns = [a["txn"] for a in actions if "txn" in a]
        assert len(txns) == 1 and txns[0]["appId"].startswith(APP) and txns[0]["version"] == 0, (v, txns)
        commits[v] = {"source": txns[0]["appId"][len(APP):], "adds": [a["add"]["path"] for a in actions if "add" in a]}
    other = sorted(set(os.listdir(log)) - {delta_log.commit_path(table, v).name for v in commits})
    if commits:
        assert sorted(commits) == list(range(max(commits) + 1)), f"versions not contiguous: {sorted(commits)}"
    sources = [c["source"] for c in commits.values()]
    assert len(sources) == len(set(sources)), f"a file committed twice: {sources}"
    return commits, other


def published_and_temp_files(table):
    """Published data files and leftover temporary files (hidden) in the table folder."""
    published, temps = set(), []
    for dirpath, dirs, files in os.walk(table):
        dirs[:] = [d for d in dirs if d != "_delta_log"]
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), table)
            if f.startswith("."):
                temps.append(rel)
            elif f.endswith(".parquet"):
                published.add(rel)
    return published, temps


def rows_ids_delta_rs(table):
    dt = DeltaTable(str(table))
    return dt.version(), sorted(dt.to_pyarrow_table(columns=["_id"]).column("_id").to_pylist())


def rows_ids_cat(table):
    p = run_m2d("cat", "--table", table, check=True)
    return sorted(json.loads(line)["_id"] for line in p.stdout.splitlines())


def run_load(folder, table, fault=None, timeout=300):
    env = dict(os.environ, **SANITIZER_ENV)
    env.pop("MONGO2DELTA_FAULT", None)
    if fault:
        env["MONGO2DELTA_FAULT"] = fault
    p = subprocess.run([m2d_bin(), "load", "--input", str(folder), "--table", str(table)],
                       capture_output=True, text=True, timeout=timeout, env=env)
    check_sanitizers(p.returncode, p.stderr)
    return p


def check_table(table, ids_of, expected_sources):
    """The table holds exactly the documents of expected_sources (input paths), read by
    delta-rs and our cat at its latest version."""
    commits, _ = load_commits(table)
    assert sorted(c["source"] for c in commits.values()) == sorted(expected_sources)
    want = sorted(i for s in expected_sources for i in ids_of[s])
    if not commits:
        return commits
    version, got = rows_ids_delta_rs(table)
    assert version == max(commits)
    assert got == want, "delta-rs"
    assert rows_ids_cat(table) == want, "cat"
    return commits


# --- (a) the fault matrix -------------------------------------------------------------------

NEW_FILES = ["a.json", "b.bson", "c.json"]  # load takes them in this (sorted) order
DOCS_PER_FILE = 4


def calls(first_version):
    """The store calls a load of NEW_FILES makes that the matrix faults, in order:
    (op, file index, phase)."""
    out = []
    for i in range(len(NEW_FILES)):
        v = first_version + i
        out += [("create", i, "data"), ("finish", i, "data"), ("put_if_absent", i, "commit")]
        if v > 0 and v % 10 == 0:
            out += [("create", i, "checkpoint"), ("finish", i, "checkpoint"),
                    ("create", i, "last"), ("finish", i, "last")]
    return out


def model(first_version, op, n, action):
    """What a load with fault OP:N:ACTION leaves: exit code, files committed, whether the
    checkpoint and _last_checkpoint got published, and whether a checkpoint failure warned."""
    seq = calls(first_version)
    hits = [k for k, c in enumerate(seq) if c[0] == op]
    fault = hits[n - 1] if n <= len(hits) else None
    done, rc, warned, skip_phase = set(), 0, False, None
    for k, (o, i, phase) in enumerate(seq):
        if skip_phase and (i, phase) in skip_phase:
            continue
        if k != fault:
            done.add((o, i, phase))
            continue
        if action == "crash-before":
            rc = -9
            break
        if action == "crash-after":
            done.add((o, i, phase))
            rc = -9
            break
        # fail: a data file or a commit ends the load; a checkpoint's failure only warns
        if phase in ("data", "commit"):
            rc = 1
            break
        warned = True
        skip_phase = {(i, "checkpoint"), (i, "last")} if phase == "checkpoint" else {(i, "last")}
    committed = [i for i in range(len(NEW_FILES)) if ("put_if_absent", i, "commit") in done]
    ck = [i for i in range(len(NEW_FILES)) if ("finish", i, "checkpoint") in done]
    last = [i for i in range(len(NEW_FILES)) if ("finish", i, "last") in done]
    return {"rc": rc, "committed": committed, "checkpoint": bool(ck), "last": bool(last), "warned": warned,
            "faulted": fault is not None}


def matrix(first_version):
    ops = {"put_if_absent": 0, "create": 0, "finish": 0}
    for o, _, _ in calls(first_version):
        ops[o] += 1
    # N runs one past the calls made: that fault never fires
    return [(op, n, action) for op, count in ops.items() for n in range(1, count + 2)
            for action in ("fail", "crash-before", "crash-after")]


BASE_FILES = 9  # the checkpoint variant starts at version 8: the load commits 9, 10 (+checkpoint), 11


@pytest.fixture(scope="module")
def base_table(tmp_path_factory):
    """A table at version 8 (nine files loaded), copied by each case; and its files' ids."""
    root = tmp_path_factory.mktemp("base")
    (root / "in").mkdir()
    ids = {}
    for k in range(BASE_FILES):
        p = write_input(root / "in" / f"base{k}.json",
                        [{"_id": 10000 + k * 100 + i, "src": f"base{k}", "n": i} for i in range(DOCS_PER_FILE)])
        ids[p] = [10000 + k * 100 + i for i in range(DOCS_PER_FILE)]
    run_m2d("load", "--input", root / "in", "--table", root / "table", check=True)
    commits, _ = load_commits(root / "table")
    assert max(commits) == BASE_FILES - 1
    return root / "table", ids


def new_inputs(folder):
    folder.mkdir()
    ids, paths = {}, []
    for k, name in enumerate(NEW_FILES):
        docs = [{"_id": k * 100 + i, "src": name, "n": i, "name": f"{name}-{i}",
                 "nested": {"x": i, "y": [i, i + 1]}} for i in range(DOCS_PER_FILE)]
        p = write_input(folder / name, docs, canonical=name == "a.json")
        ids[p] = [d["_id"] for d in docs]
        paths.append(p)
    return ids, paths


def fault_case(tmp_path, start, op, n, action, spark=None):
    inputs = tmp_path / "in"
    ids, paths = new_inputs(inputs)
    table = tmp_path / "table"
    base_sources = []
    if start is not None:
        shutil.copytree(start[0], table)
        ids.update(start[1])
        base_sources = sorted(start[1])
    first_version = len(base_sources)
    want = model(first_version, op, n, action)

    p = run_load(inputs, table, f"{op}:{n}:{action}")
    assert p.returncode == want["rc"], (want, p.stderr[-2000:])
    if want["rc"] == 1:
        assert "injected fault" in p.stderr and f"{op} of" in p.stderr, p.stderr
    if want["warned"]:
        assert "checkpoint was not written" in p.stderr and "injected fault" in p.stderr, p.stderr
    if want["rc"] == 0 and not want["warned"]:
        assert "injected fault" not in p.stderr

    committed = base_sources + [paths[i] for i in want["committed"]]
    commits = check_table(table, ids, committed)
    log = table / "_delta_log"
    ck10 = log / f"{10:020d}.checkpoint.parquet"
    assert ck10.exists() == want["checkpoint"]
    assert (log / "_last_checkpoint").exists() == want["last"]
    if want["last"]:
        assert json.loads((log / "_last_checkpoint").read_text())["version"] == 10
    if action == "fail":
        # a failed run cleans up after itself: no unreferenced data file, no temporary file
        published, temps = published_and_temp_files(table)
        assert published == {a for c in commits.values() for a in c["adds"]}
        assert temps == []
        assert not log.exists() or not [f for f in os.listdir(log) if f.startswith(".")]
    if spark is not None and want["checkpoint"] != want["last"]:
        # a checkpoint without the _last_checkpoint hint naming it, or the reverse: Spark too
        got = spark.read.format("delta").load(str(table)).select("_id").collect()
        assert sorted(r["_id"] for r in got) == sorted(i for s in committed for i in ids[s]), "Spark"

    # run again without the fault: the rest is taken, nothing twice
    again = run_load(inputs, table)
    assert again.returncode == 0, again.stderr[-2000:]
    taken_before = len(want["committed"])
    assert (f"load: {len(NEW_FILES) - taken_before} file(s) loaded, {taken_before} already loaded before"
            in again.stderr), again.stderr
    check_table(table, ids, base_sources + paths)


@pytest.mark.parametrize("op,n,action", matrix(0))
def test_fault_on_a_new_table(tmp_path, op, n, action):
    fault_case(tmp_path, None, op, n, action)


@pytest.mark.parametrize("op,n,action", matrix(BASE_FILES))
def test_fault_around_a_checkpoint(tmp_path, base_table, op, n, action, request):
    m = model(BASE_FILES, op, n, action)
    # Spark judges the crash right after a checkpoint was published, before _last_checkpoint
    sp = request.getfixturevalue("spark") if m["checkpoint"] and not m["last"] and action == "crash-after" else None
    fault_case(tmp_path, base_table, op, n, action, sp)


def test_the_model_covers_the_checkpoint_calls():
    """The matrix really faults the checkpoint's files (guards the model against drifting)."""
    phases = {(c[0], c[2]) for c in calls(BASE_FILES)}
    assert {("create", "checkpoint"), ("finish", "checkpoint"), ("create", "last"), ("finish", "last")} <= phases
    assert model(BASE_FILES, "finish", 3, "crash-after") == {
        "rc": -9, "committed": [0, 1], "checkpoint": True, "last": False, "warned": False, "faulted": True}
    assert model(BASE_FILES, "create", 3, "fail")["warned"]


# --- (b) random SIGKILLs --------------------------------------------------------------------

KILL_FILES = 30
KILL_DOCS = 400
TRIALS = int(os.environ.get("M2D_KILL_TRIALS", "20"))
SEED = 20241125


@pytest.fixture(scope="module")
def kill_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kill") / "in"
    folder.mkdir()
    ids = {}
    for f in range(KILL_FILES):
        docs = [{"_id": f * 100000 + i, "f": f, "i": i, "name": f"name-{f}-{i}", "v": i * 1.5,
                 "tags": ["a", "b"][: i % 3], "sub": {"x": i, "s": str(i)}} for i in range(KILL_DOCS)]
        p = write_input(folder / f"f{f:03d}.{'bson' if f % 3 == 1 else 'json'}", docs, canonical=f % 2 == 0)
        ids[p] = [d["_id"] for d in docs]
    return folder, ids


def test_random_sigkill_then_rerun(tmp_path, kill_inputs, spark):
    folder, ids = kill_inputs
    rng = random.Random(SEED)
    env = dict(os.environ, **SANITIZER_ENV)
    env.pop("MONGO2DELTA_FAULT", None)
    # kill times up to 1.5 s, or up to what a whole load takes here when that is shorter
    t0 = time.monotonic()
    assert run_load(folder, tmp_path / "calibrate").returncode == 0
    longest = max(0.1, min(1.5, time.monotonic() - t0))
    interrupted = 0
    outcomes = []
    for trial in range(TRIALS):
        delay = rng.uniform(0.05, longest)
        table = tmp_path / f"t{trial}"
        proc = M2DProcess([m2d_bin(), "load", "--input", str(folder), "--table", str(table)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(delay)
        proc.kill()  # SIGKILL; a no-op when it has finished already
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, -9), err[-2000:]
        assert "Sanitizer" not in err and "runtime error:" not in err, err[-2000:]

        commits, other = load_commits(table)
        committed = [c["source"] for c in commits.values()]
        outcomes.append((round(delay, 2), proc.returncode, len(committed)))
        if proc.returncode == -9 and len(committed) < KILL_FILES:
            interrupted += 1
        ckpts = sorted(int(n[:20]) for n in other if n.endswith(".checkpoint.parquet"))
        assert all(v % 10 == 0 and v in commits for v in ckpts), other
        if "_last_checkpoint" in other:
            assert json.loads((table / "_delta_log" / "_last_checkpoint").read_text())["version"] in ckpts
        if commits:
            # whole files only, at the last committed version, in all three readers
            want = sorted(i for s in committed for i in ids[s])
            version, got = rows_ids_delta_rs(table)
            assert (version, got) == (max(commits), want), f"trial {trial} (killed at {delay:.2f}s): delta-rs"
            assert rows_ids_cat(table) == want, f"trial {trial}: cat"
            df = spark.read.format("delta").load(str(table))
            assert sorted(r["_id"] for r in df.select("_id").collect()) == want, f"trial {trial}: Spark"

        again = run_load(folder, table)
        assert again.returncode == 0, again.stderr[-2000:]
        assert (f"load: {KILL_FILES - len(committed)} file(s) loaded, {len(committed)} already loaded before"
                in again.stderr), again.stderr[-2000:]
        check_table(table, ids, list(ids))
    print(f"kill times 0.05-{longest:.2f} s; (delay s, exit, files committed) per trial: {outcomes}")
    # the delays must have caught loads in the middle, or this test proves little
    assert interrupted >= TRIALS // 4, outcomes
