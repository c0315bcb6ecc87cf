"""`make demo` (scripts/demo), the README's first command: the whole loop (samples, snapshot, sync
while a writer changes the accounts, analytics joined with the history, the insight loaded as a
table and published back) must work as written and print each step.

The demo runs against a test server of the test's own (M2D_URI), so that afterwards the test
reads MongoDB itself: every account that moved since the sample data (new, or its limit or
products differ) must carry the insight computed here from the sample file and the account as
it is now, and no other account may carry one; the mirror read by delta-rs must equal the
collection, and the history table the sample file."""
import json
import re
import subprocess

from bson import json_util
from deltalake import DeltaTable

from bson_mapping import check_table
from conftest import ROOT, TESTDATA, MongoTestServer, check_sanitizers, m2d_bin, m2d_env, run_m2d
from parquet_jsonform import table_rows

SAMPLES = TESTDATA / "mongodb-sample"

# the line each step prints, in order
STEPS = [
    r"demo: using the MongoDB server at mongodb://127\.0\.0\.1:\d+ \(M2D_URI\): version \S+, change streams yes",
    r"demo: filled it with the samples of \S+: sample_analytics\.accounts 1746, sample_mflix\.sessions 1, "
    r"sample_mflix\.users 185 documents",
    r"demo: snapshotted 3 collections into \S+ \(\S+/accounts is the history: the accounts before the writer\)",
    r"demo: sync is following sample_analytics\.accounts \(pid \d+\): mirror \S+accounts_mirror \(1746 rows from its "
    r"initial snapshot\), change log \S+accounts_changes; metrics at http://127\.0\.0\.1:\d+/metrics, log in \S+",
    r"demo: the writer \(scripts/demo_writer\.py\) made (?P<ins>\d+) inserts, (?P<upd>\d+) updates, (?P<dels>\d+) "
    r"deletes on sample_analytics\.accounts in [\d.]+ s \((?P<events>\d+) change events\)",
    r"demo: the mirror caught up: (?P<applied>\d+) events in \d+ batches, the last event at \S+Z",
    r"demo: stopped sync with SIGTERM \(exit 0\):",
    r"demo: analytics \(SQL by DataFusion through delta-rs, scripts/demo_analytics\.py\) over the mirror joined with "
    r"the history and the change log: (?P<moved>\d+) accounts moved since the snapshot \(\d+ new, \d+ grown, \d+ "
    r"shrunk, \d+ changed\), (?P<closed>\d+) closed; the change log holds (?P<log_ins>\d+) inserts, (?P<log_upd>\d+) "
    r"updates, (?P<log_del>\d+) deletes",
    r"demo: wrote the insight table \S+account_insights \(mongo2delta load\):",
    r"demo: published the insight into sample_analytics\.accounts \(mongo2delta publish\):",
    r"demo: (?P<carrying>\d+) documents of sample_analytics\.accounts now carry an insight",
    r"demo: done in \d+ s; the tables stay in \S+",
]


def sample_docs(path):
    return [json_util.loads(line) for line in path.read_text().splitlines() if line.strip()]


def expected_insight(then, now):
    """The insight of docs/demo (scripts/demo_analytics.py's definition), from the account as the
    sample file has it (None: a new account) and as MongoDB has it now; None when it did not move."""
    fields = ("limit", "products")
    if then is not None and all(then.get(f) == now.get(f) for f in fields):
        return None
    limit_change = now["limit"] - (then["limit"] if then else 0)
    products_added = len(now["products"]) - (len(then["products"]) if then else 0)
    score = int(limit_change / 1000) + 10 * products_added  # SQL integer division: toward zero
    status = "new" if then is None else "grown" if score > 0 else "shrunk" if score < 0 else "changed"
    return {"score": score, "status": status, "limit_change": limit_change, "products_added": products_added}


def test_demo_runs_the_whole_loop(tmp_path):
    lake = tmp_path / "lake"
    server = MongoTestServer().start()
    try:
        env = m2d_env(dict(M2D_BIN=m2d_bin(), M2D_LAKE=str(lake), M2D_URI=server.uri))
        p = subprocess.run([str(ROOT / "scripts" / "demo")], capture_output=True, text=True, env=env, timeout=600)
        out = p.stdout + p.stderr
        check_sanitizers(p.returncode, out, "scripts/demo")  # every mongo2delta it ran writes here
        assert p.returncode == 0, out

        # every step's line, in order
        lines = [line for line in p.stdout.splitlines() if line.startswith("demo: ")]
        assert len(lines) == len(STEPS), "\n".join(lines)
        got = {}
        for line, step in zip(lines, STEPS):
            m = re.match(step, line)
            assert m, f"{line!r} does not match {step!r}"
            got.update({k: int(v) for k, v in m.groupdict().items()})
        assert got["applied"] == got["events"] == got["ins"] + got["upd"] + got["dels"]
        assert (got["log_ins"], got["log_upd"], got["log_del"]) == (got["ins"], got["upd"], got["dels"])
        assert "Try next:" in p.stdout and "spark.read.format(\"delta\")" in p.stdout
        for f in sorted(SAMPLES.glob("*/*.json")):  # the snapshots' own summary lines
            assert f"snapshot {f.parent.name}.{f.stem} -> {lake}/{f.stem}: {len(sample_docs(f))} documents" in p.stdout

        # MongoDB, read here: the insight on exactly the accounts that moved
        then = {d["_id"]: d for d in sample_docs(SAMPLES / "sample_analytics" / "accounts.json")}
        client = server.client()
        now = list(client.sample_analytics.accounts.find())
        ids = {d["_id"] for d in now}
        new, closed = ids - then.keys(), then.keys() - ids
        assert len(new) == got["ins"] > 0 and len(closed) == got["closed"] == got["dels"] > 0
        carrying = 0
        for doc in now:
            insight = doc.pop("insight", None)
            want = expected_insight(then.get(doc["_id"]), doc)
            if want is None:
                assert insight is None and doc == then[doc["_id"]], doc
                continue
            carrying += 1
            assert insight is not None, f"{doc} moved but carries no insight (expected {want})"
            assert insight.pop("as_of").year >= 2024, insight  # a date
            assert insight == want, doc
        moved_existing = carrying - len(new)
        assert moved_existing > 0 and carrying == got["moved"] == got["carrying"]

        # the documents the demo shows are MongoDB's, carrying the insight
        shown = [json_util.loads(line.strip()) for line in p.stdout.splitlines() if line.startswith("  {\"_id\"")]
        assert len(shown) >= 3
        for d in shown:
            assert d == client.sample_analytics.accounts.find_one({"_id": d["_id"]}) and "insight" in d

        # the tables: history = the sample file, mirror = the collection (without the insight)
        check_table(table_rows(DeltaTable(str(lake / "accounts")).to_pyarrow_table()), list(then.values()))
        check_table(table_rows(DeltaTable(str(lake / "accounts_mirror")).to_pyarrow_table()), now)
        info = json.loads(run_m2d("inspect", "--table", lake / "accounts_mirror", "--json", check=True).stdout)
        assert info["streams"]["mongo2delta-sync:sample_analytics.accounts"]["events"] == got["events"]
        assert DeltaTable(str(lake / "account_insights")).to_pyarrow_table().num_rows == carrying
        client.close()
    finally:
        server.stop()
