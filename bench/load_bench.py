"""Load benchmark: a mongodump file into a Delta table, `mongo2delta load` against pymongoarrow's
process_bson_stream plus deltalake.write_deltalake of the same file, side by side in one run.

  dump:    bench/load_gen.py, N order-like documents of about 1 KB (nested documents, an array
           of documents, arrays of strings, strings of low/middle/high cardinality, dates,
           Decimal128, int32/int64/double/bool, fields missing from some documents), from a
           fixed seed; written once into --workdir and reused.
  sides:   mongo2delta: `mongo2delta load --input DUMP --table T` (snappy, the default);
           pymongoarrow: the dump read in 64 MiB pieces cut at document boundaries, each given to
           one PyMongoArrowContext (schema inferred, as pymongoarrow's own find_arrow_all feeds
           its context batch by batch), context.finish() into one Arrow table, then
           write_deltalake(T, table) (snappy, its default).
Each measurement runs in its own process (harness.run_isolated), into a fresh table, the sides
alternating (with --reps 2 or more, each side has gone first once); its clock is the process's
wall time end to end (start-up included), its memory the process's peak RSS.
Afterwards both tables are read back with delta-rs and compared in _id order, value by value
(nested columns flattened), pymongoarrow's types mapped to ours (ObjectId bytes -> hex, Decimal128
bytes -> unscaled decimal, naive dates -> UTC); what pymongoarrow has as null where the document
had a value, and missing sub-documents it has as documents of nulls, are counted per field; any
other difference fails the run.
Usage: python bench/load_bench.py [--docs N] [--reps R] [--workdir DIR]"""
import argparse
import datetime as dt
import json
import os
import pathlib
import shutil
import sys
import time

import harness  # bench/harness.py
import load_gen  # bench/load_gen.py

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = os.environ.get("M2D_BIN", str(ROOT / "build" / "mongo2delta"))
PIECE = 64 << 20


def pymongoarrow_child(dump, table):
    """Runs in a process of its own: the dump into a Delta table through pymongoarrow."""
    import deltalake
    from pymongoarrow.context import PyMongoArrowContext
    t0 = time.perf_counter()
    ctx = PyMongoArrowContext(None)  # no schema: inferred from the documents
    docs = 0
    with open(dump, "rb") as f:
        rest = b""
        while True:
            piece = f.read(PIECE)
            if not piece and not rest:
                break
            buf = rest + piece if rest else piece
            end = 0
            while end + 4 <= len(buf):  # whole documents only
                n = int.from_bytes(buf[end:end + 4], "little")
                if end + n > len(buf):
                    break
                end += n
                docs += 1
            if end == 0 and not piece:
                raise SystemExit("truncated dump")
            ctx.process_bson_stream(buf[:end] if end < len(buf) else buf)
            rest = buf[end:]
            if not piece:
                break
    tab = ctx.finish()
    t1 = time.perf_counter()
    deltalake.write_deltalake(table, tab)
    t2 = time.perf_counter()
    print(json.dumps({"docs": docs, "rows": tab.num_rows, "parse_s": t1 - t0, "write_s": t2 - t1}))


def _decimal_unscaled_theirs(b, scale):
    """pymongoarrow's Decimal128 column (16 bytes each, IEEE 754 BID, as Delta binary) as
    unscaled integers at scale (numpy int64; None where a value has no exact one)."""
    import numpy as np
    b = b.combine_chunks() if hasattr(b, "combine_chunks") else b
    valid = np.asarray(b.is_valid())
    offs = np.frombuffer(b.buffers()[1], np.int32)[b.offset:b.offset + len(b) + 1]
    data = np.frombuffer(b.buffers()[2], np.uint8)
    lens = offs[1:] - offs[:-1]
    assert (lens[valid] == 16).all()
    raw = data[offs[:-1][valid][:, None] + np.arange(16)].copy().view("<u8")
    low, high = raw[:, 0], raw[:, 1]
    assert ((high >> np.uint64(61)) & np.uint64(3) != 3).all() and (high & np.uint64(0x1ffffffffffff) == 0).all()
    exp = ((high >> np.uint64(49)) & np.uint64(0x3fff)).astype(np.int64) - 6176 + scale
    assert (exp >= 0).all() and (exp <= 18).all()
    v = low.astype(np.int64) * (10 ** exp)
    v[(high >> np.uint64(63)) == 1] *= -1
    out = np.zeros(len(b), np.int64)
    out[valid] = v
    return out, valid


def _decimal_unscaled_ours(a):
    import numpy as np
    a = a.combine_chunks() if hasattr(a, "combine_chunks") else a
    raw = np.frombuffer(a.buffers()[1], "<i8").reshape(-1, 2)[a.offset:a.offset + len(a)]
    return raw[:, 0].copy(), np.asarray(a.is_valid())


def compare(ours_path, theirs_path, n):
    """Both tables in _id order, value by value, column by column (nested columns flattened):
    returns (rows compared, {field path: values pymongoarrow has as null where ours has one},
    {field path: sub-documents missing from a document that pymongoarrow has as a document
    of nulls}, {field path: other differences})."""
    import deltalake
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    ours = deltalake.DeltaTable(ours_path).to_pyarrow_table()
    theirs = deltalake.DeltaTable(theirs_path).to_pyarrow_table()
    assert ours.num_rows == theirs.num_rows == n, (ours.num_rows, theirs.num_rows, n)
    assert ours.column("_rescued_data").null_count == n, "mongo2delta rescued values"
    ours = ours.drop_columns(["_rescued_data"])
    assert sorted(ours.column_names) == sorted(theirs.column_names), (ours.column_names, theirs.column_names)
    # the _id's first 4 bytes count up (load_gen), so binary and hex orders agree
    ours = ours.take(pc.sort_indices(ours, [("_id", "ascending")]))
    theirs = theirs.take(pc.sort_indices(theirs, [("_id", "ascending")]))
    lost, nulldocs, other = {}, {}, {}

    def count(d, path, k):
        if k:
            d[path] = d.get(path, 0) + int(k)

    def cmp(path, a, b):
        a = a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
        b = b.combine_chunks() if isinstance(b, pa.ChunkedArray) else b
        av, bv = np.asarray(a.is_valid()), np.asarray(b.is_valid())
        if pa.types.is_struct(a.type):
            count(nulldocs, path, (~av & bv).sum())
            count(other, path + " (null in mongo2delta only)", (av & ~bv).sum())
            fa, fb = a.flatten(), b.flatten()
            names_b = [b.type.field(i).name for i in range(b.type.num_fields)]
            for i in range(a.type.num_fields):
                name = a.type.field(i).name
                if name not in names_b:
                    count(other, f"{path}.{name} (missing in pymongoarrow)", av.sum())
                    continue
                cmp(f"{path}.{name}", fa[i], fb[names_b.index(name)])
            return
        count(lost, path, (av & ~bv).sum())
        count(other, path + " (null in mongo2delta only)", (~av & bv).sum())
        both = av & bv
        if pa.types.is_list(a.type):
            la = np.asarray(pc.list_value_length(a).fill_null(-1))
            lb = np.asarray(pc.list_value_length(b).fill_null(-1))
            count(other, path + " (array lengths)", (both & (la != lb)).sum())
            keep = pa.array(both & (la == lb))
            cmp(path + "[]", pc.list_flatten(a.filter(keep)), pc.list_flatten(b.filter(keep)))
            return
        if pa.types.is_decimal(a.type):
            x, _ = _decimal_unscaled_ours(a)
            y, _ = _decimal_unscaled_theirs(b, a.type.scale)
            count(other, path, (both & (x != y)).sum())
            return
        if pa.types.is_string(a.type) and (pa.types.is_binary(b.type) or pa.types.is_fixed_size_binary(b.type)):
            b = pa.array([v.hex() if v is not None else None for v in b.to_pylist()], pa.string())  # ObjectId
        elif pa.types.is_timestamp(a.type):
            a = a.cast(pa.timestamp("us", a.type.tz)).cast(pa.int64())
            b = b.cast(pa.timestamp("us", b.type.tz)).cast(pa.int64())  # pymongoarrow: no time zone (UTC)
        eq = np.asarray(pc.equal(a, b).fill_null(True))
        count(other, path, (both & ~eq).sum())

    for name in ours.column_names:
        cmp(name, ours.column(name), theirs.column(name))
    return n, lost, nulldocs, other


def schema_of(path):
    import deltalake
    return {f.name: str(f.type) for f in deltalake.DeltaTable(path).schema().fields}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--workdir", default=str(ROOT / "build" / "bench-load"))
    a = ap.parse_args()
    work = pathlib.Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    dump = work / f"orders-{a.docs}.bson"
    if not dump.exists():
        t = time.perf_counter()
        load_gen.write(a.docs, str(dump))
        print(f"bench-load: wrote {dump} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    size = dump.stat().st_size
    runs = {"mongo2delta": [], "pymongoarrow": []}
    tables = {}
    for rep in range(a.reps):
        order = ["mongo2delta", "pymongoarrow"] if rep % 2 == 0 else ["pymongoarrow", "mongo2delta"]
        for side in order:
            table = work / f"table-{side}"
            shutil.rmtree(table, ignore_errors=True)
            if side == "mongo2delta":
                r = harness.run_isolated([BIN, "load", "--input", dump, "--table", table])
                detail = r["err"].strip().splitlines()[-1] if r["err"].strip() else ""
            else:
                r = harness.run_isolated([sys.executable, __file__, "--child", dump, table])
                detail = harness.last_json_line(r["out"])
                assert detail["rows"] == a.docs, detail
            runs[side].append({"wall_s": round(r["wall"], 2), "cpu_s": round(r["cpu"], 2),
                               "peak_rss_mib": round(r["rss_mib"]), "docs_per_s": round(a.docs / r["wall"]),
                               "detail": detail})
            print(f"bench-load: {side} rep {rep}: {r['wall']:.1f} s, {a.docs / r['wall']:,.0f} docs/s, "
                  f"peak {r['rss_mib']:.0f} MiB, CPU {r['cpu']:.1f} s", file=sys.stderr)
            tables[side] = table
    t = time.perf_counter()
    rows, lost, nulldocs, other = compare(str(tables["mongo2delta"]), str(tables["pymongoarrow"]), a.docs)
    check_s = time.perf_counter() - t
    best = {s: min(v, key=lambda x: x["wall_s"]) for s, v in runs.items()}
    peak = {s: max(x["peak_rss_mib"] for x in v) for s, v in runs.items()}
    import deltalake
    import pyarrow
    import pymongoarrow
    print(json.dumps({
        "machine": harness.machine(pyarrow=pyarrow.__version__, deltalake=deltalake.__version__,
                                   pymongoarrow=pymongoarrow.__version__),
        "docs": a.docs, "dump_MB": round(size / 1e6), "runs": runs,
        "best": {"mongo2delta docs/s": best["mongo2delta"]["docs_per_s"],
                 "pymongoarrow docs/s": best["pymongoarrow"]["docs_per_s"],
                 "ratio docs/s": round(best["mongo2delta"]["docs_per_s"] / best["pymongoarrow"]["docs_per_s"], 2),
                 "mongo2delta peak MiB": peak["mongo2delta"], "pymongoarrow peak MiB": peak["pymongoarrow"],
                 "memory ratio": round(peak["mongo2delta"] / peak["pymongoarrow"], 3)},
        "check": {"rows compared": rows, "seconds": round(check_s),
                  "values pymongoarrow has as null (per field)": lost,
                  "missing sub-documents pymongoarrow has as documents of nulls (per field)": nulldocs,
                  "other differences (per field)": other},
        "schemas": {s: schema_of(str(p)) for s, p in tables.items()},
    }, indent=1, default=str))
    if other:
        raise SystemExit(f"bench-load: the tables differ beyond what pymongoarrow drops: {other}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        pymongoarrow_child(sys.argv[2], sys.argv[3])
    else:
        main()
