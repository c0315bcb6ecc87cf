"""The BSON -> Delta mapping of docs/type-mapping.md, as a checker: does a table row (in the
JSON form of docs/json-form.md, e.g. from parquet_jsonform.table_rows of what delta-rs or Spark
read) hold exactly a MongoDB document? Values the table could not hold must be in the row's
_rescued_data under their path, as Extended JSON that parses back to the same BSON."""
import base64
import datetime as dt
import decimal
import json
import math
import struct
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


class Symbol(str):
    """BSON symbol (0x0E); pymongo decodes it as a plain str, which would lose the type."""

    def __repr__(self):
        return f"Symbol({str(self)!r})"


class DBPointer:
    """BSON dbPointer (0x0C); pymongo decodes it as a DBRef, which would lose the type."""

    def __init__(self, ref, oid):
        self.ref, self.id = ref, oid

    def __eq__(self, o):
        return isinstance(o, DBPointer) and (self.ref, self.id) == (o.ref, o.id)

    def __repr__(self):
        return f"DBPointer({self.ref!r}, {self.id!r})"


class Undefined:
    """BSON undefined (0x06); pymongo decodes it as None, which would lose the type."""

    def __eq__(self, o):
        return isinstance(o, Undefined)

    def __repr__(self):
        return "Undefined"


# --- a BSON encoder that keeps every type (pymongo cannot write symbol, undefined, dbPointer) ---

def _bstr(s):
    b = s.encode()
    return struct.pack("<i", len(b) + 1) + b + b"\x00"


def encode_elem(key, v):
    """One element (type byte, key, value) as BSON."""
    k = key.encode() + b"\x00"
    if isinstance(v, Symbol):
        return b"\x0e" + k + _bstr(str(v))
    if isinstance(v, DBPointer):
        return b"\x0c" + k + _bstr(v.ref) + v.id.binary
    if isinstance(v, Undefined):
        return b"\x06" + k
    if isinstance(v, dict):
        return b"\x03" + k + encode(v)
    if isinstance(v, list):
        return b"\x04" + k + encode({str(i): x for i, x in enumerate(v)})
    if isinstance(v, Code) and v.scope is not None:
        body = _bstr(str(v)) + encode(v.scope)
        return b"\x0f" + k + struct.pack("<i", len(body) + 4) + body
    return bson.encode({key: v})[4:-1]


def encode(doc):
    body = b"".join(encode_elem(k, v) for k, v in doc.items()) + b"\x00"
    return struct.pack("<i", len(body) + 4) + body


def canonical(v):
    """A BSON value as parsed canonical Extended JSON (to compare values whatever the spacing)."""
    if isinstance(v, Symbol):
        return {"$symbol": str(v)}
    if isinstance(v, DBPointer):
        return {"$dbPointer": {"$ref": v.ref, "$id": {"$oid": str(v.id)}}}
    if isinstance(v, Undefined):
        return {"$undefined": True}
    if isinstance(v, dict) and not isinstance(v, DBRef):
        return {k: canonical(x) for k, x in v.items()}
    if isinstance(v, list):
        return [canonical(x) for x in v]
    if isinstance(v, Code) and v.scope is not None:
        return {"$code": str(v), "$scope": canonical(v.scope)}
    return json.loads(json_util.dumps({"v": v}, json_options=JSON_OPTIONS))["v"]


def _extjson_hook(pairs):
    keys = [k for k, _ in pairs]
    d = dict(pairs)
    if keys == ["$symbol"]:
        return Symbol(d["$symbol"])
    if keys == ["$undefined"]:
        return Undefined()
    if keys == ["$dbPointer"]:
        return DBPointer(d["$dbPointer"]["$ref"], d["$dbPointer"]["$id"])
    if "$ref" in d:
        return d  # in BSON a DBRef is an ordinary embedded document
    return json_util.object_pairs_hook(pairs, JSON_OPTIONS)


def parse_extjson(text):
    """Canonical Extended JSON text -> the BSON value, types kept (unlike json_util for the
    deprecated symbol, undefined and dbPointer, and for DBRef-shaped documents)."""
    return json.loads(text, object_pairs_hook=_extjson_hook)


def parse_rescued(text):
    """A _rescued_data value -> {path: BSON value}. Each value is parsed on its own, so that a
    path named like an Extended JSON key ("$date") is not taken for one."""
    return {k: parse_extjson(json.dumps(x)) for k, x in json.loads(text).items()}


def _float_bits(x):
    return struct.pack("<d", x)


def _bson_form(v):
    """What pymongo would encode v as, where the Python type alone leaves it open."""
    if type(v) is int and not -2 ** 31 <= v < 2 ** 31:
        return Int64(v)  # pymongo writes a large int as int64
    if isinstance(v, DBRef):
        return dict(v.as_doc())
    if type(v) is bytes:
        return Binary(v, 0)  # pymongo gives binary subtype 0 as bytes
    return v


def same_value(a, b):
    """Whether BSON values a and b are the same, BSON types included (Int64 is not int32, a
    symbol is not a string). Doubles compare bit for bit except NaNs (Extended JSON has one
    NaN), Decimal128 by their canonical string (likewise)."""
    a, b = _bson_form(a), _bson_form(b)
    if isinstance(b, (dt.datetime, bson.DatetimeMS)):
        return isinstance(a, (dt.datetime, bson.DatetimeMS)) and _ms(a) == _ms(b)
    if type(a) is not type(b):
        return False
    if isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or _float_bits(a) == _float_bits(b)
    if isinstance(b, Decimal128):
        return str(a) == str(b)
    if isinstance(b, dict):
        return list(a) == list(b) and all(same_value(a[k], b[k]) for k in b)
    if isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(b, Code):
        return str(a) == str(b) and (a.scope is None) == (b.scope is None) and \
            (b.scope is None or same_value(a.scope, b.scope))
    if isinstance(b, Regex):
        return a.pattern == b.pattern and a.flags == b.flags
    if isinstance(b, Binary):
        return a.subtype == b.subtype and bytes(a) == bytes(b)
    return a == b


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
    if isinstance(v, (Regex, Code, MinKey, MaxKey, Symbol, DBPointer, Undefined)):
        # string (canonical Extended JSON); compared parsed, types kept
        try:
            return same_value(parse_extjson(got), v)
        except (TypeError, ValueError, KeyError):
            return False
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
    if isinstance(v, list):
        return isinstance(got, list) and len(got) == len(v)  # elements are checked by the walker
    if isinstance(v, (dict, DBRef)):  # a DBRef is an embedded document in BSON
        return isinstance(got, dict)
    raise TypeError(f"no mapping for {type(v)}")


def check_row(row, doc):
    """Raises Mismatch when the table row is not the document under the mapping."""
    rescued_text = row.get("_rescued_data")
    rescued = parse_rescued(rescued_text) if rescued_text else {}
    used = set()

    def is_rescued(path, v):
        return path in rescued and same_value(rescued[path], v)

    def walk(got, v, path):
        if isinstance(v, DBRef):
            v = dict(v.as_doc())
        if not value_matches(got, v):
            if got is None and is_rescued(path, v):
                used.add(path)
                return
            raise Mismatch(f"{path}: table has {got!r}, document has {v!r}"
                           f"{' (rescued: ' + repr(rescued.get(path)) + ')' if path in rescued else ''}")
        if isinstance(v, dict):
            for k, x in v.items():
                p = f"{path}.{k}"
                if k in got:
                    walk(got[k], x, p)
                elif is_rescued(p, x):
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
            if is_rescued(k, v):
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
    """Every document once, as its row (rows keyed by the JSON form of _id, or by the _id kept in
    _rescued_data when the _id column could not hold it)."""
    def key(v):
        return json.dumps(v, sort_keys=True)

    def rescued_id(r):
        rescued = parse_rescued(r["_rescued_data"]) if r["_id"] is None and r.get("_rescued_data") else {}
        return rescued.get("_id")

    by_id = {}
    for r in rows:
        k = key(r["_id"]) if r["_id"] is not None else key({"rescued": canonical(rescued_id(r))})
        assert k not in by_id, f"_id {r['_id'] if r['_id'] is not None else rescued_id(r)} twice in the table"
        by_id[k] = r
    assert len(by_id) == len(docs), f"{len(by_id)} rows for {len(docs)} documents"
    for d in docs:
        v = d["_id"]
        form = str(v) if isinstance(v, (ObjectId, str)) else int(v) if isinstance(v, (int, Int64)) else None
        if form is not None and key(form) in by_id:
            matched = [by_id[key(form)]]
        else:
            matched = [r for r in by_id.values() if value_matches(r["_id"], v) or
                       (r["_id"] is None and "_id" in (parse_rescued(r["_rescued_data"]) if r.get("_rescued_data") else {})
                        and same_value(rescued_id(r), v))]
        assert len(matched) == 1, f"document _id {d['_id']!r}: {len(matched)} rows"
        try:
            check_row(matched[0], d)
        except Mismatch as e:
            raise Mismatch(f"document _id {d['_id']!r}: {e}") from None


# --- the types the mapping gives (design.md's table), to say which values must be rescued ---

MAX_STRUCT_FIELDS = 256  # an embedded document with more distinct keys becomes a map
MIN_DATE_MS, MAX_DATE_MS = -62135596800000, 253402300799999  # years 0001 to 9999


class DType:
    """A column type as the mapping learns it. kind: null (only nulls seen), integer, long,
    double, boolean, string, binary, timestamp, decimal, struct, array, map. orig: the BSON type
    kept in the field metadata. unfit: the type of a value no column can hold (a date outside
    years 1-9999): it makes a field a date field, but widens nothing."""

    def __init__(self, kind, orig=None, p=None, s=None, fields=None, elem=None, unfit=False):
        self.kind, self.orig, self.p, self.s, self.elem, self.unfit = kind, orig, p, s, elem, unfit
        self.fields = fields if fields is not None else []  # [[name, DType]], in order

    def field(self, name):
        return next((f for f in self.fields if f[0] == name), None)

    def __repr__(self):
        if self.kind == "struct":
            return "struct<" + ", ".join(f"{n}: {t!r}" for n, t in self.fields) + ">"
        if self.kind in ("array", "map"):
            return f"{self.kind}<{self.elem!r}>"
        if self.kind == "decimal":
            return f"decimal({self.p},{self.s})"
        return self.kind + (f"[{self.orig}]" if self.orig else "")


def decimal_shape(v):
    """(precision, scale) of the smallest decimal holding finite Decimal128 v exactly, keeping
    its scale (12.50 -> (4, 2)); None for NaN and infinities."""
    d = v.to_decimal()
    if not d.is_finite():
        return None
    _, digits, exp = d.as_tuple()
    scale = max(0, -exp)
    intd = 0 if d.is_zero() else max(0, d.adjusted() + 1)
    return max(1, intd + scale), scale


def value_type(v):
    """The type one BSON value gets on its own."""
    if v is None:
        return DType("null")
    if isinstance(v, (Regex, Code, MinKey, MaxKey, Symbol, DBPointer, Undefined)):
        return DType("string", "extjson")
    if isinstance(v, bool):
        return DType("boolean")
    if isinstance(v, Int64) or (type(v) is int and not -2 ** 31 <= v < 2 ** 31):
        return DType("long")
    if isinstance(v, int):
        return DType("integer")
    if isinstance(v, float):
        return DType("double")
    if isinstance(v, str):
        return DType("string")
    if isinstance(v, ObjectId):
        return DType("string", "objectId")
    if isinstance(v, (dt.datetime, bson.DatetimeMS)):
        return DType("timestamp", "date", unfit=not MIN_DATE_MS <= _ms(v) <= MAX_DATE_MS)
    if isinstance(v, Decimal128):
        shape = decimal_shape(v)
        if shape and shape[0] <= 38:
            return DType("decimal", "decimal128", *shape)
        return DType("string", "decimal128")
    if isinstance(v, uuid.UUID):
        return DType("string", "uuid")
    if isinstance(v, Binary):
        if len(v) == 16 and v.subtype in (3, 4):
            return DType("string", "uuid" if v.subtype == 4 else "uuidLegacy")
        return DType("binary")
    if isinstance(v, bytes):
        return DType("binary")
    if isinstance(v, Timestamp):
        return DType("struct", "timestamp", fields=[["t", DType("long")], ["i", DType("long")]])
    if isinstance(v, DBRef):
        v = dict(v.as_doc())
    if isinstance(v, dict):
        t = DType("struct")
        for k, x in v.items():
            f = t.field(k)
            if f:
                f[1] = merge(f[1], value_type(x))
            else:
                t.fields.append([k, merge(DType("null"), value_type(x))])
        return _maybe_map(t)
    if isinstance(v, list):
        e = DType("null")
        for x in v:
            e = merge(e, value_type(x))
        return DType("array", elem=e)
    raise TypeError(f"no mapping for {type(v)}")


def _maybe_map(t):
    if t.kind == "struct" and t.orig is None and len(t.fields) > MAX_STRUCT_FIELDS:
        e = DType("null")
        for _, ft in t.fields:
            e = merge(e, ft)
        return DType("map", elem=e)
    return t


def merge(e, o):
    """The type of a field that had type e and now sees a value of type o: nulls and unfit
    values change nothing, the first type otherwise stays, except the widenings of the mapping
    (int32 and int64 -> long, integers and doubles -> double, decimals -> the smallest decimal
    holding both, or an exact string past 38 digits), and documents gaining fields."""
    if o.kind == "null":
        return e
    if e.kind == "null":
        return DType(o.kind, o.orig) if o.unfit else o  # a date field: the value is rescued
    if o.unfit:
        return e
    if e.kind == "struct" and o.kind == "struct" and e.orig == o.orig:
        for name, ot in o.fields:
            f = e.field(name)
            if f:
                f[1] = merge(f[1], ot)
            else:
                e.fields.append([name, ot])
        return _maybe_map(e)
    if e.kind == "map" and o.kind == "struct" and o.orig is None:
        for _, ot in o.fields:
            e.elem = merge(e.elem, ot)
        return e
    if (e.kind, o.kind) in (("array", "array"), ("map", "map")):
        e.elem = merge(e.elem, o.elem)
        return e
    if e.orig == "decimal128" and o.orig == "decimal128":
        if e.kind == "decimal" and o.kind == "decimal":
            intd, s = max(e.p - e.s, o.p - o.s), max(e.s, o.s)
            if intd + s <= 38:
                return DType("decimal", "decimal128", intd + s, s)
        return DType("string", "decimal128")  # design.md: a string, exact, once one value does not fit
    if e.kind == o.kind and e.orig == o.orig:
        return e
    if {e.kind, o.kind} <= {"integer", "long"}:
        return DType("long")
    if {e.kind, o.kind} <= {"integer", "long", "double"}:
        return DType("double")
    return e  # a conflict: the established type stays, the value is rescued


def infer(docs):
    """The table type of a sequence of documents (a struct, _id first), with the fields that
    can have no column (documents only ever empty) and case-insensitive duplicates removed."""
    root = DType("struct")
    for d in docs:
        for k, x in d.items():
            f = root.field(k)
            if f:
                f[1] = merge(f[1], value_type(x))
            elif k == "_id":
                root.fields.insert(0, [k, merge(DType("null"), value_type(x))])
            else:
                root.fields.append([k, merge(DType("null"), value_type(x))])
    _strip(root)
    return root


def _strip(t):
    """Drops fields with no column; True when t itself has none."""
    if t.kind in ("array", "map"):
        return _strip(t.elem)
    if t.kind != "struct":
        return False
    kept = []
    for name, ft in t.fields:
        if any(n.lower() == name.lower() for n, _ in kept) or _strip(ft):
            continue
        kept.append([name, ft])
    t.fields = kept
    return not kept


def delta_type(t):
    """t as a Delta schema type (the JSON of the Delta protocol), without metadata."""
    if t.kind == "struct":
        return {"type": "struct", "fields": [{"name": n, "type": delta_type(ft), "bsonType": ft.orig}
                                             for n, ft in t.fields]}
    if t.kind == "array":
        return {"type": "array", "elementType": delta_type(t.elem)}
    if t.kind == "map":
        return {"type": "map", "keyType": "string", "valueType": delta_type(t.elem)}
    if t.kind == "decimal":
        return f"decimal({t.p},{t.s})"
    return "string" if t.kind == "null" else t.kind


def schema_shape(schema_json):
    """A Delta schema (parsed schemaString) in the form delta_type gives."""
    if isinstance(schema_json, str):
        return schema_json
    k = schema_json["type"]
    if k == "struct":
        return {"type": "struct", "fields": [{"name": f["name"], "type": schema_shape(f["type"]),
                                              "bsonType": f.get("metadata", {}).get("mongo2delta.bsonType")}
                                             for f in schema_json["fields"]]}
    if k == "array":
        return {"type": "array", "elementType": schema_shape(schema_json["elementType"])}
    if k == "map":
        return {"type": "map", "keyType": schema_shape(schema_json["keyType"]),
                "valueType": schema_shape(schema_json["valueType"])}
    raise ValueError(k)


def fits(t, v):
    """Whether a primitive BSON value can be held by a column of type t."""
    k = t.kind
    if k == "boolean":
        return isinstance(v, bool)
    if isinstance(v, bool):
        return False
    vt = value_type(v)
    if k == "integer":
        return vt.kind == "integer"
    if k == "long":
        return vt.kind in ("integer", "long")
    if k == "double":
        return vt.kind in ("integer", "double") or (vt.kind == "long" and abs(int(v)) <= 2 ** 53)
    if k == "decimal":
        if vt.kind != "decimal":
            return False
        with decimal.localcontext() as ctx:
            ctx.prec = 100
            d = v.to_decimal()
            return d == d.quantize(decimal.Decimal(1).scaleb(-t.s)) and vt.p - vt.s <= t.p - t.s
    if k == "string" and t.orig == "decimal128":
        return isinstance(v, Decimal128)
    return vt.kind == k and vt.orig == t.orig and not vt.unfit


def expected_rescues(table_type, doc):
    """[(path, value)] of the values of doc that the table type cannot hold (by design.md:
    values that do not fit their column's established type, unfit dates, fields without a
    column), in document order."""
    out = []

    def walk(t, v, path):
        if v is None:
            return
        if isinstance(v, DBRef):
            v = dict(v.as_doc())
        if t is None or t.kind == "null":
            out.append((path, v))
        elif t.kind == "struct" and t.orig is None:
            if not isinstance(v, dict):
                out.append((path, v))
                return
            seen = set()
            for k, x in v.items():
                f = t.field(k)
                walk(f[1] if f and k not in seen else None, x, f"{path}.{k}")
                seen.add(k)
        elif t.kind == "map":
            if not isinstance(v, dict):
                out.append((path, v))
                return
            for k, x in v.items():
                walk(t.elem, x, f"{path}.{k}")
        elif t.kind == "array":
            if not isinstance(v, list):
                out.append((path, v))
                return
            for i, x in enumerate(v):
                walk(t.elem, x, f"{path}.{i}")
        elif t.kind == "struct":  # BSON timestamp
            if not isinstance(v, Timestamp):
                out.append((path, v))
        elif not fits(t, v):
            out.append((path, v))

    for k, x in doc.items():
        f = table_type.field(k)
        walk(f[1] if f else None, x, k)
    return out


# --- one document per BSON type: {"_id": FIELD, FIELD: value}, the README's table --------------
# (field, value, BSON type, the value as Extended JSON). tests/integration/test_snapshot.py pins
# what snapshot writes for each (ONE_PER_TYPE_TABLE); bench/snapshot_bench.py puts the same
# documents through the MongoDB Spark Connector. The test server refuses symbol, dbPointer, code
# with scope and binary subtypes other than 0, 3, 4 and 0x80, and stores undefined as null.
_UUID = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
ONE_PER_TYPE = [
    ("double", 1.5, "double", "1.5"),
    ("string", "héllo", "string", '"héllo"'),
    ("document", {"a": 1, "b": "x"}, "embedded document", '{"a": 1, "b": "x"}'),
    ("array", [1, 2], "array", "[1, 2]"),
    ("binary", Binary(b"\x00\x01\x02", 0), "binary (subtype 0)", '{"$binary": {"base64": "AAEC", "subType": "00"}}'),
    ("uuid", Binary(_UUID.bytes, 4), "binary subtype 4 (UUID)",
     '{"$binary": {"base64": "ASNFZ4mrze8BI0VniavN7w==", "subType": "04"}}'),
    ("uuid_legacy", Binary(_UUID.bytes, 3), "binary subtype 3 (legacy UUID)",
     '{"$binary": {"base64": "ASNFZ4mrze8BI0VniavN7w==", "subType": "03"}}'),
    ("binary_md5", Binary(bytes(range(16)), 5), "binary subtype 5 (MD5)",
     '{"$binary": {"base64": "AAECAwQFBgcICQoLDA0ODw==", "subType": "05"}}'),
    ("undefined", Undefined(), "undefined", '{"$undefined": true}'),
    ("objectid", ObjectId("5f1a2b3c4d5e6f7081920a1b"), "ObjectId", '{"$oid": "5f1a2b3c4d5e6f7081920a1b"}'),
    ("bool", True, "bool", "true"),
    ("date", dt.datetime(2021, 5, 6, 7, 8, 9, 123000, tzinfo=dt.timezone.utc), "date",
     '{"$date": "2021-05-06T07:08:09.123Z"}'),
    ("date_far", bson.DatetimeMS(-77777777777777), "date outside years 0001-9999",
     '{"$date": {"$numberLong": "-77777777777777"}}'),
    ("null", None, "null", "null"),
    ("regex", Regex("^a", "i"), "regex", '{"$regularExpression": {"pattern": "^a", "options": "i"}}'),
    ("dbpointer", DBPointer("c", ObjectId("5f1a2b3c4d5e6f7081920a1b")), "dbPointer",
     '{"$dbPointer": {"$ref": "c", "$id": {"$oid": "5f1a2b3c4d5e6f7081920a1b"}}}'),
    ("code", Code("function() { return 1; }"), "JavaScript code", '{"$code": "function() { return 1; }"}'),
    ("symbol", Symbol("sym"), "symbol", '{"$symbol": "sym"}'),
    ("code_w_scope", Code("f(x)", {"x": 1}), "code with scope", '{"$code": "f(x)", "$scope": {"x": 1}}'),
    ("int32", 7, "int32", '{"$numberInt": "7"}'),
    ("timestamp", Timestamp(1600000000, 7), "timestamp", '{"$timestamp": {"t": 1600000000, "i": 7}}'),
    ("int64", Int64(5000000000), "int64", '{"$numberLong": "5000000000"}'),
    ("decimal", Decimal128("-12.50"), "Decimal128", '{"$numberDecimal": "-12.50"}'),
    ("decimal_big", Decimal128("1E+100"), "Decimal128 beyond 38 digits", '{"$numberDecimal": "1E+100"}'),
    ("minkey", MinKey(), "minKey", '{"$minKey": 1}'),
    ("maxkey", MaxKey(), "maxKey", '{"$maxKey": 1}'),
]


def check_spark_table(spark, table, docs):
    """check_table over the rows Spark reads from the Delta table at table."""
    from parquet_jsonform import table_rows
    check_table(table_rows(spark.read.format("delta").load(str(table)).toArrow()), docs)
