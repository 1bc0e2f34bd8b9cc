"""The `ingest` command as a user runs it: help, exit codes, one-line errors, every command."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ingest.cli import build_parser
from tests.conftest import EXAMPLES, SEED, need_shared, run_cli

COMMANDS = [
    "parse",
    "file",
    "show",
    "history",
    "diff",
    "rollback",
    "changes",
    "run",
    "watch",
    "retry-failed",
    "formats",
]


ingest = run_cli


def test_every_command_has_help_that_reads_like_a_manual() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert sorted(subparsers.choices) == sorted(COMMANDS)  # type: ignore[union-attr]
    top = ingest("--help")
    assert top.returncode == 0
    for name in COMMANDS:
        assert name in top.stdout
        page = ingest(name, "--help")
        assert page.returncode == 0, name
        assert "usage: ingest " + name in page.stdout
        assert len(page.stdout.splitlines()) > 8, name
    assert "exit codes" in top.stdout


def test_version_flag() -> None:
    out = ingest("--version")
    assert out.returncode == 0 and out.stdout.startswith("ingest ")


def test_parse_prints_one_json_document_per_line(tmp_path: Path) -> None:
    files = [str(p) for p in sorted(EXAMPLES.glob("*.txt"))]
    out = ingest("parse", *files)
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(docs) == len(files)
    assert all(d["version"] == 1 and d["body"] and d["headline"] for d in docs)


def test_parse_seed_pretty() -> None:
    out = ingest("parse", "--pretty", str(need_shared(SEED)))
    assert out.returncode == 0
    doc = json.loads(out.stdout)
    assert (len(doc["body"]), len(doc["related_links"])) == (18, 8)


def test_bad_files_get_one_line_each_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02")
    good = next(EXAMPLES.glob("*.txt"))
    out = ingest("parse", str(tmp_path / "empty.txt"), str(good), str(tmp_path / "binary.txt"))
    assert out.returncode == 1
    errors = out.stderr.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {tmp_path / 'empty.txt'}: ")
    assert "binary" in errors[1]
    assert "Traceback" not in out.stderr
    assert len(out.stdout.splitlines()) == 1  # the good file still printed


@pytest.mark.s3
def test_file_show_history_diff_rollback_changes(tmp_path: Path, cli_env: dict[str, str]) -> None:
    files = [str(p) for p in sorted(EXAMPLES.glob("*.txt"))]
    first = ingest("file", "--json", *files, env=cli_env)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    assert [r["outcome"] for r in rows] == ["created"] * len(files)
    assert all(set(r) >= {"path", "id", "version", "outcome", "key"} for r in rows)
    again = ingest("file", *files, env=cli_env)
    assert again.returncode == 0 and again.stdout.count("unchanged") == len(files)

    story = tmp_path / "bridge.txt"
    story.write_text("Bridge Closes\n\nIt closes Friday.\n\nBuses divert.\n")
    assert ingest("file", str(story), env=cli_env).returncode == 0
    story.write_text("Bridge Closes\n\nIt closes Saturday.\n\nBuses divert.\n")
    fixed = ingest("file", "--note", "Wrong day", "--editor", "Ann Lee", str(story), env=cli_env)
    assert "updated" in fixed.stdout

    shown = ingest("show", "bridge", env=cli_env)
    assert json.loads(shown.stdout)["version"] == 2
    assert json.loads(ingest("show", "bridge", "--version", "1", env=cli_env).stdout)["version"] == 1
    history = ingest("history", "bridge", env=cli_env).stdout.splitlines()
    assert len(history) == 2 and "corrected" in history[1] and "Wrong day" in history[1] and "Ann Lee" in history[1]
    diff = ingest("diff", "bridge", "1", "2", env=cli_env).stdout
    assert "-It closes Friday." in diff and "+It closes Saturday." in diff
    rolled = ingest("rollback", "bridge", "--to", "1", "--note", "Revert", env=cli_env)
    assert rolled.returncode == 0 and "v3" not in rolled.stderr
    assert json.loads(ingest("show", "bridge", env=cli_env).stdout)["action"] == "rolled_back"
    changes = [json.loads(line) for line in ingest("changes", "--json", env=cli_env).stdout.splitlines()]
    assert {(c["id"], c["version"]) for c in changes if c["id"] == "bridge"} == {
        ("bridge", 1),
        ("bridge", 2),
        ("bridge", 3),
    }
    first_time = min((c["time"] for c in changes), key=datetime.fromisoformat)
    as_plus_one = (datetime.fromisoformat(first_time) + timedelta(hours=1)).replace(tzinfo=None).isoformat() + "+01:00"
    same_instant = ingest("changes", "--since", as_plus_one, "--json", env=cli_env).stdout.splitlines()
    assert len(same_instant) == len(changes)  # a zone offset means the same instant, not fewer entries
    assert json.loads(ingest("show", "bridge", env=cli_env).stdout)["id"] == "bridge"
    escape = ingest("show", "../etc", env=cli_env)
    assert escape.returncode == 1 and "no such document (" in escape.stderr  # "../etc" is read as id "etc"
    assert ingest("watch", "--source", "x", "--interval", "0", env=cli_env).returncode == 2
    later = ingest("changes", "--since", "2999-01-01T00:00:00Z", env=cli_env)
    assert later.returncode == 0 and later.stdout == ""

    missing = ingest("show", "no-such-article", env=cli_env)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_storage_down_is_one_line_and_exit_2(tmp_path: Path) -> None:
    story = tmp_path / "s.txt"
    story.write_text("Headline\n\nBody.\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
        "INGEST_RETRY_ATTEMPTS": "2",
        "INGEST_RETRY_MAX_SECONDS": "2",
    }
    out = ingest("file", str(story), env=env)
    assert out.returncode == 2
    *retries, final = out.stderr.splitlines()
    assert final.startswith("error: S3 HEAD bucket ingest: ") or final.startswith("error: storage unreachable")
    assert "unreachable" in final
    assert len(retries) == 1 and "retrying HEAD bucket ingest (attempt 1 of 2" in retries[0]  # one line per retry
    assert "Traceback" not in out.stderr
    assert story.exists()


def test_bad_config_is_exit_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("bucket: NOT_VALID\n")
    out = ingest("parse", "--config", str(cfg), str(next(EXAMPLES.glob("*.txt"))))
    assert out.returncode == 2
    assert "bucket" in out.stderr and out.stderr.count("\n") == 1


@pytest.mark.s3
def test_corrupt_stored_data_and_version_zero_are_one_line_errors(
    cli_env: dict[str, str], prefix: str, store: object
) -> None:
    from ingest.stores.s3 import S3Store

    assert isinstance(store, S3Store)
    store.put(f"{prefix}articles/broken/latest.json", b'{"not": "a document"}')
    store.put(f"{prefix}changes/20260101T000000000000Z-x-00001.jsonl", b"not json\n")
    for args, code in ((["history", "broken"], 2), (["changes"], 2), (["show", "broken", "--version", "0"], 1)):
        out = ingest(*args, env=cli_env)
        assert out.returncode == code, (args, out.stderr)
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert "v0.json" in ingest("show", "broken", "--version", "0", env=cli_env).stderr
