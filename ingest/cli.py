"""The ``ingest`` command: flags in, settings built, pipeline called, outcomes printed, exit code out.

Exit codes (a contract for scripts and schedulers):
    0  every file was stored, unchanged or stale
    1  some files were refused (each named on stderr with the reason), or the thing asked for is absent
    2  the run itself failed: bad flags or config, storage unreachable or denied
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from ingest import __version__
from ingest.errors import IngestError, InputError, RunError, StoreError
from ingest.models import ChangeEntry, Document
from ingest.parsers import registry
from ingest.pipeline import Committer, Outcome, draft, ingest_files, load_document, safe_prepare
from ingest.report import LogFormat, Reporter, redact_values, setup_logging
from ingest.runner import open_sources, run_once, watch
from ingest.settings import Settings, load_settings, source_for
from ingest.stores.s3 import S3Store, Stored
from ingest.versioning import Keys, changes_prefix, diff_lines, safe_id

EXIT_OK, EXIT_REFUSED, EXIT_RUN_FAILED = 0, 1, 2
log = logging.getLogger("ingest.cli")

_DESCRIPTION = """\
Ingest article files into S3-compatible storage as versioned JSON documents.

Each file is read safely, parsed, split into story text and related-link modules, validated,
and stored as an immutable version under articles/{id}/v{N}.json, with articles/{id}/latest.json
pointing at the newest and the input archived under raw/{id}/. A changes feed under changes/
tells a CMS what is new.
"""

_EPILOG = """\
configuration (highest wins): flags > INGEST_* environment > config file > defaults.
  config file: --config, else $INGEST_CONFIG, else ./config/ingest.yaml
  storage: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE (standard AWS)

exit codes: 0 all good, 1 some files refused, 2 the run failed (config, storage)

examples:
  ingest parse --pretty story.txt          show the document a file would become
  ingest file wires/*.txt                  store new articles and new versions
  ingest file --note "Fixed the death toll" --editor "J. Smith" story.txt
  ingest history story                     list every version of article 'story'
  ingest changes --since 2026-11-01T00:00:00Z --json
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("settings")
    group.add_argument("--config", type=Path, metavar="PATH", help="YAML config file (default: ./config/ingest.yaml)")
    group.add_argument("--bucket", metavar="NAME", help="S3 bucket (overrides $INGEST_BUCKET and the config file)")
    group.add_argument("--prefix", metavar="PREFIX", help="key prefix inside the bucket ('' for none)")
    group.add_argument("--debug", action="store_true", help="log every request and retry; show tracebacks")
    group.add_argument(
        "--log-format",
        choices=("auto", "text", "json"),
        default="auto",
        help="text for people, json for log collectors (auto: text on a terminal, else json for run/watch)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="ingest", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=_Formatter
    )
    parser.add_argument("--version", action="version", version=f"ingest {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        name: str, summary: str, description: str, handler: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=summary, description=description, parents=[common], formatter_class=_Formatter)
        p.set_defaults(handler=handler)
        return p

    p = command(
        "parse",
        "parse and validate files, print documents; nothing is stored",
        "Parse and validate each FILE without touching storage, and print the document it would be\n"
        "stored as (version 1 of a new article): one compact JSON document per line on stdout.\n"
        "A refused file gets one line on stderr naming it and the reason; the exit code is then 1.",
        _cmd_parse,
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="article files to parse")
    p.add_argument("--pretty", action="store_true", help="indented JSON for people instead of one line a document")

    p = command(
        "file",
        "ingest files into storage as new articles or new versions",
        "Ingest each FILE: parse, validate, and store a new version when its content changed.\n"
        "Prints one line per file: created, updated, unchanged, stale (equals a superseded version;\n"
        "nothing written) or failed (refused, with the reason). Good files are stored even when\n"
        "others are refused.",
        _cmd_file,
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="article files to ingest")
    p.add_argument(
        "--json", action="store_true", help='one JSON object per file: {"path", "id", "version", "outcome", "key"}'
    )
    p.add_argument("--note", metavar="TEXT", help="correction note recorded on the new version (action 'corrected')")
    p.add_argument("--editor", metavar="NAME", help="who made the correction")

    p = command(
        "show",
        "print a stored document",
        "Print the stored document ID: the latest version, or --version N.",
        _cmd_show,
    )
    p.add_argument("id", metavar="ID", help="article id")
    p.add_argument("--version", type=int, metavar="N", dest="number", help="a specific version (default: latest)")

    p = command(
        "history",
        "list every version of an article",
        "List every version of article ID, oldest first: number, time, action, editor and note.",
        _cmd_history,
    )
    p.add_argument("id", metavar="ID", help="article id")
    p.add_argument("--json", action="store_true", help="one JSON object per version")

    p = command(
        "diff",
        "show what changed between two versions",
        "Paragraph-level unified diff of article ID from version A to version B\n"
        "(one paragraph a line; '-' removed, '+' added).",
        _cmd_diff,
    )
    p.add_argument("id", metavar="ID", help="article id")
    p.add_argument("a", type=int, metavar="A", help="older version")
    p.add_argument("b", type=int, metavar="B", help="newer version")

    p = command(
        "rollback",
        "make a new version with an earlier version's content",
        "Restore the content of version N of article ID as a new version (action 'rolled_back').\n"
        "Versions are never rewritten: history keeps every step.",
        _cmd_rollback,
    )
    p.add_argument("id", metavar="ID", help="article id")
    p.add_argument("--to", type=int, required=True, metavar="N", help="the version whose content to restore")
    p.add_argument("--note", required=True, metavar="TEXT", help="why (recorded on the new version)")
    p.add_argument("--editor", metavar="NAME", help="who asked for it")

    p = command(
        "changes",
        "read the changes feed a CMS polls",
        "Print changes-feed entries (one per new version), oldest first.\n"
        "Entries are at-least-once: treat one (id, version) as one change.",
        _cmd_changes,
    )
    p.add_argument("--since", metavar="TIME", help="only entries at or after this ISO 8601 time (UTC if no zone)")
    p.add_argument("--json", action="store_true", help="JSON Lines, one entry per line")

    run_help = (
        "Sources come from `sources:` in the config file, or --source for this run only. A file is\n"
        "taken once it has settled (unchanged for settle_seconds); hidden and temporary names (*.part,\n"
        "*.tmp, *.crdownload) never are. After its document is stored a file moves to processed/; a\n"
        "refused file moves to failed/ with <name>.error.json beside it. Overlapping runs never take the\n"
        "same file. A report goes to runs/{run-id}.json.\n\n"
        "exit codes: 0 all good, 1 some files refused, 2 the run failed (nothing of the failed batch moved)"
    )
    p = command(
        "run",
        "sweep every source once and exit (for cron, timers, CronJobs)",
        "Sweep every configured source once, ingest what has arrived, and exit.\n\n" + run_help,
        _cmd_run,
    )
    _source_flag(p, "sweep this folder or S3 inbox instead of the configured sources (repeatable)")
    p = command(
        "watch",
        "keep sweeping sources until stopped",
        "Sweep sources every poll_seconds until SIGINT or SIGTERM; on either, finish the file in hand\n"
        "and exit cleanly.\n\n" + run_help,
        _cmd_watch,
    )
    _source_flag(p, "watch this folder or S3 inbox instead of the configured sources (repeatable)")
    p.add_argument("--interval", type=float, metavar="SECONDS", help="seconds between sweeps (poll_seconds)")
    p = command(
        "retry-failed",
        "put refused files back into their source for the next run",
        "Move every file in each source's failed/ back into the source, dropping its .error.json,\n"
        "once the cause is fixed (a rule changed, a parser fixed). The next run takes them again.",
        _cmd_retry_failed,
    )
    _source_flag(p, "only this folder or S3 inbox (repeatable)")

    command(
        "formats",
        "list the input formats ingest understands",
        "List the registered input formats, the file endings they usually have, and what they read.",
        _cmd_formats,
    )
    return parser


def _source_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--source", action="append", metavar="PATH|s3://BUCKET/PREFIX/", help=help_text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.log_format = _log_format(args)
    setup_logging(args.log_format, args.debug)
    try:
        code: int = args.handler(args)
        return code
    except RunError as exc:
        if args.debug:
            raise
        _err(f"error: {exc}")
        return EXIT_RUN_FAILED
    except IngestError as exc:
        _err(f"error: {exc}")
        return EXIT_REFUSED
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:  # stdout full or gone: say so in one line
        _err(f"error: cannot write output: {exc.strerror or exc}")
        return EXIT_RUN_FAILED


# ---------------------------------------------------------------------------------------------- commands


def _log_format(args: argparse.Namespace) -> LogFormat:
    if args.log_format != "auto":
        return "json" if args.log_format == "json" else "text"
    sweeping = args.command in {"run", "watch"}
    return "json" if sweeping and not sys.stderr.isatty() else "text"


def _settings(args: argparse.Namespace) -> Settings:
    flags: dict[str, object] = {"bucket": args.bucket, "prefix": args.prefix}
    if getattr(args, "source", None):
        flags["sources"] = [source_for(location) for location in args.source]
    if getattr(args, "interval", None) is not None:
        flags["poll_seconds"] = args.interval
    return load_settings(flags, config=args.config)


def _store(settings: Settings) -> S3Store:
    store = S3Store(settings.bucket, attempts=settings.retry_attempts, max_seconds=settings.retry_max_seconds)
    redact_values(store.credential_values())
    return store


def _cmd_parse(args: argparse.Namespace) -> int:
    settings = _settings(args)
    refused = 0
    for path in args.files:
        result = safe_prepare(path, settings)
        if isinstance(result, Outcome):
            refused += 1
            _err(f"error: {result.error}")
            continue
        doc = draft(result)
        print(doc.model_dump_json(indent=2 if args.pretty else None), flush=True)
    return EXIT_REFUSED if refused else EXIT_OK


def _cmd_file(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _store(settings)

    def report(outcome: Outcome) -> None:
        if outcome.error is not None:
            _err(f"error: {outcome.error}")
        if args.json:
            print(json.dumps(outcome.as_json(), ensure_ascii=False), flush=True)
        elif outcome.error is None:
            print(outcome.line(), flush=True)

    outcomes = ingest_files(args.files, settings, store, note=args.note, editor=args.editor, on_outcome=report)
    return EXIT_REFUSED if any(o.outcome == "failed" for o in outcomes) else EXIT_OK


def _article_id(raw: str) -> str:
    """The id as ingest would have made it: 'ferry strike' finds 'ferry-strike'; '../x' is refused."""
    return safe_id(raw, raw)


def _note(text: str) -> str:
    if not text.strip():
        raise RunError("--note must say why (it is recorded on the new version)")
    return text


def _read_stored(store: S3Store, keys: Keys, version: int | None) -> tuple[str, Stored]:
    key = keys.latest if version is None else keys.version(version)
    stored = store.get(key)
    if stored is None:
        raise InputError(keys.id, f"no such document ({key})", check="not-found")
    return key, stored


def _read_doc(store: S3Store, keys: Keys, version: int | None) -> Document:
    key, stored = _read_stored(store, keys, version)
    doc = load_document(stored, key)
    assert doc is not None  # stored is not None, so neither is the document
    return doc


def _cmd_show(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _, stored = _read_stored(_store(settings), Keys(settings.prefix, _article_id(args.id)), args.number)
    sys.stdout.write(stored.body.decode("utf-8"))
    return EXIT_OK


def _cmd_history(args: argparse.Namespace) -> int:
    settings = _settings(args)
    doc = _read_doc(_store(settings), Keys(settings.prefix, _article_id(args.id)), None)
    for row in [*doc.history, doc.record()]:
        if args.json:
            print(row.model_dump_json())
        else:
            who = f"  by {row.editor}" if row.editor else ""
            what = f'  "{row.note}"' if row.note else ""
            print(f"v{row.version:<4} {row.created_at:%Y-%m-%d %H:%M:%S}Z  {row.action:<11}{who}{what}".rstrip())
    return EXIT_OK


def _cmd_diff(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _store(settings)
    keys = Keys(settings.prefix, _article_id(args.id))
    old, new = _read_doc(store, keys, args.a), _read_doc(store, keys, args.b)
    lines = diff_lines(old.content(), new.content(), f"{args.id} v{args.a}", f"{args.id} v{args.b}")
    print("\n".join(lines) if lines else f"{args.id}: v{args.a} and v{args.b} have the same content")
    return EXIT_OK


def _cmd_rollback(args: argparse.Namespace) -> int:
    settings = _settings(args)
    outcome = Committer(_store(settings), settings.prefix).rollback(
        _article_id(args.id), args.to, _note(args.note), args.editor
    )
    print(outcome.line())
    return EXIT_OK


def _cmd_changes(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _store(settings)
    since = _parse_time(args.since) if args.since else None
    prefix = changes_prefix(settings.prefix)
    # Object names start with their write time, so listing can skip everything older than --since.
    start_after = f"{prefix}{since.astimezone(UTC):%Y%m%dT%H%M%S}" if since else ""
    for key in store.list_keys(prefix, start_after=start_after):
        stored = store.get(key)
        for line in stored.body.decode("utf-8").splitlines() if stored else []:
            try:
                entry = ChangeEntry.model_validate_json(line)
            except ValidationError as exc:
                raise StoreError(f"{key}: not a valid changes-feed entry ({exc.errors()[0]['msg']})") from exc
            if since and entry.time < since:
                continue
            if args.json:
                print(entry.model_dump_json())
            else:
                print(f"{entry.time:%Y-%m-%d %H:%M:%S}Z  {entry.action:<11} {entry.id} v{entry.version}  {entry.key}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    report = run_once(settings, _store(settings), open_sources(settings), Reporter(args.log_format))
    return EXIT_REFUSED if report.errors else EXIT_OK


def _cmd_watch(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store, sources = _store(settings), open_sources(settings)
    stop = threading.Event()

    def graceful(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C means now
            raise KeyboardInterrupt
        log.warning("%s: finishing the file in hand, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, graceful)
    signal.signal(signal.SIGINT, graceful)
    log.info(
        "watching %s every %.1f s; stop with Ctrl-C or SIGTERM",
        ", ".join(s.settings.location for s in sources),
        settings.poll_seconds,
    )
    refused = watch(settings, store, sources, Reporter(args.log_format), stop)
    return EXIT_REFUSED if refused else EXIT_OK


def _cmd_retry_failed(args: argparse.Namespace) -> int:
    settings = _settings(args)
    for source in open_sources(settings):
        names = source.retry_failed()
        for name in names:
            print(f"requeued   {source.settings.location.rstrip('/')}/{name}")
        print(f"{source.settings.name}: {len(names)} file{'s' if len(names) != 1 else ''} put back")
    return EXIT_OK


def _cmd_formats(args: argparse.Namespace) -> int:
    for parser in registry.all():
        ext = " ".join(e for e in parser.extensions if e) or "-"
        print(f"{parser.name:<12} {ext:<22} {parser.description}")
    return EXIT_OK


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RunError(f"--since: {text!r} is not an ISO 8601 time (e.g. 2026-11-23T08:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _err(message: str) -> None:
    print(message.replace("\n", " "), file=sys.stderr, flush=True)
