"""Change streams through libmongoc (mongo2delta watch) on the test server, and the H2-backed
server keeping documents and change history across a restart."""
import json
import subprocess
import time

from bson import Timestamp

from conftest import MongoTestServer, start_m2d


def watch(uri, db, coll, n, timeout=30):
    return start_m2d("watch", "--uri", uri, "--db", db, "--collection", coll, "--max-events", n, "--timeout", timeout,
                     stdout=subprocess.PIPE)


def wait_until_watching(proc):
    # the command logs "watching db.coll" once the stream is open
    line = proc.stderr.readline()
    assert "watching" in line, line


def test_libmongoc_change_stream_sees_insert_update_delete(mongo, mongo_db):
    coll = mongo_db.orders
    proc = watch(mongo.uri, mongo_db.name, "orders", 4)
    wait_until_watching(proc)
    time.sleep(0.5)
    # Each write waits for its event: updateLookup reads the document as it is when the event
    # is read, so a later write must not race the lookup.
    writes = [
        lambda: coll.insert_one({"_id": 1, "item": "pen", "qty": 2}),
        lambda: coll.update_one({"_id": 1}, {"$set": {"qty": 5}}),
        lambda: coll.replace_one({"_id": 1}, {"item": "ink", "qty": 1}),
        lambda: coll.delete_one({"_id": 1}),
    ]
    events = []
    for write in writes:
        write()
        events.append(json.loads(proc.stdout.readline()))
    proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read()
    kinds = [e["operationType"] for e in events]
    # mongo-java-server reports a replacement as "update"; MongoDB says "replace"
    assert kinds[:2] == ["insert", "update"] and kinds[2] in ("replace", "update") and kinds[3] == "delete"
    assert events[0]["fullDocument"] == {"_id": 1, "item": "pen", "qty": 2}
    # the server may not put _id in documentKey on updates (design.md): fullDocument has it
    assert events[1]["fullDocument"] == {"_id": 1, "item": "pen", "qty": 5}
    assert events[2]["fullDocument"] == {"_id": 1, "item": "ink", "qty": 1}
    assert events[3]["documentKey"] == {"_id": 1}
    tokens = [e["_id"]["_data"] for e in events]
    assert len(set(tokens)) == 4  # every event has its own resume token


def test_watch_ends_after_the_idle_timeout(mongo, mongo_db):
    start = time.time()
    proc = watch(mongo.uri, mongo_db.name, "quiet", 100, timeout=1)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == ""
    assert time.time() - start < 20


def test_h2_server_keeps_documents_and_change_history_across_restart(tmp_path):
    data = tmp_path / "mongo.h2"
    server = MongoTestServer(data=data).start()
    try:
        with server.client() as c:
            coll = c.shop.items
            coll.insert_one({"_id": 1, "a": 1})
            with coll.watch(start_at_operation_time=Timestamp(1, 0)) as cs:
                first = None
                deadline = time.time() + 10
                while first is None and time.time() < deadline:
                    first = cs.try_next()
            assert first and first["operationType"] == "insert"
            token = first["_id"]
            coll.insert_one({"_id": 2, "a": 2})
            coll.update_one({"_id": 1}, {"$set": {"a": 5}})
        assert server.stop() == 0

        server = MongoTestServer(data=data).start()
        with server.client() as c:
            assert sorted(c.shop.items.find(), key=lambda d: d["_id"]) == [{"_id": 1, "a": 5}, {"_id": 2, "a": 2}]
            seen = []
            with c.shop.items.watch(resume_after=token) as cs:
                deadline = time.time() + 10
                while len(seen) < 2 and time.time() < deadline:
                    e = cs.try_next()
                    if e:
                        seen.append(e)
            assert [e["operationType"] for e in seen] == ["insert", "update"]
            assert seen[0]["fullDocument"] == {"_id": 2, "a": 2}
    finally:
        server.stop()
