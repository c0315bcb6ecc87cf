"""Shared fixtures: the binary under test and real servers on free loopback ports.

Every server a test starts is stopped by the fixture that started it."""
import os
import pathlib
import signal
import subprocess
import time

import pymongo
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
TESTDATA = SHARED / "testdata"


def m2d_bin():
    return os.environ.get("M2D_BIN", str(ROOT / "build" / "asan" / "mongo2delta"))


# libmongoc keeps performance counters in /dev/shm/mongoc-<pid>; a process killed by a test
# leaves its file behind, and a later process that gets the same pid prints "Falling back to
# malloc for counters" on stderr at load time. The counters are of no use here.
os.environ.setdefault("MONGOC_DISABLE_SHM", "1")

SANITIZER_ENV = {
    # a sanitizer report must never pass for an ordinary failure (exit 1)
    "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:exitcode=86",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=86",
}


def run_m2d(*args, timeout=120, check=False, **kw):
    """Runs mongo2delta with args; returns the CompletedProcess (text mode). Fails the test on
    any sanitizer report."""
    env = dict(os.environ, **SANITIZER_ENV, **kw.pop("env", {}))
    proc = subprocess.run([m2d_bin(), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)
    assert "Sanitizer" not in proc.stderr and "runtime error:" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode != 86, proc.stderr[-3000:]
    if check and proc.returncode != 0:
        raise AssertionError(f"mongo2delta {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


class MongoTestServer:
    """scripts/mongo-test-server as a child process; memory backend, or H2 with data=FILE."""

    def __init__(self, data=None):
        self.data = data
        self.proc = None
        self.port = None

    def start(self, timeout=60):
        args = [str(ROOT / "scripts" / "mongo-test-server"), "--port", "0"]
        if self.data:
            args += ["--data", str(self.data)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        deadline = time.time() + timeout
        line = self.proc.stdout.readline()
        if "listening on 127.0.0.1:" not in line or time.time() > deadline:
            self.stop()
            raise RuntimeError(f"mongo-test-server did not start: {line!r}")
        self.port = int(line.split("127.0.0.1:")[1].split()[0])
        return self

    @property
    def uri(self):
        return f"mongodb://127.0.0.1:{self.port}"

    def client(self):
        return pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=10000)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode if self.proc else None


@pytest.fixture(scope="session")
def mongo():
    """One in-memory test server for the whole run; tests use their own database names."""
    server = MongoTestServer().start()
    yield server
    server.stop()


@pytest.fixture
def mongo_db(mongo, request):
    """A database named after the test, dropped afterwards."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:60]
    client = mongo.client()
    client.drop_database(name)
    yield client[name]
    client.drop_database(name)
    client.close()
