"""Random rows of every Delta type, in the JSON form (docs/json-form.md) and as the Python
values pyarrow gives back, for nested shapes at depth 1 to 3. Shared by the Parquet tests."""
import base64
import datetime as dt
import decimal
import math
import random
import struct

decimal.getcontext().prec = 80
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def _f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _decimal_gen(p, s):
    def gen(r):
        digits = r.randint(1, p)
        unscaled = r.randint(-(10 ** digits - 1), 10 ** digits - 1)
        d = decimal.Decimal(unscaled).scaleb(-s)
        return f"{d:.{s}f}", d.quantize(decimal.Decimal(1).scaleb(-s))
    return gen


def _ts(utc):
    def gen(r):
        micros = r.randint(-2 ** 40, 2 ** 51)  # years ~1935 to 2041, and some far away
        t = EPOCH + dt.timedelta(microseconds=micros)
        text = t.strftime("%Y-%m-%dT%H:%M:%S.%f") + ("Z" if utc else "")
        return text, (t if utc else t.replace(tzinfo=None))
    return gen


def _string(r):
    alphabet = ["a", "b", "é", "日本", "🙂", " ", "\"", "\\", "\n"]
    s = "".join(r.choice(alphabet) for _ in range(r.randint(0, 12)))
    return s, s


def _lowcard(r):
    s = r.choice(["red", "green", "blue", "cyan"])
    return s, s


def _binary(r):
    b = bytes(r.randint(0, 255) for _ in range(r.randint(0, 10)))
    return base64.b64encode(b).decode(), b


def _double(r):
    x = r.choice([r.uniform(-1e6, 1e6), 0.0, -0.0, 1e308, -5e-324, float("inf"), float("-inf"), float("nan")])
    if math.isnan(x):
        return "NaN", x
    if math.isinf(x):
        return ("Infinity" if x > 0 else "-Infinity"), x
    return x, x


def _float(r):
    x = _f32(r.uniform(-1e6, 1e6))
    return x, x


def _date(r):
    d = dt.date(1970, 1, 1) + dt.timedelta(days=r.randint(-200000, 200000))
    return d.isoformat() if d.year >= 1000 else f"{d.year:04d}-{d.month:02d}-{d.day:02d}", d


TYPES = {
    "boolean": lambda r: (lambda b: (b, b))(r.random() < 0.5),
    "byte": lambda r: (lambda v: (v, v))(r.randint(-128, 127)),
    "short": lambda r: (lambda v: (v, v))(r.randint(-32768, 32767)),
    "integer": lambda r: (lambda v: (v, v))(r.randint(-2 ** 31, 2 ** 31 - 1)),
    "long": lambda r: (lambda v: (v, v))(r.randint(-2 ** 63, 2 ** 63 - 1)),
    "float": _float,
    "double": _double,
    "string": _string,
    "binary": _binary,
    "decimal(5,2)": _decimal_gen(5, 2),
    "decimal(15,4)": _decimal_gen(15, 4),
    "decimal(30,6)": _decimal_gen(30, 6),
    "date": _date,
    "timestamp": _ts(True),
    "timestamp_ntz": _ts(False),
}


def field(name, typ, nullable=True):
    return {"name": name, "type": typ, "nullable": nullable, "metadata": {}}


def array(t):
    return {"type": "array", "elementType": t, "containsNull": True}


def smap(t):
    return {"type": "map", "keyType": "string", "valueType": t, "valueContainsNull": True}


def struct_(t):
    return {"type": "struct", "fields": [field("x", t)]}


# shape name -> (wrap a type, depth)
SHAPES = {
    "plain": (lambda t: t, 1),
    "struct": (struct_, 2),
    "list": (array, 2),
    "map": (smap, 2),
    "list_of_struct": (lambda t: array(struct_(t)), 3),
    "struct_of_list": (lambda t: struct_(array(t)), 3),
    "map_of_struct": (lambda t: smap(struct_(t)), 3),
    "list_of_list": (lambda t: array(array(t)), 3),
}


def gen_value(r, typ, gen, null_p=0.15):
    """Returns (json_value, python_value) for a type tree."""
    if r.random() < null_p:
        return None, None
    if isinstance(typ, str):
        return gen(r)
    kind = typ["type"]
    if kind == "struct":
        j, p = {}, {}
        for f in typ["fields"]:
            jv, pv = gen_value(r, f["type"], gen, null_p)
            if jv is not None or r.random() < 0.5:
                j[f["name"]] = jv
            p[f["name"]] = pv
        return j, p
    if kind == "array":
        items = [gen_value(r, typ["elementType"], gen, null_p) for _ in range(r.choice([0, 1, 2, 5]))]
        return [i[0] for i in items], [i[1] for i in items]
    if kind == "map":
        keys = [f"k{i}" for i in range(r.choice([0, 1, 3]))]
        items = [gen_value(r, typ["valueType"], gen, null_p) for _ in keys]
        return dict(zip(keys, (i[0] for i in items))), [(k, i[1]) for k, i in zip(keys, items)]
    raise ValueError(kind)


def make_table(shape, nrows, seed, types=None):
    """A schema with one column per type in the given shape, and rows for it."""
    r = random.Random(seed)
    wrap, _ = SHAPES[shape]
    names = list(types or TYPES)
    schema = {"type": "struct", "fields": [field("id", "long", False)] +
              [field(f"c{i}", wrap(t)) for i, t in enumerate(names)]}
    json_rows, expected = [], []
    for n in range(nrows):
        jr, pr = {"id": n}, {"id": n}
        for i, t in enumerate(names):
            jv, pv = gen_value(r, wrap(t), TYPES[t])
            if jv is not None or r.random() < 0.5:
                jr[f"c{i}"] = jv
            pr[f"c{i}"] = pv
        json_rows.append(jr)
        expected.append(pr)
    return schema, json_rows, expected


def same(a, b):
    """Equality that treats NaN as equal to NaN and compares float bits for zeros."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b) or (a == b and {type(a), type(b)} <= {int, bool} and type(a) is type(b))
