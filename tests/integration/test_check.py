"""mongo2delta check against the real test server, a closed port, and URIs with passwords."""
import json
import socket
import time

from conftest import run_m2d


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_check_reports_the_server(mongo):
    p = run_m2d("check", "--uri", mongo.uri, check=True)
    out = dict(l.split(":", 1) for l in p.stdout.splitlines())
    assert out["server"].strip() == f"127.0.0.1:{mongo.port}"
    assert out["wire version"].strip() == "8"  # what mongo-java-server announces
    assert out["topology"].strip() == "standalone"
    assert out["change streams"].strip().startswith("yes")
    assert out["version"].strip() != "unknown"


def test_check_requiring_change_streams_passes_on_the_test_server(mongo):
    assert run_m2d("check", "--uri", mongo.uri, "--require-change-streams").returncode == 0


def test_check_against_a_closed_port_fails_fast_with_a_clear_message():
    start = time.time()
    p = run_m2d("check", "--uri", f"mongodb://127.0.0.1:{closed_port()}/", timeout=30)
    assert p.returncode == 1
    assert time.time() - start < 10
    assert "cannot reach the MongoDB server" in p.stderr
    assert "check that the server is running" in p.stderr


def test_passwords_never_appear_in_any_output(mongo):
    secret = "Sup3r-s3cret-pw"
    uris = [
        f"mongodb://alice:{secret}@127.0.0.1:{mongo.port}/?authSource=admin",
        f"mongodb://alice:{secret}@127.0.0.1:{closed_port()}/",
    ]
    for uri in uris:
        for extra in ([], ["--verbose"], ["--verbose", "--log-format", "json"]):
            p = run_m2d("check", "--uri", uri, *extra, timeout=30)
            assert p.returncode == 1  # the test server has no users; the closed port has no server
            assert secret not in p.stdout and secret not in p.stderr
            assert "****" in p.stderr or "alice" not in p.stderr


def test_json_log_lines_are_json(mongo):
    p = run_m2d("check", "--uri", f"mongodb://127.0.0.1:{closed_port()}/", "--verbose",
                "--log-format", "json", timeout=30)
    logged = [l for l in p.stderr.splitlines() if l.startswith("{")]
    assert logged, p.stderr
    for line in logged:
        rec = json.loads(line)
        assert {"time", "level", "msg"} <= rec.keys()
