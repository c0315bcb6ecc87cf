"""A local Delta table's log and folder, read as files: one set of helpers for what tests check
of the log itself (commits, actions, checkpoints) and of the files beside it. A table's values
are read back with delta-rs or Spark, never with these. Every function takes the table's folder
(a path or a str)."""
import json
import os
import pathlib
import re
import urllib.parse

from bson import json_util

LOG = "_delta_log"
_COMMIT = re.compile(r"(\d{20})\.json$")
_LOG_FILE = re.compile(r"(\d{20})\.(json|checkpoint\.parquet|crc)$")


def log_dir(table):
    return pathlib.Path(table) / LOG


def commit_path(table, version):
    return log_dir(table) / f"{version:020d}.json"


def versions(table):
    """The versions of the JSON commits, in order ([] without a log)."""
    d = log_dir(table)
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for m in map(_COMMIT.match, os.listdir(d)) if m)


def latest_version(table):
    return max(versions(table))


def commit(table, version):
    """The actions of one JSON commit, in order."""
    return [json.loads(line) for line in commit_path(table, version).read_text().splitlines() if line.strip()]


def commits(table):
    """{version: [actions]} of every JSON commit, in version order."""
    return {v: commit(table, v) for v in versions(table)}


def actions(table, kind=None):
    """Every action of every JSON commit in order; with kind ("add", "remove", "txn", ...) the
    payloads of that kind only."""
    out = [a for acts in commits(table).values() for a in acts]
    return out if kind is None else [a[kind] for a in out if kind in a]


def added_paths(table):
    """Every path an add action of any JSON commit names (URL-decoded)."""
    return {urllib.parse.unquote(a["path"]) for a in actions(table, "add")}


def checkpoints(table):
    """The versions of the checkpoints, in order."""
    return sorted(log_files(table).get("checkpoint.parquet", ()))


def checkpoint_path(table, version):
    return log_dir(table) / f"{version:020d}.checkpoint.parquet"


def last_checkpoint(table):
    """The _last_checkpoint hint as a dict, or None without one."""
    p = log_dir(table) / "_last_checkpoint"
    return json.loads(p.read_text()) if p.exists() else None


def log_files(table):
    """{"json" | "checkpoint.parquet" | "crc": {versions}} of the log's numbered files."""
    out = {}
    d = log_dir(table)
    for name in os.listdir(d) if d.is_dir() else ():
        m = _LOG_FILE.match(name)
        if m:
            out.setdefault(m.group(2), set()).add(int(m.group(1)))
    return out


def data_files(table):
    """The Parquet files of the table folder outside the log (relative paths, sorted)."""
    table = pathlib.Path(table)
    return sorted(str(p.relative_to(table)) for p in table.rglob("*.parquet") if LOG not in p.parts)


def all_files(table):
    """Every file under the table, hidden ones included (relative paths, sorted)."""
    table = pathlib.Path(table)
    return sorted(str(p.relative_to(table)) for p in table.rglob("*") if p.is_file())


def file_bytes(table):
    """{relative path: bytes} of every file under the table, hidden ones too."""
    out = {}
    for dirpath, _, files in os.walk(table):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, table)] = fh.read()
    return out


def write_json(path, docs, canonical=True):
    """mongoexport JSON lines (canonical or relaxed Extended JSON) for `load`; returns the real path."""
    opts = json_util.CANONICAL_JSON_OPTIONS if canonical else json_util.RELAXED_JSON_OPTIONS
    path.write_text("".join(json_util.dumps(d, json_options=opts) + "\n" for d in docs))
    return os.path.realpath(path)
