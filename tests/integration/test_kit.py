"""The test kit itself: a sanitizer report fails the test even where the test expects mongo2delta
to fail, and an ordinary failure does not. A tiny fake command stands in for the binary."""
import pytest

from conftest import SANITIZER_ENV, SANITIZER_EXIT, run_m2d, start_m2d

REPORTS = [
    "==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010\n",
    "==4242==ERROR: LeakSanitizer: detected memory leaks\n",
    "src/core/buf.c:10:5: runtime error: signed integer overflow\n",
    "SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior src/core/buf.c:10:5\n",
]


def fake(tmp_path, stderr, status):
    """A command that prints stderr and exits with status, whatever its arguments."""
    (tmp_path / "err.txt").write_text(stderr)
    path = tmp_path / "fake-m2d"
    path.write_text(f"#!/bin/sh\ncat '{tmp_path / 'err.txt'}' >&2\nexit {status}\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("report", REPORTS)
@pytest.mark.parametrize("status", [0, 1, 2])
def test_a_report_fails_the_test_whatever_the_exit(tmp_path, report, status):
    binary = fake(tmp_path, "mongo2delta: could not reach the server\n" + report, status)
    with pytest.raises(pytest.fail.Exception, match="sanitizer report"):
        run_m2d("sync", binary=binary)
    proc = start_m2d("sync", binary=binary)
    with pytest.raises(pytest.fail.Exception, match="sanitizer report"):
        proc.communicate(timeout=30)


def test_the_sanitizer_exit_status_alone_fails_the_test(tmp_path):
    binary = fake(tmp_path, "", SANITIZER_EXIT)
    with pytest.raises(pytest.fail.Exception, match=f"exit {SANITIZER_EXIT}"):
        run_m2d("sync", binary=binary)
    proc = start_m2d("sync", binary=binary, stderr=None)
    with pytest.raises(pytest.fail.Exception, match=f"exit {SANITIZER_EXIT}"):
        proc.wait(timeout=30)


def test_an_ordinary_failure_is_the_test_s_to_judge(tmp_path):
    binary = fake(tmp_path, "mongo2delta: could not reach the server\n", 1)
    p = run_m2d("sync", binary=binary)
    assert p.returncode == 1 and "could not reach the server" in p.stderr
    proc = start_m2d("sync", binary=binary)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "could not reach the server" in err
    with pytest.raises(AssertionError, match="exited 1"):
        run_m2d("sync", binary=binary, check=True)


def test_env_is_added_to_the_sanitizer_options(tmp_path):
    path = tmp_path / "env-m2d"
    path.write_text('#!/bin/sh\necho "$ASAN_OPTIONS|$M2D_KIT_X" >&2\n')
    path.chmod(0o755)
    p = run_m2d("x", binary=str(path), env={"M2D_KIT_X": "1"})
    assert p.stderr.strip() == SANITIZER_ENV["ASAN_OPTIONS"] + "|1"
    # a caller that passes the sanitizer options again (as some build their env) is not refused
    proc = start_m2d("x", binary=str(path), env=dict(SANITIZER_ENV, M2D_KIT_X="2"))
    assert proc.communicate(timeout=30)[1].strip() == SANITIZER_ENV["ASAN_OPTIONS"] + "|2"
