"""The ``ingest`` command: flags in, settings built, pipeline called, outcomes printed, exit code out.

Exit codes (a contract for scripts and schedulers):
    0  every file was stored, unchanged or stale
    1  some files were refused or not stored (each named on stderr with the reason; a file not stored
       for storage trouble stays in its source for the next run), or the thing asked for is absent
    2  the run itself failed: bad flags or config, storage unreachable or denied
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingest import (
    Archive,
    ConfigError,
    Delivery,
    IngestError,
    LogFormat,
    Notifier,
    Outcome,
    Reload,
    Reporter,
    RunError,
    Watching,
    __version__,
    backfill,
    committer_for,
    delivery_log,
    dispatched_files,
    dispatcher,
    formats,
    ingest_stream,
    open_sources,
    open_store,
    preview_files,
    render,
    rendition_formats,
    retry_failed,
    rollback,
    run_once,
    serve,
    serve_metrics,
    setup_logging,
    start_worker,
    status,
    watch,
)
from ingest.settings import Settings, config_location, load_settings, pick_sources, ui_token

EXIT_OK, EXIT_REFUSED, EXIT_RUN_FAILED = 0, 1, 2
log = logging.getLogger("ingest.cli")

_DESCRIPTION = """\
Ingest article files into S3-compatible storage as versioned JSON documents.

Each file is read safely, parsed, split into story text and related-link modules, validated,
and stored as an immutable version under articles/{id}/v{N}.json, with articles/{id}/latest.json
pointing at the newest and the input archived under raw/{id}/. A changes feed under changes/
tells a CMS what is new.
"""

#: Where a help page says which config file and bucket a command would use here (worked out as it is shown).
_IN_USE = "\x00in-use\x00"

_EPILOG = f"""\
configuration (highest wins): flags > INGEST_* environment > config file > defaults.
  config file: --config, else $INGEST_CONFIG, else ./config/ingest.yaml
  storage: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE (standard AWS)
  in use here: {_IN_USE}

exit codes: 0 all good, 1 some files refused or not stored, 2 the run failed (config, storage)

examples:
  ingest parse --pretty story.txt          show the document a file would become
  ingest file wires/*.txt                  store new articles and new versions
  ingest file --note "Fixed the death toll" --editor "J. Smith" story.txt
  ingest history story                     list every version of article 'story'
  ingest changes --since 2026-11-01T00:00:00Z --json
"""


#: Examples shown at the end of each command's help page.
_EXAMPLES: dict[str, tuple[str, ...]] = {
    "parse": (
        "ingest parse --pretty story.txt          the document story.txt would become",
        "ingest parse wires/*.xml > docs.jsonl    one JSON document per line",
        "ingest parse --as ninjs --pretty story.xml   the IPTC ninjs 2.1 item it would be",
    ),
    "file": (
        "ingest file wires/*.txt                  store new articles and new versions",
        'ingest file --note "Fixed the death toll" --editor "J. Smith" story.txt',
        "ingest file --json inbox/*.json          one JSON object per file, for scripts",
        "ingest file - < list.txt                 file names from stdin, one per line",
    ),
    # The ids are real: `ingest file examples/harbour-bridge-closure.txt` stores harbour-bridge-closure.
    "show": (
        "ingest show harbour-bridge-closure               the latest version",
        "ingest show harbour-bridge-closure --version 1   the first version",
        "ingest show harbour-bridge-closure --as ans      the latest version as an Arc XP ANS story",
        "ingest show harbour-bridge-closure --as ninjs3 --version 2",
    ),
    "history": (
        "ingest history harbour-bridge-closure",
        "ingest history --json harbour-bridge-closure     one JSON object per version",
    ),
    "diff": ("ingest diff harbour-bridge-closure 1 2          what changed from v1 to v2",),
    "rollback": ('ingest rollback harbour-bridge-closure --to 1 --note "Legal asked to restore v1" --editor "Desk"',),
    "changes": (
        "ingest changes                           every change, oldest first",
        "ingest changes --since 2026-11-01T00:00:00Z --json",
        "ingest changes --follow --json           ... then each new one as it comes, until Ctrl-C",
    ),
    "run": (
        "ingest run                               sweep the sources in config/ingest.yaml",
        "ingest run --source /srv/inbox/wires --source s3://inbox/agency/",
        "ingest run --dispatch                    send each file to the workers as a task, and exit",
        "ingest run --dispatch --wait             ... and wait for them: same lines, report and exit code",
    ),
    "watch": (
        "ingest watch                             sweep the configured sources every poll_seconds",
        "ingest watch --source /srv/inbox/wires --interval 5",
        "ingest watch --dispatch                  keep sending new files to the workers",
        "ingest watch --source wires              SIGHUP (kill -HUP PID, systemctl reload) reads the config again",
        "ingest watch --metrics-port 9101         Prometheus metrics at http://0.0.0.0:9101/metrics",
    ),
    "worker": (
        "ingest worker                            broker from broker_url or $INGEST_BROKER_URL",
        "ingest worker --concurrency 4            four tasks at a time on this machine",
        "ingest worker --beat                     also schedule a dispatching sweep every poll_seconds",
        "ingest worker --pool threads --concurrency 32   one process, 32 threads (lighter on memory)",
        "ingest worker --metrics-port 9102        Prometheus metrics of all its processes on port 9102",
    ),
    "retry-failed": (
        "ingest retry-failed                      put back every refused file of every source",
        "ingest retry-failed --source /srv/inbox/wires",
        "ingest retry-failed --source wires story.txt budget.xml   only these two files",
        "ingest retry-failed --dry-run            what would go back; nothing moves",
    ),
    "status": (
        "ingest status                            every source: healthy, quiet or failing, and why",
        "ingest status --json                     the same as one JSON object, for scripts and probes",
        "ingest status --source wires || page-the-desk   exit 1 when wires is quiet or has refused files",
    ),
    "serve": (
        "ingest serve                             http://127.0.0.1:8080/ (Retry is on when $INGEST_UI_TOKEN is set)",
        "ingest serve --port 9000 --config /etc/ingest/ingest.yaml",
        "ingest serve --host 0.0.0.0              every interface: anyone who can reach it reads the stories",
    ),
    "backfill": (
        "ingest backfill /archive/1998-2024        load a folder tree in place (resumes where it stopped)",
        "ingest backfill s3://old-cms/export/ --name cms-export --dispatch",
        "ingest backfill /archive --restart        start over from the first file",
    ),
    "formats": ("ingest formats",),
    "notify": (
        "ingest notify --once                     deliver what is pending to every webhook, then exit",
        "ingest notify                            keep delivering every poll_seconds (a service)",
        "ingest notify --once --webhook cms       only the endpoint named cms",
        "ingest notify --log --webhook cms --since 2026-11-23T00:00:00Z   what was delivered, and how it went",
    ),
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


class _Parser(argparse.ArgumentParser):
    """A parser whose help page names the config file and bucket a command would use here, worked out only
    when the page is shown, from ``given``: the --config, --bucket and --prefix of this command line (help is
    printed before they are parsed)."""

    def __init__(self, *args: Any, given: Mapping[str, str | None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.given = dict(given or {})

    def format_help(self) -> str:
        text = super().format_help()
        return text.replace(_IN_USE, _in_use_here(self.given)) if _IN_USE in text else text


def _in_use_here(given: Mapping[str, str | None]) -> str:
    named = given.get("config")
    config = Path(named) if named else None
    try:
        settings = load_settings({"bucket": given.get("bucket"), "prefix": given.get("prefix")}, config=config)
    except IngestError as exc:
        return f"cannot tell, the settings do not load: {exc}"
    return settings.in_use()


def _given(argv: Sequence[str]) -> dict[str, str | None]:
    """--config, --bucket and --prefix as written in ``argv`` (``--config PATH`` or ``--config=PATH``)."""
    given: dict[str, str | None] = {}
    for n, arg in enumerate(argv):
        for flag in ("config", "bucket", "prefix"):
            if arg == f"--{flag}" and n + 1 < len(argv):
                given[flag] = argv[n + 1]
            elif arg.startswith(f"--{flag}="):
                given[flag] = arg.partition("=")[2]
    return given


def _common() -> _Parser:
    common = _Parser(add_help=False)
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


def build_parser(given: Mapping[str, str | None] | None = None) -> argparse.ArgumentParser:
    """The ``ingest`` parser; ``given`` are the settings flags of the command line, for the help pages."""
    common = _common()
    parser = _Parser(prog="ingest", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=_Formatter, given=given)
    parser.add_argument("--version", action="version", version=f"ingest {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        name: str, summary: str, description: str, handler: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        epilog = f"in use here: {_IN_USE}\n\nexamples:\n" + "\n".join(f"  {line}" for line in _EXAMPLES[name])
        p = sub.add_parser(
            name,
            help=summary,
            description=description,
            epilog=epilog,
            parents=[common],
            formatter_class=_Formatter,
            given=given,
        )
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
    _as_flag(p, "each document")

    p = command(
        "file",
        "ingest files into storage as new articles or new versions",
        "Ingest each FILE: parse, validate, and store a new version when its content changed.\n"
        "Prints one line per file (per item, for a message or feed of several, shown as FILE#n):\n"
        "created, updated, withdrawn (a kill), unchanged, stale (equals a superseded version, or older\n"
        "than the stored one, or a live copy of a killed story; nothing written) or failed (refused,\n"
        "with the reason). Good files are stored even when others are refused.",
        _cmd_file,
    )
    p.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="article files to ingest; - reads names from stdin"
    )
    p.add_argument(
        "--json", action="store_true", help='one JSON object per file: {"path", "id", "version", "outcome", "key"}'
    )
    p.add_argument("--note", metavar="TEXT", help="correction note recorded on the new version (action 'corrected')")
    p.add_argument("--editor", metavar="NAME", help="who made the correction")

    p = command(
        "show",
        "print a stored document",
        "Print the stored document ID: the latest version, or --version N. With --as, print it in a\n"
        "standard a CMS reads instead (IPTC ninjs, Arc XP ANS); without it, the stored bytes as they are.",
        _cmd_show,
    )
    p.add_argument("id", metavar="ID", help="article id")
    p.add_argument("--version", type=int, metavar="N", dest="number", help="a specific version (default: latest)")
    _as_flag(p, "the document")

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
        "Versions are never rewritten: history keeps every step. Prints `rolled_back ID@vN -> KEY`\n"
        "(or `unchanged` when the latest version already has that content).",
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
        "Entries are at-least-once: treat one (id, version) as one change. With --follow, keep printing\n"
        "new entries as they come, including a feed object that shows up late (feed_lag_seconds).",
        _cmd_changes,
    )
    p.add_argument("--since", metavar="TIME", help="only entries at or after this ISO 8601 time (UTC if no zone)")
    p.add_argument("--json", action="store_true", help="JSON Lines, one entry per line")
    p.add_argument(
        "--follow",
        action="store_true",
        help="then keep printing new entries as they come (every poll_seconds) until SIGINT or SIGTERM",
    )

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
    _dispatch_flags(p, wait=True)
    p = command(
        "watch",
        "keep sweeping sources until stopped",
        "Sweep sources every poll_seconds until SIGINT or SIGTERM; on either, finish the file in hand\n"
        "and exit cleanly. With `webhooks:` configured, each sweep is followed by a delivery pass (as\n"
        "`ingest notify`; an endpoint that is down is tried again later, never holding the sweeps).\n"
        "SIGHUP reloads the config: after the sweep in hand the settings are read again as at the start\n"
        "(the same flags, config file and INGEST_* variables); a config that does not load is logged in\n"
        "one line and the watch goes on with the one it had.\n\n" + run_help,
        _cmd_watch,
    )
    _source_flag(p, "watch this folder or S3 inbox instead of the configured sources (repeatable)")
    p.add_argument("--interval", type=float, metavar="SECONDS", help="seconds between sweeps (poll_seconds)")
    _dispatch_flags(p, wait=False)
    _metrics_flags(p, "this watch's")
    p = command(
        "worker",
        "run a Celery worker that ingests the files sweeps dispatch",
        "Run a Celery worker (8 task processes per core by default) that takes one task per input file\n"
        "from the broker (broker_url, $INGEST_BROKER_URL) and runs the unit of work on it: read, parse,\n"
        "store, move. Start any number on any machines that see the same broker, bucket and sources.\n"
        "Tasks are acknowledged after they ran; a worker that dies mid-file leaves the task to another;\n"
        "a file that stops its worker max_deliveries times is moved to failed/ with the reason.\n"
        "Stop with SIGTERM (finishes the files in hand). Needs the extra: pip install 'ingest[celery]'.",
        _cmd_worker,
    )
    p.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="tasks side by side (default: 8 per core, since a task mostly waits on S3)",
    )
    p.add_argument(
        "--pool",
        choices=("prefork", "threads"),
        default="prefork",
        help="prefork (default): a process per task slot, so a task that crashes or overruns its time limit "
        "takes only itself down; threads: every slot in one process (lighter; no hard time limit)",
    )
    p.add_argument("--events", action="store_true", help="send task events (for Flower or `celery events`)")
    p.add_argument("--beat", action="store_true", help="also run Celery beat: a dispatching sweep every poll_seconds")
    p.add_argument("--loglevel", default="INFO", metavar="LEVEL", help="Celery's log level (default INFO)")
    _metrics_flags(p, "this worker's (summed over its task processes)")
    p = command(
        "retry-failed",
        "put refused files back into their source for the next run",
        "Move every file in each source's failed/ back into the source, dropping its .error.json,\n"
        "once the cause is fixed (a rule changed, a parser fixed). The next run takes them again.\n"
        "With NAMEs, only those files; a NAME in no source's failed/ is an error (exit 1) and nothing moves.",
        _cmd_retry_failed,
    )
    _source_flag(p, "only this folder or S3 inbox (repeatable)")
    p.add_argument(
        "names", nargs="*", metavar="NAME", help="only these files (their names in failed/; a path counts by its name)"
    )
    p.add_argument("--dry-run", action="store_true", help="list the files that would go back; move nothing")

    p = command(
        "status",
        "is every source alive: last sweep, last item, backlog, failed files",
        "For each source: its state (healthy, quiet or failing) and why; its last sweep (when, how long,\n"
        "files per outcome) and last clean one; when the newest file arrived; files per outcome in the\n"
        "last 24 hours; files waiting and the age of the oldest; the files in failed/ with their reasons.\n"
        "A source is quiet when no file has arrived for its quiet_after; failing when its last sweep\n"
        "failed, it cannot be listed, or it has refused files. Sweeps are recorded by `ingest run` and\n"
        "`ingest watch` in status/{source}.json; the backlog and failed/ are looked at now.\n\n"
        "exit codes: 0 every source healthy, 1 some source quiet or failing, 2 storage cannot be read",
        _cmd_status,
    )
    _source_flag(p, "only this source (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object (times in UTC, ISO 8601)")

    p = command(
        "serve",
        "a web page for the person on call: sources, failed files and Retry, runs, articles, metrics",
        "Serve a small web application for the person on call (plain HTML, no JavaScript needed):\n"
        "  /                every source: healthy, quiet or failing and why; last sweep, last clean sweep,\n"
        "                   last item, backlog, 24 h counts; the failed files with their reasons, a Retry each\n"
        "  /runs/RUN_ID     a run report: counts, timings, errors, source errors, file records\n"
        "  /articles/ID     an article's history, any version's document and renditions (ninjs, ANS), and\n"
        "                   the paragraph diff between two versions\n"
        "  /metrics         Prometheus metrics: per-source gauges, and the files the runs counted\n"
        "  /healthz         200 ok when the storage can be read, else 503 (for probes)\n\n"
        "Whoever can reach the page can read the stories: it listens on 127.0.0.1 unless --host says\n"
        "otherwise (then it warns), and there it answers only requests addressed to a loopback name.\n"
        "Retry puts one refused file back into its source, as `ingest retry-failed --source SOURCE NAME`\n"
        "does; it needs the token held in $INGEST_UI_TOKEN where the server starts, typed into the page\n"
        "(or sent as `Authorization: Bearer TOKEN`), and is off without it. Requests from other sites are\n"
        "refused (their Origin, and a form check tied to a cookie). Stop with Ctrl-C or SIGTERM.\n\n"
        "exit codes: 0 stopped cleanly, 2 the config is wrong or the address cannot be bound (storage that\n"
        "cannot be read does not stop it: the pages and /healthz say so, with 503)",
        _cmd_serve,
    )
    p.add_argument(
        "--host", default="127.0.0.1", metavar="ADDRESS", help="address to listen on (default 127.0.0.1: this machine)"
    )
    p.add_argument("--port", type=int, default=8080, metavar="PORT", help="port to listen on (default 8080; 0: any)")

    p = command(
        "backfill",
        "load an archive (folder tree or S3 prefix) in place, resumably",
        "Load every file under a folder (recursively) or an S3 prefix, read in place: nothing is moved or\n"
        "deleted. Files are listed and stored a page (batch_size) at a time, in name order; after each page\n"
        "the checkpoint backfills/{name}.json records the last file done, so running the same command\n"
        'again after a crash carries on from there. Its change entries carry "backfill": true, so a CMS\n'
        "can tell an archive load from fresh news. Refused files are listed in backfills/{name}/.\n"
        "With --dispatch the pages go to `ingest worker` processes (never more than 2,000 tasks queued).\n\n"
        "exit codes: 0 all stored or unchanged, 1 some files refused, 2 the load failed (config, storage)",
        _cmd_backfill,
    )
    p.add_argument("location", metavar="PATH|s3://BUCKET/PREFIX/|SOURCE", help="the archive, or a configured source")
    p.add_argument("--name", metavar="NAME", help="the checkpoint's name (default: the source's name)")
    p.add_argument("--dispatch", action="store_true", help="send the files to `ingest worker` processes")
    p.add_argument("--restart", action="store_true", help="ignore the checkpoint and start from the first file")
    p = command(
        "notify",
        "deliver new versions to the configured webhooks (signed, retried, resumable)",
        "Deliver to each webhook endpoint (`webhooks:` in the config file) every changes-feed entry it has\n"
        "not had yet: one signed POST per new version (Standard Webhooks: webhook-id, webhook-timestamp,\n"
        "webhook-signature), in feed order. Each endpoint keeps its cursor in the bucket\n"
        "(webhooks/{name}/cursor.json), so a sender that stops or a receiver that is down loses nothing: the\n"
        "next notify resumes there. Deliveries are at least once; a redelivery carries the same webhook-id.\n"
        "No answer, 5xx, 408 or 429 is retried (webhook_attempts tries), then the endpoint is behind until\n"
        "the next pass; a 3xx or another 4xx is recorded in the delivery log and skipped. Without --once it\n"
        "keeps delivering every poll_seconds until SIGINT or SIGTERM. --log prints the delivery log.\n\n"
        "exit codes: 0 all delivered, 1 an endpoint is still behind or rejected a delivery, 2 config or\n"
        "storage failed (a missing secret variable, no webhooks configured, storage unreachable)",
        _cmd_notify,
    )
    p.add_argument("--once", action="store_true", help="deliver what is pending, then exit")
    p.add_argument("--webhook", action="append", metavar="NAME", help="only this endpoint (repeatable)")
    p.add_argument("--interval", type=float, metavar="SECONDS", help="seconds between passes (poll_seconds)")
    p.add_argument(
        "--log", action="store_true", help="print the delivery log instead: what was sent, the status, the time"
    )
    p.add_argument("--since", metavar="TIME", help="with --log: only records at or after this ISO 8601 time")
    p.add_argument("--json", action="store_true", help="one JSON object per delivery (or log record)")
    command(
        "formats",
        "list the input formats ingest understands",
        "List the registered input formats, the file endings they usually have, and what they read.",
        _cmd_formats,
    )
    return parser


def _as_flag(parser: argparse.ArgumentParser, what: str) -> None:
    *first, last = [f"{r.name} ({r.description})" for r in rendition_formats()]
    parser.add_argument(
        "--as",
        dest="rendition",
        default="document",
        metavar="FORMAT",
        help=f"print {what} as FORMAT: {', '.join(first)} or {last}. ninjs and ANS name the article by "
        "the URI the uri_template setting makes of its id (default urn:newsml:localhost:{id})",
    )


def _dispatch_flags(parser: argparse.ArgumentParser, *, wait: bool) -> None:
    parser.add_argument(
        "--dispatch",
        action="store_true",
        help="send one task per settled file to `ingest worker` processes (broker_url) instead of ingesting here",
    )
    if wait:
        parser.add_argument(
            "--wait",
            action="store_true",
            help="with --dispatch: wait until the workers are done, then report and exit as an in-process run",
        )


def _metrics_flags(parser: argparse.ArgumentParser, whose: str) -> None:
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help=f"serve {whose} Prometheus metrics at http://HOST:PORT/metrics (default: off)",
    )
    parser.add_argument(
        "--metrics-host",
        default="0.0.0.0",
        metavar="HOST",
        help="the address the metrics listen on (default 0.0.0.0, every interface: Prometheus scrapes from "
        "elsewhere; the metrics hold source names and counts, no story text)",
    )


def _source_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--source",
        action="append",
        metavar="NAME|PATH|s3://BUCKET/PREFIX/",
        help=help_text + "; a configured source's name or location keeps its settings",
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_given(argv))
    args = parser.parse_args(argv)
    args.log_format = _log_format(args)
    setup_logging(args.log_format, args.debug)
    try:
        code: int = args.handler(args)
        return code
    except RunError as exc:
        # the traceback too, with --debug (in JSON logs, a field), but the exit code never depends on it
        _error(args, exc, {"exit_code": EXIT_RUN_FAILED}, trace=args.debug)
        return EXIT_RUN_FAILED
    except IngestError as exc:
        _error(args, exc, {"exit_code": EXIT_REFUSED})
        return EXIT_REFUSED
    except KeyboardInterrupt:
        if args.log_format == "json":
            _say(args, "error", "interrupted", {"exit_code": 130}, event="interrupted")
        else:
            _err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:  # stdout full or gone: say so in one line
        _say(args, "error", f"cannot write output: {exc.strerror or exc}", {"exit_code": EXIT_RUN_FAILED})
        return EXIT_RUN_FAILED


# ---------------------------------------------------------------------------------------------- commands


def _log_format(args: argparse.Namespace) -> LogFormat:
    if args.log_format != "auto":
        return "json" if args.log_format == "json" else "text"
    sweeping = args.command in {"run", "watch", "worker", "serve"}  # services: their logs go to collectors
    return "json" if sweeping and not sys.stderr.isatty() else "text"


def _settings(args: argparse.Namespace) -> Settings:
    """The settings as flags, variables and the config file say; a warning when no config file was found."""
    flags: dict[str, object] = {"bucket": args.bucket, "prefix": args.prefix}
    if getattr(args, "interval", None) is not None:
        flags["poll_seconds"] = args.interval
    settings = load_settings(flags, config=args.config)
    if settings.config_file is None:  # run from another directory, a command would quietly use the defaults
        looked = config_location()[0].absolute()  # a named file that is missing is an error instead
        _say(
            args,
            "warning",
            f"no config file found (no {looked}; --config or $INGEST_CONFIG names one): using the defaults "
            f"and INGEST_* variables, bucket s3://{settings.bucket}/{settings.prefix}",
            {"looked_for": str(looked), "bucket": settings.bucket, "prefix": settings.prefix},
            event="no_config",
        )
    return pick_sources(settings, args.source) if getattr(args, "source", None) else settings


def _cmd_parse(args: argparse.Namespace) -> int:
    fmt = _rendition(args)
    settings = _settings(args)
    refused = 0
    for result in preview_files(args.files, settings):
        if isinstance(result, Outcome):
            refused += 1
            if result.error is not None:
                _error(args, result.error)
        elif fmt == "document":
            print(result.model_dump_json(indent=2 if args.pretty else None), flush=True)
        else:
            print(_json(render(result, fmt, settings), pretty=args.pretty), flush=True)
    return EXIT_REFUSED if refused else EXIT_OK


def _rendition(args: argparse.Namespace) -> str:
    """The --as format, checked before any file or storage is touched."""
    known = [r.name for r in rendition_formats()]
    if args.rendition not in known:
        raise ConfigError(f"--as: unknown format {args.rendition!r} (known: {', '.join(known)})")
    return str(args.rendition)


def _json(value: object, *, pretty: bool) -> str:
    if pretty:
        return json.dumps(value, ensure_ascii=False, indent=2)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _cmd_file(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = open_store(settings)
    refused = 0
    outcomes = ingest_stream(
        _file_list(args.files),
        settings,
        store,
        note=args.note,
        editor=args.editor,
        committer=committer_for(settings, store, (args.log_format, args.debug)),
    )
    for outcome in outcomes:  # printed as each batch is stored, never collected
        if outcome.error is not None:
            refused += 1
            _error(args, outcome.error)
        if args.json:
            print(json.dumps(outcome.as_json(), ensure_ascii=False), flush=True)
        elif outcome.error is None:
            print(outcome.line(), flush=True)
    _in_use_note(args, settings)  # on stderr: stdout stays one line (or object) per file
    return EXIT_REFUSED if refused else EXIT_OK


def _in_use_note(args: argparse.Namespace, settings: Settings) -> None:
    """``note: config ..., bucket s3://...``: which config file and bucket the command used."""
    config = str(settings.config_file.absolute()) if settings.config_file else None
    fields = {"config_file": config, "bucket": settings.bucket, "prefix": settings.prefix}
    _say(args, "note", settings.in_use(), fields, event="in_use")


def _file_list(files: list[Path]) -> Iterator[Path]:
    """The FILE arguments; ``-`` reads more names from stdin, one per line (for lists too long for argv)."""
    for path in files:
        if str(path) != "-":
            yield path
            continue
        for line in sys.stdin:
            if line.strip():
                yield Path(line.rstrip("\n"))


def _archive(args: argparse.Namespace) -> Archive:
    settings = _settings(args)
    return Archive(open_store(settings), settings.prefix)


def _cmd_show(args: argparse.Namespace) -> int:
    fmt = _rendition(args)
    settings = _settings(args)
    archive = Archive(open_store(settings), settings.prefix)
    if fmt == "document":  # the stored bytes, exactly
        sys.stdout.write(archive.stored(args.id, args.number).decode("utf-8"))
    else:
        print(_json(render(archive.document(args.id, args.number), fmt, settings), pretty=True))
    return EXIT_OK


def _cmd_history(args: argparse.Namespace) -> int:
    for row in _archive(args).history(args.id):
        if args.json:
            print(row.model_dump_json())
        else:
            who = f"  by {row.editor}" if row.editor else ""
            what = f'  "{row.note}"' if row.note else ""
            print(f"v{row.version:<4} {row.created_at:%Y-%m-%d %H:%M:%S}Z  {row.action:<11}{who}{what}".rstrip())
    return EXIT_OK


def _cmd_diff(args: argparse.Namespace) -> int:
    lines = _archive(args).diff(args.id, args.a, args.b)
    print("\n".join(lines) if lines else f"{args.id}: v{args.a} and v{args.b} have the same content")
    return EXIT_OK


def _cmd_rollback(args: argparse.Namespace) -> int:
    if not args.note.strip():
        raise RunError("--note must say why (it is recorded on the new version)")
    settings = _settings(args)
    print(rollback(settings, open_store(settings), args.id, args.to, args.note, args.editor).line())
    return EXIT_OK


def _cmd_changes(args: argparse.Namespace) -> int:
    since = _parse_time(args.since) if args.since else None
    settings = _settings(args)
    archive = Archive(open_store(settings), settings.prefix)
    if args.follow:
        lag = timedelta(seconds=settings.feed_lag_seconds)
        stop = _stop_on_signals()
        entries = archive.follow(stop, since=since, poll_seconds=settings.poll_seconds, lag=lag)
    else:
        entries = archive.changes(since)
    for entry in entries:
        if args.json:
            print(entry.model_dump_json(), flush=args.follow)
        else:
            line = f"{entry.time:%Y-%m-%d %H:%M:%S}Z  {entry.action:<11} {entry.id} v{entry.version}  {entry.key}"
            print(line, flush=args.follow)
    return EXIT_OK


def _cmd_notify(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.since and not args.log:
        raise RunError("--since goes with --log")
    store = open_store(settings)
    if args.log:
        since = _parse_time(args.since) if args.since else None
        for record in delivery_log(settings, store, webhooks=args.webhook, since=since):
            print(record.model_dump_json() if args.json else record.stamped_line(), flush=True)
        return EXIT_OK

    def show(record: Delivery) -> None:
        print(record.model_dump_json() if args.json else record.line(), flush=True)

    notifier = Notifier(settings, store, webhooks=args.webhook, on_delivery=show)
    if args.once:
        results = notifier.notify()
    else:
        stop = _stop_on_signals("finishing the delivery in hand")
        names = ", ".join(e.name for e in notifier.endpoints)
        log.info("delivering to %s every %.1f s; stop with Ctrl-C or SIGTERM", names, settings.poll_seconds)
        results = notifier.run(stop)
    for result in results:
        if not args.json:
            print(result.line(), flush=True)
        if result.behind:
            _say(args, "error", f"webhook {result.webhook} is behind: {result.behind}", {"webhook": result.webhook})
    if not args.once:  # a service stopped: a failure only if its last pass ended on a delivery that kept failing
        return EXIT_REFUSED if any(r.failing for r in results) else EXIT_OK
    return EXIT_REFUSED if any(r.behind or r.rejected for r in results) else EXIT_OK


def _stop_on_signals(doing: str | None = None) -> threading.Event:
    """An event SIGINT and SIGTERM set (a second one stops at once), for commands that loop until stopped."""
    stop = threading.Event()

    def graceful(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        if doing:
            log.warning("%s: %s, then stopping", signal.Signals(signum).name, doing)
        stop.set()

    signal.signal(signal.SIGTERM, graceful)
    signal.signal(signal.SIGINT, graceful)
    return stop


def _cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.wait and not args.dispatch:
        raise RunError("--wait goes with --dispatch (an in-process run always waits)")
    store, sources = open_store(settings), open_sources(settings)
    sending = dispatcher(settings, wait=args.wait) if args.dispatch else None
    report = run_once(
        settings,
        store,
        sources,
        Reporter(args.log_format, in_use_note=True),
        dispatcher=sending,
        dispatched=None if sending else dispatched_files(settings),
        committer=None if sending else committer_for(settings, store, (args.log_format, args.debug)),
    )
    return EXIT_REFUSED if report.errors else EXIT_OK


def _cmd_worker(args: argparse.Namespace) -> int:
    return start_worker(
        _settings(args),
        concurrency=args.concurrency,
        beat=args.beat,
        loglevel=args.loglevel,
        pool=args.pool,
        events=args.events,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )


def _cmd_watch(args: argparse.Namespace) -> int:
    stop = threading.Event()
    current = _watching(args, stop)

    def reloaded() -> Watching:  # called by the watch between sweeps
        nonlocal current
        new = _watching(args, stop)
        if current.committer is not None:
            current.committer.close()  # a LaneCommitter's processes: the new one starts its own
        current = new
        return new

    reload = Reload(reloaded)

    def graceful(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C means now
            raise KeyboardInterrupt
        log.warning("%s: finishing the file in hand, then stopping", signal.Signals(signum).name)
        stop.set()

    def hangup(_signum: int, _frame: object) -> None:
        log.info("SIGHUP: reading the config again after the sweep in hand")
        reload.request()

    signal.signal(signal.SIGTERM, graceful)
    signal.signal(signal.SIGINT, graceful)
    if hasattr(signal, "SIGHUP"):  # not on Windows
        signal.signal(signal.SIGHUP, hangup)
    serving = None
    if args.metrics_port is not None:
        serving = serve_metrics(
            lambda: (current.settings, current.store, current.sources), args.metrics_port, args.metrics_host
        )
        log.info("metrics at http://%s:%d/metrics", args.metrics_host, serving.port)
    try:
        return _watched(args, current, stop, reload)
    finally:
        if serving is not None:
            serving.close()


def _watched(args: argparse.Namespace, current: Watching, stop: threading.Event, reload: Reload) -> int:
    log.info(
        "watching %s every %.1f s (%s); stop with Ctrl-C or SIGTERM, reload the config with SIGHUP",
        ", ".join(s.settings.location for s in current.sources),
        current.settings.poll_seconds,
        current.settings.in_use(),
    )
    watched = watch(
        current.settings,
        current.store,
        current.sources,
        Reporter(args.log_format, in_use_note=True),
        stop,
        dispatcher=current.dispatcher,
        dispatched=current.dispatched,
        committer=current.committer,
        after_sweep=current.after_sweep,
        reload=reload,
    )
    if watched.failing:  # stopped while a source was wedged or storage was away: never green
        _say(args, "error", f"the last sweep failed: {watched.failing}", {"exit_code": EXIT_RUN_FAILED})
        return EXIT_RUN_FAILED
    return EXIT_REFUSED if watched.refused else EXIT_OK


def _watching(args: argparse.Namespace, stop: threading.Event) -> Watching:
    """What ``ingest watch`` sweeps with, from the settings as they read now: at the start and on SIGHUP."""
    settings = _settings(args)
    store, sources = open_store(settings), open_sources(settings)
    notifier = Notifier(settings, store, stop=stop) if settings.webhooks else None  # a missing secret stops it here
    sending = dispatcher(settings) if args.dispatch else None
    return Watching(
        settings,
        store,
        sources,
        committer=None if sending else committer_for(settings, store, (args.log_format, args.debug)),
        dispatcher=sending,
        dispatched=None if sending else dispatched_files(settings),
        after_sweep=notifier.poll if notifier else None,
    )


def _cmd_backfill(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = open_store(settings)
    committer = None if args.dispatch else committer_for(settings, store, (args.log_format, args.debug))
    refused = 0
    options = {"name": args.name, "dispatch": args.dispatch, "restart": args.restart}
    loading = backfill(settings, store, args.location, committer=committer, **options)
    for progress in loading:
        for record in progress.page:
            if record.error is not None:
                refused += 1
                fields = {k: v for k, v in record.error.items() if k != "message"}
                _say(args, "error", f"{record.path}: {record.error.get('message')}", fields)
        print(progress.line(), flush=True)
    return EXIT_REFUSED if refused else EXIT_OK


def _cmd_retry_failed(args: argparse.Namespace) -> int:
    for source, names in retry_failed(_settings(args), args.names or None, dry_run=args.dry_run):
        where = source.settings.location.rstrip("/")
        files = f"{len(names)} file{'s' if len(names) != 1 else ''}"
        for name in names:
            print(f"would requeue {where}/failed/{name}" if args.dry_run else f"requeued   {where}/{name}")
        print(
            f"{source.settings.name}: {files} would be put back (dry run: nothing moved)"
            if args.dry_run
            else f"{source.settings.name}: {files} put back"
        )
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    try:
        report = status(_settings(args))
    except RunError as exc:
        if args.json:  # a probe that parses stdout still gets an object, saying why (and on stderr, as always)
            print(json.dumps({"healthy": False, "error": str(exc), "exit_code": EXIT_RUN_FAILED}), flush=True)
        raise
    print(report.model_dump_json(indent=2) if args.json else report.text(), flush=True)
    return report.exit_code


def _cmd_serve(args: argparse.Namespace) -> int:
    serve(_settings(args), args.host, args.port, token=ui_token())  # returns when stopped by a signal
    return EXIT_OK


def _cmd_formats(args: argparse.Namespace) -> int:
    for parser in formats():
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


_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "note": logging.INFO}


def _say(
    args: argparse.Namespace,
    level: str,
    message: str,
    fields: Mapping[str, object] | None = None,
    *,
    event: str = "error",
) -> None:
    """One line on stderr: ``error: ...``, ``warning: ...`` or ``note: ...`` for people; with --log-format json,
    one JSON object (level, message, ``event`` and ``fields``), so that every line on stderr is JSON."""
    if args.log_format == "json":
        log.log(_LEVELS[level], message, extra={"event": {"event": event, **(fields or {})}})
    else:
        _err(f"{level}: {message}")


def _error(
    args: argparse.Namespace, exc: IngestError, fields: Mapping[str, object] | None = None, *, trace: bool = False
) -> None:
    """``error: <message>``, or in JSON logs the message with the error's own fields (its kind, whether waiting
    may fix it, a file's path and check, a storage request's key and status); with ``trace``, the traceback
    too (in JSON logs, as a field)."""
    if args.log_format == "json":
        more = {"traceback": traceback.format_exc()} if trace else {}
        _say(args, "error", str(exc), {**exc.fields(), **(fields or {}), **more})
    else:
        if trace:
            traceback.print_exc()
        _err(f"error: {exc}")
