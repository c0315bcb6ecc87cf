"""Progress on long commands: load, optimize, vacuum, publish, kafka-produce and kafka-ingest
print a progress line on a terminal (redrawn in place), and with `--progress always` also when
stderr is a pipe; its last state is printed when the work ends, with counts that equal what an
independent reader finds in the table or the collection. No line without a terminal unless
asked, none with `--progress never`."""
import json
import os
import pty
import re
import subprocess
import uuid

from deltalake import DeltaTable

from conftest import check_sanitizers, m2d_bin, m2d_env, run_m2d
from test_kafka_produce import seed
from test_sync import settle

N_FILES, PER_FILE = 3, 2000
CLEAR = "\r\x1b[K"


def progress_lines(err, what):
    """The progress lines (text log format) of one line's subject, e.g. "load into /t"."""
    return [ln.split(" info  ", 1)[1] for ln in err.splitlines()
            if " info  " in ln and ln.split(" info  ", 1)[1].startswith(what + ": ")]


def export_files(folder):
    folder.mkdir()
    for f in range(N_FILES):
        with open(folder / f"part{f}.jsonl", "w") as out:
            for k in range(PER_FILE):
                out.write(json.dumps({"_id": f * PER_FILE + k, "n": k, "s": "x" * (k % 30)}) + "\n")
    return N_FILES * PER_FILE


def on_a_terminal(*args):
    """Runs mongo2delta with stderr on a pseudo-terminal; returns (exit status, what it printed)."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([m2d_bin(), *map(str, args)], stdout=subprocess.DEVNULL, stderr=secondary,
                            env=m2d_env())
    os.close(secondary)
    out = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(primary)
    rc = proc.wait(timeout=120)
    text = out.decode(errors="replace")
    check_sanitizers(rc, text)
    return rc, text


def test_load_optimize_vacuum_publish_print_their_progress(tmp_path, mongo, mongo_db):
    n = export_files(tmp_path / "in")
    table = tmp_path / "t"
    p = run_m2d("load", "--progress", "always", "--table", table, "--input", tmp_path / "in", check=True)
    lines = progress_lines(p.stderr, f"load into {table}")
    assert lines and lines[-1].startswith(f"load into {table}: {n} documents, "), p.stderr
    assert f"{N_FILES} file(s) loaded, 0 skipped" in lines[-1], lines
    assert len(DeltaTable(str(table)).to_pyarrow_table()) == n

    p = run_m2d("optimize", "--progress", "always", "--table", table, check=True)
    lines = progress_lines(p.stderr, f"optimize {table}")
    assert lines and lines[-1].startswith(f"optimize {table}: {n} of {n} rows"), p.stderr
    assert "1 bin(s)" in lines[-1]
    assert len(DeltaTable(str(table)).files()) == 1

    p = run_m2d("vacuum", "--progress", "always", "--table", table, "--retain-hours", "0", "--force", check=True)
    lines = progress_lines(p.stderr, f"vacuum {table} (deleting)")
    assert lines and lines[-1].startswith(f"vacuum {table} (deleting): {N_FILES} of {N_FILES} files"), p.stderr
    assert len([f for f in os.listdir(table) if f.endswith(".parquet")]) == 1

    p = run_m2d("publish", "--progress", "always", "--table", table, "--uri", mongo.uri, "--db", mongo_db.name,
                "--collection", "out", check=True)
    lines = progress_lines(p.stderr, f"publish {table} to {mongo_db.name}.out")
    assert lines and lines[-1].startswith(f"publish {table} to {mongo_db.name}.out: {n} rows, {n} written, "
                                          "0 unchanged, 0 failed"), p.stderr
    assert mongo_db.out.count_documents({}) == n


def test_a_terminal_gets_the_line_in_place_and_a_pipe_gets_none(tmp_path):
    n = export_files(tmp_path / "in")
    rc, text = on_a_terminal("load", "--table", tmp_path / "a", "--input", tmp_path / "in")
    assert rc == 0, text
    assert f"{CLEAR}load into {tmp_path / 'a'}: {n} documents" in text, repr(text[-2000:])

    rc, text = on_a_terminal("load", "--progress", "never", "--table", tmp_path / "b", "--input", tmp_path / "in")
    assert rc == 0 and CLEAR not in text and f"load into {tmp_path / 'b'}: " not in text, repr(text[-2000:])

    p = run_m2d("load", "--table", tmp_path / "c", "--input", tmp_path / "in", check=True)
    assert not progress_lines(p.stderr, f"load into {tmp_path / 'c'}") and "\r" not in p.stderr, p.stderr
    assert len(DeltaTable(str(tmp_path / "c")).to_pyarrow_table()) == n

    p = run_m2d("load", "--progress", "sometimes", "--table", tmp_path / "d", "--input", tmp_path / "in")
    assert p.returncode == 2 and "--progress must be auto, always or never" in p.stderr, p.stderr
    assert not (tmp_path / "d").exists()


def test_kafka_produce_and_ingest_print_their_progress(kafka, mongo, mongo_db, tmp_path):
    ids = seed(mongo_db.c, 300)
    prefix = f"g{uuid.uuid4().hex[:6]}"
    settle()
    p = run_m2d("kafka-produce", "--progress", "always", "--uri", mongo.uri, "--db", mongo_db.name, "--collection",
                "c", "--brokers", kafka.bootstrap, "--topic-prefix", prefix, "--startup", "copy-existing",
                "--max-batch", "100", "--stop-when-idle", "4", check=True, timeout=300)
    lines = progress_lines(p.stderr, f"kafka-produce {mongo_db.name}.c")
    assert lines and lines[-1].startswith(f"kafka-produce {mongo_db.name}.c: {len(ids)} records"), p.stderr[-3000:]
    assert f"{len(ids)} copied, 0 change events" in lines[-1], lines

    table = tmp_path / "mirror"
    p = run_m2d("kafka-ingest", "--progress", "always", "--brokers", kafka.bootstrap, "--topic",
                f"{prefix}.{mongo_db.name}.c", "--group", "gp", "--table", table, "--stop-when-idle", "5",
                check=True, timeout=300)
    lines = progress_lines(p.stderr, f"kafka-ingest gp into {table}")
    assert lines and re.match(rf"kafka-ingest gp into {re.escape(str(table))}: {len(ids)} events, ", lines[-1]), \
        p.stderr[-3000:]
    assert f"{len(ids)} upserts, 0 deletes, 0 dead-lettered" in lines[-1], lines
    assert sorted(r["_id"] for r in DeltaTable(str(table)).to_pyarrow_table(columns=["_id"]).to_pylist()) == ids
