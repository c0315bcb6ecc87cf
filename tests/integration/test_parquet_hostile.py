"""Hostile Parquet files: each ends in one clear line naming the file and what is wrong, exit
status 1, never a crash, a hang or an allocation of what the file claims (the tests run the
sanitizer build, and conftest fails any sanitizer report)."""
import struct

import pyarrow.parquet as pq
import pytest

from conftest import run_m2d
from parquet_craft import Struct, int32_file, page_header

VALUES = list(range(-5, 20))


def check_fails(tmp_path, data, *expected, name="bad.parquet"):
    path = tmp_path / name
    path.write_bytes(data)
    p = run_m2d("parquet", "dump", path, timeout=60)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == ""
    assert str(path) in p.stderr
    assert p.stderr.strip().count("\n") == 0, p.stderr
    for e in expected:
        assert e in p.stderr, p.stderr
    return p.stderr


def test_the_crafted_file_is_valid(tmp_path):
    path = tmp_path / "ok.parquet"
    path.write_bytes(int32_file(VALUES))
    assert pq.read_table(path).column("x").to_pylist() == VALUES
    p = run_m2d("parquet", "dump", path, check=True)
    assert [int(l.split(":")[1].rstrip("}")) for l in p.stdout.splitlines()] == VALUES


def test_dictionary_file_is_valid(tmp_path):
    path = tmp_path / "dict.parquet"
    path.write_bytes(int32_file(None, dictionary=([10, 20, 30], [0, 1, 2, 2, 1, 0, 0, 1])))
    assert pq.read_table(path).column("x").to_pylist() == [10, 20, 30, 30, 20, 10, 10, 20]
    p = run_m2d("parquet", "dump", path, check=True)
    assert p.stdout.splitlines()[2] == '{"x":30}'


@pytest.mark.parametrize("cut", [1, 5, 11, 30, 60, -9, -5, -1])
def test_truncated(tmp_path, cut):
    good = int32_file(VALUES)
    check_fails(tmp_path, good[:cut] if cut > 0 else good[:len(good) + cut])


def test_wrong_magic(tmp_path):
    good = int32_file(VALUES)
    check_fails(tmp_path, b"PAR2" + good[4:], "not a Parquet file")
    check_fails(tmp_path, b"hello, this is not parquet at all", "not a Parquet file", name="text.parquet")


def test_footer_length_larger_than_the_file(tmp_path):
    good = bytearray(int32_file(VALUES))
    good[-8:-4] = struct.pack("<I", 0x7FFFFFF0)
    check_fails(tmp_path, bytes(good), "footer length", "larger than the file")


def test_lying_page_size(tmp_path):
    data = b"".join(struct.pack("<i", v) for v in VALUES)
    page = page_header(0, len(data), 2**31 - 1, num_values=len(VALUES)) + data
    check_fails(tmp_path, int32_file(VALUES, page=page), "runs past its column chunk")


def test_page_claiming_a_huge_uncompressed_size(tmp_path):
    data = b"".join(struct.pack("<i", v) for v in VALUES)
    page = page_header(0, 2**31 - 1, len(data), num_values=len(VALUES)) + data
    check_fails(tmp_path, int32_file(VALUES, page=page), "uncompressed")


def test_lying_value_count(tmp_path):
    data = b"".join(struct.pack("<i", v) for v in VALUES)
    page = page_header(0, len(data), len(data), num_values=2**30) + data
    check_fails(tmp_path, int32_file(VALUES, page=page))


def test_giant_page_header(tmp_path):
    # an unknown field holding a binary that claims 1 GiB
    data = b"".join(struct.pack("<i", v) for v in VALUES)
    header = page_header(0, len(data), len(data), num_values=len(VALUES))[:-1] + bytes([0x08, 0x64]) + \
        b"\xff\xff\xff\xff\x03" + b"\x00"
    check_fails(tmp_path, int32_file(VALUES, page=header + data), "page header")


def test_bad_dictionary_index(tmp_path):
    msg = check_fails(tmp_path, int32_file(None, dictionary=([10, 20, 30], [0, 1, 7, 2, 1, 0, 0, 1])),
                      "dictionary index 7 out of range")
    assert "column 'x'" in msg


def test_schema_with_more_children_than_elements(tmp_path):
    schema = [Struct((4, "bin", "schema"), (5, "i32", 5)), Struct((1, "i32", 1), (3, "i32", 0), (4, "bin", "x"))]
    check_fails(tmp_path, int32_file(VALUES, schema=schema), "claims 5 children")


def test_schema_nested_too_deeply(tmp_path):
    depth = 200
    schema = [Struct((4, "bin", "schema"), (5, "i32", 1))]
    schema += [Struct((3, "i32", 1), (4, "bin", f"g{i}"), (5, "i32", 1)) for i in range(depth)]
    schema += [Struct((1, "i32", 1), (3, "i32", 1), (4, "bin", "x"))]
    check_fails(tmp_path, int32_file(VALUES, schema=schema), "nested deeper than")


def test_encrypted_footer_is_refused_by_name(tmp_path):
    algo = Struct((1, "struct", Struct()))
    check_fails(tmp_path, int32_file(VALUES, footer_extra=[(8, "struct", algo)]), "encrypted")


def test_parquet_schema_fails_the_same_way(tmp_path):
    path = tmp_path / "bad.parquet"
    good = bytearray(int32_file(VALUES))
    good[-8:-4] = struct.pack("<I", 0x7FFFFFF0)
    path.write_bytes(bytes(good))
    p = run_m2d("parquet", "schema", path)
    assert p.returncode == 1 and str(path) in p.stderr
