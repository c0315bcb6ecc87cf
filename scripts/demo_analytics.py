"""The demo's analytics step: which accounts grew since the snapshot, and by how much.

Usage: demo_analytics.py MIRROR HISTORY CHANGELOG OUT.json

One SQL query (DataFusion, through delta-rs's QueryBuilder: no engine beyond the deltalake
package the tests already use) over three Delta tables: the mirror that `sync` keeps equal to
the collection (now), the snapshot taken before the writer ran (the history) and sync's change
log (events per account). For every account that is new or whose limit or products differ from
the history it computes

    limit_change   = limit now - limit then (then = 0 for a new account)
    products_added = products now - products then (counts)
    score          = limit_change / 1000 + 10 * products_added
    status         = new | grown | shrunk | changed (score 0)

prints a one-line summary and the top accounts, and writes the insight as Extended JSON lines
({"_id": {"$oid": ...}, "insight": {...}}) for `mongo2delta load`. The mirror is written with
--merge-strategy rewrite, since delta-rs reads no deletion vectors.
"""
import json
import os
import sys
from datetime import datetime, timezone

os.environ.setdefault("RUST_LOG", "error")  # DataFusion's deprecation warnings are not for demo users
import pyarrow as pa  # noqa: E402
from deltalake import DeltaTable, QueryBuilder  # noqa: E402

QUERY = """
WITH events AS (SELECT _id, count(*) AS events FROM changes GROUP BY _id),
     moved AS (
       SELECT m._id, m.account_id, h."limit" AS limit_then, m."limit" AS limit_now,
              CAST(m."limit" AS BIGINT) - coalesce(h."limit", 0) AS limit_change,
              CAST(cardinality(m.products) AS BIGINT) - coalesce(CAST(cardinality(h.products) AS BIGINT), 0)
                AS products_added,
              coalesce(e.events, 0) AS events, h._id IS NULL AS is_new
       FROM mirror m
       LEFT JOIN history h ON h._id = m._id
       LEFT JOIN events e ON e._id = m._id
       WHERE h._id IS NULL OR (m."limit" IS DISTINCT FROM h."limit") OR (m.products IS DISTINCT FROM h.products))
SELECT *, limit_change / 1000 + 10 * products_added AS score FROM moved
ORDER BY score DESC, account_id
"""


def status(row):
    if row["is_new"]:
        return "new"
    return "grown" if row["score"] > 0 else "shrunk" if row["score"] < 0 else "changed"


def main():
    mirror_path, history_path, changes_path, out = sys.argv[1:5]
    mirror, history, changes = DeltaTable(mirror_path), DeltaTable(history_path), DeltaTable(changes_path)
    qb = QueryBuilder().register("mirror", mirror).register("history", history).register("changes", changes)
    rows = pa.table(qb.execute(QUERY).read_all()).to_pylist()
    closed = pa.table(qb.execute("SELECT count(*) AS n FROM history h LEFT JOIN mirror m ON m._id = h._id "
                                 "WHERE m._id IS NULL").read_all()).to_pylist()[0]["n"]
    ops = {r["_op"]: r["n"] for r in pa.table(qb.execute("SELECT _op, count(*) AS n FROM changes GROUP BY _op")
                                                .read_all()).to_pylist()}
    as_of = datetime.fromtimestamp(mirror.history(1)[0]["timestamp"] / 1000, timezone.utc)

    by_status = {}
    with open(out, "w") as f:
        for r in rows:
            r["status"] = status(r)
            by_status[r["status"]] = by_status.get(r["status"], 0) + 1
            insight = {"score": r["score"], "status": r["status"], "limit_change": r["limit_change"],
                       "products_added": r["products_added"],
                       "as_of": {"$date": as_of.isoformat(timespec="milliseconds").replace("+00:00", "Z")}}
            f.write(json.dumps({"_id": {"$oid": r["_id"]}, "insight": insight}) + "\n")
    counts = ", ".join(f"{by_status.get(s, 0)} {s}" for s in ("new", "grown", "shrunk", "changed"))
    print(f"{len(rows)} accounts moved since the snapshot ({counts}), {closed} closed; the change log holds "
          f"{ops.get('insert', 0)} inserts, {ops.get('update', 0)} updates, {ops.get('delete', 0)} deletes; "
          f"insight for {len(rows)} accounts in {out}")
    print(f"  {'account_id':>10} {'limit then':>10} {'limit now':>9} {'products +':>10} {'events':>6} {'score':>5}  status")
    pick = lambda st: [r for r in rows if r["status"] == st]  # noqa: E731  (rows are by score, highest first)
    shown = pick("grown")[:3] + pick("new")[:2] + pick("changed")[:1] + pick("shrunk")[::-1][:2]
    for r in shown:
        then = "-" if r["limit_then"] is None else r["limit_then"]
        print(f"  {r['account_id']:>10} {then:>10} {r['limit_now']:>9} {r['products_added']:>10} {r['events']:>6} "
              f"{r['score']:>5}  {r['status']}")
    if len(rows) > len(shown):
        print(f"  ... ({len(rows) - len(shown)} more)")


if __name__ == "__main__":
    main()
