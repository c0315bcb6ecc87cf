"""The command-line skeleton: help, version, exit statuses, one-line usage errors."""
from conftest import run_m2d


def test_help_lists_every_command_with_one_line():
    p = run_m2d("--help")
    assert p.returncode == 0
    commands = [l.split()[0] for l in p.stdout.split("Commands:\n")[1].split("\n\n")[0].splitlines()]
    assert "check" in commands and "watch" in commands
    for cmd in commands:
        h = run_m2d(cmd, "--help")
        assert h.returncode == 0, cmd
        assert f"Usage: mongo2delta {cmd}" in h.stdout
        assert "Example:" in h.stdout, f"{cmd} --help has no example"


def test_version():
    p = run_m2d("--version")
    assert p.returncode == 0 and p.stdout.startswith("mongo2delta ")


def test_no_command_is_a_usage_error():
    p = run_m2d()
    assert p.returncode == 2 and "Usage:" in p.stderr


def test_unknown_command_is_a_usage_error_with_a_hint():
    p = run_m2d("frobnicate")
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0
    assert "unknown command 'frobnicate'" in p.stderr and "--help" in p.stderr


def test_missing_required_option_names_it():
    p = run_m2d("check")
    assert p.returncode == 2
    assert "--uri URI is required" in p.stderr


def test_unknown_option_and_bad_values_are_usage_errors():
    assert run_m2d("check", "--nope").returncode == 2
    p = run_m2d("watch", "--uri", "mongodb://x", "--db", "d", "--collection", "c", "--max-events", "many")
    assert p.returncode == 2 and "--max-events must be a whole number" in p.stderr
    p = run_m2d("check", "--uri", "mongodb://x", "--log-format", "xml")
    assert p.returncode == 2 and "--log-format" in p.stderr


def test_malformed_uri_is_a_usage_error_without_the_password():
    p = run_m2d("check", "--uri", "mongodb://bob:pa55word@host:notaport/")
    assert p.returncode == 2
    assert "pa55word" not in p.stdout + p.stderr
    assert "invalid MongoDB URI" in p.stderr
