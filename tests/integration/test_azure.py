"""Tables and inputs in Azure Blob Storage (Azurite, which checks every Shared Key signature and
SAS token and answers Put Blob with If-None-Match: * on an existing blob with 409), written by
every command and read back from the same container by delta-rs (and by `mongo2delta cat`
where delta-rs 1.1.4 cannot read: tables with deletion vectors)."""
import gc
import json
import os
import re
import subprocess
import time

import pytest
from deltalake import DeltaTable

from bson_mapping import check_table
from conftest import M2DProcess, m2d_env, m2d_bin, run_m2d
from parquet_jsonform import table_rows
from s3_fault_proxy import FaultProxy, Rule
from test_sync import settle, workload


def m2d(container, *args, timeout=300, check=True, env=None):
    return run_m2d(*args, timeout=timeout, check=check, env=dict(container.env, **(env or {})))


def delta_rs(container, prefix, columns=None):
    """The table at prefix as delta-rs reads it (by its abfss:// URL), as a pyarrow table. The
    DeltaTable is dropped (and collected) at once, as in test_s3 (delta-io/delta-rs#2184)."""
    dt = DeltaTable(container.abfss(prefix), storage_options=container.storage_options)
    try:
        return dt.to_pyarrow_table(columns=columns)
    finally:
        del dt
        gc.collect()


def cat_rows(container, url):
    """The table's rows as `mongo2delta cat` prints them (it reads deletion vectors)."""
    return [json.loads(line) for line in m2d(container, "cat", "--table", url).stdout.splitlines()]


def log_keys(container, prefix):
    return sorted(k for k in container.keys(prefix + "/_delta_log/") if re.search(r"/\d{20}\.json$", k))


def log_actions(container, prefix):
    for k in log_keys(container, prefix):
        for line in container.get(k).decode().splitlines():
            yield k, json.loads(line)


def seed(coll, n):
    coll.insert_many([{"_id": i, "n": i, "name": f"doc {i}", "tags": [f"t{i % 5}"], "nested": {"a": i % 7}}
                      for i in range(n)])


def test_snapshot_into_a_container_reads_in_delta_rs(mongo, mongo_db, azure_container):
    seed(mongo_db.c, 3000)
    url = azure_container.url("lake/c")
    p = m2d(azure_container, "snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table",
            url, "--workers", "2")
    assert "3000 documents" in p.stderr
    docs = list(mongo_db.c.find())
    check_table(table_rows(delta_rs(azure_container, "lake/c")), docs)
    # inspect and cat read the container, by either URL form
    info = json.loads(m2d(azure_container, "inspect", "--table", url, "--json").stdout)
    assert info["numRecords"] == 3000
    info = json.loads(m2d(azure_container, "inspect", "--table", azure_container.abfss("lake/c"), "--json").stdout)
    assert info["numRecords"] == 3000
    assert len(m2d(azure_container, "cat", "--table", url).stdout.splitlines()) == 3000
    # run again: done already, nothing written
    before = log_keys(azure_container, "lake/c")
    m2d(azure_container, "snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", url)
    assert log_keys(azure_container, "lake/c") == before
    # the probe's hidden blob is gone; nothing hidden is left in the table
    assert not [k for k in azure_container.keys("lake/") if "/." in k], azure_container.keys("lake/")


def big_export(path, n=6000):
    """About 25 MB of JSON lines of random hex: one data file of three 8 MiB blocks and more."""
    docs = [{"_id": i, "blob": os.urandom(2048).hex()} for i in range(n)]
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return docs


def test_a_large_file_goes_up_in_blocks_and_reads_back(azure_container, tmp_path):
    docs = big_export(tmp_path / "big.json")
    m2d(azure_container, "load", "--input", tmp_path / "big.json", "--table", azure_container.url("big"),
        "--compression", "none", "--target-file-size", "1GB")
    data = [k for k in azure_container.keys("big/") if k.endswith(".parquet")]
    assert len(data) == 1
    size = azure_container.client.blob_size(azure_container.name, data[0])
    assert size > 16 << 20, size
    # Put Block + Put Block List: the blob is made of its committed 8 MiB blocks
    blocks = azure_container.client.committed_blocks(azure_container.name, data[0])
    assert len(blocks) == -(-size // (8 << 20)), (size, blocks)
    assert len(set(blocks)) == len(blocks) and len({len(b) for b in blocks}) == 1
    # a small blob (the commit) is one Put Blob: no blocks
    assert azure_container.client.committed_blocks(azure_container.name, log_keys(azure_container, "big")[0]) == []
    check_table(table_rows(delta_rs(azure_container, "big")), docs)
    # our reader too (ranged GETs with read-ahead)
    assert sorted(r["_id"] for r in cat_rows(azure_container, azure_container.url("big"))) == list(range(6000))


def test_load_takes_every_export_file_under_a_prefix_once(azure_container):
    import bson
    c = azure_container
    c.put("exports/2026/12/a.json", b'{"_id": 1, "x": 1}\n{"_id": 2, "x": 2}\n')
    c.put("exports/b.jsonl", b'{"_id": 3, "x": 3}\n')
    c.put("exports/notes.txt", b"not an export")
    c.put("exports/dump/c.bson", bson.encode({"_id": 4, "x": 4}) + bson.encode({"_id": 5, "x": 5}))
    url = c.url("tables/t")
    p = m2d(c, "load", "--input", c.url("exports/"), "--table", url)
    assert "3 file(s) loaded, 0 already loaded before; 5 documents" in p.stderr, p.stderr
    rows = sorted(delta_rs(c, "tables/t", columns=["_id", "x"]).to_pylist(), key=lambda r: r["_id"])
    assert rows == [{"_id": i, "x": i} for i in range(1, 6)]
    apps = [a["txn"]["appId"] for _, a in log_actions(c, "tables/t") if "txn" in a]
    assert sorted(apps) == sorted(f"mongo2delta-load:az://{c.name}/exports/{k}"
                                  for k in ("2026/12/a.json", "b.jsonl", "dump/c.bson"))
    # a new file appears; the rest are not taken twice
    c.put("exports/d.json", b'{"_id": 6, "x": 6}\n')
    p = m2d(c, "load", "--input", c.url("exports"), "--table", url)
    assert "1 file(s) loaded, 3 already loaded before; 1 documents" in p.stderr, p.stderr
    # one blob by its URL
    c.put("other/e.json", b'{"_id": 7, "x": 7}\n')
    m2d(c, "load", "--input", c.url("other/e.json"), "--table", url)
    assert delta_rs(c, "tables/t").num_rows == 7
    # load --watch lists the prefix again and takes only the new file
    c.put("exports/f.json", b'{"_id": 8, "x": 8}\n')
    p = m2d(c, "load", "--input", c.url("exports/"), "--table", url, "--watch", "--interval", "100ms",
            "--max-rounds", "3")
    assert "1 file(s) loaded" in p.stderr, p.stderr
    assert delta_rs(c, "tables/t").num_rows == 8
    # a prefix without export files is a usage error that says so
    p = m2d(c, "load", "--input", c.url("nothing-here/"), "--table", url, check=False)
    assert p.returncode == 2 and "no export files" in p.stderr


def test_sync_both_modes_optimize_vacuum_publish_in_a_container(mongo, mongo_db, azure_container):
    n_docs = 3000
    seed(mongo_db.c, n_docs)
    c = azure_container
    mirror, log = c.url("mirror"), c.url("changes")
    settle()
    proc = M2DProcess([m2d_bin(), "sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c",
                             "--table", mirror, "--mode", "both", "--changelog-table", log, "--max-latency", "300",
                             "--max-batch-docs", "200", "--workers", "2", "--compact-every", "4",
                             "--change-data-feed", "--stop-when-idle", "6"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=m2d_env(c.env))
    time.sleep(4)
    done = workload(mongo_db.c, 2000, n_docs, seed=7)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert f"{len(done)} change-log rows" in err, err
    docs = list(mongo_db.c.find())
    protocol = [a["protocol"] for _, a in log_actions(c, "mirror") if "protocol" in a][-1]
    assert "deletionVectors" in protocol["readerFeatures"]
    assert any("add" in a and a["add"].get("deletionVector") for _, a in log_actions(c, "mirror"))
    assert any("cdc" in a for _, a in log_actions(c, "mirror")), "no change data files"
    # delta-rs 1.1.4 reads no deletion vectors: the mirror is checked through our own reader
    check_table(cat_rows(c, mirror), docs)
    rows = sorted(delta_rs(c, "changes", columns=["_op", "_txn_seq", "_id"]).to_pylist(), key=lambda r: r["_txn_seq"])
    assert [r["_txn_seq"] for r in rows] == list(range(1, len(done) + 1))
    assert [(r["_op"], r["_id"]) for r in rows if r["_id"] is not None] == \
        [(op, i) for (op, i), r in zip(done, rows) if r["_id"] is not None]
    # optimize folds the deletion vectors; vacuum deletes what nothing references; rows unchanged
    m2d(c, "optimize", "--table", mirror)
    m2d(c, "optimize", "--table", log)
    files_before = len(c.keys("mirror/"))
    p = m2d(c, "vacuum", "--table", mirror, "--retain-hours", "0", "--force")
    assert "file(s) deleted" in p.stderr
    assert len(c.keys("mirror/")) < files_before
    check_table(cat_rows(c, mirror), docs)
    optimized = [k for k, a in log_actions(c, "mirror") if a.get("commitInfo", {}).get("operation") == "OPTIMIZE"]
    adds = [a["add"] for k, a in log_actions(c, "mirror") if k == optimized[-1] and "add" in a]
    assert adds and not any(a.get("deletionVector") for a in adds), "optimize left deletion vectors"
    assert delta_rs(c, "changes").num_rows == len(done)
    # publish the mirror back into another collection: equal to the source
    m2d(c, "publish", "--table", mirror, "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "back")
    back = {d["_id"]: d for d in mongo_db.back.find()}
    assert back == {d["_id"]: d for d in docs}


def test_four_writers_on_one_table_commit_every_version_once(azure_container, tmp_path):
    for p in range(4):
        d = tmp_path / f"p{p}"
        d.mkdir()
        for i in range(50):
            (d / f"f{i:02d}.json").write_text(json.dumps({"_id": f"{p}-{i}", "p": p, "i": i}) + "\n")
    url = azure_container.url("shared")
    procs = [M2DProcess([m2d_bin(), "load", "--input", str(tmp_path / f"p{p}"), "--table", url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=m2d_env(azure_container.env)) for p in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert "50 file(s) loaded" in err, err
    versions = [int(k.rsplit("/", 1)[1][:20]) for k in log_keys(azure_container, "shared")]
    assert versions == list(range(200)), "versions are not contiguous"
    apps, adds = [], []
    for _, a in log_actions(azure_container, "shared"):
        if "txn" in a:
            apps.append(a["txn"]["appId"])
        if "add" in a:
            adds.append(a["add"]["path"])
    assert len(apps) == len(set(apps)) == 200, "a file was committed twice"
    assert len(adds) == len(set(adds)) == 200
    ids = sorted(delta_rs(azure_container, "shared", columns=["_id"]).column("_id").to_pylist())
    assert ids == sorted(f"{p}-{i}" for p in range(4) for i in range(50))


def test_a_sas_token_alone_authorizes_and_stays_secret(azure_container, tmp_path):
    c = azure_container
    sas = c.client.account_sas()
    sig = re.search(r"sig=([^&]+)", sas).group(1)
    env = {"AZURE_STORAGE_ACCOUNT": c.server.ACCOUNT, "AZURE_STORAGE_KEY": "",
           "AZURE_STORAGE_SAS_TOKEN": "?" + sas, "AZURE_STORAGE_ENDPOINT": c.server.endpoint}
    (tmp_path / "a.json").write_text('{"_id": 1, "v": "sas"}\n')
    outs = []
    for args in (["load", "--input", tmp_path / "a.json", "--table", c.url("sas")],
                 ["inspect", "--table", c.url("sas")], ["cat", "--table", c.url("sas")]):
        p = run_m2d(*args, "--verbose", env=env, check=True)
        outs.append(p.stdout + p.stderr)
    assert "SAS token" in outs[0]
    assert [r["v"] for r in delta_rs(c, "sas").to_pylist()] == ["sas"]
    # a token without the write permission: the error says what to do
    p = run_m2d("load", "--input", tmp_path / "a.json", "--table", c.url("sas2"), "--verbose",
                env=dict(env, AZURE_STORAGE_SAS_TOKEN=c.client.account_sas(permissions="rl")))
    assert p.returncode == 1 and "403" in p.stderr and "SAS token" in p.stderr, p.stderr
    outs.append(p.stdout + p.stderr)
    text = "\n".join(outs)
    for secret in (sig, sig.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")):
        assert secret not in text


# --- a server that ignores If-None-Match --------------------------------------------------------

def test_a_server_that_ignores_conditional_writes_is_refused(azure_server, azure_container, tmp_path):
    """Azurite honours If-None-Match (409 BlobAlreadyExists); a proxy that drops the header plays
    one that does not. With a SAS token, headers are not signed, so Azurite takes the requests."""
    c = azure_container
    proxy = FaultProxy(azure_server.port)
    try:
        proxy.add(Rule("drop-if-none-match"))
        env = {"AZURE_STORAGE_ACCOUNT": c.server.ACCOUNT, "AZURE_STORAGE_KEY": "",
               "AZURE_STORAGE_SAS_TOKEN": c.client.account_sas(), "AZURE_STORAGE_ENDPOINT": azure_server.endpoint_at(proxy.port)}
        (tmp_path / "a.json").write_text('{"_id": 1}\n')
        p = run_m2d("load", "--input", tmp_path / "a.json", "--table", c.url("unsafe"), env=env)
        assert p.returncode == 2, p.stderr
        assert "ignores conditional writes" in p.stderr and "--unsafe-single-writer" in p.stderr
        assert not [k for k in c.keys("unsafe/") if "_delta_log/" in k and k.endswith(".json")]
        p = run_m2d("load", "--input", tmp_path / "a.json", "--table", c.url("unsafe"), "--unsafe-single-writer",
                    env=env, check=True)
        assert "ignores conditional writes" in p.stderr  # still a warning
        assert "unsafe/_delta_log/00000000000000000000.json" in c.keys("unsafe/")
    finally:
        proxy.close()


# --- faults ------------------------------------------------------------------------------------

@pytest.fixture
def proxy(azure_server):
    p = FaultProxy(azure_server.port)
    yield p
    p.close()


def via(container, proxy):
    return dict(container.env, AZURE_STORAGE_ENDPOINT=container.server.endpoint_at(proxy.port))


def test_busy_server_and_resets_are_retried(mongo, mongo_db, azure_container, proxy):
    seed(mongo_db.c, 2000)
    proxy.add(Rule("503", every=3))                     # every third request answered 503
    proxy.add(Rule("reset", method="PUT", every=4))     # every fourth PUT's connection dropped
    url = azure_container.url("busy")
    p = run_m2d("snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", url,
                "--workers", "2", env=via(azure_container, proxy), timeout=600, check=True)
    assert "2000 documents" in p.stderr
    check_table(table_rows(delta_rs(azure_container, "busy")), list(mongo_db.c.find()))
    assert sum(r.fired for r in proxy.rules) > 5


def test_a_lost_commit_answer_is_resolved_by_reading_the_commit_back(azure_container, proxy, tmp_path):
    for i in range(3):
        (tmp_path / f"f{i}.json").write_text(json.dumps({"_id": i}) + "\n")
    # the commit reaches the server, its answer does not: the retry meets 409, reads the blob
    # back, finds its own bytes, and goes on; nothing is committed twice
    rule = proxy.add(Rule("lose-answer", method="PUT", path=r"/_delta_log/\d{20}\.json", times=2))
    p = run_m2d("load", "--input", tmp_path, "--table", azure_container.url("lost"), "--verbose",
                env=via(azure_container, proxy), check=True)
    assert rule.fired == 2
    assert "3 file(s) loaded" in p.stderr
    assert "written by the attempt whose answer was lost" in p.stderr
    versions = [int(k.rsplit("/", 1)[1][:20]) for k in log_keys(azure_container, "lost")]
    assert versions == [0, 1, 2]
    assert sorted(delta_rs(azure_container, "lost").column("_id").to_pylist()) == [0, 1, 2]


def test_a_reset_in_the_middle_of_a_block_upload_is_retried(azure_container, proxy, tmp_path):
    docs = big_export(tmp_path / "big.json")
    rule = proxy.add(Rule("reset-mid-body", method="PUT", path=r"comp=block&", times=2))
    run_m2d("load", "--input", tmp_path / "big.json", "--table", azure_container.url("blocks"), "--compression",
            "none", "--target-file-size", "1GB", env=via(azure_container, proxy), timeout=600, check=True)
    assert rule.fired == 2
    check_table(table_rows(delta_rs(azure_container, "blocks")), docs)


# --- errors and secrets ---------------------------------------------------------------------------

def test_errors_say_what_to_do(azure_server, tmp_path):
    (tmp_path / "a.json").write_text('{"_id": 1}\n')
    p = run_m2d("load", "--input", tmp_path / "a.json", "--table", "az://no-such-container/t", env=azure_server.env)
    assert p.returncode == 1 and "ContainerNotFound" in p.stderr and "create the container" in p.stderr, p.stderr
    p = run_m2d("inspect", "--table", "az://whatever/t", env={"AZURE_STORAGE_ACCOUNT": "", "AZURE_STORAGE_KEY": ""})
    assert p.returncode == 2 and "AZURE_STORAGE_ACCOUNT" in p.stderr, p.stderr
    p = run_m2d("inspect", "--table", "az://whatever/t",
                env=dict(azure_server.env, AZURE_STORAGE_ENDPOINT="http://storage.example/devstoreaccount1"))
    assert p.returncode == 2 and "loopback" in p.stderr, p.stderr


def test_no_secret_in_any_output(mongo, mongo_db, azure_container, proxy, tmp_path):
    seed(mongo_db.c, 200)
    c = azure_container
    env = via(c, proxy)
    proxy.add(Rule("503", every=5))
    (tmp_path / "in.json").write_text('{"_id": "x", "v": 1}\n')
    url = c.url("secret")
    wrong_key = "d3Jvbmcta2V5LXZhbHVlLXRoYXQtaXMtbm90LXRoZS1vbmU="
    outs = []
    for log_format in ("text", "json"):
        for args in (["snapshot", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table", url],
                     ["load", "--input", tmp_path, "--table", c.url("secret2")],
                     ["sync", "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "c", "--table",
                      c.url("secret3"), "--stop-when-idle", "2"],
                     ["inspect", "--table", url], ["cat", "--table", url, "--limit", "3"],
                     ["optimize", "--table", url], ["vacuum", "--table", url, "--dry-run"],
                     ["publish", "--table", url, "--uri", mongo.uri, "--db", mongo_db.name, "--collection", "p"],
                     ["inspect", "--table", c.url("no-such-table")]):
            p = run_m2d(*args, "--verbose", "--log-format", log_format, env=env)
            outs.append(p.stdout + p.stderr)
        # a wrong key: the error must not print a key or a signature either
        p = run_m2d("inspect", "--table", url, "--verbose", "--log-format", log_format,
                    env=dict(env, AZURE_STORAGE_KEY=wrong_key))
        # (Azure's code is AuthenticationFailed, Azurite's AuthorizationFailure, with Azure's message)
        assert p.returncode == 1 and "failed to authenticate" in p.stderr and "check AZURE_STORAGE_KEY" in p.stderr, \
            p.stderr
        outs.append(p.stdout + p.stderr)
        # a connection string carries the key too
        cs = (f"DefaultEndpointsProtocol=http;AccountName={c.server.ACCOUNT};AccountKey={c.server.KEY};"
              f"BlobEndpoint={c.server.endpoint_at(proxy.port)};")
        p = run_m2d("inspect", "--table", url, "--verbose", "--log-format", log_format,
                    env={"AZURE_STORAGE_CONNECTION_STRING": cs, "AZURE_STORAGE_ACCOUNT": "", "AZURE_STORAGE_KEY": "",
                         "AZURE_STORAGE_ENDPOINT": ""})
        assert p.returncode == 0, p.stderr
        outs.append(p.stdout + p.stderr)
    text = "\n".join(outs)
    assert "object store:" in text  # the verbose traces were on
    for secret in (c.server.KEY, c.server.KEY[:20], wrong_key, "SharedKey ", "Authorization:", "AuthenticationErrorDetail"):
        assert secret not in text, secret
    # nor in anything written to the container
    for k in c.keys(""):
        assert c.server.KEY.encode() not in c.get(k), k
