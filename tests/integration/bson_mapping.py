"""The BSON -> Delta mapping of docs/type-mapping.md, as a checker: does a table row (in the
JSON form of docs/json-form.md, e.g. from parquet_jsonform.table_rows of what delta-rs or Spark
read) hold exactly a MongoDB document? Values the table could not hold must be in the row's
_rescued_data under their path, as Extended JSON that parses back to the same BSON."""
import base64
import datetime as dt
import decimal
import json
import math
import uuid

import bson
from bson import json_util
from bson.binary import Binary
from bson.code import Code
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

CODEC = bson.CodecOptions(tz_aware=True, datetime_conversion=bson.DatetimeConversion.DATETIME_AUTO)
JSON_OPTIONS = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, tz_aware=True,
                                     datetime_conversion=bson.DatetimeConversion.DATETIME_AUTO)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def canonical(v):
    """A BSON value as parsed canonical Extended JSON (to compare values whatever the spacing)."""
    return json.loads(json_util.dumps({"v": v}, json_options=JSON_OPTIONS))["v"]


def _ms(v):
    if isinstance(v, bson.DatetimeMS):
        return int(v)
    return (v - EPOCH) // dt.timedelta(milliseconds=1)


def _iso_ms(ms):
    d = EPOCH + dt.timedelta(milliseconds=ms)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond:06d}Z"


class Mismatch(AssertionError):
    pass


def _same_number(got, want):
    if isinstance(got, str):  # NaN / infinities are spelled out in the JSON form
        return (got == "NaN" and math.isnan(want)) or (got == "Infinity" and want == math.inf) or \
            (got == "-Infinity" and want == -math.inf)
    return got == want and (not isinstance(want, float) or math.copysign(1, got) == math.copysign(1, want))


def value_matches(got, v):
    """Whether a table value (JSON form) is BSON value v under the mapping. None when the
    value could not be held there (the caller then looks in _rescued_data)."""
    if v is None:
        return got is None
    if got is None:
        return None
    if isinstance(v, bool):
        return got is v
    if isinstance(v, (int, Int64)) and not isinstance(v, bool):
        return not isinstance(got, str) and got == int(v)
    if isinstance(v, float):
        return _same_number(got, v)
    if isinstance(v, str):
        return got == v
    if isinstance(v, ObjectId):
        return got == str(v)
    if isinstance(v, (dt.datetime, bson.DatetimeMS)):
        return got == _iso_ms(_ms(v))
    if isinstance(v, Decimal128):
        d = v.to_decimal()
        if d.is_nan() or d.is_infinite() or not isinstance(got, str):
            return got == str(v)
        try:
            return decimal.Decimal(got) == d and (got == str(v) or "E" not in got)
        except decimal.InvalidOperation:
            return got == str(v)
    if isinstance(v, uuid.UUID):
        return got == str(v)
    if isinstance(v, Binary):
        if v.subtype in (3, 4) and len(v) == 16:
            return got == str(uuid.UUID(bytes=bytes(v)))
        return got == base64.b64encode(bytes(v)).decode()
    if isinstance(v, bytes):
        return got == base64.b64encode(v).decode()
    if isinstance(v, Timestamp):
        return got == {"t": v.time, "i": v.inc}
    if isinstance(v, (Regex, Code, MinKey, MaxKey, DBRef)) or type(v).__name__ in ("DBPointer", "Symbol"):
        try:
            return json.loads(got) == canonical(v)
        except (TypeError, ValueError):
            return False
    if isinstance(v, list):
        return isinstance(got, list) and len(got) == len(v)  # elements are checked by the walker
    if isinstance(v, dict):
        return isinstance(got, dict)
    raise TypeError(f"no mapping for {type(v)}")


def check_row(row, doc):
    """Raises Mismatch when the table row is not the document under the mapping."""
    rescued_text = row.get("_rescued_data")
    rescued = json.loads(rescued_text) if rescued_text else {}
    used = set()

    def walk(got, v, path):
        if not value_matches(got, v):
            if got is None and path in rescued and rescued[path] == canonical(v):
                used.add(path)
                return
            raise Mismatch(f"{path}: table has {got!r}, document has {v!r}"
                           f"{' (rescued: ' + json.dumps(rescued.get(path)) + ')' if path in rescued else ''}")
        if isinstance(v, dict):
            for k, x in v.items():
                p = f"{path}.{k}"
                if k in got:
                    walk(got[k], x, p)
                elif p in rescued and rescued[p] == canonical(x):
                    used.add(p)
                elif x is not None:
                    raise Mismatch(f"{p}: not in the table, not rescued")
            for k, x in got.items():
                if k not in v and x is not None:
                    raise Mismatch(f"{path}.{k}: table has {x!r}, the document has no such field")
        elif isinstance(v, list):
            for i, (g, x) in enumerate(zip(got, v)):
                walk(g, x, f"{path}.{i}")

    for k, v in doc.items():
        if k in row and k != "_rescued_data":
            walk(row[k], v, k)
        elif v is not None or k in rescued:
            if k in rescued and rescued[k] == canonical(v):
                used.add(k)
            else:
                raise Mismatch(f"{k}: not a column of the table, not rescued")
    for k, x in row.items():
        if k != "_rescued_data" and k not in doc and x is not None:
            raise Mismatch(f"{k}: table has {x!r}, the document has no such field")
    extra = set(rescued) - used
    if extra:
        raise Mismatch(f"_rescued_data holds {sorted(extra)} that match no value of the document")


def check_table(rows, docs):
    """Every document once, as its row (rows keyed by the JSON form of _id)."""
    def key(v):
        return json.dumps(v, sort_keys=True)
    by_id = {}
    for r in rows:
        k = key(r["_id"])
        assert k not in by_id, f"_id {r['_id']} twice in the table"
        by_id[k] = r
    assert len(by_id) == len(docs), f"{len(by_id)} rows for {len(docs)} documents"
    for d in docs:
        v = d["_id"]
        form = str(v) if isinstance(v, (ObjectId, str)) else int(v) if isinstance(v, (int, Int64)) else None
        if form is not None and key(form) in by_id:
            matched = [by_id[key(form)]]
        else:
            matched = [r for r in by_id.values() if value_matches(r["_id"], v)]
        assert len(matched) == 1, f"document _id {d['_id']!r}: {len(matched)} rows"
        try:
            check_row(matched[0], d)
        except Mismatch as e:
            raise Mismatch(f"document _id {d['_id']!r}: {e}") from None
