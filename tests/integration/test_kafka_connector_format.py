"""kafka-ingest applies what the MongoDB Kafka source connector writes (issue 13, acceptance 5).

The records below are built here from the connector's documentation (its JSON formatters
DefaultJson, ExtendedJson and SimplifiedJson; the copy-existing records; the string and JSON
converters, with and without schemas; the schema output with its default value schema;
publish.full.document.only with tombstones; change.stream.full.document) and from MongoDB's
change event reference. Each field says what the connector writes there and what kafka-ingest
does with it. confluent-kafka writes the records into a topic of the real test broker,
kafka-ingest applies them (--mode both, copy-on-write so that delta-rs reads the mirror), and the
test reads the tables back: the mirror must hold exactly the documents expected, field by field
and type by type, and the change log one row per event in offset order. Records the connector
writes that change no document (an update without its full document, a drop, an invalidate) must
land in the dead-letter topic with Kafka Connect's error headers, key and value unchanged."""
import base64
import datetime as dt
import json
import time
import uuid

import pyarrow as pa
import pytest
from bson import json_util
from bson.binary import Binary
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.timestamp import Timestamp
from deltalake import DeltaTable

from bson_mapping import check_row, check_table
import delta_log
from conftest import run_m2d
from parquet_jsonform import table_rows

UTC = dt.timezone.utc
CANONICAL = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC)

# --- the collection's documents, as MongoDB holds them (pymongo's BSON types) ----------------

A, B, C, D, E = (ObjectId(f"65a1b2c3d4e5f60718293a{n:02x}") for n in range(1, 6))
UID = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")


def customer(_id, name, city, visits, joined, prices):
    """A document with every type the formatters write differently."""
    return {
        "_id": _id,                                    # ObjectId
        "name": name,                                  # string
        "joined": joined,                              # date (milliseconds since the epoch)
        "visits": Int64(visits),                       # int64 beyond 2^31
        "level": Int64(3),                             # int64 that an int32 could hold
        "age": 41,                                     # int32
        "ratio": 0.25,                                 # double
        "prices": prices,                              # array of Decimal128
        "scores": [1.5, 2.0],                          # array of doubles (2.0 is still a double)
        "photo": Binary(b"\x89PNG\x00\x01", 0),        # binary, generic subtype
        "uid": Binary(UID.bytes, 4),                   # binary subtype 4: a UUID
        "seen": Timestamp(1700000000, 3),              # BSON timestamp
        "address": {"city": city, "geo": {"lat": 45.07, "lon": 7.69}, "tags": ["home", "work"]},  # nested
        "vip": True,                                   # bool
        "note": None,                                  # null
    }


JOINED = dt.datetime(2023, 5, 11, 8, 27, 7, tzinfo=UTC)
JOINED_MS = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
A0 = customer(A, "ada", "Turin", 5_000_000_000, JOINED, [Decimal128("12.50"), Decimal128("3.99")])
# A after db.customers.updateOne({_id: A}, {$set: {"address.city": "Milan"}, $inc: {visits: 1},
# $unset: {photo: ""}, $pop: {prices: 1}}): what updateLookup reads back afterwards
A1 = {k: v for k, v in A0.items() if k != "photo"} | {
    "visits": Int64(5_000_000_001), "prices": [Decimal128("12.50")],
    "address": {"city": "Milan", "geo": {"lat": 45.07, "lon": 7.69}, "tags": ["home", "work"]}}
B0 = customer(B, "bob", "Lyon", 3_000_000_000, JOINED_MS, [Decimal128("0.10")])
# B replaced as a whole (replaceOne) in a collection sharded on {region: 1, _id: 1}
B1 = {"_id": B, "region": "eu", "name": "bob", "joined": JOINED_MS, "visits": Int64(3_000_000_007),
      "level": Int64(4), "age": 42, "ratio": 0.5, "prices": [Decimal128("99.99")], "scores": [],
      "address": {"city": "Paris", "geo": {"lat": 48.86, "lon": 2.35}, "tags": []}, "vip": False, "note": "moved"}
C0 = customer(C, "cy", "Graz", 4_000_000_000, JOINED, [Decimal128("1.00")])
D0 = customer(D, "dee", "Oslo", 6_000_000_000, JOINED_MS, [Decimal128("2.00")])
E0 = customer(E, "eve", "Bern", 7_000_000_000, JOINED, [Decimal128("7.25")])
NS = {"db": "shop", "coll": "customers"}


# --- the connector's JSON formatters (output.json.formatter) ---------------------------------

def formatted(v, fmt):
    """A BSON value as the formatter writes it (a JSON-able Python value):
    - DefaultJson, the default: the Java driver's legacy strict mode: ObjectId {"$oid"}, dates
      {"$date": <ms>}, int64 {"$numberLong": "<n>"}, Decimal128 {"$numberDecimal"}, binary
      {"$binary": <base64>, "$type": "<hex subtype>"}, timestamps {"$timestamp": {t, i}}; int32,
      doubles, strings, booleans and null as plain JSON.
    - ExtendedJson: canonical Extended JSON (the driver's JsonMode.EXTENDED): every number typed
      ({"$numberInt"}, {"$numberDouble"}, ...), dates {"$date": {"$numberLong": "<ms>"}}, binary
      {"$binary": {"base64", "subType"}}.
    - ExtendedJson-as-documented: the connector's JSON formatter guide shows ExtendedJson output
      with typed numbers but dates and binary in the legacy form ({"$date": <ms>}, {"$binary",
      "$type"}); kafka-ingest must take that too.
    - SimplifiedJson: relaxed Extended JSON with ObjectId as its hex string, Decimal128 as a
      string, dates as ISO-8601 strings (UTC, "Z", milliseconds only when not zero), binary as
      base64 (a UUID, subtype 4, as its canonical string); int64 as a plain number."""
    if isinstance(v, dict):
        return {k: formatted(x, fmt) for k, x in v.items()}
    if isinstance(v, list):
        return [formatted(x, fmt) for x in v]
    canonical = json.loads(json_util.dumps({"v": v}, json_options=CANONICAL))["v"]
    if fmt == "ExtendedJson" or v is None or isinstance(v, (bool, str)):
        return canonical
    ms = (v - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(milliseconds=1) if isinstance(v, dt.datetime) else 0
    if fmt == "ExtendedJson-as-documented":
        if isinstance(v, dt.datetime):
            return {"$date": ms}
        if isinstance(v, Binary):
            return {"$binary": base64.b64encode(bytes(v)).decode(), "$type": f"{v.subtype:02x}"}
        return canonical
    if isinstance(v, (Int64, int, float)):
        return {"$numberLong": str(int(v))} if fmt == "DefaultJson" and isinstance(v, Int64) else \
            (int(v) if isinstance(v, int) else v)
    if isinstance(v, Timestamp):
        return {"$timestamp": {"t": v.time, "i": v.inc}}
    if fmt == "DefaultJson":
        if isinstance(v, dt.datetime):
            return {"$date": ms}
        if isinstance(v, Binary):
            return {"$binary": base64.b64encode(bytes(v)).decode(), "$type": f"{v.subtype:02x}"}
        return canonical  # ObjectId, Decimal128
    assert fmt == "SimplifiedJson", fmt
    if isinstance(v, ObjectId):
        return str(v)
    if isinstance(v, Decimal128):
        return str(v)
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S") + (f".{v.microsecond // 1000:03d}" if v.microsecond else "") + "Z"
    if isinstance(v, Binary):
        return str(uuid.UUID(bytes=bytes(v))) if v.subtype == 4 else base64.b64encode(bytes(v)).decode()
    raise TypeError(type(v))


def simplified(doc):
    """What the mirror holds for a document that came through SimplifiedJson: the strings that
    formatter writes stay strings (an ObjectId _id becomes a string _id, a date a string, ...), and
    an int64 an int32 can hold comes back as an int32 (plain JSON numbers carry no width)."""
    if isinstance(doc, dict):
        return {k: simplified(x) for k, x in doc.items()}
    if isinstance(doc, list):
        return [simplified(x) for x in doc]
    if isinstance(doc, (ObjectId, Decimal128, dt.datetime, Binary)):
        return formatted(doc, "SimplifiedJson")
    if isinstance(doc, Int64):
        return int(doc) if -2 ** 31 <= doc < 2 ** 31 else doc
    return doc


def test_the_formatters_as_documented():
    """The formatters above write what the connector's JSON formatter guide describes, on one
    document (the guide's kinds of values, our own values)."""
    doc = {"_id": A, "w": [Decimal128("12.5"), 23.53], "x": Binary(b"kafka", 0), "y": JOINED,
           "z": {"a": False, "b": 87, "c": "hi"}, "n": Int64(9)}
    assert formatted(doc, "DefaultJson") == {
        "_id": {"$oid": str(A)}, "w": [{"$numberDecimal": "12.5"}, 23.53], "x": {"$binary": "a2Fma2E=", "$type": "00"},
        "y": {"$date": 1683793627000}, "z": {"a": False, "b": 87, "c": "hi"}, "n": {"$numberLong": "9"}}
    assert formatted(doc, "ExtendedJson") == {
        "_id": {"$oid": str(A)}, "w": [{"$numberDecimal": "12.5"}, {"$numberDouble": "23.53"}],
        "x": {"$binary": {"base64": "a2Fma2E=", "subType": "00"}}, "y": {"$date": {"$numberLong": "1683793627000"}},
        "z": {"a": False, "b": {"$numberInt": "87"}, "c": "hi"}, "n": {"$numberLong": "9"}}
    assert formatted(doc, "ExtendedJson-as-documented")["x"] == {"$binary": "a2Fma2E=", "$type": "00"}
    assert formatted(doc, "ExtendedJson-as-documented")["y"] == {"$date": 1683793627000}
    assert formatted(doc, "SimplifiedJson") == {
        "_id": str(A), "w": ["12.5", 23.53], "x": "a2Fma2E=", "y": "2023-05-11T08:27:07Z",
        "z": {"a": False, "b": 87, "c": "hi"}, "n": 9}
    assert formatted(JOINED_MS, "SimplifiedJson") == "2024-01-02T03:04:05.678Z"


# --- the change events (MongoDB's change event documents, as the connector publishes them) ----

def token(n):
    """A change event's _id: the resume token, {"_data": <hex string>} on MongoDB 4.2 and later.
    The connector resumes its stream with it; kafka-ingest does not use it (its positions are the
    Kafka offsets the tables hold)."""
    return {"_data": f"8265A1B2C3{n:08X}2B022C0100296E5A1004" + "AB" * 16 + "463C5F6964003C" + f"{n:04d}" + "0004"}


def at(n):
    """clusterTime: the oplog entry's timestamp (kafka-ingest writes it to the change log's
    _cluster_time); wallTime (MongoDB 6.0+): the server's clock as a date (not used)."""
    return {"clusterTime": Timestamp(1700000100 + n, 1), "wallTime": dt.datetime(2023, 11, 14, 22, 15, n, tzinfo=UTC)}


def events():
    """The topic's change events in order. operationType says what happened (insert, update,
    replace, delete: each applied by the documentKey's _id); the fields each kind carries follow."""
    return [
        # copy.existing (startup.mode=copy_existing): each existing document as an insert whose
        # _id is {_id: <the document's _id>, copyingData: true} instead of a resume token (so it
        # is not one kafka-ingest keeps); no clusterTime (the change-log row's _cluster_time is
        # null); documentKey and fullDocument as in a stream insert, applied as one
        {"_id": {"_id": A, "copyingData": True}, "operationType": "insert", "documentKey": {"_id": A},
         "fullDocument": A0, "ns": NS},
        {"_id": {"_id": B, "copyingData": True}, "operationType": "insert", "documentKey": {"_id": B},
         "fullDocument": B0, "ns": NS},
        # insert: fullDocument is the new document (upserted by its _id), documentKey {_id},
        # ns {db, coll} (the topic already names it: not used); collectionUUID (6.0+) is ignored
        {"_id": token(3), "operationType": "insert", **at(3), "collectionUUID": Binary(UID.bytes, 4), "ns": NS,
         "documentKey": {"_id": C}, "fullDocument": C0},
        # update with change.stream.full.document=updateLookup: fullDocument is the document read
        # after the update, and that is what the mirror gets; updateDescription (updatedFields,
        # removedFields, truncatedArrays) says what the update did and is not needed;
        # fullDocumentBeforeChange (change.stream.full.document.before.change) is ignored
        {"_id": token(4), "operationType": "update", **at(4), "ns": NS, "documentKey": {"_id": A},
         "updateDescription": {"updatedFields": {"address.city": "Milan", "visits": Int64(5_000_000_001)},
                               "removedFields": ["photo"], "truncatedArrays": [{"field": "prices", "newSize": 1}]},
         "fullDocument": A1, "fullDocumentBeforeChange": A0},
        # replace: fullDocument is the new document; in a sharded collection documentKey holds the
        # shard key's fields too ({region, _id}): kafka-ingest takes its _id
        {"_id": token(5), "operationType": "replace", **at(5), "ns": NS, "documentKey": {"region": "eu", "_id": B},
         "fullDocument": B1},
        # delete: documentKey only (no fullDocument): the row of that _id goes
        {"_id": token(6), "operationType": "delete", **at(6), "ns": NS, "documentKey": {"_id": C}},
        # an insert inside a multi-document transaction: txnNumber and lsid {id: UUID, uid:
        # binary} name the transaction; kafka-ingest applies each event as it comes (a
        # transaction's events may land in two batches)
        {"_id": token(7), "operationType": "insert", **at(7), "ns": NS, "documentKey": {"_id": D}, "fullDocument": D0,
         "txnNumber": Int64(12), "lsid": {"id": Binary(UID.bytes, 4), "uid": Binary(b"\x01" * 32, 0)}},
        # an update whose document was deleted before updateLookup read it: fullDocument null; the
        # row goes (the delete that follows says so again)
        {"_id": token(8), "operationType": "update", **at(8), "ns": NS, "documentKey": {"_id": D},
         "updateDescription": {"updatedFields": {"age": 50}, "removedFields": []}, "fullDocument": None},
        {"_id": token(9), "operationType": "delete", **at(9), "ns": NS, "documentKey": {"_id": D}},
        {"_id": token(10), "operationType": "insert", **at(10), "ns": NS, "documentKey": {"_id": E}, "fullDocument": E0},
    ]


FINAL = [A1, B1, E0]  # the collection after these events

# --- the converters (value.converter / key.converter) ------------------------------------------

STRING_SCHEMA = {"type": "string", "optional": False}


def converted(text, converter):
    """The bytes Kafka holds for the connector's value (or key) text:
    - string: StringConverter: the JSON text itself;
    - json: JsonConverter, schemas.enable=false: the text as a JSON string ("{\\"_id\\": ...}");
    - json-schemas: JsonConverter, schemas.enable=true: the envelope {"schema": {"type": "string",
      ...}, "payload": "<the text>"}."""
    if converter == "string":
        return text.encode()
    if converter == "json":
        return json.dumps(text).encode()
    assert converter == "json-schemas", converter
    return json.dumps({"schema": STRING_SCHEMA, "payload": text}, separators=(",", ":")).encode()


# output.format.value=schema with the default value schema (output.schema.value): a struct whose
# _id, fullDocument, documentKey, clusterTime and updateDescription.updatedFields are strings of
# JSON text written by the JSON formatter, ns/to/updateDescription/lsid structs, txnNumber a long.
def opt(t, field, **kw):
    return {"type": t, "optional": True, "field": field, **kw}


NS_SCHEMA = [{"type": "string", "optional": False, "field": "db"}, opt("string", "coll")]
CHANGE_STREAM_SCHEMA = {
    "type": "struct", "name": "ChangeStream", "optional": False, "fields": [
        {"type": "string", "optional": False, "field": "_id"}, opt("string", "operationType"),
        opt("string", "fullDocument"), opt("struct", "ns", name="ns", fields=NS_SCHEMA),
        opt("struct", "to", name="to", fields=NS_SCHEMA), opt("string", "documentKey"),
        opt("struct", "updateDescription", name="updateDescription", fields=[
            opt("string", "updatedFields"), opt("array", "removedFields", items={"type": "string", "optional": False})]),
        opt("string", "clusterTime"), opt("int64", "txnNumber"),
        opt("struct", "lsid", name="lsid", fields=[{"type": "string", "optional": False, "field": "id"},
                                                  {"type": "string", "optional": False, "field": "uid"}])]}


def schema_struct(ev, fmt):
    """The event as the schema output's struct (a JSON-able dict): each string field holds the
    formatter's JSON text of the value (a null fullDocument becomes the text "null"), each field of
    the schema the event lacks is null, the fields the schema lacks (wallTime, ...) are gone."""
    def text(v):
        return json.dumps(formatted(v, fmt))
    ud = ev.get("updateDescription")
    lsid = ev.get("lsid")
    return {
        "_id": text(ev["_id"]), "operationType": ev["operationType"],
        "fullDocument": text(ev["fullDocument"]) if "fullDocument" in ev else None,
        "ns": ev["ns"], "to": None, "documentKey": text(ev["documentKey"]),
        "updateDescription": {"updatedFields": text(ud["updatedFields"]), "removedFields": ud["removedFields"]}
        if ud else None,
        "clusterTime": json.dumps(formatted(ev["clusterTime"], fmt)) if "clusterTime" in ev else None,
        "txnNumber": int(ev["txnNumber"]) if "txnNumber" in ev else None,
        "lsid": {k: json.dumps(formatted(x, fmt)) for k, x in lsid.items()} if lsid else None}


def record(ev, fmt, converter):
    """(key, value) bytes of one event. The key is {"_id": <the event's _id>} (the connector's
    key without change.stream.document.key.as.key; kafka-ingest reads change events by their
    documentKey and needs no key)."""
    key = {"_id": ev["_id"]}
    if converter.startswith("schema-output"):
        # the key in the default key schema: a struct {_id: <JSON text of the event's _id>}
        key_struct = {"_id": json.dumps(formatted(ev["_id"], fmt))}
        value = schema_struct(ev, fmt)
        if converter == "schema-output json":  # JsonConverter, schemas.enable=false: the struct as JSON
            return json.dumps(key_struct).encode(), json.dumps(value).encode()
        key_schema = {"type": "struct", "name": "keySchema", "optional": False,
                      "fields": [{"type": "string", "optional": False, "field": "_id"}]}
        return (json.dumps({"schema": key_schema, "payload": key_struct}).encode(),
                json.dumps({"schema": CHANGE_STREAM_SCHEMA, "payload": value}).encode())
    return (converted(json.dumps(formatted(key, fmt)), converter),
            converted(json.dumps(formatted(ev, fmt)), converter))


# --- Kafka and the tables ------------------------------------------------------------------------

def produce(kafka, topic, records):
    """Writes (key, value) records in order into the topic's one partition (value None: a
    tombstone); returns their offsets."""
    p = kafka.producer(**{"enable.idempotence": True})
    offsets = []
    for k, v in records:
        p.produce(topic, key=k, value=v, on_delivery=lambda err, m: offsets.append(err or m.offset()))
    assert p.flush(60) == 0
    assert all(isinstance(o, int) for o in offsets), offsets
    return offsets


def ingest(kafka, topic, table, log, *extra, check=True):
    p = run_m2d("kafka-ingest", "--brokers", kafka.bootstrap, "--topic", topic, "--group", f"g-{topic}",
                "--table", table, "--mode", "both", "--changelog-table", log, "--merge-strategy", "rewrite",
                "--stop-when-idle", "5", *extra, check=check, timeout=240)
    return p


def mirror_rows(table):
    t = DeltaTable(str(table)).to_pyarrow_table()
    return t.schema, table_rows(t)


def changelog_rows(log):
    t = DeltaTable(str(log)).to_pyarrow_table()
    return t.schema, sorted(table_rows(t), key=lambda r: r["_kafka_offset"])


def field_metadata(table):
    """name -> metadata of the table's top-level fields, from its newest metaData action."""
    schema = json.loads(delta_log.actions(table, "metaData")[-1]["schemaString"])
    return {f["name"]: f.get("metadata", {}) for f in schema["fields"]}


def topic_name(kind):
    return f"cf.{kind}.{uuid.uuid4().hex[:8]}"


CASES = [
    ("DefaultJson", "string"),                       # the connector's defaults with the StringConverter
    ("ExtendedJson", "json"),                        # canonical Extended JSON through a JsonConverter
    ("ExtendedJson-as-documented", "json-schemas"),  # the guide's ExtendedJson, JsonConverter with schemas
    ("SimplifiedJson", "string"),
    ("SimplifiedJson", "json-schemas"),
    ("DefaultJson", "schema-output json"),           # output.format.value=schema, JsonConverter
    ("DefaultJson", "schema-output json-schemas"),   # the same with schemas.enable=true
]


@pytest.mark.parametrize("fmt,converter", CASES, ids=[f"{f}-{c.replace(' ', '-')}" for f, c in CASES])
def test_change_events(kafka, tmp_path, fmt, converter):
    evs = events()
    topic = topic_name("events")
    offsets = produce(kafka, topic, [record(ev, fmt, converter) for ev in evs])
    assert offsets == list(range(len(evs)))
    table, log = tmp_path / "mirror", tmp_path / "log"
    p = ingest(kafka, topic, table, log)
    assert f"{len(evs)} records" in p.stderr and "0 dead-lettered" in p.stderr, p.stderr[-2000:]

    plain = fmt == "SimplifiedJson"
    want = [simplified(d) for d in FINAL] if plain else FINAL
    schema, rows = mirror_rows(table)
    check_table(rows, want)  # exactly these documents, every field's value
    types = {f.name: f.type for f in schema}
    meta = field_metadata(table)
    assert pa.types.is_string(types["_id"]) and pa.types.is_string(types["name"])
    assert types["age"] == pa.int32() and types["ratio"] == pa.float64() and types["vip"] == pa.bool_()
    assert types["visits"] == pa.int64()
    assert pa.types.is_list(types["scores"]) and types["scores"].value_type == pa.float64()
    assert pa.types.is_struct(types["address"]) and pa.types.is_struct(types["address"].field("geo").type)
    assert pa.types.is_struct(types["seen"]) and {f.name for f in types["seen"]} == {"t", "i"}
    assert pa.types.is_string(types["uid"])  # a UUID is its string either way
    if plain:
        # SimplifiedJson wrote these as strings: the table holds strings (the _id is the
        # ObjectId's hex string, the date its ISO-8601 text); an int64 that fits 32 bits is an
        # int32 (a plain JSON number says no more)
        assert pa.types.is_string(types["joined"]) and pa.types.is_string(types["photo"])
        assert pa.types.is_list(types["prices"]) and pa.types.is_string(types["prices"].value_type)
        assert types["level"] == pa.int32()
        assert "mongo2delta.bsonType" not in meta["_id"] and "mongo2delta.bsonType" not in meta["joined"], meta
    else:
        assert pa.types.is_timestamp(types["joined"]) and types["joined"].tz in ("UTC", "+00:00")
        assert types["level"] == pa.int64() and pa.types.is_binary(types["photo"])
        assert pa.types.is_list(types["prices"]) and pa.types.is_decimal(types["prices"].value_type)
        # the field metadata keeps the BSON types a reader of the table needs to write them back
        assert meta["_id"].get("mongo2delta.bsonType") == "objectId", meta["_id"]
        assert meta["joined"].get("mongo2delta.bsonType") == "date", meta["joined"]
    by_id = {r["_id"]: r for r in rows}
    assert by_id[str(A)]["joined"] == ("2023-05-11T08:27:07Z" if plain else "2023-05-11T08:27:07.000000Z")
    assert by_id[str(B)]["joined"] == ("2024-01-02T03:04:05.678Z" if plain else "2024-01-02T03:04:05.678000Z")
    assert by_id[str(A)]["visits"] == 5_000_000_001 and by_id[str(B)]["region"] == "eu"
    assert "photo" not in by_id[str(A)] or by_id[str(A)]["photo"] is None  # removed by the update

    # the change log: one row per event, in offset order, with what each event said
    lschema, lrows = changelog_rows(log)
    assert [r["_kafka_offset"] for r in lrows] == offsets
    assert {r["_kafka_topic"] for r in lrows} == {topic} and {r["_kafka_partition"] for r in lrows} == {0}
    assert [r["_op"] for r in lrows] == [ev["operationType"] for ev in evs]
    assert [r["_id"] for r in lrows] == [str(ev["documentKey"]["_id"]) for ev in evs]
    assert [r["_cluster_time"] for r in lrows] == [
        {"t": ev["clusterTime"].time, "i": ev["clusterTime"].inc} if "clusterTime" in ev else None for ev in evs]
    for r, ev in zip(lrows, evs):
        doc = ev.get("fullDocument")
        if doc is None:  # deletes, and the update whose document was gone when looked up
            assert r["document"] is None, r
        else:
            check_row(r["document"], simplified(doc) if plain else doc)
    assert pa.types.is_struct(lschema.field("document").type)


# --- publish.full.document.only: the documents themselves, tombstones for deletes --------------

def test_documents_with_tombstones(kafka, tmp_path):
    """publish.full.document.only=true: the value is the fullDocument alone (inserts, replaces,
    updates looked up, and the copy phase's documents), with
    publish.full.document.only.tombstone.on.delete=true a delete is a record without a value (a
    tombstone) keyed {"_id": <the document's _id>} (change.stream.document.key.as.key=true, the
    documentKey as key). kafka-ingest --format documents upserts each document by its _id and
    deletes the key's _id on a tombstone. A tombstone keyed by the change event's _id (the resume
    token: the connector's key with change.stream.document.key.as.key=false) does not name the
    document: it goes to the dead-letter topic instead of deleting nothing."""
    def doc(d, fmt="DefaultJson", converter="string"):
        return converted(json.dumps(formatted({"_id": d["_id"]}, fmt)), converter), \
            converted(json.dumps(formatted(d, fmt)), converter)

    def tombstone(_id, fmt="DefaultJson", converter="string"):
        return converted(json.dumps(formatted({"_id": _id}, fmt)), converter), None

    recs = [
        doc(A0), doc(B0),                                   # the copy phase: the documents as they are
        doc(C0, "ExtendedJson", "json"),                    # an insert, canonical, through a JsonConverter
        doc(A1),                                            # an update, looked up
        tombstone(C),                                       # C deleted: key {"_id": {"$oid": ...}}
        doc(D0, converter="json-schemas"),
        tombstone(D, converter="json-schemas"),             # the key in a JsonConverter envelope
        (json.dumps({"_id": token(8)}).encode(), None),     # keyed by the resume token: refused
        # the same in the default key schema (output.format.key=schema, JsonConverter): {_id: <the
        # resume token as JSON text>}: refused too
        (json.dumps({"_id": json.dumps(token(9))}).encode(), None),
        doc(B1),                                            # a replace
        doc(E0),
    ]
    topic, dlq = topic_name("docs"), topic_name("docs-dlq")
    offsets = produce(kafka, topic, recs)
    table, log = tmp_path / "mirror", tmp_path / "log"
    p = ingest(kafka, topic, table, log, "--format", "documents", "--dead-letter-topic", dlq)
    assert f"{len(recs)} records" in p.stderr and "2 dead-lettered" in p.stderr, p.stderr[-2000:]
    _, rows = mirror_rows(table)
    check_table(rows, FINAL)
    _, lrows = changelog_rows(log)
    good = [o for o in offsets if o not in (7, 8)]
    assert [r["_kafka_offset"] for r in lrows] == good
    assert [(r["_op"], r["_id"]) for r in lrows] == [
        ("replace", str(A)), ("replace", str(B)), ("replace", str(C)), ("replace", str(A)), ("delete", str(C)),
        ("replace", str(D)), ("delete", str(D)), ("replace", str(B)), ("replace", str(E))]
    dead = dead_letters(kafka, dlq)
    assert [(d["key"], d["value"]) for d in dead] == recs[7:9]
    assert [d["headers"]["__connect.errors.offset"] for d in dead] == ["7", "8"]
    for d in dead:
        assert "change.stream.document.key.as.key" in d["headers"]["__connect.errors.exception.message"], d


# --- what the connector writes that changes no document: the dead-letter topic ------------------

def dead_letters(kafka, topic, timeout=60):
    """Every record of the dead-letter topic: key, value (bytes, None for none) and headers."""
    c = kafka.consumer(f"dlq-{uuid.uuid4().hex[:6]}")
    out = []
    try:
        c.subscribe([topic])
        deadline, idle = time.time() + timeout, None
        while time.time() < deadline and (idle is None or time.time() - idle < 3):
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            out.append({"key": m.key(), "value": m.value(), "offset": m.offset(),
                        "headers": {k: v.decode() for k, v in (m.headers() or [])}})
            idle = time.time()
    finally:
        c.close()
    return out


def test_refusals_go_to_the_dead_letter_topic(kafka, tmp_path):
    """The connector's default change.stream.full.document ("") writes an update with only its
    updateDescription: the new document is unknown, so kafka-ingest cannot apply it and sets it
    aside saying to set updateLookup; a 'drop' (and the 'invalidate' that ends a collection's
    stream after it) changes no document the table holds either. Each goes to the dead-letter
    topic with Kafka Connect's error headers (__connect.errors.topic, .partition, .offset,
    .exception.message) and its key and value as they were; the events around them are applied.
    Without --dead-letter-topic the run stops at the first one, naming it, after committing what
    came before."""
    fmt = "DefaultJson"
    evs = [
        {"_id": token(1), "operationType": "insert", **at(1), "ns": NS, "documentKey": {"_id": A}, "fullDocument": A0},
        # an update without fullDocument (change.stream.full.document unset)
        {"_id": token(2), "operationType": "update", **at(2), "ns": NS, "documentKey": {"_id": A},
         "updateDescription": {"updatedFields": {"age": 42}, "removedFields": [], "truncatedArrays": []}},
        # db.customers.drop(): ns only, no documentKey
        {"_id": token(3), "operationType": "drop", **at(3), "ns": NS},
        # invalidate: no ns, no documentKey
        {"_id": token(4), "operationType": "invalidate", **at(4)},
        {"_id": token(5), "operationType": "insert", **at(5), "ns": NS, "documentKey": {"_id": B}, "fullDocument": B0},
    ]
    recs = [record(ev, fmt, "string") for ev in evs]
    topic, dlq = topic_name("refused"), topic_name("refused-dlq")
    offsets = produce(kafka, topic, recs)
    table, log = tmp_path / "mirror", tmp_path / "log"
    p = ingest(kafka, topic, table, log, "--dead-letter-topic", dlq)
    assert "5 records" in p.stderr and "3 dead-lettered" in p.stderr, p.stderr[-2000:]
    _, rows = mirror_rows(table)
    check_table(rows, [A0, B0])  # the update set aside: A as inserted
    _, lrows = changelog_rows(log)
    assert [(r["_kafka_offset"], r["_op"]) for r in lrows] == [(offsets[0], "insert"), (offsets[4], "insert")]

    dead = dead_letters(kafka, dlq)
    assert [d["headers"]["__connect.errors.offset"] for d in dead] == [str(o) for o in offsets[1:4]]
    for d, (k, v) in zip(dead, recs[1:4]):
        assert (d["key"], d["value"]) == (k, v), "the record as it was"
        assert d["headers"]["__connect.errors.topic"] == topic and d["headers"]["__connect.errors.partition"] == "0"
        assert d["headers"]["__connect.errors.connector.name"] == f"mongo2delta-kafka:g-{topic}"
    why = [d["headers"]["__connect.errors.exception.message"] for d in dead]
    assert "without fullDocument" in why[0] and "change.stream.full.document=updateLookup" in why[0], why[0]
    assert "'drop'" in why[1] and "'invalidate'" in why[2], why

    # without a dead-letter topic: exit 1 at the update, the insert before it committed
    table2, log2 = tmp_path / "mirror2", tmp_path / "log2"
    p = run_m2d("kafka-ingest", "--brokers", kafka.bootstrap, "--topic", topic, "--group", f"h-{topic}",
                "--table", table2, "--mode", "both", "--changelog-table", log2, "--merge-strategy", "rewrite",
                "--stop-when-idle", "5", timeout=240)
    assert p.returncode == 1, p.stderr[-2000:]
    assert f"topic {topic} partition 0 offset {offsets[1]}" in p.stderr and "updateLookup" in p.stderr, p.stderr[-2000:]
    _, rows = mirror_rows(table2)
    check_table(rows, [A0])
