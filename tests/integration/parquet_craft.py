"""Hand-made Parquet files, byte by byte (a small thrift compact encoder), so tests can build
hostile files: lying lengths, giant headers, bad dictionary indices, broken schemas."""
import struct


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zz(n):
    return varint((n << 1) ^ (n >> 63))


class Struct:
    """Fields as (id, type, value); type is 'i32', 'i64', 'bin', 'struct', 'list:<elem>'."""

    def __init__(self, *fields):
        self.fields = fields

    def encode(self):
        out, last = bytearray(), 0
        for fid, typ, val in self.fields:
            code = {"i32": 5, "i64": 6, "bin": 8, "struct": 12, "bool": 1 if val else 2}.get(typ, 9)
            delta = fid - last
            out += bytes([delta << 4 | code]) if 0 < delta <= 15 else bytes([code]) + zz(fid)
            last = fid
            out += value(typ, val)
        return bytes(out + b"\x00")


def value(typ, val):
    if typ in ("i32", "i64"):
        return zz(val)
    if typ == "bin":
        val = val.encode() if isinstance(val, str) else val
        return varint(len(val)) + val
    if typ == "struct":
        return val.encode()
    if typ == "bool":
        return b""
    etype = typ.split(":")[1]
    code = {"i32": 5, "bin": 8, "struct": 12}[etype]
    head = bytes([len(val) << 4 | code]) if len(val) < 15 else bytes([0xF0 | code]) + varint(len(val))
    return head + b"".join(value(etype, v) for v in val)


def page_header(ptype, unc, comp, num_values=None, encoding=0, dict_values=None, extra=()):
    fields = [(1, "i32", ptype), (2, "i32", unc), (3, "i32", comp)]
    if num_values is not None:
        fields.append((5, "struct", Struct((1, "i32", num_values), (2, "i32", encoding), (3, "i32", 3), (4, "i32", 3))))
    if dict_values is not None:
        fields.append((7, "struct", Struct((1, "i32", dict_values), (2, "i32", 0))))
    fields += list(extra)
    return Struct(*fields).encode()


def int32_file(values, schema=None, page=None, dictionary=None, num_rows=None, footer_extra=()):
    """A file with one required INT32 column 'x'. page: raw page bytes (header + data) to use
    instead of a PLAIN page of values; dictionary: (values, indices) for a dictionary page plus
    an RLE_DICTIONARY data page."""
    body = bytearray(b"PAR1")
    dict_offset = None
    if dictionary is not None:
        dvals, idx = dictionary
        ddata = b"".join(struct.pack("<i", v) for v in dvals)
        dict_offset = len(body)
        body += page_header(2, len(ddata), len(ddata), dict_values=len(dvals)) + ddata
        bw = 8
        data = bytes([bw]) + varint(len(idx) // 8 << 1 | 1) + bytes(idx)  # one bit-packed run, 8 bits each
        page = page_header(0, len(data), len(data), num_values=len(idx), encoding=8) + data
        values = idx
    data_offset = len(body)
    if page is None:
        data = b"".join(struct.pack("<i", v) for v in values)
        page = page_header(0, len(data), len(data), num_values=len(values)) + data
    body += page
    size = len(body) - (dict_offset if dict_offset is not None else data_offset)
    meta = [(1, "i32", 1), (2, "list:bin", ["x"]), (3, "list:bin", ["x"]), (4, "i32", 0), (5, "i64", len(values)),
            (6, "i64", size), (7, "i64", size), (9, "i64", data_offset)]
    meta = [(1, "i32", 1), (2, "list:i32", [0, 3] + ([8] if dictionary else [])), (3, "list:bin", ["x"]), (4, "i32", 0),
            (5, "i64", len(values)), (6, "i64", size), (7, "i64", size), (9, "i64", data_offset)]
    if dict_offset is not None:
        meta.append((11, "i64", dict_offset))
    column = Struct((2, "i64", data_offset), (3, "struct", Struct(*meta)))
    rows = len(values) if num_rows is None else num_rows
    rg = Struct((1, "list:struct", [column]), (2, "i64", size), (3, "i64", rows))
    if schema is None:
        schema = [Struct((4, "bin", "schema"), (5, "i32", 1)), Struct((1, "i32", 1), (3, "i32", 0), (4, "bin", "x"))]
    footer = Struct((1, "i32", 1), (2, "list:struct", schema), (3, "i64", rows), (4, "list:struct", [rg]),
                    *footer_extra).encode()
    return bytes(body) + footer + struct.pack("<I", len(footer)) + b"PAR1"
