"""mongo2delta sync: a randomized workload of inserts, updates (nested fields, new fields, type
changes), replaces and deletes runs while sync follows it in both modes; afterwards the mirror
table (read by delta-rs and Spark) equals the collection and the change log holds exactly one
row per operation, in order; the same with sync killed (SIGKILL) and restarted."""
import json
import random
import signal
import subprocess
import time

import pytest
from deltalake import DeltaTable

from bson_mapping import check_table, check_spark_table
import delta_log
from conftest import MongoTestServer, m2d_bin, run_m2d, start_m2d
from parquet_jsonform import table_rows


def settle():
    """The test server gives no resume token before the first event, so sync records the clock
    (whole seconds) as the stream's start: writes made in the same second just before sync starts
    would count as changes. The tests let that second pass after seeding the collection."""
    time.sleep(1.1)


def start_sync(mongo, db, table, log, idle=None, binary=None, merge="deletion-vectors"):
    args = [binary or m2d_bin(), "sync", "--uri", mongo.uri, "--db", db, "--collection", "c", "--table", str(table),
            "--mode", "both", "--changelog-table", str(log), "--max-latency", "300", "--max-batch-docs", "200",
            "--workers", "2", "--merge-strategy", merge, "--compact-every", "4"]
    if idle:
        args += ["--stop-when-idle", str(idle)]
    return start_m2d(*args[1:], binary=args[0])


def spawn_m2d(args):
    """mongo2delta running in the background; its stderr to read when it ends."""
    return start_m2d(*args)


def workload(coll, n_ops, n_docs, seed):
    """Random operations, one at a time; returns [(op, _id)] of those that changed something,
    as the test server reports them (a replacement is an "update" there)."""
    rnd = random.Random(seed)
    done = []
    for k in range(n_ops):
        r, i = rnd.random(), rnd.randrange(n_docs + n_ops // 4)
        if r < 0.25:
            _id = 1_000_000 + seed * 10_000 + k  # unique across calls
            coll.insert_one({"_id": _id, "n": k, "tags": ["new"], "nested": {"a": k}})
            done.append(("insert", _id))
        elif r < 0.6:
            upd = rnd.choice([{"$set": {"n": -k}}, {"$set": {"nested.b": f"s{k}"}}, {"$set": {"extra": k / 2}},
                              {"$set": {"n": f"now a string {k}"}}, {"$inc": {"n": 1}}])
            try:
                if coll.update_one({"_id": i}, upd).modified_count:
                    done.append(("update", i))
            except Exception:  # $inc on a string
                pass
        elif r < 0.75:
            if coll.replace_one({"_id": i}, {"replaced": k, "nested": {"z": True}}).modified_count:
                done.append(("update", i))
        elif coll.delete_one({"_id": i}).deleted_count:
            done.append(("delete", i))
    return done


def changelog_rows(log):
    rows = DeltaTable(str(log)).to_pyarrow_table(columns=["_op", "_txn_seq", "_id"]).to_pylist()
    return sorted(rows, key=lambda r: r["_txn_seq"])


def uses_deletion_vectors(table):
    return any(a.get("deletionVector") for a in delta_log.actions(table, "add"))


def check_result(mongo_db, table, log, done, spark, merge="deletion-vectors"):
    docs = list(mongo_db.c.find())
    if merge == "rewrite":  # delta-rs reads no deletion vectors
        assert not uses_deletion_vectors(table)
        check_table(table_rows(DeltaTable(str(table)).to_pyarrow_table()), docs)
    else:
        assert uses_deletion_vectors(table), "the updates were not applied with deletion vectors"
        protocol = delta_log.actions(table, "protocol")[-1]
        assert "deletionVectors" in protocol["readerFeatures"] and "deletionVectors" in protocol["writerFeatures"]
    check_spark_table(spark, table, docs)
    rows = changelog_rows(log)
    assert [r["_txn_seq"] for r in rows] == list(range(1, len(rows) + 1)), "the change log's sequence has a gap or a repeat"
    assert len(rows) == len(done)
    for k, (r, (op, _id)) in enumerate(zip(rows, done)):
        if r["_id"] is None:
            # the test server names an updated document only through its looked-up full document
            # (documentKey holds the update itself): when the document was deleted before the
            # event was read, the event says nothing of which document it was. Real MongoDB does.
            assert r["_op"] == op == "update" and ("delete", _id) in done[k:], (k, r, op, _id)
        else:
            assert (r["_op"], r["_id"]) == (op, _id), (k, r, op, _id)


@pytest.mark.parametrize("merge", ["deletion-vectors", "rewrite"])
def test_sync_follows_a_random_workload(mongo, mongo_db, tmp_path, spark, merge):
    n_docs = 10000
    mongo_db.c.insert_many([{"_id": i, "n": i, "tags": [f"t{i % 5}"], "nested": {"a": i % 7}} for i in range(n_docs)])
    table, log = tmp_path / "mirror", tmp_path / "log"
    settle()
    proc = start_sync(mongo, mongo_db.name, table, log, idle=8, merge=merge)
    time.sleep(4)  # the initial snapshot
    done = workload(mongo_db.c, 1500, n_docs, seed=1)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert f"{len(done)} change-log rows" in err and "initial snapshot done" in err
    # compaction in the background (a rewritten mirror keeps few files: nothing to compact there)
    assert "compacted the change log" in err and ("compacted the mirror" in err or merge == "rewrite"), err
    check_result(mongo_db, table, log, done, spark, merge)
    for t in (table, log):  # inspect shows where the stream is
        info = json.loads(run_m2d("inspect", "--table", t, "--json", check=True).stdout)
        st = info["streams"][f"mongo2delta-sync:{mongo_db.name}.c"]
        assert st["events"] == len(done) and st["batch"] >= 1 and st["lastEventTime"].endswith("Z")
    # nothing more happened: a rerun applies nothing and adds nothing
    p = run_m2d("sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", table, "--mode",
                "both", "--changelog-table", log, "--stop-when-idle", "3", "--merge-strategy", merge, check=True)
    assert " 0 events" in p.stderr
    assert len(changelog_rows(log)) == len(done)


def kill_and_restart(mongo, mongo_db, tmp_path, spark, kills, seed):
    n_docs = 3000
    mongo_db.c.insert_many([{"_id": i, "n": i, "tags": [], "nested": {"a": i}} for i in range(n_docs)])
    table, log = tmp_path / "mirror", tmp_path / "log"
    rnd = random.Random(seed)
    settle()
    proc = start_sync(mongo, mongo_db.name, table, log)
    time.sleep(3)
    done = []
    for round_ in range(kills):
        done += workload(mongo_db.c, 150, n_docs, seed=seed * 100 + round_)
        time.sleep(rnd.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = start_sync(mongo, mongo_db.name, table, log)
    done += workload(mongo_db.c, 100, n_docs, seed=seed * 100 + 99)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)  # commits the batch in hand and exits 0
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    p = run_m2d("sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", table, "--mode",
                "both", "--changelog-table", log, "--stop-when-idle", "3", check=True)
    check_result(mongo_db, table, log, done, spark)


def test_sync_killed_and_restarted(mongo, mongo_db, tmp_path, spark):
    kill_and_restart(mongo, mongo_db, tmp_path, spark, kills=3, seed=3)


@pytest.mark.long
def test_sync_killed_ten_times(mongo, mongo_db, tmp_path, spark):
    kill_and_restart(mongo, mongo_db, tmp_path, spark, kills=10, seed=4)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sync_survives_a_server_restart(tmp_path, spark):
    """The H2-backed test server (data and oplog on disk) is restarted while sync runs: sync
    reconnects and resumes from the position its tables hold; nothing is lost."""
    import pymongo
    from conftest import ROOT
    port = free_port()

    def start_server():
        proc = subprocess.Popen([str(ROOT / "scripts" / "mongo-test-server"), "--port", str(port), "--data",
                                 str(tmp_path / "h2.db")], stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        assert "listening on" in line, line
        return proc

    server = start_server()
    try:
        uri = f"mongodb://127.0.0.1:{port}"
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=20000)
        coll = client.r.c
        coll.insert_many([{"_id": i, "n": i, "tags": [], "nested": {"a": i}} for i in range(1000)])
        client.close()
        settle()
        table, log = tmp_path / "mirror", tmp_path / "log"

        class M:  # what start_sync needs of a server
            pass
        m = M()
        m.uri = uri
        proc = start_sync(m, "r", table, log)
        time.sleep(3)
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=20000)
        done = workload(client.r.c, 150, 1000, seed=21)
        time.sleep(1.5)
        client.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        time.sleep(2)
        server = start_server()
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=20000)
        done += workload(client.r.c, 150, 1000, seed=22)
        time.sleep(4)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 1), err
        if proc.returncode == 1:  # allowed: a clear error, after which a rerun completes
            assert "server" in err or "change stream" in err, err
            p = run_m2d("sync", "--uri", uri, "--db", "r", "--collection", "c", "--table", table, "--mode", "both",
                        "--changelog-table", log, "--stop-when-idle", "3", check=True)
        else:
            assert "reconnect" in err, err

        class DB:
            pass
        db = DB()
        db.c = client.r.c
        check_result(db, table, log, done, spark)
        client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def test_sync_soft_delete_keeps_deleted_documents_marked(mongo, mongo_db, tmp_path, spark):
    """--delete soft: a deleted document stays in the mirror as its last version with
    _deleted = true; live documents have _deleted = false."""
    mongo_db.c.insert_many([{"_id": i, "n": i, "s": f"v{i}"} for i in range(300)])
    table = tmp_path / "mirror"
    settle()
    args = ["sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", table,
            "--delete", "soft", "--max-latency", "200", "--stop-when-idle", "4"]
    proc = spawn_m2d(args)
    time.sleep(3)
    rnd = random.Random(5)
    deleted = {}
    for k in range(400):
        i = rnd.randrange(300)
        if rnd.random() < 0.7:
            mongo_db.c.update_one({"_id": i}, {"$set": {"n": -k, "s": f"u{k}"}})
        else:
            doc = mongo_db.c.find_one({"_id": i})
            if doc and mongo_db.c.delete_one({"_id": i}).deleted_count:
                deleted[i] = doc
    mongo_db.c.insert_one({"_id": 999, "n": 1, "s": "late"})
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert deleted
    rows = table_rows(spark.read.format("delta").load(str(table)).toArrow())
    check_table([r for r in rows if r["_deleted"] is False], [dict(d, _deleted=False) for d in mongo_db.c.find()])
    gone = [r for r in rows if r["_deleted"] is True]
    assert len(gone) + mongo_db.c.count_documents({}) == len(rows)
    assert sorted(r["_id"] for r in gone) == sorted(deleted)
    # a deleted document keeps the last version the stream saw: the server looks documents up when
    # the event is read, so an update followed quickly by the delete may come without its document
    for r in gone:
        last = deleted[r["_id"]]
        assert r["n"] in (r["_id"], last["n"]) and r["s"] in (f"v{r['_id']}", last["s"]) or r["s"].startswith("u"), r


def test_sync_when_the_server_lost_the_history(tmp_path, spark):
    """The tables' position is older than what the server keeps (its oplog moved past it): sync
    fails with a clear error and leaves the tables intact; with --on-history-lost resnapshot it
    copies the collection again and the mirror ends equal to it."""
    server = MongoTestServer().start()  # its own: forgetting history would break other tests
    try:
        client = server.client()
        coll = client.shop.c
        coll.insert_many([{"_id": i, "n": i} for i in range(500)])
        table, log = tmp_path / "mirror", tmp_path / "log"
        settle()
        sync = ["sync", "--uri", server.uri, "--db", "shop", "--collection", "c", "--table", table, "--mode", "both",
                "--changelog-table", log, "--max-latency", "200", "--stop-when-idle", "3"]
        proc = spawn_m2d(sync)
        time.sleep(2)
        for i in range(50):
            coll.update_one({"_id": i}, {"$set": {"n": -i}})
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        rows_before = len(changelog_rows(log))
        versions_before = delta_log.versions(table)
        # while sync is away, changes happen and the server's history moves past the tables' position
        coll.delete_many({"_id": {"$gte": 400}})
        coll.insert_many([{"_id": 1000 + i, "n": i, "late": True} for i in range(30)])
        client.admin.command({"m2dForgetHistory": 1})
        settle()  # the new start is the clock's second (see settle): let the forgotten one pass
        p = run_m2d(*sync)
        assert p.returncode == 1, p.stderr
        last = p.stderr.strip().splitlines()[-1]
        assert last.startswith("mongo2delta: the change stream cannot resume"), p.stderr
        assert "no longer has that history" in last and "--on-history-lost resnapshot" in last, last
        assert delta_log.versions(table) == versions_before  # nothing written
        assert len(changelog_rows(log)) == rows_before
        p = run_m2d(*sync, "--on-history-lost", "resnapshot", timeout=300)
        assert p.returncode == 0, p.stderr
        assert "taking a new snapshot" in p.stderr and "initial snapshot done" in p.stderr
        check_spark_table(spark, table, list(coll.find()))
        # and it goes on from the new position
        coll.insert_one({"_id": 5000, "n": 1})
        coll.delete_one({"_id": 0})
        p = run_m2d(*sync)
        assert p.returncode == 0, p.stderr
        check_spark_table(spark, table, list(coll.find()))
    finally:
        server.stop()


def test_sync_serves_prometheus_metrics(mongo, mongo_db, tmp_path):
    import urllib.request
    port = free_port()
    log = tmp_path / "log"
    settle()
    args = ["sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", log, "--mode",
            "changelog", "--max-latency", "100", "--stop-when-idle", "6", "--metrics-port", port]
    proc = spawn_m2d(args)
    try:
        time.sleep(2)
        mongo_db.c.insert_many([{"_id": i} for i in range(120)])
        label = f'{{collection="{mongo_db.name}.c"}}'
        deadline, page = time.time() + 20, ""
        while time.time() < deadline:
            page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            if f"mongo2delta_sync_events_applied_total{label} 120" in page:
                break
            time.sleep(0.3)
        assert f"mongo2delta_sync_events_applied_total{label} 120" in page, page
        values = {ln.split()[0]: float(ln.split()[1]) for ln in page.splitlines() if ln and not ln.startswith("#")}
        assert values[f"mongo2delta_sync_batches_total{label}"] >= 1
        assert values[f"mongo2delta_sync_commit_seconds_count{label}"] == values[f"mongo2delta_sync_batches_total{label}"]
        assert abs(values[f"mongo2delta_sync_last_event_timestamp_seconds{label}"] - time.time()) < 60
        assert 0 <= values[f"mongo2delta_sync_lag_seconds{label}"] < 60
        assert values[f"mongo2delta_sync_reconnects_total{label}"] == 0
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"metrics (Prometheus text) on http://127.0.0.1:{port}/metrics" in err


def strip_nulls(v):
    if isinstance(v, dict):
        return {k: strip_nulls(x) for k, x in v.items() if x is not None}
    return v


@pytest.mark.parametrize("merge", ["deletion-vectors", "rewrite"])
def test_sync_change_data_feed_replays_to_the_collection(mongo, mongo_db, tmp_path, spark, merge):
    """--change-data-feed: Spark's readChangeFeed from the hand-over on, applied to the table as
    it was at the hand-over, gives the collection; every update's preimage is the row it replaces."""
    mongo_db.c.insert_many([{"_id": i, "n": i, "nested": {"a": i}} for i in range(400)])
    table = tmp_path / "mirror"
    settle()
    args = ["sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", table,
            "--change-data-feed", "--merge-strategy", merge, "--max-latency", "200", "--max-batch-docs", "60",
            "--stop-when-idle", "4"]
    proc = spawn_m2d(args)
    time.sleep(3)
    done = workload(mongo_db.c, 500, 400, seed=11)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    handover = next(v for v, acts in delta_log.commits(table).items()
                    if any("txn" in a and a["txn"]["version"] == 0 for a in acts))
    assert list((table / "_change_data").glob("cdc-*.parquet"))
    key = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
    state = {key(r["_id"]): r for r in table_rows(spark.read.format("delta").option("versionAsOf", handover)
                                                   .load(str(table)).toArrow())}
    changes = table_rows(spark.read.format("delta").option("readChangeFeed", "true")
                         .option("startingVersion", handover + 1).load(str(table)).toArrow())
    assert changes and {c["_change_type"] for c in changes} <= {"insert", "update_preimage", "update_postimage", "delete"}
    meta = ("_change_type", "_commit_version", "_commit_timestamp")
    for version in sorted({c["_commit_version"] for c in changes}):
        for c in [c for c in changes if c["_commit_version"] == version]:
            row = {k: v for k, v in c.items() if k not in meta}
            k = key(row["_id"])
            if c["_change_type"] in ("update_preimage", "delete"):
                # read with the newest schema: columns added later are null
                assert k in state and strip_nulls(state[k]) == strip_nulls(row), (version, c, state.get(k))
        for c in [c for c in changes if c["_commit_version"] == version]:
            row = {k: v for k, v in c.items() if k not in meta}
            k = key(row["_id"])
            if c["_change_type"] == "delete":
                del state[k]
            elif c["_change_type"] in ("insert", "update_postimage"):
                assert c["_change_type"] == "update_postimage" or k not in state, c
                state[k] = row
    check_table(list(state.values()), list(mongo_db.c.find()))
    assert len(done) > 0


def test_sync_goes_on_after_another_process_optimizes_the_mirror(mongo, mongo_db, tmp_path, spark):
    """`mongo2delta optimize` run by hand while sync runs rewrites the files sync's key index
    names: sync notices (a conflict, or a file gone), reads the table again and goes on."""
    mongo_db.c.insert_many([{"_id": i, "n": i} for i in range(2000)])
    table = tmp_path / "mirror"
    settle()
    args = ["sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", table,
            "--max-latency", "100", "--compact-every", "0", "--stop-when-idle", "5"]
    proc = spawn_m2d(args)
    time.sleep(3)
    for round_ in range(3):
        for i in range(0, 2000, 7):
            mongo_db.c.update_one({"_id": i}, {"$set": {"n": -i, "round": round_}})
        time.sleep(1.5)
        p = run_m2d("optimize", "--table", table, timeout=300)
        assert p.returncode in (0, 1), p.stderr  # 1: a conflict with a batch, the table intact
    for i in range(0, 2000, 5):
        mongo_db.c.update_one({"_id": i}, {"$set": {"n": i * 10}})
    mongo_db.c.delete_many({"_id": {"$lt": 100}})
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "OPTIMIZE" in json.dumps(delta_log.actions(table))
    assert "reading the mirror table again and retrying the batch" in err, err
    check_spark_table(spark, table, list(mongo_db.c.find()))


@pytest.mark.parametrize("ids", ["objectid", "string", "mixed"])
def test_sync_mirror_with_common_id_types(mongo, mongo_db, tmp_path, spark, ids):
    """The key index reads ObjectId, string and mixed _id columns (mixed ones go through
    _rescued_data): updates and deletes after a restart (the index rebuilt from the table)
    replace the right rows."""
    from bson import ObjectId
    make = {"objectid": lambda i: ObjectId(), "string": lambda i: f"key-{i}/é",
            "mixed": lambda i: [i, f"s{i}", ObjectId()][i % 3]}[ids]
    mongo_db.c.insert_many([{"_id": make(i), "n": i} for i in range(300)])
    table = tmp_path / "mirror"
    settle()
    sync = ["sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", table,
            "--max-latency", "200", "--stop-when-idle", "3"]
    for round_ in range(3):  # the second run reads its key index from the cache, the third builds it again
        if round_ == 2:
            (table / "_mongo2delta" / "keyindex.bin").unlink()
        proc = spawn_m2d(sync)
        time.sleep(2.5)
        docs = list(mongo_db.c.find())
        for k, d in enumerate(docs[: 120]):
            if k % 3 == 0:
                mongo_db.c.delete_one({"_id": d["_id"]})
            else:
                mongo_db.c.update_one({"_id": d["_id"]}, {"$set": {"n": -k - 1000 * round_}})
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert ("loaded from its cache" in err) == (round_ == 1), err
        check_spark_table(spark, table, list(mongo_db.c.find()))


def test_sync_key_index_cache_is_used_only_when_it_matches_the_table(mongo, mongo_db, tmp_path, spark):
    """sync saves its key index next to the table at a clean stop and reads it back at the next
    start when the table is as it left it; a damaged cache, or a table another writer changed
    meanwhile (optimize), is refused and the index built from the table. After each run the
    mirror equals the collection (read by Spark), and vacuum leaves the cache alone."""
    mongo_db.c.insert_many([{"_id": i, "n": i, "s": f"doc-{i}"} for i in range(3000)])
    table = tmp_path / "mirror"
    cache = table / "_mongo2delta" / "keyindex.bin"
    settle()
    sync = ["sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", table,
            "--max-latency", "200", "--compact-every", "0", "--stop-when-idle", "3"]

    def run(round_):
        proc = spawn_m2d(sync)
        time.sleep(3)
        for i in range(round_, 3000, 11):
            mongo_db.c.update_one({"_id": i}, {"$set": {"n": -i - 10_000 * round_}})
        mongo_db.c.delete_many({"_id": {"$gte": 100 * round_, "$lt": 100 * round_ + 20}})
        mongo_db.c.insert_one({"_id": 5000 + round_, "n": round_})
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "key index: saved to _mongo2delta/keyindex.bin" in err, err
        check_spark_table(spark, table, list(mongo_db.c.find()))
        return err

    err = run(0)  # the first run: the snapshot, no cache yet
    assert "loaded from its cache" not in err
    assert cache.exists()
    err = run(1)  # nothing changed in between
    assert "loaded from its cache" in err, err
    data = bytearray(cache.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cache.write_bytes(bytes(data))
    err = run(2)
    assert "not using its cache _mongo2delta/keyindex.bin (its checksum does not match)" in err, err
    assert "loaded from its cache" not in err
    p = run_m2d("optimize", "--table", table, timeout=300)  # another writer
    assert p.returncode == 0, p.stderr
    err = run(3)
    assert "not using its cache _mongo2delta/keyindex.bin (it was saved at table version" in err, err
    assert "loaded from its cache" not in err
    err = run(4)
    assert "loaded from its cache" in err, err
    # vacuum commits (VACUUM START / END) without changing the files: the cache still matches
    p = run_m2d("vacuum", "--table", table, "--retain-hours", "0", "--force", timeout=300)
    assert p.returncode == 0, p.stderr
    assert cache.exists() and "deleted" in p.stdout + p.stderr, p.stdout + p.stderr
    err = run(5)
    assert "loaded from its cache" in err, err


def test_sync_writes_the_codec_it_is_given(mongo, mongo_db, tmp_path):
    import pyarrow.parquet as pq
    mongo_db.c.insert_many([{"_id": i, "n": i} for i in range(100)])
    table, log = tmp_path / "mirror", tmp_path / "log"
    settle()
    proc = spawn_m2d(["sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", table,
                      "--mode", "both", "--changelog-table", log, "--compression", "zstd", "--compression-level", "9",
                      "--max-latency", "200", "--stop-when-idle", "3"])
    time.sleep(2)
    mongo_db.c.update_one({"_id": 1}, {"$set": {"n": -1}})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    for t in (table, log):
        files = list(t.glob("*.parquet"))
        assert files
        for f in files:
            md = pq.ParquetFile(f).metadata
            assert all(md.row_group(g).column(c).compression == "ZSTD"
                       for g in range(md.num_row_groups) for c in range(md.num_columns)), f
    p = run_m2d("sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", table,
                "--compression", "brotli9")
    assert p.returncode == 2 and "--compression must be" in p.stderr
