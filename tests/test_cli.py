"""The `ingest` command as a user runs it: help, exit codes, one-line errors, every command.

Run in-process through ``ingest.cli.main`` (the same code the console script calls); tests where a real
process is the point (signals to ``ingest watch``, kill -9, overlapping runs) are in ``test_runner_s3.py``
and ``test_faults.py``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ingest.cli import build_parser
from ingest.stores.s3 import S3Store
from tests.conftest import BUCKET, EXAMPLES, SEED, cli, need_shared

#: Each command and words of its own description that its help page must show.
COMMANDS = {
    "parse": "Parse and validate each FILE without touching storage",
    "file": "Ingest each FILE: parse, validate, and store a new version",
    "show": "Print the stored document ID",
    "history": "List every version of article ID, oldest first",
    "diff": "Paragraph-level unified diff of article ID",
    "rollback": "Restore the content of version N of article ID as a new version",
    "changes": "Print changes-feed entries",
    "run": "Sweep every configured source once",
    "watch": "Sweep sources every poll_seconds until SIGINT or SIGTERM",
    "status": "For each source: its state (healthy, quiet or failing) and why",
    "serve": "Serve a small web application for the person on call",
    "retry-failed": "Move every file in each source's failed/ back into the source",
    "worker": "Run a Celery worker (8 task processes per core by default)",
    "backfill": "Load every file under a folder (recursively) or an S3 prefix, read in place",
    "formats": "List the registered input formats",
    "notify": "Deliver to each webhook endpoint (`webhooks:` in the config file) every changes-feed entry",
}


def test_every_command_has_its_own_help_with_description_and_examples() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert sorted(subparsers.choices) == sorted(COMMANDS)  # type: ignore[union-attr]
    top = cli("--help")
    assert top.returncode == 0
    assert "exit codes" in top.stdout and "examples:" in top.stdout
    for name, description in COMMANDS.items():
        assert re.search(rf"\n    {name}\s", top.stdout), name  # listed with its summary
        page = cli(name, "--help")
        assert page.returncode == 0, name
        assert page.stdout.startswith(f"usage: ingest {name} "), name
        assert description in " ".join(page.stdout.split()), name
        examples = page.stdout.split("examples:\n", 1)[1].splitlines()
        assert examples and all(line.startswith(f"  ingest {name}") for line in examples if line.strip()), name


def test_version_flag() -> None:
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("ingest ")


def test_parse_prints_one_json_document_per_line() -> None:
    files = [str(p) for p in sorted(EXAMPLES.glob("*.txt"))]
    out = cli("parse", *files)
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [d["source"]["file_name"] for d in docs] == [Path(f).name for f in files]
    assert all(d["version"] == 1 and d["body"] and d["headline"] for d in docs)


def test_parse_names_no_archived_input_as_it_stores_none() -> None:
    example = str(EXAMPLES / "harbour-bridge-closure.txt")
    out = cli("parse", example)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["source"]["raw_key"] is None
    for fmt in ("ninjs", "ninjs3", "ans"):
        out = cli("parse", "--as", fmt, example)
        assert out.returncode == 0, out.stderr
        assert "raw-key" not in out.stdout and "raw/" not in out.stdout, fmt


def test_the_help_examples_name_an_article_the_examples_make() -> None:
    made = {json.loads(line)["id"] for line in cli("parse", *map(str, EXAMPLES.glob("*.txt"))).stdout.splitlines()}
    parser = build_parser()
    for name in ("show", "history", "diff", "rollback"):
        examples = cli(name, "--help").stdout.split("examples:\n", 1)[1].splitlines()
        for line in filter(str.strip, examples):
            command = re.split(r"\s{2,}", line.strip())[0]  # without its comment
            assert parser.parse_args(shlex.split(command)[1:]).id in made, line


def test_parse_seed_pretty() -> None:
    out = cli("parse", "--pretty", str(need_shared(SEED)))
    assert out.returncode == 0
    doc = json.loads(out.stdout)
    assert (len(doc["body"]), len(doc["related_links"])) == (18, 8)
    assert out.stdout.startswith('{\n  "schema_version": "1.0",\n  "id": "000_a02b289d76dca1f3"')


def test_bad_files_get_one_line_each_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02")
    good = next(EXAMPLES.glob("*.txt"))
    out = cli("parse", str(tmp_path / "empty.txt"), str(good), str(tmp_path / "binary.txt"))
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
    first = cli("file", "--json", *files, env=cli_env)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    assert [r["outcome"] for r in rows] == ["created"] * len(files)
    assert all(list(r) == ["path", "id", "version", "outcome", "key"] for r in rows)
    again = cli("file", *files, env=cli_env)
    assert again.returncode == 0 and again.stdout.count("unchanged") == len(files)

    story = tmp_path / "bridge.txt"
    story.write_text("Bridge Closes\n\nIt closes Friday.\n\nBuses divert.\n")
    assert cli("file", str(story), env=cli_env).returncode == 0
    story.write_text("Bridge Closes\n\nIt closes Saturday.\n\nBuses divert.\n")
    fixed = cli("file", "--note", "Wrong day", "--editor", "Ann Lee", str(story), env=cli_env)
    assert fixed.stdout.startswith(f"updated    {story} -> ") and fixed.stdout.rstrip().endswith("/v2.json")

    assert json.loads(cli("show", "bridge", env=cli_env).stdout)["version"] == 2
    assert json.loads(cli("show", "bridge", "--version", "1", env=cli_env).stdout)["version"] == 1
    history = cli("history", "bridge", env=cli_env).stdout.splitlines()
    assert len(history) == 2 and history[1].endswith('corrected    by Ann Lee  "Wrong day"')
    diff = cli("diff", "bridge", "1", "2", env=cli_env).stdout
    assert "-It closes Friday." in diff and "+It closes Saturday." in diff
    same = cli("diff", "bridge", "2", "2", env=cli_env).stdout
    assert same == "bridge: v2 and v2 have the same content\n"
    rolled = cli("rollback", "bridge", "--to", "1", "--note", "Revert", env=cli_env)
    assert rolled.returncode == 0 and rolled.stdout.startswith("rolled_back bridge@v1 -> ")  # its action, not "updated"
    assert json.loads(cli("show", "bridge", env=cli_env).stdout)["action"] == "rolled_back"
    assert cli("rollback", "bridge", "--to", "1", "--note", "  ", env=cli_env).returncode == 2
    changes = [json.loads(line) for line in cli("changes", "--json", env=cli_env).stdout.splitlines()]
    assert {(c["id"], c["version"]) for c in changes if c["id"] == "bridge"} == {("bridge", v) for v in (1, 2, 3)}
    first_time = min((c["time"] for c in changes), key=datetime.fromisoformat)
    as_plus_one = (datetime.fromisoformat(first_time) + timedelta(hours=1)).replace(tzinfo=None).isoformat() + "+01:00"
    same_instant = cli("changes", "--since", as_plus_one, "--json", env=cli_env).stdout.splitlines()
    assert len(same_instant) == len(changes)  # a zone offset means the same instant, not fewer entries
    escape = cli("show", "../etc", env=cli_env)
    assert escape.returncode == 1 and "no such document (" in escape.stderr  # "../etc" is read as id "etc"
    assert cli("watch", "--source", "x", "--interval", "0", env=cli_env).returncode == 2
    later = cli("changes", "--since", "2999-01-01T00:00:00Z", env=cli_env)
    assert later.returncode == 0 and later.stdout == ""
    assert cli("changes", "--since", "yesterday", env=cli_env).returncode == 2
    missing = cli("show", "no-such-article", env=cli_env)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _storage_down_env() -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
        "INGEST_RETRY_ATTEMPTS": "2",
        "INGEST_RETRY_MAX_SECONDS": "2",
    }


def test_storage_down_is_one_line_and_exit_2(tmp_path: Path) -> None:
    story = tmp_path / "s.txt"
    story.write_text("Headline\n\nBody.\n")
    out = cli("file", str(story), env=_storage_down_env())
    assert out.returncode == 2
    *retries, final = out.stderr.splitlines()
    assert final.startswith("error: storage unreachable: HEAD bucket ingest failed after retrying")
    assert len(retries) == 1 and "retrying HEAD bucket ingest (attempt 1 of 2" in retries[0]  # one line per retry
    assert "Traceback" not in out.stderr
    assert story.exists()


def test_debug_shows_the_traceback_but_keeps_the_exit_code(tmp_path: Path) -> None:
    story = tmp_path / "s.txt"
    story.write_text("Headline\n\nBody.\n")
    out = cli("file", "--debug", str(story), env=_storage_down_env())
    assert out.returncode == 2
    assert "Traceback" in out.stderr
    assert out.stderr.splitlines()[-1].startswith("error: storage unreachable")


def test_with_json_logs_every_line_on_stderr_is_json_the_last_error_too(tmp_path: Path) -> None:
    story = tmp_path / "s.txt"
    story.write_text("Headline\n\nBody.\n")
    for extra in ([], ["--debug"]):
        out = cli("file", "--log-format", "json", *extra, str(story), env=_storage_down_env())
        assert out.returncode == 2
        lines = [json.loads(line) for line in out.stderr.splitlines()]  # every line is JSON: none is "error: ..."
        final = lines[-1]
        assert final["message"].startswith("storage unreachable: HEAD bucket ingest failed after retrying")
        assert (final["level"], final["event"], final["error"], final["transient"]) == (
            "error",
            "error",
            "StoreUnavailable",
            True,
        )
        assert (final["operation"], final["key"], final["exit_code"]) == ("HEAD bucket ingest", None, 2)
        assert ("traceback" in final) == bool(extra)  # --debug: the traceback, inside the JSON object
    (tmp_path / "empty.txt").write_text("")
    refused = cli("parse", "--log-format", "json", str(tmp_path / "empty.txt"), str(story))
    [line] = refused.stderr.splitlines()
    assert {k: v for k, v in json.loads(line).items() if k not in ("time", "logger")} == {
        "level": "error",
        "message": f"{tmp_path / 'empty.txt'}: is empty: no headline and no body",
        "event": "error",
        "error": "InvalidDocument",
        "transient": False,
        "path": str(tmp_path / "empty.txt"),
        "check": "headline",
        "field": "headline",
    }
    assert refused.returncode == 1 and json.loads(refused.stdout)["headline"] == "Headline"
    text = cli("parse", "--log-format", "text", str(tmp_path / "empty.txt"))  # text: exactly as before
    assert text.stderr == f"error: {tmp_path / 'empty.txt'}: is empty: no headline and no body\n"


def test_a_command_run_where_no_config_is_found_warns_and_its_help_says_what_it_would_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config/ingest.yaml here
    env = {"PATH": "/usr/bin:/bin", "INGEST_BUCKET": "news-docs"}
    story = tmp_path / "s.txt"
    story.write_text("Headline\n\nBody.\n")
    out = cli("parse", str(story), env=env)
    assert out.returncode == 0 and json.loads(out.stdout)["headline"] == "Headline"
    assert out.stderr == (
        f"warning: no config file found (no {tmp_path}/config/ingest.yaml; --config or $INGEST_CONFIG names one): "
        "using the defaults and INGEST_* variables, bucket s3://news-docs/\n"
    )
    logged = json.loads(cli("parse", "--log-format", "json", str(story), env=env).stderr)
    assert (logged["level"], logged["event"], logged["bucket"]) == ("warning", "no_config", "news-docs")
    for args in (["--help"], ["file", "--help"], ["run", "--help"]):
        page = " ".join(cli(*args, env=env).stdout.split())
        assert "in use here: no config file (defaults and INGEST_*), bucket s3://news-docs/" in page, args
    config = tmp_path / "elsewhere.yaml"
    config.write_text("bucket: other-docs\nprefix: wires\n")
    for args in (["file", "--config", str(config), "--help"], ["run", "--help", f"--config={config}"]):
        page = " ".join(cli(*args, env=env).stdout.split())
        assert f"in use here: config {config}, bucket s3://news-docs/wires/" in page, args  # $INGEST_BUCKET wins
    page = " ".join(cli("show", "--bucket", "flag-docs", "--config", str(config), "--help", env=env).stdout.split())
    assert f"in use here: config {config}, bucket s3://flag-docs/wires/" in page  # and a flag over that, as in a run
    assert cli("parse", "--config", str(config), str(story), env=env).stderr == ""  # a config file: no warning


def test_retry_failed_takes_names_and_a_dry_run(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    (drop / "failed").mkdir(parents=True)
    for name in ("a.txt", "b.txt"):
        (drop / "failed" / name).write_text("Headline\n\nBody.\n")
        (drop / "failed" / f"{name}.error.json").write_text("{}")
    listed = sorted(p.name for p in (drop / "failed").iterdir())
    dry = cli("retry-failed", "--source", str(drop), "--dry-run")
    assert (dry.returncode, dry.stdout.splitlines()) == (
        0,
        [
            f"would requeue {drop}/failed/a.txt",
            f"would requeue {drop}/failed/b.txt",
            "drop: 2 files would be put back (dry run: nothing moved)",
        ],
    )
    assert sorted(p.name for p in (drop / "failed").iterdir()) == listed
    unknown = cli("retry-failed", "--source", str(drop), "b.txt", "nope.txt")
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert unknown.stderr == f"error: nope.txt: not in failed/ of drop ({drop}); nothing was put back\n"
    one = cli("retry-failed", "--source", str(drop), "b.txt")
    assert (one.returncode, one.stdout.splitlines()) == (0, [f"requeued   {drop}/b.txt", "drop: 1 file put back"])
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == ["b.txt"]
    assert sorted(p.name for p in (drop / "failed").iterdir()) == ["a.txt", "a.txt.error.json"]


def test_bad_config_is_exit_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("bucket: NOT_VALID\n")
    out = cli("parse", "--config", str(cfg), str(next(EXAMPLES.glob("*.txt"))))
    assert out.returncode == 2
    assert f"bucket (from {cfg})" in out.stderr and out.stderr.count("\n") == 1


def test_a_bad_rule_is_exit_2_before_any_file_is_read(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("modules:\n  disable: [no-such-rule]\n")
    out = cli("parse", "--config", str(cfg), str(next(EXAMPLES.glob("*.txt"))))
    assert (out.returncode, out.stdout) == (2, "")
    assert "no rule named 'no-such-rule'" in out.stderr


def test_formats_lists_every_format_with_its_endings() -> None:
    from ingest.parsers import registry

    out = cli("formats")
    assert [line.split()[0] for line in out.stdout.splitlines()] == [p.name for p in registry.all()]
    assert out.stdout.splitlines()[0].startswith("text ")


@pytest.mark.s3
def test_corrupt_stored_data_and_version_zero_are_one_line_errors(
    cli_env: dict[str, str], prefix: str, store: S3Store
) -> None:
    store.put(f"{prefix}articles/broken/latest.json", b'{"not": "a document"}')
    store.put(f"{prefix}changes/20260101T000000000000Z-x-00001.jsonl", b"not json\n")
    for args, code in ((["history", "broken"], 2), (["changes"], 2), (["show", "broken", "--version", "0"], 1)):
        out = cli(*args, env=cli_env)
        assert out.returncode == code, (args, out.stderr)
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert "v0.json" in cli("show", "broken", "--version", "0", env=cli_env).stderr


def test_file_reads_names_from_stdin_when_given_a_dash(
    tmp_path: Path, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    names = []
    for n in range(3):
        path = tmp_path / f"listed-{n}.txt"
        path.write_text(f"Listed story {n}\n\nIts one paragraph.\n")
        names.append(str(path))
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(names) + "\n\n"))
    ran = cli("file", "-", env=cli_env)
    assert ran.returncode == 0, ran.stderr
    assert [line.split()[0] for line in ran.stdout.splitlines()] == ["created"] * 3
    assert all(f"listed-{n}.txt" in ran.stdout for n in range(3))


@pytest.mark.s3
def test_file_and_run_say_which_config_and_bucket_they_used(
    tmp_path: Path, cli_env: dict[str, str], prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    story = tmp_path / "s.txt"
    story.write_text("Headline\n\nBody.\n")
    config = (Path("config") / "ingest.yaml").absolute()
    here = cli("file", str(story), env=cli_env)  # from the checkout: its config file
    assert here.returncode == 0 and here.stdout.startswith("created ") and len(here.stdout.splitlines()) == 1
    assert here.stderr == f"note: config {config}, bucket s3://{BUCKET}/{prefix}\n"  # stdout: one line per file
    monkeypatch.chdir(tmp_path)  # run from elsewhere: no config file, and it says so first
    story.write_text("Headline\n\nBody, corrected.\n")
    there = cli("file", str(story), env=cli_env)
    assert there.returncode == 0 and there.stdout.startswith("updated ")
    warning, note = there.stderr.splitlines()
    assert warning.startswith(f"warning: no config file found (no {tmp_path}/config/ingest.yaml;")
    assert note == f"note: no config file (defaults and INGEST_*), bucket s3://{BUCKET}/{prefix}"
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "x.txt").write_text("Another\n\nStory.\n")
    os.utime(drop / "x.txt", (time.time() - 60, time.time() - 60))
    ran = cli("run", "--source", str(drop), "--log-format", "text", env=cli_env)
    assert ran.returncode == 0, ran.stderr
    summary, noted = ran.stdout.splitlines()[-2:]
    assert summary.startswith("run ") and "1 created" in summary
    assert noted == note
    logged = cli("file", "--log-format", "json", str(story), env=cli_env)
    in_use = json.loads(logged.stderr.splitlines()[-1])
    assert (in_use["event"], in_use["config_file"], in_use["bucket"], in_use["prefix"]) == (
        "in_use",
        None,
        BUCKET,
        prefix,
    )
