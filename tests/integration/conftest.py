"""Shared fixtures: the binary under test and real servers on free loopback ports.

Every server a test starts is stopped by the fixture that started it."""
import itertools
import os
import pathlib
import re
import select
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

SANITIZER_EXIT = 86
SANITIZER_ENV = {
    # a sanitizer report must never pass for an ordinary failure (exit 1)
    "ASAN_OPTIONS": f"detect_leaks=1:halt_on_error=1:exitcode={SANITIZER_EXIT}",
    "UBSAN_OPTIONS": f"print_stacktrace=1:halt_on_error=1:exitcode={SANITIZER_EXIT}",
}
# What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer print.
SANITIZER_REPORT = re.compile(r"(Address|Leak|UndefinedBehavior|Thread|Memory)Sanitizer|runtime error:")


def check_sanitizers(returncode, stderr, what="mongo2delta"):
    """Fails the test when a process exited with the sanitizers' status or its stderr holds a
    sanitizer report, whatever exit the test itself expects (a report is never a clear error).
    stderr may be None (not captured), bytes or text."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    if returncode == SANITIZER_EXIT or (stderr and SANITIZER_REPORT.search(stderr)):
        pytest.fail(f"{what}: sanitizer report (exit {returncode}):\n{(stderr or '')[-3000:]}", pytrace=False)


def m2d_env(env=None):
    """The environment mongo2delta runs in under test: this process's, the sanitizer options, env
    (whose keys win)."""
    out = dict(os.environ, **SANITIZER_ENV)
    out.update(env or {})
    return out


def run_m2d(*args, timeout=120, check=False, binary=None, **kw):
    """Runs mongo2delta with args; returns the CompletedProcess (text mode). Fails the test on
    any sanitizer report, also when the test expects a failure; check=True fails it on any exit
    but 0. binary: another build (default M2D_BIN)."""
    env = m2d_env(kw.pop("env", None))
    proc = subprocess.run([binary or m2d_bin(), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)
    check_sanitizers(proc.returncode, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"mongo2delta {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


class M2DProcess(subprocess.Popen):
    """mongo2delta in the background (start_m2d): a Popen whose wait(), poll() and communicate()
    fail the test on a sanitizer report (the sanitizers' exit status, or a report in the stderr
    communicate() reads). A process the test kills (-9) or stops is not a report."""

    _reading = False  # inside communicate(), which checks with the stderr it read

    def wait(self, timeout=None):
        rc = super().wait(timeout=timeout)
        if not self._reading:
            check_sanitizers(rc, None)
        return rc

    def poll(self):
        rc = super().poll()
        if rc is not None:
            check_sanitizers(rc, None)
        return rc

    def communicate(self, input=None, timeout=None):
        self._reading = True
        try:
            out, err = super().communicate(input=input, timeout=timeout)
        finally:
            self._reading = False
        check_sanitizers(self.returncode, err)
        return out, err


def start_m2d(*args, env=None, binary=None, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw):
    """Starts mongo2delta with args in the background (the sanitizer options set, env added);
    returns an M2DProcess. By default stdout is dropped and stderr is a pipe, read when it ends
    (`_, err = proc.communicate(timeout=...)`)."""
    return M2DProcess([binary or m2d_bin(), *map(str, args)], stdout=stdout, stderr=stderr, text=text,
                      env=m2d_env(env), **kw)


def stop_child(proc, timeout=30):
    """Stops a test server started as a child: SIGTERM, then SIGKILL after timeout seconds.
    Returns its exit status (None when it was never started)."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
    return proc.returncode if proc else None


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
        return stop_child(self.proc)


@pytest.fixture(scope="session")
def mongo():
    """One in-memory test server for the whole run; tests use their own database names."""
    server = MongoTestServer().start()
    yield server
    server.stop()


@pytest.fixture
def mongo_db(mongo, request):
    """A database named after the test and its file, dropped afterwards (tests of the same name in
    two files must not share a database: a drop at one's end is an event in the other's stream)."""
    module = request.node.module.__name__.removeprefix("test_")[:12]
    name = ("t_" + module + "_" + "".join(c if c.isalnum() else "_" for c in request.node.name))[:62]
    client = mongo.client()
    client.drop_database(name)
    yield client[name]
    client.drop_database(name)
    client.close()


class S3TestServer:
    """scripts/s3-test-server as a child process: MinIO (objects in a temporary directory, or in
    data=DIR across restarts), or with ignore_conditions=True the moto-based server that ignores
    If-None-Match (objects in memory)."""

    ACCESS_KEY = "m2d-test"
    SECRET_KEY = "m2d-test-secret"
    REGION = "us-east-1"

    def __init__(self, data=None, ignore_conditions=False):
        self.data = data
        self.ignore_conditions = ignore_conditions
        self.proc = None
        self.port = None

    def start(self, timeout=600):
        """Waits for the "listening on" line (long timeout: the first run on a machine may build
        MinIO through scripts/bootstrap)."""
        args = [str(ROOT / "scripts" / "s3-test-server"), "--port", "0"]
        if self.data:
            args += ["--data", str(self.data)]
        if self.ignore_conditions:
            args.append("--ignore-conditions")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening on 127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"s3-test-server did not start within {timeout} s: {line!r}")
        self.port = int(line.split("127.0.0.1:")[1].split()[0])
        return self

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self):
        """The variables that point mongo2delta (and boto3, Spark's S3A...) at this server."""
        return {"AWS_ACCESS_KEY_ID": self.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
                "AWS_REGION": self.REGION, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self, secret=None):
        """A boto3 S3 client for this server (secret: sign with another secret key)."""
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.REGION,
                            aws_access_key_id=self.ACCESS_KEY,
                            aws_secret_access_key=secret or self.SECRET_KEY,
                            config=Config(s3={"addressing_style": "path"},
                                          retries={"mode": "standard", "max_attempts": 2},
                                          connect_timeout=5, read_timeout=60))

    def stop(self):
        return stop_child(self.proc)


class S3Bucket:
    """A bucket on an S3TestServer, what a test needs to point mongo2delta, deltalake and boto3
    at it. S3Bucket.create(server, name) makes one; delete() removes it with everything in it."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.client = server.client()

    @classmethod
    def create(cls, server, name):
        bucket = cls(server, name)
        bucket.client.create_bucket(Bucket=name)
        return bucket

    def url(self, prefix=""):
        """s3://BUCKET/PREFIX (s3://BUCKET for no prefix)."""
        prefix = prefix.lstrip("/")
        return f"s3://{self.name}/{prefix}" if prefix else f"s3://{self.name}"

    @property
    def env(self):
        """For run_m2d(env=...): credentials, region and the server's endpoint."""
        return self.server.env

    @property
    def storage_options(self):
        """For deltalake (DeltaTable, write_deltalake): the same, plus plain http."""
        return dict(self.server.env, AWS_ALLOW_HTTP="true")

    def keys(self, prefix=""):
        """Every key under prefix, in S3's (lexical) order."""
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def delete(self):
        """Aborts the unfinished multipart uploads, deletes every object, then the bucket."""
        c = self.client
        for page in c.get_paginator("list_multipart_uploads").paginate(Bucket=self.name):
            for u in page.get("Uploads", []):
                c.abort_multipart_upload(Bucket=self.name, Key=u["Key"], UploadId=u["UploadId"])
        keys = self.keys()
        for i in range(0, len(keys), 1000):
            c.delete_objects(Bucket=self.name, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                       "Quiet": True})
        c.delete_bucket(Bucket=self.name)


_bucket_serial = itertools.count(1)


def s3_bucket_name(test_name):
    """A valid, unique S3 bucket name (3-63 characters: a-z, 0-9, hyphens; no dots, which would
    force virtual-hosted addressing) after the test's name."""
    suffix = f"-{os.getpid() % 100000}-{next(_bucket_serial)}"
    base = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")
    return ("t-" + base)[:63 - len(suffix)].rstrip("-") + suffix


@pytest.fixture(scope="session")
def s3_server():
    """One MinIO for the whole run; tests use their own buckets (s3_bucket)."""
    server = S3TestServer().start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, request):
    """A fresh bucket named after the test, deleted afterwards with everything in it."""
    bucket = S3Bucket.create(s3_server, s3_bucket_name(request.node.name))
    yield bucket
    bucket.delete()


# --- Google Cloud Storage ----------------------------------------------------------------------
import json  # noqa: E402  (this block's own imports)
import urllib.parse  # noqa: E402


class GcsTestServer:
    """scripts/gcs-test-server as a child process: fake-gcs-server on a loopback port, objects in
    memory (or in data=DIR across restarts). It asks for no credentials and ignores any sent."""

    def __init__(self, data=None):
        self.data = data
        self.proc = None
        self.port = None

    def start(self, timeout=600):
        """Waits for the "listening on" line (long timeout: the first run on a machine may build
        fake-gcs-server through scripts/bootstrap)."""
        args = [str(ROOT / "scripts" / "gcs-test-server"), "--port", "0"]
        if self.data:
            args += ["--data", str(self.data)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening on 127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"gcs-test-server did not start within {timeout} s: {line!r}")
        self.port = int(line.split("127.0.0.1:")[1].split()[0])
        return self

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None, endpoint=None):
        """One request of the JSON API (path from /storage/v1 or /upload/...); (status, bytes)."""
        import urllib.error
        import urllib.request
        req = urllib.request.Request((endpoint or self.endpoint) + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self):
        return stop_child(self.proc)


# Credentials a test machine may have set: a test sees none of them unless it sets them itself.
GCS_CREDENTIAL_VARS = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_OAUTH_ACCESS_TOKEN", "CLOUDSDK_AUTH_ACCESS_TOKEN")


class GcsBucket:
    """A bucket on a GcsTestServer, what a test needs to point mongo2delta and deltalake at it,
    with plain HTTP calls of the JSON API for the rest. GcsBucket.create(server, name) makes one;
    delete() removes it with everything in it."""

    def __init__(self, server, name):
        self.server = server
        self.name = name

    @classmethod
    def create(cls, server, name):
        bucket = cls(server, name)
        status, body = server.request("POST", "/storage/v1/b?project=test",
                                      json.dumps({"name": name}).encode(), {"Content-Type": "application/json"})
        assert status == 200, (status, body)
        return bucket

    def url(self, prefix=""):
        """gs://BUCKET/PREFIX (gs://BUCKET for no prefix)."""
        prefix = prefix.lstrip("/")
        return f"gs://{self.name}/{prefix}" if prefix else f"gs://{self.name}"

    @property
    def env(self):
        """For run_m2d(env=...): the emulator, and no credentials (a bearer token would be ignored)."""
        return dict({v: "" for v in GCS_CREDENTIAL_VARS}, STORAGE_EMULATOR_HOST=self.server.endpoint)

    @property
    def storage_options(self):
        """For deltalake (DeltaTable): object_store's GCS client pointed at the emulator by a
        service account "key" with its base URL and OAuth turned off (object_store reads
        gcs_base_url and disable_oauth from the key), over plain http."""
        key = {"gcs_base_url": self.server.endpoint, "disable_oauth": True, "client_email": "",
               "private_key": "", "private_key_id": ""}
        return {"google_service_account_key": json.dumps(key), "allow_http": "true"}

    def _object_path(self, key):
        return f"/storage/v1/b/{self.name}/o/{urllib.parse.quote(key, safe='')}"

    def keys(self, prefix=""):
        """Every object name under prefix, in lexical order (pages of objects.list)."""
        out, token = [], None
        while True:
            q = {"prefix": prefix, "maxResults": "1000", **({"pageToken": token} if token else {})}
            status, body = self.server.request("GET", f"/storage/v1/b/{self.name}/o?{urllib.parse.urlencode(q)}")
            assert status == 200, (status, body)
            page = json.loads(body)
            out += [o["name"] for o in page.get("items", [])]
            token = page.get("nextPageToken")
            if not token:
                return out

    def get(self, key):
        status, body = self.server.request("GET", self._object_path(key) + "?alt=media")
        assert status == 200, (status, key)
        return body

    def metadata(self, key):
        status, body = self.server.request("GET", self._object_path(key))
        assert status == 200, (status, key)
        return json.loads(body)

    def put(self, key, data):
        q = urllib.parse.urlencode({"uploadType": "media", "name": key})
        status, body = self.server.request("POST", f"/upload/storage/v1/b/{self.name}/o?{q}", data,
                                           {"Content-Type": "application/octet-stream"})
        assert status == 200, (status, body)

    def delete(self):
        """Deletes every object, then the bucket."""
        for k in self.keys():
            self.server.request("DELETE", self._object_path(k))
        status, body = self.server.request("DELETE", f"/storage/v1/b/{self.name}")
        assert status in (200, 204), (status, body)


@pytest.fixture(scope="session")
def gcs_server():
    """One fake-gcs-server for the whole run; tests use their own buckets (gcs_bucket)."""
    server = GcsTestServer().start()
    yield server
    server.stop()


@pytest.fixture
def gcs_bucket(gcs_server, request):
    """A fresh bucket named after the test (the rules of S3's names fit GCS's), deleted
    afterwards with everything in it."""
    bucket = GcsBucket.create(gcs_server, s3_bucket_name(request.node.name))
    yield bucket
    bucket.delete()


# --- Azure Blob Storage (Azurite) ------------------------------------------------------------

class AzureTestServer:
    """scripts/azure-test-server as a child process: Azurite's blob service (blobs in a temporary
    directory), the account devstoreaccount1 with Azurite's well-known key, addressed by path."""

    ACCOUNT = "devstoreaccount1"
    KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

    def __init__(self):
        self.proc = None
        self.port = None

    def start(self, timeout=300):
        """Waits for the "listening on" line (the first run on a machine may install Azurite
        through scripts/bootstrap)."""
        self.proc = subprocess.Popen([str(ROOT / "scripts" / "azure-test-server"), "--port", "0"],
                                     stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening on 127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"azure-test-server did not start within {timeout} s: {line!r}")
        self.port = int(line.split("127.0.0.1:")[1].split()[0])
        return self

    def endpoint_at(self, port):
        """The Blob endpoint (with the account, path-style) of this server, or of a proxy to it."""
        return f"http://127.0.0.1:{port}/{self.ACCOUNT}"

    @property
    def endpoint(self):
        return self.endpoint_at(self.port)

    @property
    def env(self):
        """The variables that point mongo2delta at this server."""
        return {"AZURE_STORAGE_ACCOUNT": self.ACCOUNT, "AZURE_STORAGE_KEY": self.KEY,
                "AZURE_STORAGE_ENDPOINT": self.endpoint}

    def client(self):
        from azure_rest import AzureBlobClient
        return AzureBlobClient(self.endpoint, self.ACCOUNT, self.KEY)

    def stop(self):
        return stop_child(self.proc)


class AzureContainer:
    """A container on an AzureTestServer, what a test needs to point mongo2delta, deltalake and
    the REST client at it. AzureContainer.create(server, name) makes one; delete() removes it
    with everything in it."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.client = server.client()

    @classmethod
    def create(cls, server, name):
        c = cls(server, name)
        c.client.create_container(name)
        return c

    def url(self, prefix=""):
        """az://CONTAINER/PREFIX (az://CONTAINER for no prefix)."""
        prefix = prefix.strip("/")
        return f"az://{self.name}/{prefix}" if prefix else f"az://{self.name}"

    def abfss(self, prefix=""):
        """The same location as Databricks names it, abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX
        (what delta-rs 1.1.4 needs: it drops the path of az:// URLs, delta-io/delta-rs#3643)."""
        return f"abfss://{self.name}@{self.server.ACCOUNT}.dfs.core.windows.net/{prefix.strip('/')}"

    @property
    def env(self):
        """For run_m2d(env=...): the account, its key and the server's endpoint."""
        return self.server.env

    @property
    def storage_options(self):
        """For deltalake (object_store's Azure options): the account, its key, the endpoint with
        the account in its path, plain http."""
        return {"account_name": self.server.ACCOUNT, "account_key": self.server.KEY,
                "azure_storage_endpoint": self.server.endpoint, "allow_http": "true"}

    def keys(self, prefix=""):
        """Every blob name under prefix, in Azure's (lexical) order."""
        return self.client.list_blobs(self.name, prefix)

    def get(self, key):
        return self.client.get_blob(self.name, key)

    def put(self, key, data):
        self.client.put_blob(self.name, key, data)

    def delete(self):
        self.client.delete_container(self.name)


@pytest.fixture(scope="session")
def azure_server():
    """One Azurite for the whole run; tests use their own containers (azure_container)."""
    server = AzureTestServer().start()
    yield server
    server.stop()


@pytest.fixture
def azure_container(azure_server, request):
    """A fresh container named after the test (the rules of bucket names hold for containers),
    deleted afterwards with everything in it."""
    container = AzureContainer.create(azure_server, s3_bucket_name(request.node.name))
    yield container
    container.delete()


# --- Kafka ---------------------------------------------------------------------------------------

class KafkaTestServer:
    """scripts/kafka-test-server as a child process: an Apache Kafka 3.9 broker in KRaft mode (one
    node, broker and controller) on a loopback port; its log in a temporary directory, or in
    data=DIR across restarts (then start(port=...) again on the same port)."""

    def __init__(self, data=None, tmpdir=None):
        self.data = data
        self.tmpdir = tmpdir  # where the temporary log directory goes (TMPDIR), default /tmp
        self.proc = None
        self.port = None

    def start(self, port=0, timeout=240, tries=2):
        """Waits for the "listening on" line; a broker that did not start (a free port taken by
        another process in the meantime, a slow JVM) is tried once more, on a fresh log
        directory when it had none before. The error names what the broker said."""
        import shutil
        import tempfile
        fresh = self.data is not None and not pathlib.Path(self.data).exists()
        for attempt in range(tries):
            args = [str(ROOT / "scripts" / "kafka-test-server"), "--port", str(port)]
            if self.data:
                args += ["--data", str(self.data)]
            env = dict(os.environ, TMPDIR=str(self.tmpdir)) if self.tmpdir else None
            errlog = tempfile.TemporaryFile(mode="w+")
            tmp = pathlib.Path(self.tmpdir or tempfile.gettempdir())
            before = set(tmp.glob("kafka-test-server.*"))
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errlog, text=True, env=env,
                                         start_new_session=True)
            ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
            line = self.proc.stdout.readline() if ready else ""
            if line.startswith("listening on 127.0.0.1:"):
                errlog.close()  # the broker's own log stays in its directory
                self.port = int(line.split("127.0.0.1:")[1].split()[0])
                return self
            self.stop()
            for left in set(tmp.glob("kafka-test-server.*")) - before:  # this attempt's log directory
                shutil.rmtree(left, ignore_errors=True)
            errlog.seek(0)
            said = errlog.read()[-2000:]
            errlog.close()
            if fresh:
                shutil.rmtree(self.data, ignore_errors=True)
        raise RuntimeError(f"kafka-test-server did not start ({tries} tries, {timeout} s each): {line!r}\n{said}")

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def producer(self, **conf):
        from confluent_kafka import Producer
        return Producer({"bootstrap.servers": self.bootstrap, **conf})

    def consumer(self, group, **conf):
        """A read_committed consumer from the earliest offset (conf overrides)."""
        from confluent_kafka import Consumer
        return Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", "enable.auto.commit": False, **conf})

    def read_all(self, topic, idle=5.0, timeout=120, **conf):
        """Every record of topic a read_committed consumer sees (all its partitions, assigned from
        the start, no group), as [(partition, offset, key bytes, value bytes)] in partition and
        offset order, once idle seconds pass without one."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition
        c = self.consumer(f"read-all-{time.time_ns()}", **conf)
        out, deadline = [], time.time() + timeout
        try:
            parts = c.list_topics(topic, timeout=30).topics[topic].partitions
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(parts)])
            last = time.time()
            while time.time() - last < idle and time.time() < deadline:
                m = c.poll(0.5)
                if m is None or (m.error() and m.error().code() == -191):  # _PARTITION_EOF
                    continue
                assert not m.error(), m.error()
                out.append((m.partition(), m.offset(), m.key(), m.value()))
                last = time.time()
        finally:
            c.close()
        return sorted(out, key=lambda r: (r[0], r[1]))

    def stop(self):
        rc = stop_child(self.proc, timeout=60)
        if self.proc:
            try:  # nothing of the group outlives a script killed after the timeout
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return rc


@pytest.fixture(scope="session")
def kafka():
    """One broker for the whole run; tests use their own topics."""
    server = KafkaTestServer().start()
    yield server
    server.stop()


# Spark, for every test of this folder (a fixture imported into conftest is registered once, for
# the whole folder; pytest refuses `pytest_plugins` in a conftest below the rootdir).
from spark_fixture import spark  # noqa: E402,F401
