"""The demo's application: changes sample_analytics.accounts while `mongo2delta sync` follows it.

Usage: demo_writer.py URI DB COLLECTION [--seed N] [--seconds S]

New accounts are opened, existing ones get their limit raised or lowered (in steps of 1000) and
new products, a few are closed (deleted); the operations are interleaved and paced over about S
seconds so that sync commits them in several batches. An account is either updated or deleted,
never both. Prints one line: what it did and how many change events that makes (the operations
that changed a document), which is what the demo waits for the mirror to have applied.
"""
import argparse
import random
import time

import pymongo

PRODUCTS = ["Brokerage", "Commodity", "CurrencyService", "Derivatives", "InvestmentFund", "InvestmentStock"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("uri")
    ap.add_argument("db")
    ap.add_argument("collection")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    coll = pymongo.MongoClient(a.uri, serverSelectionTimeoutMS=10000)[a.db][a.collection]
    existing = sorted(coll.distinct("_id"))
    chosen = rnd.sample(existing, 70)
    updated, closed = chosen[:60], chosen[60:]

    ops = [("insert", 900001 + k) for k in range(20)]
    for _id in updated:
        ops += [("update", _id)] * rnd.randint(1, 3)
    ops += [("delete", _id) for _id in closed]
    rnd.shuffle(ops)

    counts = {"insert": 0, "update": 0, "delete": 0}
    start = time.monotonic()
    pause = a.seconds / len(ops)
    for op, arg in ops:
        if op == "insert":
            coll.insert_one({"account_id": arg, "limit": rnd.randrange(3, 11) * 1000,
                             "products": rnd.sample(PRODUCTS, rnd.randint(1, 3))})
            changed = True
        elif op == "update":
            if rnd.random() < 0.6:
                change = {"$inc": {"limit": rnd.choice([-2000, -1000, 1000, 2000, 3000, 5000])}}
            else:
                change = {"$addToSet": {"products": rnd.choice(PRODUCTS)}}  # no change if held already
            changed = coll.update_one({"_id": arg}, change).modified_count == 1
        else:
            changed = coll.delete_one({"_id": arg}).deleted_count == 1
        counts[op] += changed
        time.sleep(pause)
    events = sum(counts.values())
    print(f"{counts['insert']} inserts, {counts['update']} updates, {counts['delete']} deletes on {a.db}.{a.collection} "
          f"in {time.monotonic() - start:.1f} s ({events} change events)")


if __name__ == "__main__":
    main()
