"""Tables and inputs in a Google Cloud Storage bucket (fake-gcs-server, which serves the JSON API
and honours ifGenerationMatch=0), written by every command and read back from the same bucket by
independent readers: delta-rs (object_store's GCS client pointed at the emulator) where it reads
the table, and mongo2delta cat against MongoDB for the mirror with deletion vectors, which
delta-rs 1.1.4 cannot read."""
import base64
import gc
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from deltalake import DeltaTable

from bson_mapping import check_table
from conftest import GCS_CREDENTIAL_VARS, GcsBucket, M2DProcess, m2d_env, GcsTestServer, m2d_bin, run_m2d, s3_bucket_name
from parquet_jsonform import table_rows
from s3_fault_proxy import FaultProxy, Rule
from test_sync import settle, workload


def m2d(bucket, *args, timeout=300, check=True, env=None):
    return run_m2d(*args, timeout=timeout, check=check, env=dict(bucket.env, **(env or {})))


class delta_rs:
    """delta-rs reading a table in the bucket. The DeltaTable is dropped (and collected) as soon as
    it has been read, as in test_s3 (delta-io/delta-rs#2184)."""

    def __init__(self, bucket, url):
        self.bucket, self.url = bucket, url

    def to_pyarrow_table(self, columns=None):
        dt = DeltaTable(self.url, storage_options=self.bucket.storage_options)
        try:
            return dt.to_pyarrow_table(columns=columns)
        finally:
            del dt
            gc.collect()


def log_keys(bucket, prefix):
    return sorted(k for k in bucket.keys(prefix + "/_delta_log/") if re.search(r"/\d{20}\.json$", k))


def log_actions(bucket, prefix):
    for k in log_keys(bucket, prefix):
        for line in bucket.get(k).decode().splitlines():
            yield k, json.loads(line)


def cat_rows(bucket, url, env=None):
    """The table's rows as mongo2delta cat prints them (the JSON form, deletion vectors applied)."""
    return [json.loads(line) for line in m2d(bucket, "cat", "--table", url, env=env).stdout.splitlines()]


def seed(coll, n):
    coll.insert_many([{"_id": i, "n": i, "name": f"doc {i}", "tags": [f"t{i % 5}"], "nested": {"a": i % 7}}
                      for i in range(n)])


def big_export(path, n=6000):
    """About 25 MB of JSON lines of random hex: one data file of three 8 MiB upload chunks."""
    docs = [{"_id": i, "blob": os.urandom(2048).hex()} for i in range(n)]
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return docs


@pytest.fixture
def proxy(gcs_server):
    p = FaultProxy(gcs_server.port)
    yield p
    p.close()


def via(bucket, proxy):
    """The emulator reached through the proxy (resumable sessions come back through it too: the
    server names them after the Host header it was sent)."""
    return dict(bucket.env, STORAGE_EMULATOR_HOST=proxy.endpoint)


# --- tables users write and read -----------------------------------------------------------------

def test_snapshot_into_a_bucket_reads_in_delta_rs(mongo, mongo_db, gcs_bucket):
    seed(mongo_db.c, 3000)
    url = gcs_bucket.url("lake/c")
    p = m2d(gcs_bucket, "snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", url,
            "--workers", "2")
    assert "3000 documents" in p.stderr
    docs = list(mongo_db.c.find())
    check_table(table_rows(delta_rs(gcs_bucket, url).to_pyarrow_table()), docs)
    check_table(cat_rows(gcs_bucket, url), docs)
    info = json.loads(m2d(gcs_bucket, "inspect", "--table", url, "--json").stdout)
    assert info["numRecords"] == 3000
    # run again: done already, nothing written
    before = log_keys(gcs_bucket, "lake/c")
    m2d(gcs_bucket, "snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", url)
    assert log_keys(gcs_bucket, "lake/c") == before
    # the probe's hidden objects are gone
    assert not [k for k in gcs_bucket.keys() if ".mongo2delta-probe" in k]


def test_load_takes_every_export_file_under_a_prefix_once(gcs_bucket):
    import bson
    b = gcs_bucket
    b.put("exports/2026/12/a.json", b'{"_id": 1, "x": 1}\n{"_id": 2, "x": 2}\n')
    b.put("exports/b.jsonl", b'{"_id": 3, "x": 3}\n')
    b.put("exports/notes.txt", b"not an export")
    b.put("exports/dump/c.bson", bson.encode({"_id": 4, "x": 4}) + bson.encode({"_id": 5, "x": 5}))
    url = b.url("tables/t")
    p = m2d(b, "load", "--input", b.url("exports/"), "--table", url)
    assert "3 file(s) loaded, 0 already loaded before; 5 documents" in p.stderr, p.stderr
    rows = sorted(delta_rs(b, url).to_pyarrow_table(columns=["_id", "x"]).to_pylist(), key=lambda r: r["_id"])
    assert rows == [{"_id": i, "x": i} for i in range(1, 6)]
    apps = [a["txn"]["appId"] for _, a in log_actions(b, "tables/t") if "txn" in a]
    assert sorted(apps) == sorted(f"mongo2delta-load:gs://{b.name}/exports/{k}"
                                  for k in ("2026/12/a.json", "b.jsonl", "dump/c.bson"))
    # a rerun takes none; a new file is taken alone
    p = m2d(b, "load", "--input", b.url("exports/"), "--table", url)
    assert "0 file(s) loaded, 3 already loaded before" in p.stderr, p.stderr
    b.put("exports/d.json", b'{"_id": 6, "x": 6}\n')
    p = m2d(b, "load", "--input", b.url("exports"), "--table", url)
    assert "1 file(s) loaded, 3 already loaded before; 1 documents" in p.stderr, p.stderr
    # one object by its URL
    b.put("other/e.json", b'{"_id": 7, "x": 7}\n')
    m2d(b, "load", "--input", b.url("other/e.json"), "--table", url)
    assert delta_rs(b, url).to_pyarrow_table().num_rows == 7
    p = m2d(b, "load", "--input", b.url("nothing-here/"), "--table", url, check=False)
    assert p.returncode == 2 and "no export files" in p.stderr


def test_sync_both_modes_optimize_vacuum_publish_in_a_bucket(mongo, mongo_db, gcs_bucket):
    n_docs = 3000
    seed(mongo_db.c, n_docs)
    b = gcs_bucket
    mirror, log = b.url("mirror"), b.url("changes")
    settle()
    proc = M2DProcess([m2d_bin(), "sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c",
                             "--table", mirror, "--mode", "both", "--changelog-table", log, "--max-latency", "300",
                             "--max-batch-docs", "200", "--workers", "2", "--compact-every", "4",
                             "--change-data-feed", "--stop-when-idle", "6"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=m2d_env(b.env))
    time.sleep(4)
    done = workload(mongo_db.c, 2000, n_docs, seed=7)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    assert f"{len(done)} change-log rows" in err, err
    docs = list(mongo_db.c.find())
    protocol = [a["protocol"] for _, a in log_actions(b, "mirror") if "protocol" in a][-1]
    assert "deletionVectors" in protocol["readerFeatures"]
    assert any("add" in a and a["add"].get("deletionVector") for _, a in log_actions(b, "mirror"))
    dv_files = [k for k in b.keys("mirror/") if re.search(r"deletion_vector_[0-9a-f-]+\.bin$", k)]
    assert dv_files
    # the mirror equals the collection (read by cat: delta-rs 1.1.4 cannot read deletion vectors)
    check_table(cat_rows(b, mirror), docs)
    # the change log, read by delta-rs: every change once, in order
    rows = sorted(delta_rs(b, log).to_pyarrow_table(columns=["_op", "_txn_seq", "_id"]).to_pylist(),
                  key=lambda r: r["_txn_seq"])
    assert [r["_txn_seq"] for r in rows] == list(range(1, len(done) + 1))
    assert [(r["_op"], r["_id"]) for r in rows if r["_id"] is not None] == \
        [(op, i) for (op, i), r in zip(done, rows) if r["_id"] is not None]
    # change data files are in the bucket, as the log names them
    cdc = [a["cdc"]["path"] for _, a in log_actions(b, "mirror") if "cdc" in a]
    assert cdc and all(f"mirror/{p}" in set(b.keys("mirror/")) for p in cdc[:20])
    # optimize folds the deletion vectors; vacuum deletes what nothing references; rows unchanged
    m2d(b, "optimize", "--table", mirror)
    m2d(b, "optimize", "--table", log)
    def files():
        return {k for k in b.keys("mirror/") if not k.startswith("mirror/_delta_log/")}
    before = files()
    p = m2d(b, "vacuum", "--table", mirror, "--retain-hours", "0", "--force")
    m = re.search(r"(\d+) file\(s\) deleted", p.stderr)
    assert m, p.stderr
    after = files()
    assert after < before and len(before - after) == int(m.group(1))
    assert not [k for k in after if re.search(r"deletion_vector_.*\.bin$", k)], "a folded deletion vector stayed"
    check_table(cat_rows(b, mirror), docs)
    assert len(delta_rs(b, log).to_pyarrow_table(columns=["_txn_seq"])) == len(done)
    # publish the mirror back into another collection: equal to the source
    m2d(b, "publish", "--table", mirror, "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "back")
    back = {d["_id"]: d for d in mongo_db.back.find()}
    assert back == {d["_id"]: d for d in docs}


def test_a_large_file_goes_up_in_a_resumable_upload_and_reads_back(gcs_bucket, proxy, tmp_path):
    docs = big_export(tmp_path / "big.json")
    url = gcs_bucket.url("big")
    run_m2d("load", "--input", tmp_path / "big.json", "--table", url, "--compression", "none",
            "--target-file-size", "1GB", env=via(gcs_bucket, proxy), timeout=600, check=True)
    data = [k for k in gcs_bucket.keys("big/") if k.endswith(".parquet")]
    sizes = [int(gcs_bucket.metadata(k)["size"]) for k in data]
    assert len(sizes) == 1 and sizes[0] > 16 << 20, sizes
    # one session, three chunks of at most 8 MiB (the last one with the total)
    assert proxy.count("POST", r"uploadType=resumable") == 1
    assert proxy.count("PUT", r"upload_id=") == 3
    check_table(table_rows(delta_rs(gcs_bucket, url).to_pyarrow_table()), docs)
    assert len(cat_rows(gcs_bucket, url)) == len(docs)


def test_four_writers_on_one_table_commit_every_version_once(gcs_bucket, tmp_path):
    for p in range(4):
        d = tmp_path / f"p{p}"
        d.mkdir()
        for i in range(50):
            (d / f"f{i:02d}.json").write_text(json.dumps({"_id": f"{p}-{i}", "p": p, "i": i}) + "\n")
    url = gcs_bucket.url("shared")
    procs = [M2DProcess([m2d_bin(), "load", "--input", str(tmp_path / f"p{p}"), "--table", url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=m2d_env(gcs_bucket.env)) for p in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
        assert "50 file(s) loaded" in err, err
    versions = [int(k.rsplit("/", 1)[1][:20]) for k in log_keys(gcs_bucket, "shared")]
    assert versions == list(range(200)), "versions are not contiguous"
    apps, adds = [], []
    for _, a in log_actions(gcs_bucket, "shared"):
        if "txn" in a:
            apps.append(a["txn"]["appId"])
        if "add" in a:
            adds.append(a["add"]["path"])
    assert len(apps) == len(set(apps)) == 200, "a file was committed twice"
    assert len(adds) == len(set(adds)) == 200
    ids = sorted(delta_rs(gcs_bucket, url).to_pyarrow_table(columns=["_id"]).column("_id").to_pylist())
    assert ids == sorted(f"{p}-{i}" for p in range(4) for i in range(50))


# --- conditional writes --------------------------------------------------------------------------

def test_the_test_server_refuses_a_second_create(gcs_bucket, gcs_server):
    """What the commits rely on, checked on the server itself: an upload with ifGenerationMatch=0
    of an object that exists is answered 412 and changes nothing."""
    q = urllib.parse.urlencode({"uploadType": "media", "name": "once", "ifGenerationMatch": "0"})
    path = f"/upload/storage/v1/b/{gcs_bucket.name}/o?{q}"
    assert gcs_server.request("POST", path, b"first", {"Content-Type": "application/octet-stream"})[0] == 200
    assert gcs_server.request("POST", path, b"second", {"Content-Type": "application/octet-stream"})[0] == 412
    assert gcs_bucket.get("once") == b"first"


def test_the_test_server_keeps_objects_in_a_data_dir_across_restarts(tmp_path):
    server = GcsTestServer(data=tmp_path / "gcs").start()
    try:
        GcsBucket.create(server, "kept").put("a/b", b"v")
    finally:
        assert server.stop() == 0
    server = GcsTestServer(data=tmp_path / "gcs").start()
    try:
        assert GcsBucket(server, "kept").keys() == ["a/b"]
        assert GcsBucket(server, "kept").get("a/b") == b"v"
    finally:
        assert server.stop() == 0


def test_bucket_fixture(gcs_server, gcs_bucket):
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", gcs_bucket.name)
    assert gcs_bucket.name.startswith("t-test-bucket-fixture-")
    assert gcs_bucket.url("lake/t") == f"gs://{gcs_bucket.name}/lake/t"
    assert gcs_bucket.env == {"STORAGE_EMULATOR_HOST": gcs_server.endpoint, "GOOGLE_APPLICATION_CREDENTIALS": "",
                              "GOOGLE_OAUTH_ACCESS_TOKEN": "", "CLOUDSDK_AUTH_ACCESS_TOKEN": ""}
    for k in ["b/2", "a/1", "b/1"]:
        gcs_bucket.put(k, b"")
    assert gcs_bucket.keys() == ["a/1", "b/1", "b/2"]
    assert gcs_bucket.keys("b/") == ["b/1", "b/2"]
    # STORAGE_EMULATOR_HOST may be host:port, as Google's libraries take it (http is implied)
    p = run_m2d("inspect", "--table", gcs_bucket.url("b"),
                env=dict(gcs_bucket.env, STORAGE_EMULATOR_HOST=f"127.0.0.1:{gcs_server.port}"))
    assert p.returncode == 2 and "is not a Delta table" in p.stderr, p.stderr


def test_bucket_delete_takes_every_object(gcs_server):
    bucket = GcsBucket.create(gcs_server, s3_bucket_name("delete"))
    for i in range(1005):  # more than one page of objects.list
        bucket.put(f"k/{i:04d}", b"")
    assert len(bucket.keys()) == 1005
    bucket.delete()
    assert gcs_server.request("GET", f"/storage/v1/b/{bucket.name}")[0] == 404


def test_a_server_that_ignores_conditional_writes_is_refused(gcs_bucket, proxy, tmp_path):
    # the proxy drops ifGenerationMatch from every upload: a server that ignores the condition
    proxy.add(Rule("drop-param:ifGenerationMatch", method="POST"))
    (tmp_path / "a.json").write_text('{"_id": 1}\n')
    url = gcs_bucket.url("t")
    p = run_m2d("load", "--input", tmp_path / "a.json", "--table", url, env=via(gcs_bucket, proxy))
    assert p.returncode == 2, p.stderr
    assert "ignores conditional writes" in p.stderr and "--unsafe-single-writer" in p.stderr
    assert not [k for k in gcs_bucket.keys() if "_delta_log/" in k and k.endswith(".json")]
    p = run_m2d("load", "--input", tmp_path / "a.json", "--table", url, "--unsafe-single-writer",
                env=via(gcs_bucket, proxy), check=True)
    assert "ignores conditional writes" in p.stderr  # still a warning
    assert "t/_delta_log/00000000000000000000.json" in gcs_bucket.keys()


# --- faults ---------------------------------------------------------------------------------------

def test_busy_server_and_resets_are_retried(mongo, mongo_db, gcs_bucket, proxy):
    seed(mongo_db.c, 2000)
    proxy.add(Rule("503", every=3))                      # every third request answered 503
    proxy.add(Rule("reset", method="POST", every=4))     # every fourth upload's connection dropped
    url = gcs_bucket.url("busy")
    p = run_m2d("snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", url,
                "--workers", "2", env=via(gcs_bucket, proxy), timeout=600, check=True)
    assert "2000 documents" in p.stderr
    check_table(table_rows(delta_rs(gcs_bucket, url).to_pyarrow_table()), list(mongo_db.c.find()))
    assert sum(r.fired for r in proxy.rules) > 5


def test_a_lost_commit_answer_is_resolved_by_reading_the_commit_back(gcs_bucket, proxy, tmp_path):
    for i in range(3):
        (tmp_path / f"f{i}.json").write_text(json.dumps({"_id": i}) + "\n")
    # the commit reaches the server, its answer does not: the retry meets 412, reads the object
    # back, finds its own bytes, and goes on; nothing is committed twice
    rule = proxy.add(Rule("lose-answer", method="POST", path=r"_delta_log%2F\d{20}\.json", times=2))
    url = gcs_bucket.url("lost")
    p = run_m2d("load", "--input", tmp_path, "--table", url, "--verbose", env=via(gcs_bucket, proxy), check=True)
    assert rule.fired == 2
    assert "3 file(s) loaded" in p.stderr
    # (libcurl sends a request again at once when a reused connection dies: the two lost answers
    # may be one commit's)
    assert "was written by the attempt whose answer was lost" in p.stderr, p.stderr
    versions = [int(k.rsplit("/", 1)[1][:20]) for k in log_keys(gcs_bucket, "lost")]
    assert versions == [0, 1, 2]
    assert sorted(delta_rs(gcs_bucket, url).to_pyarrow_table().column("_id").to_pylist()) == [0, 1, 2]


def test_chunks_of_a_resumable_upload_are_sent_again_after_resets_and_503s(gcs_bucket, proxy, tmp_path):
    docs = big_export(tmp_path / "big.json")
    resets = proxy.add(Rule("reset-mid-body", method="PUT", path=r"upload_id=", times=2))
    busy = proxy.add(Rule("503", method="PUT", path=r"upload_id=", first=2, times=1))
    start = proxy.add(Rule("reset", method="POST", path=r"uploadType=resumable", times=1))
    url = gcs_bucket.url("parts")
    run_m2d("load", "--input", tmp_path / "big.json", "--table", url, "--compression", "none",
            "--target-file-size", "1GB", env=via(gcs_bucket, proxy), timeout=600, check=True)
    assert (resets.fired, busy.fired, start.fired) == (2, 1, 1)
    check_table(table_rows(delta_rs(gcs_bucket, url).to_pyarrow_table()), docs)


def test_a_chunk_that_keeps_failing_cancels_its_session(gcs_bucket, proxy, tmp_path):
    big_export(tmp_path / "big.json")
    rule = proxy.add(Rule("503", method="PUT", path=r"upload_id=", first=1))  # the second chunk, always
    url = gcs_bucket.url("cancelled")
    p = run_m2d("load", "--input", tmp_path / "big.json", "--table", url, "--compression", "none",
                "--target-file-size", "1GB", env=via(gcs_bucket, proxy), timeout=600)
    assert p.returncode == 1 and "503 (after 8 attempts)" in p.stderr, p.stderr
    assert rule.fired == 8
    assert proxy.count("DELETE", r"upload_id=") == 1, "the upload session was not cancelled"
    assert log_keys(gcs_bucket, "cancelled") == []
    assert not [k for k in gcs_bucket.keys("cancelled/") if k.endswith(".parquet")]


def test_a_chunk_stored_twice_is_caught_before_the_file_is_committed(gcs_bucket, proxy, tmp_path):
    """A chunk whose answer is lost is sent again with the same Content-Range. Google Cloud Storage
    keeps such a chunk once; fake-gcs-server ignores where a chunk starts and appends it again.
    The object's size in the final answer tells: the upload fails, no commit names the file, and a
    run without the fault loads it."""
    big_export(tmp_path / "big.json")
    rule = proxy.add(Rule("lose-answer", method="PUT", path=r"upload_id=", times=1))
    url = gcs_bucket.url("twice")
    p = run_m2d("load", "--input", tmp_path / "big.json", "--table", url, "--compression", "none",
                "--target-file-size", "1GB", env=via(gcs_bucket, proxy), timeout=600)
    assert rule.fired == 1
    assert p.returncode == 1 and "GCS stored" in p.stderr, p.stderr
    assert log_keys(gcs_bucket, "twice") == []
    assert not [k for k in gcs_bucket.keys("twice/") if k.endswith(".parquet")], "the corrupt object stayed"
    m2d(gcs_bucket, "load", "--input", tmp_path / "big.json", "--table", url, "--compression", "none",
        "--target-file-size", "1GB", timeout=600)
    assert delta_rs(gcs_bucket, url).to_pyarrow_table(columns=["_id"]).num_rows == 6000


# --- credentials and secrets ------------------------------------------------------------------------

TOKEN = "ya29.m2d-recognisable-token-3f9c1e7a5b"


def test_no_secret_in_any_output(mongo, mongo_db, gcs_bucket, proxy, tmp_path):
    seed(mongo_db.c, 200)
    env = dict(via(gcs_bucket, proxy), GOOGLE_OAUTH_ACCESS_TOKEN=TOKEN)
    proxy.add(Rule("503", every=5))
    (tmp_path / "in.json").write_text('{"_id": "x", "v": 1}\n')
    gcs_bucket.put("in/a.json", b'{"_id": "y", "v": 2}\n')
    url = gcs_bucket.url("secret")
    outs = []
    for log_format in ("text", "json"):
        for args in (["snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", url],
                     ["load", "--input", tmp_path, "--table", gcs_bucket.url("secret2")],
                     ["load", "--input", gcs_bucket.url("in/"), "--table", gcs_bucket.url("secret4")],
                     ["sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table",
                      gcs_bucket.url("secret3"), "--stop-when-idle", "2"],
                     ["inspect", "--table", url], ["cat", "--table", url, "--limit", "3"],
                     ["optimize", "--table", url], ["vacuum", "--table", url, "--dry-run"],
                     ["publish", "--table", url, "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "p"],
                     ["inspect", "--table", gcs_bucket.url("no-such-table")],
                     ["inspect", "--table", f"gs://no-such-bucket-{os.getpid()}/t"]):
            p = run_m2d(*args, "--verbose", "--log-format", log_format, env=env)
            outs.append(p.stdout + p.stderr)
    text = "\n".join(outs)
    assert "object store:" in text  # the verbose traces were on
    assert proxy.authorizations and set(proxy.authorizations) == {f"Bearer {TOKEN}"}  # the token was sent
    for secret in (TOKEN, "m2d-recognisable-token", "Bearer ya29"):
        assert secret not in text, secret
    for k in gcs_bucket.keys(""):
        assert TOKEN.encode() not in gcs_bucket.get(k), k


def test_credentials_are_required_outside_an_emulator():
    env = dict({v: "" for v in GCS_CREDENTIAL_VARS}, STORAGE_EMULATOR_HOST="")
    p = run_m2d("inspect", "--table", "gs://some-bucket/t", env=env)
    assert p.returncode == 2, p.stderr
    assert "no Google Cloud credentials" in p.stderr and "GOOGLE_APPLICATION_CREDENTIALS" in p.stderr
    # plain http only to loopback (refused before any connection is made)
    p = run_m2d("inspect", "--table", "gs://b/t",
                env=dict(env, STORAGE_EMULATOR_HOST="http://gcs-emulator.invalid:4443"))
    assert p.returncode == 2 and "loopback" in p.stderr, p.stderr


class TokenEndpoint:
    """A token_uri for service account keys: checks the JWT (RS256 signature by the key it was told
    of, issuer, audience, scope, lifetime) and answers an access token, or invalid_grant."""

    def __init__(self, public_key, email, expires_in=3600):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        self.public_key, self.email, self.expires_in = public_key, email, expires_in
        self.grants = []   # (ok, reason) per request
        self.issued = []
        endpoint = self

        def b64d(s):
            return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = urllib.parse.parse_qs(body)
                reason = None
                try:
                    assert self.headers.get("Content-Type") == "application/x-www-form-urlencoded"
                    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"], "grant_type"
                    h, c, s = form["assertion"][0].split(".")
                    header, claims = json.loads(b64d(h)), json.loads(b64d(c))
                    assert header["alg"] == "RS256" and header["typ"] == "JWT", header
                    assert header["kid"] == "key-1", header
                    assert claims["iss"] == endpoint.email, claims
                    assert claims["aud"] == endpoint.url, claims
                    assert "devstorage" in claims["scope"], claims
                    assert claims["exp"] - claims["iat"] == 3600 and abs(claims["iat"] - time.time()) < 300, claims
                    try:
                        endpoint.public_key.verify(b64d(s), f"{h}.{c}".encode(), padding.PKCS1v15(), hashes.SHA256())
                    except Exception:
                        reason = "Invalid JWT Signature."
                except Exception as e:  # a malformed request is a failed test, not a refusal
                    reason = f"malformed: {e!r}"
                endpoint.grants.append((reason is None, reason))
                if reason is None:
                    token = f"ya29.sa-issued-{len(endpoint.issued)}-c0ffee"
                    endpoint.issued.append(token)
                    answer, status = {"access_token": token, "expires_in": endpoint.expires_in,
                                      "token_type": "Bearer"}, 200
                else:
                    answer, status = {"error": "invalid_grant", "error_description": reason}, 400
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def service_account_key(tmp_path, name, token_uri, email):
    """A generated RSA key as a service account key file; (path, private key, PEM text)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path / name
    path.write_text(json.dumps({"type": "service_account", "project_id": "m2d-test", "private_key_id": "key-1",
                                "private_key": pem, "client_email": email, "client_id": "1",
                                "token_uri": token_uri}))
    return path, key, pem


def test_a_service_account_key_signs_a_jwt_for_an_access_token(gcs_bucket, proxy, tmp_path):
    pytest.importorskip("cryptography")
    email = "m2d-writer@m2d-test.iam.gserviceaccount.com"
    endpoint = TokenEndpoint(None, email)
    try:
        sa, key, pem = service_account_key(tmp_path, "sa.json", endpoint.url, email)
        endpoint.public_key = key.public_key()
        for i in range(3):
            (tmp_path / "in" / f"f{i}.json").parent.mkdir(exist_ok=True)
            (tmp_path / "in" / f"f{i}.json").write_text(json.dumps({"_id": i}) + "\n")
        env = dict(via(gcs_bucket, proxy), GOOGLE_APPLICATION_CREDENTIALS=str(sa))
        url = gcs_bucket.url("sa")
        outs = []
        p = run_m2d("load", "--input", tmp_path / "in", "--table", url, "--verbose", env=env, check=True)
        outs.append(p.stderr)
        # one token for the whole process (its stores share it), every request carries it
        assert endpoint.grants == [(True, None)], endpoint.grants
        assert proxy.authorizations and set(proxy.authorizations) == {f"Bearer {endpoint.issued[0]}"}
        p = run_m2d("cat", "--table", url, "--log-format", "json", "--verbose", env=env, check=True)
        outs.append(p.stdout + p.stderr)
        assert len(p.stdout.splitlines()) == 3 and len(endpoint.grants) == 2
        assert sorted(delta_rs(gcs_bucket, url).to_pyarrow_table().column("_id").to_pylist()) == [0, 1, 2]

        # a token that expires at once is fetched again for later requests (a watch of a few rounds)
        endpoint.expires_in = 1
        before = len(endpoint.grants)
        gcs_bucket.put("drops/a.json", b'{"_id": "a"}\n')
        p = run_m2d("load", "--input", gcs_bucket.url("drops/"), "--table", gcs_bucket.url("sa2"), "--watch",
                    "--interval", "700ms", "--max-rounds", "4", "--verbose", env=env, check=True)
        outs.append(p.stderr)
        assert len(endpoint.grants) - before >= 2, endpoint.grants

        # a key the token endpoint does not know: refused, and the message says what to check
        wrong, _, wrong_pem = service_account_key(tmp_path, "wrong.json", endpoint.url, email)
        p = run_m2d("inspect", "--table", url, "--verbose", env=dict(env, GOOGLE_APPLICATION_CREDENTIALS=str(wrong)))
        outs.append(p.stderr)
        assert p.returncode == 1, p.stderr
        assert "invalid_grant" in p.stderr and "GOOGLE_APPLICATION_CREDENTIALS" in p.stderr, p.stderr
        assert endpoint.grants[-1] == (False, "Invalid JWT Signature.")
        assert all(ok for ok, _ in endpoint.grants[:-1])
    finally:
        endpoint.close()
    text = "\n".join(outs)
    secrets = endpoint.issued + ["ya29.sa-issued", "eyJ"]
    for k in (pem, wrong_pem):
        secrets += [line for line in k.splitlines() if "PRIVATE KEY" not in line]
    for secret in secrets:
        assert secret not in text, secret


def test_a_key_file_that_is_no_service_account_key_is_refused(tmp_path):
    env = {v: "" for v in GCS_CREDENTIAL_VARS}
    user = tmp_path / "adc.json"
    user.write_text(json.dumps({"type": "authorized_user", "client_id": "x", "client_secret": "very-secret-value",
                                "refresh_token": "1//refresh-secret"}))
    p = run_m2d("inspect", "--table", "gs://b/t", env=dict(env, GOOGLE_APPLICATION_CREDENTIALS=str(user)))
    assert p.returncode == 2 and "authorized_user" in p.stderr and "GOOGLE_OAUTH_ACCESS_TOKEN" in p.stderr
    assert "very-secret-value" not in p.stderr and "refresh-secret" not in p.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEsecret')
    p = run_m2d("inspect", "--table", "gs://b/t", env=dict(env, GOOGLE_APPLICATION_CREDENTIALS=str(broken)))
    assert p.returncode == 2 and "not a readable JSON key file" in p.stderr, p.stderr
    assert "MIIEsecret" not in p.stderr
