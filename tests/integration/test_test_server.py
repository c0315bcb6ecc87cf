"""The test server's own additions to mongo-java-server (scripts/java/MongoTestServer.java):
db.adminCommand({m2dForgetHistory: 1}) loses the change-stream history as an oplog rollover
would (286 ChangeStreamHistoryLost on a resume from before it), malformed resume tokens
fail with 260 InvalidResumeToken, and a change stream's getMore replies carry a
postBatchResumeToken that follows the oplog while the stream is quiet.

Each test starts its own server: forgetting history on the shared one would break every later
test that resumes from an old position."""
import subprocess
import time

import pytest
from bson import Timestamp
from pymongo.errors import OperationFailure

from conftest import MongoTestServer, start_m2d

HISTORY_LOST = "Resume of change stream was not possible, as the resume point may no longer be in the oplog."


@pytest.fixture
def server():
    s = MongoTestServer().start()
    yield s
    s.stop()


def next_events(stream, n, timeout=10):
    out = []
    deadline = time.time() + timeout
    while len(out) < n and time.time() < deadline:
        e = stream.try_next()
        if e is not None:
            out.append(e)
    assert len(out) == n, f"got {len(out)} of {n} events"
    return out


def change_stream_cmd(db, coll, spec):
    """The raw aggregate a driver sends to open a change stream."""
    return db.command("aggregate", coll, pipeline=[{"$changeStream": spec}], cursor={})


def fresh_events(db, coll, write, n, timeout=10):
    """Opens a change stream with no start point (raw commands: pymongo will not open one on this
    server, whose reply has no operationTime), runs write(), returns the next n events."""
    reply = change_stream_cmd(db, coll, {})
    assert reply["cursor"]["firstBatch"] == []
    write()
    batch = []
    deadline = time.time() + timeout
    while len(batch) < n and time.time() < deadline:
        batch += db.command("getMore", reply["cursor"]["id"], collection=coll)["cursor"]["nextBatch"]
    assert len(batch) == n, batch
    return batch


def assert_history_lost(call):
    with pytest.raises(OperationFailure) as exc:
        call()
    assert exc.value.code == 286, exc.value.details
    assert exc.value.details["codeName"] == "ChangeStreamHistoryLost"
    assert exc.value.details["errmsg"] == HISTORY_LOST


def test_forget_history_then_resume(server):
    with server.client() as c:
        coll = c.shop.orders
        with coll.watch(start_at_operation_time=Timestamp(1, 0)) as cs:
            for i in range(3):
                coll.insert_one({"_id": i})
            events = next_events(cs, 3)
        old_token = events[1]["_id"]
        old_time = events[1]["clusterTime"]

        # before the forget, the old token resumes (the stream sees the third insert)
        with coll.watch(resume_after=old_token) as cs:
            assert [e["documentKey"] for e in next_events(cs, 1)] == [{"_id": 2}]

        reply = c.admin.command("m2dForgetHistory", 1)
        assert reply["ok"] == 1.0
        horizon = reply["forgottenThrough"]
        assert isinstance(horizon, Timestamp) and horizon >= events[-1]["clusterTime"]

        # every way of starting from before the forget now fails, in pymongo and in the raw command
        assert_history_lost(lambda: coll.watch(resume_after=old_token))
        assert_history_lost(lambda: coll.watch(start_after=old_token))
        assert_history_lost(lambda: coll.watch(start_at_operation_time=old_time))
        assert_history_lost(lambda: coll.watch(start_at_operation_time=Timestamp(1, 0)))
        assert_history_lost(lambda: coll.watch(resume_after=events[2]["_id"]))  # the newest event too
        assert_history_lost(lambda: change_stream_cmd(c.shop, "orders", {"resumeAfter": old_token}))
        # the history is the server's: other collections and databases lost theirs as well
        assert_history_lost(lambda: c.other.things.watch(start_at_operation_time=Timestamp(1, 0)))

        # a fresh stream (no resume point) works and sees new events; pymongo will not open one
        # on this server (its reply has no operationTime), so the raw commands
        batch = fresh_events(c.shop, "orders", lambda: coll.insert_many([{"_id": 10}, {"_id": 11}]), 2)
        assert [e["documentKey"] for e in batch] == [{"_id": 10}, {"_id": 11}]
        new_token = batch[0]["_id"]
        assert batch[0]["clusterTime"] > horizon

        # a token taken after the forget resumes fine, with resumeAfter and startAfter
        coll.insert_one({"_id": 12})
        with coll.watch(resume_after=new_token) as cs:
            assert [e["documentKey"] for e in next_events(cs, 2)] == [{"_id": 11}, {"_id": 12}]
        with coll.watch(start_after=new_token) as cs:
            assert [e["documentKey"] for e in next_events(cs, 2)] == [{"_id": 11}, {"_id": 12}]
        # and so does a start time after the horizon
        with coll.watch(start_at_operation_time=batch[0]["clusterTime"]) as cs:
            assert [e["documentKey"] for e in next_events(cs, 3)] == [{"_id": 10}, {"_id": 11}, {"_id": 12}]

        # a second forget moves the horizon on
        later = c.admin.command("m2dForgetHistory", 1)["forgottenThrough"]
        assert later > horizon
        assert_history_lost(lambda: coll.watch(resume_after=new_token))


def get_more(db, cursor_id, coll):
    return db.command("getMore", cursor_id, collection=coll)["cursor"]


def test_post_batch_resume_token_follows_the_oplog(server):
    """A quiet stream's empty batches carry the token of the newest oplog entry (of any
    collection) once it is 2 s old; a batch with events the last event's; a resume from the
    quiet stream's token sees only what came after it."""
    with server.client() as c:
        db = c.shop
        reply = change_stream_cmd(db, "orders", {"startAtOperationTime": Timestamp(1, 0)})
        cursor_id = reply["cursor"]["id"]
        assert "postBatchResumeToken" not in reply["cursor"]  # the aggregate's reply as it was
        db.orders.insert_one({"_id": 1})
        deadline, cur = time.time() + 10, {"nextBatch": []}
        while not cur["nextBatch"] and time.time() < deadline:
            cur = get_more(db, cursor_id, "orders")
        [event] = cur["nextBatch"]
        assert cur["postBatchResumeToken"] == event["_id"]

        with db.things.watch(start_at_operation_time=Timestamp(1, 0)) as other:
            db.things.insert_many([{"_id": i} for i in range(3)])
            things = next_events(other, 3)
        young = get_more(db, cursor_id, "orders")
        assert young["nextBatch"] == []
        # never beyond the newest oplog entry
        assert int(event["_id"]["_data"], 16) <= int(young["postBatchResumeToken"]["_data"], 16) \
            <= int(things[-1]["_id"]["_data"], 16)
        time.sleep(3)
        quiet = get_more(db, cursor_id, "orders")
        assert quiet["nextBatch"] == [] and quiet["postBatchResumeToken"] == things[-1]["_id"]

        db.orders.insert_one({"_id": 2})
        with db.orders.watch(resume_after=quiet["postBatchResumeToken"]) as cs:
            assert [e["documentKey"] for e in next_events(cs, 1)] == [{"_id": 2}]
        with db.things.watch(resume_after=quiet["postBatchResumeToken"]) as cs:
            assert cs.try_next() is None  # the things written before the token are behind it


def test_libmongoc_fresh_stream_after_forget(server):
    """What sync uses: libmongoc opens a stream without a start point after the forget."""
    with server.client() as c:
        c.shop.orders.insert_one({"_id": 1})
        c.admin.command("m2dForgetHistory", 1)
        proc = start_m2d("watch", "--uri", server.uri, "--db", "shop", "--collection", "orders", "--max-events", "1",
                         "--timeout", "30", stdout=subprocess.PIPE)
        try:
            assert "watching" in proc.stderr.readline()
            time.sleep(0.5)
            c.shop.orders.insert_one({"_id": 2, "a": "after"})
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert '"after"' in out


def test_forget_history_is_an_admin_command(server):
    with server.client() as c:
        with pytest.raises(OperationFailure) as exc:
            c.shop.command("m2dForgetHistory", 1)
        assert exc.value.code == 13
        assert "admin database" in exc.value.details["errmsg"]


@pytest.mark.parametrize("token", [
    {"_data": "not hex"},
    {"_data": ""},
    {"_data": "-1"},
    {"_data": "8263A1B2C3000000012B022C0100296E5A1004"},  # a real MongoDB token's shape: too long here
    {"_data": "ffffffffffffffff"},  # beyond the server's positions
    {"_data": 5},
    {},
    "a string",
])
def test_malformed_resume_token(server, token):
    with server.client() as c:
        c.shop.orders.insert_one({"_id": 1})
        for option in ("resumeAfter", "startAfter"):
            with pytest.raises(OperationFailure) as exc:
                change_stream_cmd(c.shop, "orders", {option: token})
            assert exc.value.code == 260, exc.value.details
            assert exc.value.details["codeName"] == "InvalidResumeToken"
            assert exc.value.details["errmsg"].startswith("Bad resume token: ")


def test_start_at_operation_time_of_the_wrong_type(server):
    with server.client() as c:
        with pytest.raises(OperationFailure) as exc:
            change_stream_cmd(c.shop, "orders", {"startAtOperationTime": "yesterday"})
        assert exc.value.code == 14
        assert exc.value.details["codeName"] == "TypeMismatch"


def test_forgotten_history_stays_forgotten_across_a_restart(tmp_path):
    data = tmp_path / "mongo.h2"
    server = MongoTestServer(data=data).start()
    try:
        with server.client() as c:
            coll = c.shop.items
            coll.insert_one({"_id": 1})
            with coll.watch(start_at_operation_time=Timestamp(1, 0)) as cs:
                token = next_events(cs, 1)[0]["_id"]
            c.admin.command("m2dForgetHistory", 1)
            assert_history_lost(lambda: coll.watch(resume_after=token))
        assert server.stop() == 0

        server = MongoTestServer(data=data).start()
        with server.client() as c:
            coll = c.shop.items
            assert_history_lost(lambda: coll.watch(resume_after=token))
            events = fresh_events(c.shop, "items", lambda: coll.insert_one({"_id": 2}), 1)
            coll.insert_one({"_id": 3})
            with coll.watch(resume_after=events[0]["_id"]) as cs:
                assert [e["documentKey"] for e in next_events(cs, 1)] == [{"_id": 3}]
    finally:
        server.stop()
