"""The C Parquet writer, judged by pyarrow: every type, nested at depth 1 to 3, nulls at every
level, empty lists and maps, every codec, dictionary and plain, several pages and row groups,
0, 1 and many rows. Values are compared one by one."""
import json
import zlib

import pyarrow.parquet as pq
import pytest

from conftest import run_m2d
from parquet_data import SHAPES, TYPES, make_table, same

CODECS = ["snappy", "zstd", "gzip", "lz4_raw", "none"]


def write(tmp_path, schema, rows, *extra, name="t"):
    (tmp_path / f"{name}.schema.json").write_text(json.dumps(schema))
    with open(tmp_path / f"{name}.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    out = tmp_path / f"{name}.parquet"
    run_m2d("parquet", "write", "--schema", tmp_path / f"{name}.schema.json", "--input", tmp_path / f"{name}.jsonl",
            "--output", out, *extra, check=True, timeout=600)
    return out


def assert_rows_equal(path, expected):
    got = pq.read_table(path).to_pylist()
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        if not same(g, e):
            bad = {k: (g.get(k), e[k]) for k in e if not same(g.get(k), e[k])}
            raise AssertionError(f"row {i} differs (got, expected): {bad}")


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("dictionary", ["on", "off"])
def test_every_type_every_shape_every_codec(tmp_path, shape, codec, dictionary):
    schema, rows, expected = make_table(shape, 300, seed=zlib.crc32(f"{shape}{codec}{dictionary}".encode()))
    out = write(tmp_path, schema, rows, "--compression", codec, "--dictionary", dictionary)
    assert_rows_equal(out, expected)
    md = pq.ParquetFile(out).metadata
    # pyarrow names LZ4_RAW (codec 7) "LZ4"
    want = {"none": "uncompressed", "lz4_raw": "lz4"}.get(codec, codec)
    assert md.row_group(0).column(1).compression.lower() == want


@pytest.mark.parametrize("shape", list(SHAPES))
def test_many_pages_and_row_groups(tmp_path, shape):
    schema, rows, expected = make_table(shape, 3000, seed=7)
    out = write(tmp_path, schema, rows, "--page-size", "2048", "--row-group-size", "65536")
    md = pq.ParquetFile(out).metadata
    assert md.num_row_groups > 2
    assert_rows_equal(out, expected)


@pytest.mark.parametrize("nrows", [0, 1])
def test_zero_and_one_row(tmp_path, nrows):
    schema, rows, expected = make_table("list_of_struct", nrows, seed=3)
    out = write(tmp_path, schema, rows)
    assert pq.ParquetFile(out).metadata.num_rows == nrows
    assert_rows_equal(out, expected)
    assert pq.read_schema(out).names == [f["name"] for f in schema["fields"]]


def test_dictionary_overflow_falls_back_to_plain(tmp_path):
    schema = {"type": "struct", "fields": [{"name": "s", "type": "string", "nullable": True, "metadata": {}}]}
    rows = [{"s": f"value-{i:08d}-" + "x" * 40} for i in range(20000)]
    out = write(tmp_path, schema, rows, "--dictionary-size", "65536", "--page-size", "16384")
    col = pq.ParquetFile(out).metadata.row_group(0).column(0)
    assert "RLE_DICTIONARY" in col.encodings and "PLAIN" in col.encodings
    assert col.has_dictionary_page
    assert pq.read_table(out).column("s").to_pylist() == [r["s"] for r in rows]


def test_values_that_hardly_repeat_are_plain_from_the_start(tmp_path):
    # the first 32,768 values of a chunk decide: more than half distinct -> PLAIN, no dictionary
    # page (the values seen so far are turned back into PLAIN); else the dictionary stays
    schema = {"type": "struct", "fields": [
        {"name": "u", "type": "string", "nullable": True, "metadata": {}},
        {"name": "n", "type": "long", "nullable": True, "metadata": {}},
        {"name": "tags", "type": {"type": "array", "elementType": "string", "containsNull": True},
         "nullable": True, "metadata": {}},
        {"name": "r", "type": "string", "nullable": True, "metadata": {}},
    ]}
    rows = [{"u": None if i % 7 == 0 else f"user-{i}", "n": None if i % 5 == 0 else i * 3,
             "tags": None if i % 11 == 0 else [f"t{i}-{k}" if k != 1 else None for k in range(i % 4)],
             "r": f"r{i % 3000}"} for i in range(90000)]
    out = write(tmp_path, schema, rows)
    md = pq.ParquetFile(out).metadata
    for g in range(md.num_row_groups):
        for c in range(3):
            col = md.row_group(g).column(c)
            assert not col.has_dictionary_page and "RLE_DICTIONARY" not in col.encodings, col.path_in_schema
        col = md.row_group(g).column(3)
        assert col.has_dictionary_page and "RLE_DICTIONARY" in col.encodings
    assert pq.read_table(out).to_pylist() == rows
    st = md.row_group(0).column(0).statistics
    assert st.min == "user-1" and st.max == "user-9999" and st.null_count == len([i for i in range(90000) if i % 7 == 0])


def test_logical_types_field_ids_column_orders_and_metadata(tmp_path):
    schema = {"type": "struct", "fields": [
        {"name": "id", "type": "long", "nullable": False, "metadata": {"delta.columnMapping.id": 7}},
        {"name": "ts", "type": "timestamp", "nullable": True, "metadata": {}},
        {"name": "ntz", "type": "timestamp_ntz", "nullable": True, "metadata": {}},
        {"name": "d", "type": "decimal(20,3)", "nullable": True, "metadata": {}},
        {"name": "s", "type": "string", "nullable": True, "metadata": {}},
        {"name": "b", "type": "byte", "nullable": True, "metadata": {}},
    ]}
    rows = [{"id": 1, "ts": "2020-01-01T00:00:00.000001Z", "ntz": "2020-01-01T00:00:00.000001", "d": "1.500",
             "s": "a", "b": -3}]
    out = write(tmp_path, schema, rows, "--metadata", "origin=test,answer=42")
    f = pq.ParquetFile(out)
    s = f.schema.to_arrow_schema()
    assert s.field("id").metadata[b"PARQUET:field_id"] == b"7"
    assert str(s.field("ts").type) == "timestamp[us, tz=UTC]"
    assert str(s.field("ntz").type) == "timestamp[us]"
    assert str(s.field("d").type) == "decimal128(20, 3)"
    assert str(s.field("b").type) == "int8"
    kv = f.metadata.metadata
    assert kv[b"origin"] == b"test" and kv[b"answer"] == b"42"
    col = f.schema.column(0)
    assert col.logical_type.type == "NONE" and col.physical_type == "INT64"
    assert f.metadata.created_by.startswith("mongo2delta")
    # parquet-format's ColumnOrder: pyarrow only trusts min/max when column_orders are present
    st = f.metadata.row_group(0).column(4).statistics
    assert st.has_min_max and st.min == "a"


def test_statistics_are_right_per_row_group(tmp_path):
    schema, rows, expected = make_table("plain", 5000, seed=11,
                                        types=["integer", "long", "double", "string", "date", "timestamp", "boolean"])
    out = write(tmp_path, schema, rows, "--row-group-size", "50000")
    f = pq.ParquetFile(out)
    assert f.metadata.num_row_groups > 1
    start = 0
    for g in range(f.metadata.num_row_groups):
        rg = f.metadata.row_group(g)
        part = expected[start:start + rg.num_rows]
        start += rg.num_rows
        for c in range(rg.num_columns):
            name = f.schema.column(c).name
            vals = [r[name] for r in part]
            present = [v for v in vals if v is not None and v == v]  # no nulls, no NaN
            st = rg.column(c).statistics
            assert st.null_count == sum(v is None for v in vals), name
            if present:
                assert st.has_min_max, name
                assert st.min == min(present) and st.max == max(present), name
    assert start == len(expected)


def test_bad_rows_name_the_line_and_field_and_leave_no_file(tmp_path):
    schema = {"type": "struct", "fields": [{"name": "a", "type": {"type": "struct", "fields": [
        {"name": "n", "type": "integer", "nullable": True, "metadata": {}}]}, "nullable": True, "metadata": {}}]}
    (tmp_path / "s.json").write_text(json.dumps(schema))
    (tmp_path / "r.jsonl").write_text('{"a": {"n": 1}}\n{"a": {"n": "two"}}\n')
    p = run_m2d("parquet", "write", "--schema", tmp_path / "s.json", "--input", tmp_path / "r.jsonl",
                "--output", tmp_path / "o.parquet")
    assert p.returncode == 1
    assert "line 2" in p.stderr and "'a.n'" in p.stderr
    assert not (tmp_path / "o.parquet").exists()
    assert list(tmp_path.glob("o.parquet*")) == []


def test_one_million_rows(tmp_path):
    schema = {"type": "struct", "fields": [
        {"name": "id", "type": "long", "nullable": False, "metadata": {}},
        {"name": "v", "type": "double", "nullable": True, "metadata": {}},
        {"name": "s", "type": "string", "nullable": True, "metadata": {}},
        {"name": "tags", "type": {"type": "array", "elementType": "string", "containsNull": True},
         "nullable": True, "metadata": {}},
    ]}
    src = tmp_path / "rows.jsonl"
    with open(src, "w") as f:
        for i in range(1_000_000):
            f.write(json.dumps({"id": i, "v": None if i % 7 == 0 else i * 0.5, "s": f"s{i % 1000}",
                                "tags": [] if i % 5 == 0 else ["x", str(i % 3)]}) + "\n")
    (tmp_path / "s.json").write_text(json.dumps(schema))
    out = tmp_path / "big.parquet"
    run_m2d("parquet", "write", "--schema", tmp_path / "s.json", "--input", src, "--output", out,
            "--compression", "zstd", check=True, timeout=900)
    t = pq.read_table(out)
    assert t.num_rows == 1_000_000
    ids = t.column("id").to_pylist()
    assert ids == list(range(1_000_000))
    v = t.column("v").to_pylist()
    assert all((v[i] is None) if i % 7 == 0 else v[i] == i * 0.5 for i in range(0, 1_000_000, 997))
    assert sum(x for x in v if x is not None) == sum(i * 0.5 for i in range(1_000_000) if i % 7)
    s = t.column("s").to_pylist()
    assert all(s[i] == f"s{i % 1000}" for i in range(0, 1_000_000, 991))
    tags = t.column("tags").to_pylist()
    assert all(tags[i] == ([] if i % 5 == 0 else ["x", str(i % 3)]) for i in range(0, 1_000_000, 983))


@pytest.mark.parametrize("writer", ["pyarrow", "mongo2delta"])
def test_a_long_run_of_one_value_reads_back(tmp_path, writer):
    """A dictionary page whose indices are one RLE run of a million: a few bytes hold them all
    (the reader once bounded indices by the page's bytes and refused such pages)."""
    import pyarrow as pa
    f = tmp_path / "run.parquet"
    n = 1_000_000
    if writer == "pyarrow":
        pq.write_table(pa.table({"v": pa.array([7] * n, pa.int64()), "s": pa.array(["same"] * n)}), f,
                       use_dictionary=True, data_page_size=1 << 30)
    else:
        schema = tmp_path / "s.json"
        schema.write_text(json.dumps({"type": "struct", "fields": [
            {"name": "v", "type": "long", "nullable": True, "metadata": {}},
            {"name": "s", "type": "string", "nullable": True, "metadata": {}}]}))
        rows = tmp_path / "rows.jsonl"
        rows.write_text('{"v": 7, "s": "same"}\n' * n)
        run_m2d("parquet", "write", "--schema", schema, "--input", rows, "--output", f, check=True)
    p = run_m2d("parquet", "dump", f, check=True)
    lines = p.stdout.splitlines()
    assert len(lines) == n and set(lines) == {'{"v":7,"s":"same"}'}
