"""Tables and inputs in an S3 bucket (MinIO, which checks every SigV4 signature and honours
If-None-Match), written by every command and read back from the same bucket by independent
readers: delta-rs (storage options pointing at the server) and Spark through Hadoop's S3A."""
import gc
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest
from deltalake import DeltaTable

from bson_mapping import check_table
from conftest import M2DProcess, m2d_env, S3TestServer, m2d_bin, run_m2d
from parquet_jsonform import table_rows
from s3_fault_proxy import FaultProxy, Rule
from spark_fixture import spark, spark_s3_conf  # noqa: F401  (fixture)
from test_sync import settle, workload


def m2d(bucket, *args, timeout=300, check=True, env=None):
    return run_m2d(*args, timeout=timeout, check=check, env=dict(bucket.env, **(env or {})))


class delta_rs:
    """delta-rs reading a table in the bucket: delta_rs(bucket, url).to_pyarrow_table(...). The
    DeltaTable is dropped (and collected) as soon as it has been read: deltalake 1.1.4 can abort
    the interpreter at exit while an S3 table is still alive (delta-io/delta-rs#2184)."""

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
        body = bucket.client.get_object(Bucket=bucket.name, Key=k)["Body"].read().decode()
        for line in body.splitlines():
            yield k, json.loads(line)


def spark_rows(spark, bucket, prefix):
    spark_s3_conf(spark, bucket.env['AWS_ENDPOINT_URL'], bucket.env["AWS_ACCESS_KEY_ID"], bucket.env["AWS_SECRET_ACCESS_KEY"])
    return table_rows(spark.read.format("delta").load(f"s3a://{bucket.name}/{prefix}").toArrow())


def open_uploads(bucket):
    return bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])


def seed(coll, n, big=0):
    coll.insert_many([{"_id": i, "n": i, "name": f"doc {i}", "tags": [f"t{i % 5}"], "nested": {"a": i % 7},
                       **({"blob": ("x%07d" % i) * (big // 8)} if big else {})} for i in range(n)])


def test_snapshot_into_a_bucket_reads_in_delta_rs_and_spark(mongo, mongo_db, s3_bucket, spark):
    seed(mongo_db.c, 3000)
    url = s3_bucket.url("lake/c")
    p = m2d(s3_bucket, "snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", url,
            "--workers", "2")
    assert "3000 documents" in p.stderr
    docs = list(mongo_db.c.find())
    check_table(table_rows(delta_rs(s3_bucket, url).to_pyarrow_table()), docs)
    check_table(spark_rows(spark, s3_bucket, "lake/c"), docs)
    # inspect and cat read the bucket too
    info = json.loads(m2d(s3_bucket, "inspect", "--table", url, "--json").stdout)
    assert info["numRecords"] == 3000
    assert len(m2d(s3_bucket, "cat", "--table", url).stdout.splitlines()) == 3000
    # run again: done already, nothing read, nothing written
    before = log_keys(s3_bucket, "lake/c")
    m2d(s3_bucket, "snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", url)
    assert log_keys(s3_bucket, "lake/c") == before
    assert open_uploads(s3_bucket) == []


def big_export(path, n=6000):
    """About 25 MB of JSON lines of random hex: one data file of more than two 8 MiB parts."""
    docs = [{"_id": i, "blob": os.urandom(2048).hex()} for i in range(n)]
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return docs


def test_large_files_go_up_in_parts_and_read_back(s3_bucket, tmp_path):
    docs = big_export(tmp_path / "big.json")
    url = s3_bucket.url("big")
    m2d(s3_bucket, "load", "--input", tmp_path / "big.json", "--table", url, "--compression", "none",
        "--target-file-size", "1GB")
    data = [k for k in s3_bucket.keys("big/") if k.endswith(".parquet")]
    sizes = [s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=k)["ContentLength"] for k in data]
    assert len(sizes) == 1 and sizes[0] > 16 << 20, sizes
    # a multipart upload's ETag ends with -<parts>
    etag = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=data[0])["ETag"]
    assert re.search(r"-[34]\"?$", etag), etag
    assert open_uploads(s3_bucket) == []
    check_table(table_rows(delta_rs(s3_bucket, url).to_pyarrow_table()), docs)
    # our own reader: a column chunk of 25 MB in ranged GETs
    rows = [json.loads(line) for line in m2d(s3_bucket, "cat", "--table", url).stdout.splitlines()]
    assert sorted((r["_id"], r["blob"]) for r in rows) == sorted((d["_id"], d["blob"]) for d in docs)


def test_load_takes_every_export_file_under_a_prefix_once(s3_bucket, tmp_path):
    c = s3_bucket.client
    c.put_object(Bucket=s3_bucket.name, Key="exports/2026/12/a.json", Body=b'{"_id": 1, "x": 1}\n{"_id": 2, "x": 2}\n')
    c.put_object(Bucket=s3_bucket.name, Key="exports/b.jsonl", Body=b'{"_id": 3, "x": 3}\n')
    c.put_object(Bucket=s3_bucket.name, Key="exports/notes.txt", Body=b"not an export")
    import bson
    c.put_object(Bucket=s3_bucket.name, Key="exports/dump/c.bson", Body=bson.encode({"_id": 4, "x": 4}) + bson.encode({"_id": 5, "x": 5}))
    url = s3_bucket.url("tables/t")
    p = m2d(s3_bucket, "load", "--input", s3_bucket.url("exports/"), "--table", url)
    assert "3 file(s) loaded, 0 already loaded before; 5 documents" in p.stderr, p.stderr
    rows = sorted(delta_rs(s3_bucket, url).to_pyarrow_table(columns=["_id", "x"]).to_pylist(), key=lambda r: r["_id"])
    assert rows == [{"_id": i, "x": i} for i in range(1, 6)]
    apps = [a["txn"]["appId"] for _, a in log_actions(s3_bucket, "tables/t") if "txn" in a]
    assert sorted(apps) == sorted(f"mongo2delta-load:s3://{s3_bucket.name}/exports/{k}"
                                  for k in ("2026/12/a.json", "b.jsonl", "dump/c.bson"))
    # a new file appears; the rest are not taken twice
    c.put_object(Bucket=s3_bucket.name, Key="exports/d.json", Body=b'{"_id": 6, "x": 6}\n')
    p = m2d(s3_bucket, "load", "--input", s3_bucket.url("exports"), "--table", url)
    assert "1 file(s) loaded, 3 already loaded before; 1 documents" in p.stderr, p.stderr
    # one object by its URL
    c.put_object(Bucket=s3_bucket.name, Key="other/e.json", Body=b'{"_id": 7, "x": 7}\n')
    m2d(s3_bucket, "load", "--input", s3_bucket.url("other/e.json"), "--table", url)
    assert delta_rs(s3_bucket, url).to_pyarrow_table().num_rows == 7
    # a prefix without export files is a usage error that says so
    p = m2d(s3_bucket, "load", "--input", s3_bucket.url("nothing-here/"), "--table", url, check=False)
    assert p.returncode == 2 and "no export files" in p.stderr


def test_sync_both_modes_optimize_vacuum_publish_in_a_bucket(mongo, mongo_db, s3_bucket, spark):
    n_docs = 3000
    seed(mongo_db.c, n_docs)
    mirror, log = s3_bucket.url("mirror"), s3_bucket.url("changes")
    settle()
    proc = M2DProcess([m2d_bin(), "sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c",
                             "--table", mirror, "--mode", "both", "--changelog-table", log, "--max-latency", "300",
                             "--max-batch-docs", "200", "--workers", "2", "--compact-every", "4",
                             "--change-data-feed", "--stop-when-idle", "6"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=m2d_env(s3_bucket.env))
    time.sleep(4)
    done = workload(mongo_db.c, 2000, n_docs, seed=7)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert f"{len(done)} change-log rows" in err, err
    assert "key index: saved to _mongo2delta/keyindex.bin" in err, err
    cache = "mirror/_mongo2delta/keyindex.bin"
    assert cache in s3_bucket.keys("mirror/")
    docs = list(mongo_db.c.find())
    protocol = [a["protocol"] for _, a in log_actions(s3_bucket, "mirror") if "protocol" in a][-1]
    assert "deletionVectors" in protocol["readerFeatures"]
    assert any("add" in a and a["add"].get("deletionVector") for _, a in log_actions(s3_bucket, "mirror"))
    check_table(spark_rows(spark, s3_bucket, "mirror"), docs)
    rows = sorted(delta_rs(s3_bucket, log).to_pyarrow_table(columns=["_op", "_txn_seq", "_id"]).to_pylist(),
                  key=lambda r: r["_txn_seq"])
    assert [r["_txn_seq"] for r in rows] == list(range(1, len(done) + 1))
    assert [(r["_op"], r["_id"]) for r in rows if r["_id"] is not None] == \
        [(op, i) for (op, i), r in zip(done, rows) if r["_id"] is not None]
    # change data is in the bucket and Spark reads it
    spark_s3_conf(spark, s3_bucket.env['AWS_ENDPOINT_URL'], s3_bucket.env["AWS_ACCESS_KEY_ID"], s3_bucket.env["AWS_SECRET_ACCESS_KEY"])
    first_cdc = min(int(k.rsplit("/", 1)[1][:20]) for k, a in log_actions(s3_bucket, "mirror") if "cdc" in a)
    cdf = spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", first_cdc) \
        .load(f"s3a://{s3_bucket.name}/mirror")
    assert cdf.count() > 0
    # optimize folds the deletion vectors; vacuum deletes what nothing references; rows unchanged
    m2d(s3_bucket, "optimize", "--table", mirror)
    m2d(s3_bucket, "optimize", "--table", log)
    p = m2d(s3_bucket, "vacuum", "--table", mirror, "--retain-hours", "0", "--force")
    assert "file(s) deleted" in p.stderr
    assert cache in s3_bucket.keys("mirror/")  # not a table file: vacuum leaves it
    check_table(spark_rows(spark, s3_bucket, "mirror"), docs)
    # publish the mirror back into another collection: equal to the source
    m2d(s3_bucket, "publish", "--table", mirror, "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "back")
    back = {d["_id"]: d for d in mongo_db.back.find()}
    assert back == {d["_id"]: d for d in docs}
    assert open_uploads(s3_bucket) == []


def test_four_writers_on_one_table_commit_every_version_once(s3_bucket, tmp_path):
    for p in range(4):
        d = tmp_path / f"p{p}"
        d.mkdir()
        for i in range(50):
            (d / f"f{i:02d}.json").write_text(json.dumps({"_id": f"{p}-{i}", "p": p, "i": i}) + "\n")
    url = s3_bucket.url("shared")
    procs = [M2DProcess([m2d_bin(), "load", "--input", str(tmp_path / f"p{p}"), "--table", url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=m2d_env(s3_bucket.env)) for p in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert "50 file(s) loaded" in err, err
    versions = [int(k.rsplit("/", 1)[1][:20]) for k in log_keys(s3_bucket, "shared")]
    assert versions == list(range(200)), "versions are not contiguous"
    apps, adds = [], []
    for _, a in log_actions(s3_bucket, "shared"):
        if "txn" in a:
            apps.append(a["txn"]["appId"])
        if "add" in a:
            adds.append(a["add"]["path"])
    assert len(apps) == len(set(apps)) == 200, "a file was committed twice"
    assert len(adds) == len(set(adds)) == 200
    ids = sorted(delta_rs(s3_bucket, url).to_pyarrow_table(columns=["_id"]).column("_id").to_pylist())
    assert ids == sorted(f"{p}-{i}" for p in range(4) for i in range(50))


def test_a_server_that_ignores_conditional_writes_is_refused(tmp_path):
    server = S3TestServer(ignore_conditions=True).start()
    try:
        import boto3
        env = {"AWS_ACCESS_KEY_ID": "m2d-test", "AWS_SECRET_ACCESS_KEY": "m2d-test-secret",
               "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": server.endpoint}
        client = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id="m2d-test",
                              aws_secret_access_key="m2d-test-secret", region_name="us-east-1")
        client.create_bucket(Bucket="unsafe")
        (tmp_path / "a.json").write_text('{"_id": 1}\n')
        p = run_m2d("load", "--input", tmp_path / "a.json", "--table", "s3://unsafe/t", env=env)
        assert p.returncode == 2, p.stderr
        assert "ignores conditional writes" in p.stderr and "--unsafe-single-writer" in p.stderr
        keys = [o["Key"] for o in client.list_objects_v2(Bucket="unsafe").get("Contents", [])]
        assert not [k for k in keys if "_delta_log/" in k and k.endswith(".json")], keys
        p = run_m2d("load", "--input", tmp_path / "a.json", "--table", "s3://unsafe/t", "--unsafe-single-writer",
                    env=env, check=True)
        assert "ignores conditional writes" in p.stderr  # still a warning
        keys = [o["Key"] for o in client.list_objects_v2(Bucket="unsafe").get("Contents", [])]
        assert "t/_delta_log/00000000000000000000.json" in keys
    finally:
        server.stop()


# --- faults ------------------------------------------------------------------------------------

@pytest.fixture
def proxy(s3_server):
    p = FaultProxy(int(s3_server.endpoint.rsplit(":", 1)[1]))
    yield p
    p.close()


def via(bucket, proxy):
    return dict(bucket.env, AWS_ENDPOINT_URL=proxy.endpoint)


def test_busy_server_and_resets_are_retried(mongo, mongo_db, s3_bucket, proxy):
    seed(mongo_db.c, 2000)
    proxy.add(Rule("503", every=3))                     # every third request answered SlowDown
    proxy.add(Rule("reset", method="PUT", every=4))     # every fourth PUT's connection dropped
    url = s3_bucket.url("busy")
    p = run_m2d("snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", url,
                "--workers", "2", env=via(s3_bucket, proxy), timeout=600, check=True)
    assert "2000 documents" in p.stderr
    check_table(table_rows(delta_rs(s3_bucket, url).to_pyarrow_table()), list(mongo_db.c.find()))
    assert sum(r.fired for r in proxy.rules) > 5


def test_a_lost_commit_answer_is_resolved_by_reading_the_commit_back(s3_bucket, proxy, tmp_path):
    for i in range(3):
        (tmp_path / f"f{i}.json").write_text(json.dumps({"_id": i}) + "\n")
    # the commit reaches the server, its answer does not: the retry meets 412, reads the
    # object back, finds its own bytes, and goes on; nothing is committed twice
    rule = proxy.add(Rule("lose-answer", method="PUT", path=r"/_delta_log/\d{20}\.json", times=2))
    url = s3_bucket.url("lost")
    p = run_m2d("load", "--input", tmp_path, "--table", url, "--verbose", env=via(s3_bucket, proxy), check=True)
    assert rule.fired == 2
    assert "3 file(s) loaded" in p.stderr
    versions = [int(k.rsplit("/", 1)[1][:20]) for k in log_keys(s3_bucket, "lost")]
    assert versions == [0, 1, 2]
    assert sorted(delta_rs(s3_bucket, url).to_pyarrow_table().column("_id").to_pylist()) == [0, 1, 2]


def test_a_reset_in_the_middle_of_a_part_upload_is_retried(s3_bucket, proxy, tmp_path):
    docs = big_export(tmp_path / "big.json")
    rule = proxy.add(Rule("reset-mid-body", method="PUT", path=r"partNumber=", times=2))
    url = s3_bucket.url("parts")
    run_m2d("load", "--input", tmp_path / "big.json", "--table", url, "--compression", "none",
            "--target-file-size", "1GB", env=via(s3_bucket, proxy), timeout=600, check=True)
    assert rule.fired == 2
    assert open_uploads(s3_bucket) == []
    check_table(table_rows(delta_rs(s3_bucket, url).to_pyarrow_table()), docs)


def kill_during_uploads(cmd, env, bucket, proxy, trials, seed_, check=None):
    """Runs cmd, SIGKILLs it at a random moment while part uploads are under way, `trials` times;
    after each kill, check() reads the table as it is."""
    import random
    rnd = random.Random(seed_)
    for _ in range(trials):
        proc = M2DProcess(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=m2d_env(env))
        base = proxy.count("PUT", r"partNumber=")
        deadline = time.time() + 60
        want = base + rnd.randint(1, 3)
        while proxy.count("PUT", r"partNumber=") < want and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rnd.random() * 0.3)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
        if check:
            check()


def test_snapshot_killed_during_multipart_uploads(mongo, mongo_db, s3_bucket, proxy):
    # four ranges of about 10 MB: each range's file goes up in two parts
    mongo_db.c.insert_many([{"_id": i, "blob": os.urandom(1024).hex()} for i in range(20000)])
    url = s3_bucket.url("killed")
    cmd = [m2d_bin(), "snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", url,
           "--workers", "1", "--compression", "none", "--target-file-size", "1GB"]
    def reads_as_committed():  # whatever a kill left, the table reads as its last committed version
        if log_keys(s3_bucket, "killed"):
            ids = delta_rs(s3_bucket, url).to_pyarrow_table(columns=["_id"]).column("_id").to_pylist()
            assert len(ids) == len(set(ids))

    kill_during_uploads(cmd, via(s3_bucket, proxy), s3_bucket, proxy, trials=10, seed_=3, check=reads_as_committed)
    p = run_m2d(*cmd[1:], env=s3_bucket.env, timeout=600, check=True)
    assert "unfinished upload" in p.stderr or open_uploads(s3_bucket) == []
    check_table(table_rows(delta_rs(s3_bucket, url).to_pyarrow_table()), list(mongo_db.c.find()))
    assert open_uploads(s3_bucket) == [], "orphan multipart uploads after a clean finish"


# --- secrets -----------------------------------------------------------------------------------

def test_no_secret_in_any_output(mongo, mongo_db, s3_bucket, proxy, tmp_path):
    seed(mongo_db.c, 200)
    env = via(s3_bucket, proxy)
    proxy.add(Rule("503", every=5))
    (tmp_path / "in.json").write_text('{"_id": "x", "v": 1}\n')
    url = s3_bucket.url("secret")
    outs = []
    for log_format in ("text", "json"):
        for args in (["snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", url],
                     ["load", "--input", tmp_path, "--table", s3_bucket.url("secret2")],
                     ["sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table",
                      s3_bucket.url("secret3"), "--stop-when-idle", "2"],
                     ["inspect", "--table", url], ["cat", "--table", url, "--limit", "3"],
                     ["optimize", "--table", url], ["vacuum", "--table", url, "--dry-run"],
                     ["publish", "--table", url, "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "p"],
                     ["inspect", "--table", s3_bucket.url("no-such-table")]):
            p = run_m2d(*args, "--verbose", "--log-format", log_format, env=env)
            outs.append(p.stdout + p.stderr)
        # a wrong secret: the error must not print the secret either
        p = run_m2d("inspect", "--table", url, "--verbose", "--log-format", log_format,
                    env=dict(env, AWS_SECRET_ACCESS_KEY="wrong-secret-value"))
        assert p.returncode == 1 and "SignatureDoesNotMatch" in p.stderr
        outs.append(p.stdout + p.stderr)
    text = "\n".join(outs)
    assert "object store:" in text  # the verbose traces were on
    for secret in ("m2d-test-secret", "wrong-secret-value", "Signature=",
                   "AWS4-HMAC-SHA256", "Credential=", "X-Amz-Signature"):
        assert secret not in text, secret
    # nor in anything written to the bucket
    for k in s3_bucket.keys(""):
        body = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=k)["Body"].read()
        assert b"m2d-test-secret" not in body, k


# --- load --watch ------------------------------------------------------------------------------

def export_body(k, n_docs, as_bson):
    import bson
    docs = [{"_id": f"f{k}-{j}", "file": k, "j": j, "nested": {"k": k}} for j in range(n_docs)]
    if as_bson:
        return b"".join(bson.encode(d) for d in docs)
    return "".join(json.dumps(d) + "\n" for d in docs).encode()


def test_load_watch_takes_files_as_they_arrive_through_two_kills(s3_bucket):
    import random
    rnd = random.Random(11)
    n_files = 200
    names = [f"drops/part-{k:05d}." + ("bson" if k % 3 == 0 else "json") for k in range(n_files)]
    url = s3_bucket.url("watched")

    def drop():
        k = 0
        while k < n_files:
            burst = rnd.choice([1, 1, 2, 5, 12])  # some arrive together, in one listing
            for name in names[k:k + burst]:
                i = names.index(name)
                s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=name,
                                            Body=export_body(i, 1 + i % 4, name.endswith(".bson")))
            k += burst
            time.sleep(rnd.random() * 0.15)

    dropper = threading.Thread(target=drop)
    cmd = [m2d_bin(), "load", "--input", s3_bucket.url("drops/"), "--table", url, "--watch", "--interval", "200ms",
           "--full-listing-every", "5"]
    env = m2d_env(s3_bucket.env)
    dropper.start()
    for kill_after in (3.0, 2.5):
        proc = M2DProcess(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(kill_after + rnd.random())
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    dropper.join()
    # the last run sees every file, then is asked to stop: it finishes the file in hand, exits 0
    proc = M2DProcess(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    while time.time() < deadline:
        apps = [a["txn"]["appId"] for _, a in log_actions(s3_bucket, "watched") if "txn" in a]
        if len(apps) >= n_files:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    apps = [a["txn"]["appId"] for _, a in log_actions(s3_bucket, "watched") if "txn" in a]
    assert sorted(apps) == sorted(f"mongo2delta-load:s3://{s3_bucket.name}/{n}" for n in names), \
        "a file is missing from the log or in it twice"
    ids = delta_rs(s3_bucket, url).to_pyarrow_table(columns=["_id"]).column("_id").to_pylist()
    assert len(ids) == len(set(ids)) == sum(1 + i % 4 for i in range(n_files))


@pytest.mark.parametrize("n_files", [1100, pytest.param(20000, marks=pytest.mark.long)])
def test_load_watch_lists_one_page_per_round_after_the_first(s3_bucket, proxy, n_files):
    # more than one page (1,000 keys) of ListObjectsV2; 20,000 in make test-long
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda k: s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=f"in/{k:06d}.json",
                                                          Body=f'{{"_id": {k}}}\n'.encode()), range(n_files)))
    url = s3_bucket.url("t")
    if n_files <= 2000:
        m2d(s3_bucket, "load", "--input", s3_bucket.url("in/"), "--table", url, timeout=1800)
    else:
        # 20,000 loads are 20,000 commits (half an hour here): the same state, every file taken,
        # is written as one commit whose txn actions name them all, as load's commits do
        actions = [{"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
                   {"metaData": {"id": "5f1c1bb0-8f1e-4d55-9a53-7b0a1d1c0001", "format": {"provider": "parquet",
                                 "options": {}}, "schemaString": json.dumps({"type": "struct", "fields": [
                                     {"name": "_id", "type": "long", "nullable": True, "metadata": {}}]}),
                                 "partitionColumns": [], "configuration": {}, "createdTime": 1764000000000}}]
        actions += [{"txn": {"appId": f"mongo2delta-load:s3://{s3_bucket.name}/in/{k:06d}.json", "version": 0}}
                    for k in range(n_files)]
        s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="t/_delta_log/00000000000000000000.json",
                                    Body="".join(json.dumps(a) + "\n" for a in actions).encode())
    def listings(rounds):
        proxy.clear()
        p = run_m2d("load", "--input", s3_bucket.url("in/"), "--table", url, "--watch", "--interval", "100ms",
                    "--max-rounds", rounds, "--full-listing-every", "100", env=via(s3_bucket, proxy), check=True)
        assert f"0 file(s) loaded, {n_files} already loaded before" in p.stderr, p.stderr
        return proxy.count("GET", r"list-type=2&prefix=in%2F")

    first = listings(1)  # a whole listing: a page per 1,000 keys (and an empty last one on some servers)
    assert (n_files + 999) // 1000 <= first <= (n_files + 999) // 1000 + 1, first
    total = listings(5)
    assert total == first + 4, f"{total} listing requests: {first} for the first round, then one per round"
    # a new file is found by the cheap listing
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="in/999999.json", Body=b'{"_id": 999999}\n')
    p = run_m2d("load", "--input", s3_bucket.url("in/"), "--table", url, "--watch", "--interval", "100ms",
                "--max-rounds", "2", env=via(s3_bucket, proxy), check=True)
    assert "1 file(s) loaded" in p.stderr


def test_load_watch_reports_a_file_that_changed_after_it_was_loaded(s3_bucket):
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="ch/a.json", Body=b'{"_id": 1}\n')
    url = s3_bucket.url("t")
    proc = M2DProcess([m2d_bin(), "load", "--input", s3_bucket.url("ch/"), "--table", url, "--watch",
                             "--interval", "200ms", "--full-listing-every", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=m2d_env(s3_bucket.env))
    time.sleep(2)
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="ch/a.json", Body=b'{"_id": 1}\n{"_id": 2}\n')
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "changed after it was loaded" in err and "1 file(s) changed" in err, err
    assert delta_rs(s3_bucket, url).to_pyarrow_table().num_rows == 1


def test_sync_killed_during_multipart_uploads(mongo, mongo_db, s3_bucket, proxy):
    # the initial snapshot's files go up in parts; sync is killed while they do, ten times
    mongo_db.c.insert_many([{"_id": i, "blob": os.urandom(1024).hex()} for i in range(20000)])
    settle()
    mirror, log = s3_bucket.url("m"), s3_bucket.url("l")
    cmd = [m2d_bin(), "sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", mirror,
           "--mode", "both", "--changelog-table", log, "--workers", "1", "--max-latency", "300",
           "--stop-when-idle", "3"]
    def reads_as_committed():
        if log_keys(s3_bucket, "m"):
            ids = [json.loads(x)["_id"] for x in
                   m2d(s3_bucket, "cat", "--table", mirror, "--columns", "_id").stdout.splitlines()]
            assert len(ids) == len(set(ids))

    kill_during_uploads(cmd, via(s3_bucket, proxy), s3_bucket, proxy, trials=10, seed_=5, check=reads_as_committed)
    for k in range(50):  # changes after the kills
        mongo_db.c.update_one({"_id": k}, {"$set": {"changed": k}})
    p = run_m2d(*cmd[1:], env=s3_bucket.env, timeout=900, check=True)
    assert "initial snapshot done" in p.stderr or "resum" in p.stderr, p.stderr
    rows = {}
    for line in m2d(s3_bucket, "cat", "--table", mirror, "--columns", "_id,changed").stdout.splitlines():
        r = json.loads(line)
        assert r["_id"] not in rows, f"_id {r['_id']} twice in the mirror"
        rows[r["_id"]] = r.get("changed")
    assert rows == {d["_id"]: d.get("changed") for d in mongo_db.c.find({}, {"changed": 1})}
    assert open_uploads(s3_bucket) == [], "orphan multipart uploads after a clean finish"


def test_credentials_from_a_profile_and_virtual_hosted_style_refused_for_http(s3_bucket, tmp_path):
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = nobody\naws_secret_access_key = wrong\n\n"
                     f"[analytics]\naws_access_key_id = {s3_bucket.env['AWS_ACCESS_KEY_ID']}\n"
                     f"aws_secret_access_key = {s3_bucket.env['AWS_SECRET_ACCESS_KEY']}\n")
    (tmp_path / "a.json").write_text('{"_id": 1}\n')
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": str(creds),
           "AWS_PROFILE": "analytics", "AWS_ENDPOINT_URL": s3_bucket.env["AWS_ENDPOINT_URL"], "AWS_REGION": "us-east-1"}
    url = s3_bucket.url("p")
    run_m2d("load", "--input", tmp_path / "a.json", "--table", url, env=env, check=True)
    assert delta_rs(s3_bucket, url).to_pyarrow_table().num_rows == 1
    p = run_m2d("inspect", "--table", url, env=dict(env, AWS_PROFILE="default"))
    assert p.returncode == 1 and "InvalidAccessKeyId" in p.stderr and "AWS_ACCESS_KEY_ID" in p.stderr
    p = run_m2d("inspect", "--table", url, env=dict(env, AWS_PROFILE="missing"))
    assert p.returncode == 2 and "no AWS credentials" in p.stderr
    # plain HTTP to anything but loopback is refused before a byte is sent
    p = run_m2d("inspect", "--table", url, env=dict(env, AWS_ENDPOINT_URL="http://s3.example.com:9000"))
    assert p.returncode == 2 and "plain HTTP" in p.stderr


def test_snapshot_all_collections_into_a_bucket(mongo, mongo_db, s3_bucket):
    for name in ("a", "b"):
        mongo_db[name].insert_many([{"_id": i, "coll": name} for i in range(50)])
    m2d(s3_bucket, "snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--all-collections", "--table-root",
        s3_bucket.url("root"))
    for name in ("a", "b"):
        t = delta_rs(s3_bucket, s3_bucket.url(f"root/{name}")).to_pyarrow_table()
        assert sorted(t.column("_id").to_pylist()) == list(range(50)) and set(t.column("coll").to_pylist()) == {name}
