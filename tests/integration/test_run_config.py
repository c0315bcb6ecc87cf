"""mongo2delta run --config: five collections (mirror with deletion vectors, mirror rewritten,
change log, both, and one taken by [all-collections] include/exclude patterns) synced by one
process while a random workload runs on all of them, the process SIGKILLed at a random moment and
restarted; afterwards every mirror (read by Spark) equals its collection and every change log
holds one row per operation, contiguous. Also the config file's errors, with their lines."""
import random
import signal
import time
import urllib.request

import pytest
from deltalake import DeltaTable

from bson_mapping import check_table, check_spark_table
from conftest import run_m2d, start_m2d
from parquet_jsonform import table_rows
from test_sync import changelog_rows, free_port, settle, workload

N_DOCS = 800


def write_config(path, db, root, port=None, idle=None):
    extra_defaults = f"stop-when-idle = {idle}\n" if idle else ""
    metrics = f"[metrics]\nport = {port}\n" if port else ""
    path.write_text(f"""# five collections, one process
[source]
uri = "${{M2D_TEST_URI}}"   # from the environment
db = "{db}"

{metrics}
[defaults]
max-latency = 300
max_batch_docs = 200
workers = 2
compact-every = 4
{extra_defaults}
[[collection]]
name = "dv"
table = "{root}/dv"

[[collection]]
name = "cow"
table = "{root}/cow"
merge-strategy = "rewrite"

[[collection]]
name = "log"
table = "{root}/log"
mode = "changelog"

[[collection]]
name = "both"
table = "{root}/both"
mode = "both"
changelog-table = "{root}/both_changes"
compression = "zstd"

[all-collections]
table-root = "{root}/all"
include = ["e*"]
exclude = ["ex*"]
""")


def spawn_run(mongo, config):
    return start_m2d("run", "--config", config, env={"M2D_TEST_URI": mongo.uri})


def check_changelog(log, done):
    rows = changelog_rows(log)
    assert [r["_txn_seq"] for r in rows] == list(range(1, len(rows) + 1)), "the change log has a gap or a repeat"
    assert len(rows) == len(done)
    for k, (r, (op, _id)) in enumerate(zip(rows, done)):
        if r["_id"] is None:  # an update whose document was deleted before the event was read (test_sync)
            assert r["_op"] == op == "update" and ("delete", _id) in done[k:], (k, r, op, _id)
        else:
            assert (r["_op"], r["_id"]) == (op, _id), (k, r, op, _id)


def five_collections_killed_and_restarted(mongo, mongo_db, tmp_path, spark, kills, seed):
    names = ["dv", "cow", "log", "both", "events"]
    for name in names + ["ex_scratch"]:
        mongo_db[name].insert_many([{"_id": i, "n": i, "tags": [], "nested": {"a": i}} for i in range(N_DOCS)])
    root = tmp_path / "lake"
    config, port = tmp_path / "m2d.toml", free_port()
    write_config(config, mongo_db.name, root, port=port)
    plan = run_m2d("run", "--config", config, "--dry-run", env={"M2D_TEST_URI": mongo.uri}, check=True).stdout
    assert sorted(line.split("\t")[0] for line in plan.splitlines()) == sorted(f"{mongo_db.name}.{n}" for n in names)
    rnd = random.Random(seed)
    done = {n: [] for n in names}
    settle()
    proc = spawn_run(mongo, config)
    time.sleep(4)  # the initial snapshots
    for round_ in range(kills):
        for k, name in enumerate(names):
            done[name] += workload(mongo_db[name], 120, N_DOCS, seed=seed * 1000 + round_ * 10 + k + 1)
        time.sleep(rnd.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = spawn_run(mongo, config)
    for k, name in enumerate(names):
        done[name] += workload(mongo_db[name], 80, N_DOCS, seed=seed * 1000 + 990 + k)
    # one endpoint, a series per collection
    deadline, page = time.time() + 60, ""
    labels = [f'mongo2delta_sync_batches_total{{collection="{mongo_db.name}.{n}"}}' for n in names]
    while time.time() < deadline and not all(lb in page for lb in labels):
        try:
            page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        except OSError:
            pass
        time.sleep(0.5)
    assert all(lb in page for lb in labels), page
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)  # every loop commits the batch in hand; exit 0
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert all(f"run {mongo_db.name}.{n}:" in err for n in names), err
    # catch up with what was written after SIGTERM, then stop when idle
    write_config(config, mongo_db.name, root, idle=3)
    p = run_m2d("run", "--config", config, env={"M2D_TEST_URI": mongo.uri}, timeout=300, check=True)
    assert f"[{mongo_db.name}.dv] " in p.stderr  # each loop's lines name its collection
    mirrors = {"dv": root / "dv", "cow": root / "cow", "both": root / "both", "events": root / "all" / "events"}
    for name, table in mirrors.items():
        docs = list(mongo_db[name].find())
        check_spark_table(spark, table, docs)
    check_table(table_rows(DeltaTable(str(root / "cow")).to_pyarrow_table()), list(mongo_db.cow.find()))
    check_changelog(root / "log", done["log"])
    check_changelog(root / "both_changes", done["both"])
    assert not (root / "all" / "ex_scratch").exists()  # excluded
    assert not (root / "all" / "dv").exists()  # not included (and listed by its own section)


def test_run_five_collections_killed_and_restarted(mongo, mongo_db, tmp_path, spark):
    five_collections_killed_and_restarted(mongo, mongo_db, tmp_path, spark, kills=2, seed=7)


@pytest.mark.long
def test_run_five_collections_killed_eight_times(mongo, mongo_db, tmp_path, spark):
    five_collections_killed_and_restarted(mongo, mongo_db, tmp_path, spark, kills=8, seed=8)


def test_run_stops_every_collection_when_one_fails(mongo, mongo_db, tmp_path):
    mongo_db.good.insert_one({"_id": 1})
    mongo_db.bad.insert_one({"_id": 1})
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    config = tmp_path / "m2d.toml"
    config.write_text(f"""[source]
uri = "${{M2D_TEST_URI}}"
db = "{mongo_db.name}"
[[collection]]
name = "good"
table = "{tmp_path}/good"
[[collection]]
name = "bad"
table = "{blocker}/bad"
""")
    p = run_m2d("run", "--config", config, env={"M2D_TEST_URI": mongo.uri}, timeout=120)
    assert p.returncode == 1, p.stderr
    assert f"mongo2delta: {mongo_db.name}.bad: " in p.stderr
    assert "1 of 2 collection(s) failed" in p.stderr, p.stderr
    assert f"run {mongo_db.name}.good:" in p.stderr and f"run {mongo_db.name}.bad:" in p.stderr


CASES = [
    # (file text, environment, words the message must hold)
    ("[source]\nuri = \"mongodb://h\"\ndb = \"d\"\n[[collection]]\nname = \"c\"\ntable = \"t\n",
     {}, "m2d.toml:6: the string has no closing \""),
    ("[source]\nuri = \"mongodb://h\"\ndb = \"d\"\n[[collection]]\nname = \"c\"\ntable = \"t\"\nbatch = 5\n",
     {}, "m2d.toml:7: unknown key 'batch' in [[collection]]"),
    ("[source]\nuri = \"mongodb://h\"\ndb = \"d\"\n[sources]\n", {}, "m2d.toml:4: unknown section 'sources'"),
    ("[source]\nuri = \"${M2D_NOT_SET_ANYWHERE}\"\ndb = \"d\"\n[[collection]]\nname = \"c\"\ntable = \"t\"\n",
     {}, "m2d.toml:2: the environment variable M2D_NOT_SET_ANYWHERE (in uri) is not set"),
    ("[source]\nuri = \"mongodb://u:hunter2@h/\"\ndb = \"d\"\n[[collection]]\nname = \"c\"\ntable = \"t\"\n",
     {}, "m2d.toml:2: uri holds a password"),
    ("[source]\nuri = \"mongodb://h\"\ndb = \"d\"\n[[collection]]\nname = \"c\"\n", {}, "m2d.toml:4: collection d.c needs table"),
    ("[source]\nuri = \"mongodb://h\"\ndb = \"d\"\n[[collection]]\nname = \"c\"\ntable = \"t\"\nmode = \"mirrors\"\n",
     {}, "m2d.toml:4: collection d.c: --mode must be mirror, changelog or both"),
    ("[source]\nuri = \"mongodb://h\"\ndb = \"d\"\n[[collection]]\nname = \"c\"\ntable = \"t\"\n"
     "[[collection]]\nname = \"e\"\ntable = \"t\"\n", {}, "collections d.c and d.e both write the table t"),
    ("[source]\nuri = \"mongodb://h\"\ndb = \"d\"\n", {}, "the config names no collection"),
    ("[source]\nuri = \"mongodb://h\"\ndb = \"d\"\n[[collection]]\nname = \"c\"\ntable = \"t\"\nchange-data-feed = 1\n",
     {}, "m2d.toml:7: 'change-data-feed' is a flag"),
]


def test_run_config_errors_name_the_line(tmp_path):
    p = run_m2d("run", "--config", tmp_path / "missing.toml")
    assert p.returncode == 2 and f"cannot read the config file {tmp_path}/missing.toml" in p.stderr, p.stderr
    for k, (text, env, words) in enumerate(CASES):
        d = tmp_path / str(k)
        d.mkdir()
        (d / "m2d.toml").write_text(text)
        p = run_m2d("run", "--config", "m2d.toml", "--dry-run", cwd=d, env=env)
        assert p.returncode == 2 and words in p.stderr, (k, p.returncode, p.stderr)
        assert "hunter2" not in p.stderr
    # the secret from the environment is never printed, also when the server cannot be reached
    (tmp_path / "m2d.toml").write_text("[source]\nuri = \"${M2D_SECRET_URI}\"\ndb = \"d\"\n"
                                       "[all-collections]\ntable-root = \"lake\"\n")
    p = run_m2d("run", "--config", "m2d.toml", "--dry-run", cwd=tmp_path,
                env={"M2D_SECRET_URI": "mongodb://u:hunter2@127.0.0.1:1/?serverSelectionTimeoutMS=300"})
    assert p.returncode == 1 and "cannot list the database's collections" in p.stderr, p.stderr
    assert "hunter2" not in p.stderr


def test_snapshot_all_collections_with_include_and_exclude(mongo, mongo_db, tmp_path):
    """The same patterns on snapshot --all-collections (comma-separated globs)."""
    for name in ["orders", "orders_2025", "users", "tmp_x", "other"]:
        mongo_db[name].insert_many([{"_id": i, "name": name} for i in range(5)])
    run_m2d("snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--all-collections", "--table-root", tmp_path,
            "--include", "orders*,users,tmp_*", "--exclude", "*_2025,tmp_*", check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders", "users"]
    rows = DeltaTable(str(tmp_path / "users")).to_pyarrow_table().to_pylist()
    assert sorted(r["_id"] for r in rows) == list(range(5)) and {r["name"] for r in rows} == {"users"}
    p = run_m2d("snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "users", "--table",
                tmp_path / "u", "--include", "x")
    assert p.returncode == 2 and "--include and --exclude go with --all-collections" in p.stderr


def test_sync_all_collections_with_include_and_exclude(mongo, mongo_db, tmp_path, spark):
    """sync --all-collections: the matching collections each into ROOT/<collection> (change logs into
    --changelog-root with --mode both), in one process, following a workload; killed and rerun, each
    mirror (read by Spark) equals its collection and each change log holds every operation once."""
    names = ["orders", "orders_2025", "users", "tmp_x"]
    for name in names:
        mongo_db[name].insert_many([{"_id": i, "n": i, "tags": [], "nested": {"a": i}} for i in range(200)])
    root, logs = tmp_path / "lake", tmp_path / "logs"
    args = ["sync", "--uri", mongo.uri, "--db", mongo_db.name, "--all-collections", "--table-root", root,
            "--mode", "both", "--changelog-root", logs, "--include", "orders*,users,tmp_*",
            "--exclude", "*_2025,tmp_*", "--max-latency", "200", "--workers", "2"]
    settle()
    proc = start_m2d(*args)
    time.sleep(3)
    done = {n: workload(mongo_db[n], 150, 200, seed=k + 1) for k, n in enumerate(["orders", "users"])}
    time.sleep(1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for k, n in enumerate(["orders", "users"]):
        done[n] += workload(mongo_db[n], 60, 200, seed=k + 11)
    p = run_m2d(*args, "--stop-when-idle", "3", timeout=300, check=True)
    assert f"[{mongo_db.name}.orders] " in p.stderr and f"run {mongo_db.name}.users:" in p.stderr, p.stderr[-3000:]
    assert sorted(x.name for x in root.iterdir()) == ["orders", "users"]
    assert sorted(x.name for x in logs.iterdir()) == ["orders", "users"]
    for n in ["orders", "users"]:
        check_spark_table(spark, root / n, list(mongo_db[n].find()))
        check_changelog(logs / n, done[n])

    # the options that go together, and those that do not
    bad = [(["--all-collections", "--table-root", root, "--table", root / "x"], "not --collection, --table"),
           (["--all-collections"], "needs --table-root ROOT"),
           (["--all-collections", "--table-root", root, "--mode", "both"], "needs --changelog-root ROOT"),
           (["--collection", "users", "--table", root / "u", "--include", "x"], "--include goes with --all-collections"),
           (["--table", root / "u"], "--collection COLL is required (or --all-collections --table-root ROOT)")]
    for extra, message in bad:
        p = run_m2d("sync", "--uri", mongo.uri, "--db", mongo_db.name, *extra)
        assert p.returncode == 2 and message in p.stderr, (extra, p.stderr)
