"""The mongodump file of bench/load_bench.py: N order-like documents of about 1 KB, from a fixed
seed (the same file on every machine). Nested documents, arrays of documents and of strings,
strings of low, middle and high cardinality, dates, Decimal128, int32/int64/double/bool, and
fields missing from some documents.
Usage: python bench/load_gen.py --docs N --out FILE.bson"""
import argparse
import datetime
import decimal
import os
import random

import bson
from bson.decimal128 import Decimal128
from bson.objectid import ObjectId

COUNTRIES = ["US", "DE", "FR", "IN", "BR", "JP", "GB", "CN", "NG", "MX", "CA", "ES"]
STATUSES = ["new", "paid", "shipped", "delivered", "returned", "cancelled"]
TIERS = ["free", "silver", "gold", "platinum"]
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar "
         "papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()
EPOCH = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)


def doc(i, rnd):
    cities = 2000  # middle cardinality
    created = EPOCH + datetime.timedelta(milliseconds=rnd.randrange(5 * 365 * 86400 * 1000))
    items = []
    total = decimal.Decimal(0)
    for k in range(rnd.randint(1, 5)):
        price = decimal.Decimal(rnd.randrange(100, 100000)) / 100
        qty = rnd.randint(1, 9)
        total += price * qty
        item = {"sku": f"SKU-{rnd.randrange(20000):05d}", "qty": qty, "price": Decimal128(price),
                "name": " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 4)))}
        if rnd.random() < 0.5:
            item["tags"] = [rnd.choice(WORDS) for _ in range(rnd.randint(0, 3))]
        items.append(item)
    d = {
        "_id": ObjectId(i.to_bytes(4, "big") + rnd.randbytes(8)),
        "orderNo": i,  # int32 when small enough: kept so (int32 only)
        "status": rnd.choice(STATUSES),
        "created": created,
        "customer": {
            "id": rnd.randrange(1 << 40),  # int64
            "name": f"{rnd.choice(WORDS).title()} {rnd.choice(WORDS).title()}-{rnd.randrange(100000)}",
            "email": f"user{rnd.randrange(10**9)}@example.com",
            "tier": rnd.choice(TIERS),
            "address": {"street": f"{rnd.randrange(1, 9999)} {rnd.choice(WORDS).title()} Street",
                        "city": f"City-{rnd.randrange(cities)}", "country": rnd.choice(COUNTRIES),
                        "zip": f"{rnd.randrange(100000):05d}"},
        },
        "items": items,
        "total": Decimal128(total.quantize(decimal.Decimal("0.01"))),
        "score": rnd.random() * 100,
        "gift": rnd.random() < 0.1,
        "tags": [rnd.choice(WORDS) for _ in range(rnd.randint(0, 4))],
        "note": " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(15, 50))),
    }
    if rnd.random() < 0.7:  # missing from 30%
        d["shipped"] = created + datetime.timedelta(hours=rnd.randint(1, 240))
    if rnd.random() < 0.2:
        d["discount"] = Decimal128(decimal.Decimal(rnd.randrange(0, 5000)) / 100)
    if rnd.random() < 0.5:
        d["payment"] = {"method": rnd.choice(["card", "paypal", "transfer"]),
                        "ref": f"{rnd.randrange(1 << 64):016x}", "at": created + datetime.timedelta(minutes=rnd.randint(0, 60))}
    return d


def write(n, out, seed=14):
    rnd = random.Random(seed)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        for i in range(n):
            f.write(bson.encode(doc(i, rnd)))
    os.replace(tmp, out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    write(a.docs, a.out)
