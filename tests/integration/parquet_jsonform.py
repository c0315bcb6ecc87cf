"""pyarrow values to the JSON form of docs/json-form.md, so that `parquet dump` and `cat`
output can be compared with what pyarrow (or delta-rs) reads."""
import base64
import datetime as dt
import decimal
import math
import struct

import pyarrow as pa


def _f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _float(x, narrow):
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return _f32(x) if narrow else x


def _year(y):
    return f"{y:04d}" if 0 <= y <= 9999 else (f"+{y}" if y > 0 else f"-{-y}")


def _timestamp(v, unit, utc):
    # v: datetime, or pandas Timestamp for nanoseconds
    nanos = getattr(v, "nanosecond", 0)
    base = f"{_year(v.year)}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
    frac = f"{v.microsecond:06d}" + (f"{nanos:03d}" if unit == "ns" else "")
    return f"{base}.{frac}" + ("Z" if utc else "")


def to_json_form(v, t, int96=False):
    """The JSON-form value of pyarrow value v of arrow type t."""
    if v is None:
        return None
    if pa.types.is_dictionary(t):
        return to_json_form(v, t.value_type, int96)
    if pa.types.is_boolean(t) or pa.types.is_integer(t):
        return v
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return _float(v, True)
    if pa.types.is_floating(t):
        return _float(v, False)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return v
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return base64.b64encode(v).decode()
    if pa.types.is_decimal(t):
        return format(decimal.Decimal(v), "f")
    if pa.types.is_date(t):
        return f"{_year(v.year)}-{v.month:02d}-{v.day:02d}"
    if pa.types.is_timestamp(t):
        return _timestamp(v, t.unit, t.tz is not None or int96)
    if pa.types.is_time(t):
        nanos = getattr(v, "nanosecond", 0)
        return f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}" + (f"{nanos:03d}" if t.unit == "ns" else "")
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return [to_json_form(x, t.value_type, int96) for x in v]
    if pa.types.is_struct(t):
        return {t.field(i).name: to_json_form(v.get(t.field(i).name), t.field(i).type, int96) for i in range(t.num_fields)}
    if pa.types.is_map(t):
        pairs = [(to_json_form(k, t.key_type, int96), to_json_form(x, t.item_type, int96)) for k, x in v]
        if pa.types.is_string(t.key_type) or pa.types.is_large_string(t.key_type):
            return dict(pairs)
        return [list(p) for p in pairs]
    if isinstance(t, pa.ExtensionType):
        return to_json_form(v, t.storage_type, int96)
    raise TypeError(f"no JSON form for {t}")


def narrow_floats(v, t):
    """Rounds float32 leaves of a parsed JSON value the way to_json_form does."""
    if v is None:
        return None
    if pa.types.is_dictionary(t):
        return narrow_floats(v, t.value_type)
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return v if isinstance(v, str) else _f32(float(v))
    if pa.types.is_floating(t):
        return v if isinstance(v, str) else float(v)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return [narrow_floats(x, t.value_type) for x in v]
    if pa.types.is_struct(t):
        return {t.field(i).name: narrow_floats(v.get(t.field(i).name), t.field(i).type) for i in range(t.num_fields)}
    if pa.types.is_map(t):
        if isinstance(v, dict):
            return {k: narrow_floats(x, t.item_type) for k, x in v.items()}
        return [[k, narrow_floats(x, t.item_type)] for k, x in v]
    return v


def _ints_for_times(t):
    """t with every timestamp and date replaced by the integer type holding it."""
    if pa.types.is_timestamp(t):
        return pa.int64()
    if pa.types.is_date32(t):
        return pa.int32()
    if pa.types.is_list(t):
        return pa.list_(pa.field(t.value_field.name, _ints_for_times(t.value_type), t.value_field.nullable))
    if pa.types.is_large_list(t):
        return pa.large_list(pa.field(t.value_field.name, _ints_for_times(t.value_type), t.value_field.nullable))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _ints_for_times(f.type), f.nullable) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_ints_for_times(t.key_type), pa.field(t.item_field.name, _ints_for_times(t.item_type), t.item_field.nullable))
    return t


def _civil(days):
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def _ts_from_int(v, unit, utc):
    per = {"s": 1, "ms": 1000, "us": 1000000, "ns": 1000000000}[unit]
    secs, frac = divmod(v, per)
    days, rem = divmod(secs, 86400)
    y, m, d = _civil(days)
    digits = 9 if unit == "ns" else 6
    frac = frac * (10 ** digits // per) if per <= 10 ** digits else frac // (per // 10 ** digits)
    return (f"{_year(y)}-{m:02d}-{d:02d}T{rem // 3600:02d}:{rem // 60 % 60:02d}:{rem % 60:02d}."
            f"{frac:0{digits}d}" + ("Z" if utc else ""))


def _from_ints(v, t, int96):
    """Like to_json_form, for values read through _ints_for_times."""
    if v is None:
        return None
    if pa.types.is_timestamp(t):
        return _ts_from_int(v, t.unit, t.tz is not None or int96)
    if pa.types.is_date32(t):
        y, m, d = _civil(v)
        return f"{_year(y)}-{m:02d}-{d:02d}"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return [_from_ints(x, t.value_type, int96) for x in v]
    if pa.types.is_struct(t):
        return {f.name: _from_ints(v.get(f.name), f.type, int96) for f in t}
    if pa.types.is_map(t):
        pairs = [(_from_ints(k, t.key_type, int96), _from_ints(x, t.item_type, int96)) for k, x in v]
        if pa.types.is_string(t.key_type) or pa.types.is_large_string(t.key_type):
            return dict(pairs)
        return [list(p) for p in pairs]
    return to_json_form(v, t, int96)


def table_rows(table, int96_columns=()):
    """The rows of a pyarrow table in the JSON form (timestamps of any year included)."""
    names = table.schema.names
    types = [table.schema.field(n).type for n in names]
    cols = [table.column(n).cast(_ints_for_times(t)).to_pylist() for n, t in zip(names, types)]
    return [{n: _from_ints(c[i], t, n in int96_columns) for n, t, c in zip(names, types, cols)}
            for i in range(table.num_rows)]


def parsed_rows(lines, schema):
    """Rows printed by mongo2delta, with float32 leaves narrowed like table_rows does."""
    import json
    out = []
    for line in lines:
        row = json.loads(line)
        out.append({n: narrow_floats(row.get(n), schema.field(n).type) for n in schema.names})
    return out
