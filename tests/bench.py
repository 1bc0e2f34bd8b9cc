"""``make bench``: how well and how fast ingest splits and stores real articles. Prints figures; asserts nothing
(the exit code is 1 only when a measured run did not do what it should, e.g. a file was refused).

Accuracy (``python -m tests.bench accuracy``; no storage needed):

* recall on ../shared/corpus/web: of the lines the corpus index marks as recirculation or call to action,
  how many end up outside the body (and page furniture, reported apart);
* false positives on ../shared/corpus/bbc: clean articles in which nothing is a module, so every
  paragraph taken out of a body is a false positive;
* speed of the pure part (read, parse, split, validate, hash) in files and MB per second.

Speed, side by side (``speed``; needs the local S3 and Redis that ``make bench`` starts and whose env it sources):

* Every row is the real CLI, ``.venv/bin/ingest`` in subprocesses with INGEST_BUCKET, INGEST_PREFIX (fresh per
  row), INGEST_BROKER_URL and AWS_* in the environment, ``--log-format json``, output to files, a config file
  whose only setting is the drop folder source (``settle_seconds: 0``); everything else is the defaults.
* The same 2,000 BBC articles (bbc/*/*.txt sorted, first 2,000, copied flat as ``business-001.txt``: ids come
  from file names, and the categories reuse them), in three cases per row, in this order under the row's prefix:
  new articles, the same files again (unchanged), and the same files with every tenth one's first paragraph
  changed (10 % corrected: new versions). Outcomes are checked (2,000 created; 2,000 unchanged; 200 updated +
  1,800 unchanged) and a figure from a run that did otherwise is marked ``*`` and explained at the end.
* Rows: ``ingest file NAMES`` (run in the folder, so the command line stays short); ``ingest run`` on a drop
  folder (the files are copied in before each case, untimed; runs move them to processed/); ``ingest run
  --dispatch --wait`` with ``ingest worker --concurrency N`` for N = 1, 2, 4, with ``ingest worker`` as shipped
  (its default slots) and with ``--pool threads --concurrency 32`` (each worker started in its own process group
  before its rows, timed only once its log says it is ready, stopped with SIGTERM and then SIGKILL after them).
* docs/s is files sent / wall time of the command from fork to exit (interpreter start-up included; for
  dispatch rows, the dispatching command, with the workers already running).
* S3 requests per doc are counted by ``tests.faultproxy.CountingProxy``, a pass-through every row's requests go
  through (workers' too), by method. The same proxy adds 30 ms to each request for the +30 ms rows. What
  counting costs is shown: ``ingest file`` straight to the S3 (new articles, not counted) beside it, and the
  proxy thread's own CPU time.
* Ratios are computed from figures of this one invocation (the machine is shared and noisy), with the rows of
  each ratio run one after the other: run / file (target >= 0.9), dispatch 2 workers / 1 (>= 1.2), each row
  with 30 ms / without (>= 0.7).
* Baselines on the same stored documents (the 2,000 JSON documents the ``ingest file`` row stored, fetched to a
  temp dir): ``s5cmd cp`` of the folder, and a boto3 ``put_object`` loop with 1 and with 32 threads, in
  objects/s, straight to the S3 and through the proxy.

Memory (``memory``): peak RSS of ``ingest file`` and ``ingest run`` on 1,000 and on BENCH_RSS_FILES (default
10,000; 100,000 takes a long while on two cores: ``BENCH_RSS_FILES=100000 make bench``) tiny generated files,
stored to the local S3 (straight). Two figures: the largest process's peak (``os.wait4``'s ``ru_maxrss``: it or
a descendant it waited for; the command is started by a small launcher process, because Linux counts into a
child's peak the RSS it had before exec, that is its parent's, and this bench grows while it checks 100,000
outcomes), and the peak of the summed RSS of the command and its children, sampled from /proc twice a second
(ingest may write with several processes). Long runs print progress every 15 s.

``python -m tests.bench [accuracy] [speed] [memory]`` runs only those sections (default: all). Everything the
bench stores goes under ``s3://ingest-bench/bench-<time>-<random>/`` and is removed at the end (set BENCH_KEEP=1
to keep it and the temp dir of inputs and logs, which is also kept when something went wrong).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.engine import default_concurrency
from ingest.errors import InputError
from ingest.prepare import prepare
from ingest.rules import load_rules
from ingest.settings import ModuleSettings
from ingest.split import Rules
from tests.faultproxy import CountingProxy

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpus"
RECEIVED = datetime(2026, 11, 24, tzinfo=UTC)


def _lines(text: str) -> list[str]:
    # The index counts \n, \r\n and \r each as one break (not str.splitlines, which splits on more).
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


@dataclass
class WebScore:
    found: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    missed: list[tuple[str, int, str, str]] = field(default_factory=list)

    def rate(self, kinds: tuple[str, ...]) -> tuple[int, int]:
        return sum(self.found[k] for k in kinds), sum(self.total[k] for k in kinds)


def score_web(rules: Rules) -> WebScore:
    index = json.loads((CORPUS / "web" / "MODULES_INDEX.json").read_text(encoding="utf-8"))
    score = WebScore()
    for article in index["articles"]:
        path = CORPUS / "web" / article["file"]
        data = path.read_bytes()
        try:
            content = prepare(data, path.name, rules, received_at=RECEIVED).content
        except InputError:
            body_lines: set[str] = set()
        else:
            body_lines = {line.strip() for block in content.body for line in block.text.split("\n")}
            body_lines.add(content.headline.strip())
        lines = _lines(data.decode(article["encoding"]))
        for module in article["modules"]:
            kind = module["kind"]
            score.total[kind] += 1
            text = lines[module["line"] - 1].strip()
            if text in body_lines:
                score.missed.append((article["file"], module["line"], kind, text[:90]))
            else:
                score.found[kind] += 1
    return score


def score_bbc(rules: Rules) -> tuple[int, int, int, list[tuple[str, str]]]:
    """(articles, paragraphs, paragraphs taken out of the body, examples)."""
    articles = paragraphs = false_pos = 0
    examples: list[tuple[str, str]] = []
    for path in sorted((CORPUS / "bbc" / "bbc").glob("*/*.txt")):
        data = path.read_bytes()
        content = prepare(data, path.name, rules, received_at=RECEIVED).content
        articles += 1
        paragraphs += len(content.body)
        taken = [*content.related_links, *content.module_headings, *content.boilerplate]
        false_pos += len(taken)
        examples += [(f"{path.parent.name}/{path.name}", item.text[:90]) for item in taken]
    return articles, paragraphs, false_pos, examples


def speed(rules: Rules) -> tuple[int, float, float]:
    files = sorted((CORPUS / "bbc" / "bbc").glob("*/*.txt")) + sorted((CORPUS / "web").glob("*/*.txt"))
    blobs = [(p.name, p.read_bytes()) for p in files]
    start = time.perf_counter()
    for name, data in blobs:
        with contextlib.suppress(InputError):
            prepare(data, name, rules, received_at=RECEIVED)
    elapsed = time.perf_counter() - start
    return len(blobs), sum(len(d) for _, d in blobs) / 1e6, elapsed


# ------------------------------------------------------------------------------------------------ pipeline

BUCKET = "ingest-bench"
ARTICLES = 2000
LATENCY = 0.030
CASES = ("new", "unchanged", "corrected")
CASE_TITLES = {"new": "new articles", "unchanged": "unchanged re-send", "corrected": "10 % corrected"}
BIN = Path(sys.executable).parent
INGEST = str(BIN / "ingest")
S5CMD = str(BIN / "s5cmd")
RSS_SMALL = 1000
RSS_BIG_DEFAULT = 10_000
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
RUN_OVER_FILE, DISPATCH_2_OVER_1, SLOW_OVER_FAST, RSS_BIG_OVER_SMALL = 0.9, 1.2, 0.7, 1.2


class BenchError(Exception):
    """Something the bench itself needs did not work (a worker that never got ready)."""


@dataclass
class Ran:
    """One finished process."""

    seconds: float
    code: int
    # ru_maxrss from wait4: the peak of the largest process (it, or a descendant it waited for). Measured
    # through _LAUNCHER when sampled: Linux counts the RSS a child had before exec, which is its parent's
    # (this bench's, which holds 100,000 names and outcomes), so the command must be forked by a small one.
    peak_kb: int
    tree_kb: int = 0  # the peak of its and its descendants' summed RSS, sampled twice a second (0: not sampled)


class _Watch:
    """Samples a process tree's RSS and calls ``progress`` every 15 s, in a thread, until stopped."""

    def __init__(
        self, pid: int, *, sample: bool, progress: Callable[[float], None] | None, skip_root: bool = False
    ) -> None:
        self.pid, self.sample, self.progress, self.peak_kb = pid, sample, progress, 0
        self.skip_root = skip_root  # the launcher: not part of the command
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        started = shown = time.monotonic()
        while not self._stop.wait(0.5):
            if self.sample:
                self.peak_kb = max(self.peak_kb, _tree_rss_kb(self.pid, skip_root=self.skip_root))
            if self.progress and time.monotonic() - shown >= 15:
                shown = time.monotonic()
                self.progress(shown - started)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kb


def _tree_rss_kb(root: int, *, skip_root: bool = False) -> int:
    """The summed RSS of ``root`` (unless ``skip_root``) and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_bytes()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        if skip_root and pid == root:
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    return total


def _run(
    args: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    sample: bool = False,
    progress: Callable[[float], None] | None = None,
    stdin: Path | None = None,
) -> Ran:
    """Run ``args`` to the end (``stdin`` from a file, if given), stdout to ``log``.out and stderr to ``log``.err;
    wall time from fork to exit."""
    with contextlib.ExitStack() as files:
        out = files.enter_context(log.with_suffix(".out").open("wb"))
        err = files.enter_context(log.with_suffix(".err").open("wb"))
        given = files.enter_context(stdin.open("rb")) if stdin is not None else subprocess.DEVNULL
        usage_file = log.with_suffix(".rusage")
        launch = [sys.executable, "-c", _LAUNCHER, str(usage_file)] if sample else []
        start = time.perf_counter()
        proc = subprocess.Popen([*launch, *args], env=env, cwd=cwd, stdin=given, stdout=out, stderr=err)
    watch = _Watch(proc.pid, sample=sample, progress=progress, skip_root=sample) if sample or progress else None
    _, status, usage = os.wait4(proc.pid, 0)  # wait4, not wait: the rusage of this child alone
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak = int(usage_file.read_text()) if sample and usage_file.exists() else usage.ru_maxrss
    return Ran(seconds, proc.returncode, peak, watch.stop() if watch else 0)


# Runs the command it is given as a child of its own (a small process), and writes that child's peak RSS.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _outcomes(log: Path, how: str) -> Counter[str]:
    """Files per outcome: from ``ingest file --json`` lines, or the JSON log's ``run`` event."""
    counts: Counter[str] = Counter()
    if how == "file":
        for line in log.with_suffix(".out").read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                counts[json.loads(line)["outcome"]] += 1
        return counts
    for line in log.with_suffix(".err").read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError, AttributeError):
            event = json.loads(line)
            if event.get("event") == "run":
                counts.update({k: v for k, v in event.get("counts", {}).items() if k != "waiting"})
    return counts


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join(f"      {line[:300]}" for line in text)


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Case:
    """One case of one row: ``docs`` files sent in ``seconds``, the S3 requests counted (None: not counted)."""

    docs: int
    seconds: float
    requests: Counter[str] | None
    proxy_cpu: float = 0.0
    problem: str | None = None

    @property
    def rate(self) -> float:
        return self.docs / self.seconds

    @property
    def per_doc(self) -> float | None:
        return None if self.requests is None else sum(self.requests.values()) / self.docs


@dataclass
class Row:
    label: str
    cases: dict[str, Case] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # keys of the documents stored by the first case


class Pipeline:
    """Runs the CLI the way a user would, row by row, each row under a fresh prefix."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.endpoint = os.environ["AWS_ENDPOINT_URL"]
        self.broker = os.environ.get("INGEST_BROKER_URL", "")
        self.prefix = f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}/"
        self.problems: list[str] = []
        self.rows: dict[str, Row] = {}
        self.new, self.corrected, changed = _stage(root, ARTICLES)
        self.names = sorted(p.name for p in self.new.iterdir())
        self.expected = {
            "new": Counter(created=len(self.names)),
            "unchanged": Counter(unchanged=len(self.names)),
            "corrected": Counter(updated=changed, unchanged=len(self.names) - changed),
        }
        (root / "defaults.yaml").write_text("sources: []\n")
        self.proxy = CountingProxy(self.endpoint)
        self.doc_kb = 0.0

    def close(self) -> None:
        self.proxy.close()

    def env(self, prefix: str, endpoint: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
        env.update(INGEST_BUCKET=BUCKET, INGEST_PREFIX=prefix, AWS_ENDPOINT_URL=endpoint)
        if self.broker:
            env["INGEST_BROKER_URL"] = self.broker
        return env

    # -------------------------------------------------------------------------------------------- rows

    def warm_up(self) -> None:
        """One small untimed run first, so the first row does not pay for cold caches (bytecode, files, bucket)."""
        where = self.root / "warm-up"
        where.mkdir()
        args = [INGEST, "file", "--json", "--log-format", "json", "--config", str(self.root / "defaults.yaml")]
        _run(
            [*args, *self.names[:50]],
            env=self.env(f"{self.prefix}warm-up/", self.proxy.url),
            cwd=self.new,
            log=where / "file",
        )

    def row(self, key: str, label: str, how: str, latency: float | None, cases: Sequence[str] = CASES) -> Row:
        """Run the three cases of one row: ``how`` is file, run or dispatch; ``latency`` None sends requests
        straight to the S3 (not counted), else through the counting proxy with that much added."""
        where = self.root / "rows" / key
        drop = where / "drop"
        drop.mkdir(parents=True)
        config = where / "ingest.yaml"
        config.write_text(json.dumps({"sources": [{"name": "bench", "location": str(drop), "settle_seconds": 0}]}))
        env = self.env(f"{self.prefix}{key}/", self.endpoint if latency is None else self.proxy.url)
        self.proxy.latency = latency or 0.0
        row = self.rows[key] = Row(label)
        try:
            for case in cases:
                row.cases[case] = self._case(row, case, how, where, config, env, counted=latency is not None)
        finally:
            self.proxy.latency = 0.0
        return row

    def _case(
        self, row: Row, case: str, how: str, where: Path, config: Path, env: dict[str, str], *, counted: bool
    ) -> Case:
        files = self.corrected if case == "corrected" else self.new
        common = ["--log-format", "json", "--config", str(config)]
        if how == "file":
            args, cwd = [INGEST, "file", "--json", *common, *self.names], files  # names, not paths: short argv
        else:
            for name in self.names:  # not timed: the files arrive before the run
                shutil.copyfile(files / name, where / "drop" / name)
            args, cwd = [INGEST, "run", *common, *(["--dispatch", "--wait"] if how == "dispatch" else [])], where
        log = where / case
        self.proxy.take_counts()
        cpu = self.proxy.cpu_seconds()
        ran = _run(args, env=env, cwd=cwd, log=log)
        requests = self.proxy.take_counts() if counted else None
        result = Case(len(self.names), ran.seconds, requests, self.proxy.cpu_seconds() - cpu)
        outcomes = _outcomes(log, how)
        if ran.code != 0 or outcomes != self.expected[case]:
            result.problem = (
                f"{row.label}, {CASE_TITLES[case]}: exit code {ran.code}, outcomes {dict(outcomes)} "
                f"(expected {dict(self.expected[case])}); logs {log}.out/.err\n{_tail(log.with_suffix('.err'))}"
            )
            self.problems.append(result.problem)
        if how == "file" and case == "new":
            row.keys = _stored_keys(log)
        per_doc = f", {result.per_doc:.2f} S3 requests/doc" if result.per_doc is not None else ""
        flag = "  (PROBLEM: see the end)" if result.problem else ""
        _say(f"{row.label}, {CASE_TITLES[case]}: {result.docs} docs in {ran.seconds:.1f} s{per_doc}{flag}")
        return result

    @contextlib.contextmanager
    def workers(self, n: int | None, pool: str = "prefork") -> Iterator[None]:
        """``ingest worker --pool pool --concurrency n`` (None: its default) in its own process group, ready,
        for the rows inside."""
        log = self.root / f"worker-{pool}-{n or 'default'}"
        args = [INGEST, "worker", "--pool", pool, "--log-format", "json", "--loglevel", "INFO"]
        args += ["--concurrency", str(n)] if n else []
        args += ["--config", str(self.root / "defaults.yaml")]
        # Bucket and prefix travel with each task; the endpoint is the counting proxy's.
        env = self.env("", self.proxy.url)
        with log.with_suffix(".out").open("wb") as out, log.with_suffix(".err").open("wb") as err:
            proc = subprocess.Popen(
                args, env=env, cwd=self.root, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
            )
        try:
            deadline = time.monotonic() + 60
            while b" ready." not in log.with_suffix(".err").read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    why = f"exited with code {proc.returncode}" if proc.returncode is not None else "not ready in 60 s"
                    raise BenchError(f"ingest worker --concurrency {n} {why}:\n{_tail(log.with_suffix('.err'))}")
                time.sleep(0.1)
            yield
        finally:
            _stop(proc)

    # -------------------------------------------------------------------------------------------- baselines

    def baselines(self, keys: Sequence[str]) -> dict[str, dict[str, Case]]:
        """PUT the stored documents' JSON with s5cmd and with a boto3 loop, straight and through the proxy."""
        import boto3
        from botocore.config import Config

        docs = self.root / "docs"
        docs.mkdir()
        fetch = boto3.client("s3", endpoint_url=self.endpoint, config=Config(max_pool_connections=16))

        def save(key: str) -> None:
            (docs / f"{key.split('/')[-2]}.json").write_bytes(fetch.get_object(Bucket=BUCKET, Key=key)["Body"].read())

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(save, keys))
        bodies = [(p.name, p.read_bytes()) for p in sorted(docs.iterdir())]
        self.doc_kb = sum(len(b) for _, b in bodies) / len(bodies) / 1024
        results: dict[str, dict[str, Case]] = {"s5cmd": {}, "boto3-1": {}, "boto3-32": {}}
        for via, url in (("straight", self.endpoint), ("proxy", self.proxy.url)):
            counted = via == "proxy"
            dest = f"{self.prefix}baseline-{via}"
            self.proxy.take_counts()
            cpu = self.proxy.cpu_seconds()
            log = self.root / f"s5cmd-{via}"
            ran = _run(
                [S5CMD, "--endpoint-url", url, "cp", f"{docs}/*", f"s3://{BUCKET}/{dest}/s5cmd/"],
                env=self.env("", url),
                cwd=self.root,
                log=log,
            )
            case = Case(len(bodies), ran.seconds, self.proxy.take_counts() if counted else None)
            case.proxy_cpu = self.proxy.cpu_seconds() - cpu
            copied = sum(line.startswith("cp ") for line in log.with_suffix(".out").read_text().splitlines())
            if ran.code != 0 or copied != len(bodies):
                case.problem = (
                    f"s5cmd ({via}): exit code {ran.code}, {copied} of {len(bodies)} copied; logs {log}.out/.err"
                )
                self.problems.append(case.problem)
            results["s5cmd"][via] = case
            for threads in (1, 32):
                client = boto3.client("s3", endpoint_url=url, config=Config(max_pool_connections=max(10, threads)))
                client.head_bucket(Bucket=BUCKET)  # connect and sign once before the clock starts

                def put(
                    item: tuple[str, bytes], client: Any = client, dest: str = dest, threads: int = threads
                ) -> None:
                    name, body = item
                    client.put_object(
                        Bucket=BUCKET, Key=f"{dest}/boto3-{threads}/{name}", Body=body, ContentType="application/json"
                    )

                self.proxy.take_counts()
                cpu = self.proxy.cpu_seconds()
                start = time.perf_counter()
                if threads == 1:
                    for item in bodies:
                        put(item)
                else:
                    with ThreadPoolExecutor(threads) as pool:
                        list(pool.map(put, bodies))
                case = Case(len(bodies), time.perf_counter() - start, self.proxy.take_counts() if counted else None)
                case.proxy_cpu = self.proxy.cpu_seconds() - cpu
                results[f"boto3-{threads}"][via] = case
            _say(f"baselines ({via}): " + ", ".join(f"{k} {v[via].rate:.0f} objects/s" for k, v in results.items()))
        return results

    # -------------------------------------------------------------------------------------------- memory

    def memory(self, counts: Sequence[int]) -> dict[tuple[str, int], Ran]:
        """Peak RSS of ``ingest file`` and ``ingest run`` on ``counts`` tiny generated files, straight to the S3."""
        results: dict[tuple[str, int], Ran] = {}
        for n in counts:
            src = self.root / "gen" / str(n)
            src.mkdir(parents=True)
            width = max(6, len(str(n - 1)))
            names = [f"{i:0{width}d}.txt" for i in range(n)]
            for i, name in enumerate(names):
                (src / name).write_text(f"Story {i}\n\nParagraph {i}.\n")
            for how in ("file", "run"):
                where = self.root / "rss" / f"{how}-{n}"
                drop = where / "drop"
                drop.mkdir(parents=True)
                config = where / "ingest.yaml"
                config.write_text(
                    json.dumps({"sources": [{"name": "gen", "location": str(drop), "settle_seconds": 0}]})
                )
                env = self.env(f"{self.prefix}rss-{how}-{n}/", self.endpoint)
                common = ["--log-format", "json", "--config", str(config)]
                log = where / "run"
                stdin: Path | None = None
                if how == "file":  # names on stdin (`ingest file -`): argv would hold them all, and cannot at 100k
                    stdin = where / "names.txt"
                    stdin.write_text("".join(f"{name}\n" for name in names))
                    args, cwd = [INGEST, "file", "--json", *common, "-"], src
                    done, marker = log.with_suffix(".out"), b"\n"
                else:
                    for name in names:
                        os.link(src / name, drop / name)  # the run moves the link; the generated file stays
                    args, cwd = [INGEST, "run", *common], where
                    done, marker = log.with_suffix(".err"), b'"event": "file"'

                def progress(
                    elapsed: float, done: Path = done, marker: bytes = marker, label: str = f"ingest {how}, {n:,} files"
                ) -> None:
                    _say(f"{label}: {done.read_bytes().count(marker):,} done after {elapsed:.0f} s")

                ran = results[how, n] = _run(
                    args, env=env, cwd=cwd, log=log, sample=True, progress=progress, stdin=stdin
                )
                outcomes = _outcomes(log, how)
                if ran.code != 0 or outcomes != Counter(created=n):
                    self.problems.append(
                        f"ingest {how}, {n:,} files: exit code {ran.code}, outcomes {dict(outcomes)} "
                        f"(expected {{'created': {n}}}); logs {log}.out/.err\n{_tail(log.with_suffix('.err'))}"
                    )
                _say(
                    f"ingest {how}, {n:,} small files: {ran.seconds:.1f} s, peak RSS {ran.peak_kb / 1024:.1f} MB "
                    f"(largest process), {ran.tree_kb / 1024:.1f} MB (process tree)"
                )
        return results

    def remove_objects(self) -> None:
        log = self.root / "cleanup"
        ran = _run(
            [S5CMD, "--endpoint-url", self.endpoint, "rm", f"s3://{BUCKET}/{self.prefix}*"],
            env=self.env("", self.endpoint),
            cwd=self.root,
            log=log,
        )
        removed = log.with_suffix(".out").read_text().count("rm ")
        _say(
            f"removed {removed:,} objects under s3://{BUCKET}/{self.prefix} in {ran.seconds:.0f} s "
            f"(s5cmd exit code {ran.code})"
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group (a worker finishes the files in hand), then SIGKILL to whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _stage(root: Path, count: int) -> tuple[Path, Path, int]:
    """The first ``count`` BBC articles under unique flat names (``business-001.txt``: ids come from names), and
    the same set with every tenth article's first paragraph changed. Returns both folders and how many changed."""
    new, corrected = root / "new", root / "corrected"
    new.mkdir()
    corrected.mkdir()
    changed = 0
    for i, path in enumerate(sorted((CORPUS / "bbc" / "bbc").glob("*/*.txt"))[:count]):
        name = f"{path.parent.name}-{path.name}"
        data = path.read_bytes()
        (new / name).write_bytes(data)
        if i % 10 == 0:
            lines = data.split(b"\n")
            j = next(k for k in range(1, len(lines)) if lines[k].strip())
            lines[j] = lines[j].rstrip() + b" This sentence was added by a correction."
            data = b"\n".join(lines)
            changed += 1
        (corrected / name).write_bytes(data)
    return new, corrected, changed


def _stored_keys(log: Path) -> list[str]:
    keys = []
    for line in log.with_suffix(".out").read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            if key := json.loads(line)["key"]:
                keys.append(key)
    return keys


def pipeline(*, table: bool = True, memory: bool = True) -> bool:
    """The side-by-side figures (see the module docstring): ``table`` the rows, ratios and baselines,
    ``memory`` the peak RSS on generated files. Returns False when a run did not do what was expected."""
    if not os.environ.get("AWS_ENDPOINT_URL"):
        print("pipeline: AWS_ENDPOINT_URL not set (run `make bench`, which starts the local S3); skipped")
        return True
    big = int(os.environ.get("BENCH_RSS_FILES", RSS_BIG_DEFAULT))
    keep = bool(os.environ.get("BENCH_KEEP"))
    started, load = time.monotonic(), os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    bench = Pipeline(root)
    baselines: dict[str, dict[str, Case]] = {}
    peaks: dict[tuple[str, int], Ran] = {}
    memory_seconds = 0.0
    try:
        _make_bucket()
        if table:
            bench.warm_up()
            _speed(bench)
            keys = bench.rows["file"].keys
            if len(keys) == ARTICLES:
                baselines = bench.baselines(keys)
            else:
                bench.problems.append(f"baselines skipped: the ingest file row stored {len(keys)} of {ARTICLES} docs")
        if memory:
            memory_started = time.monotonic()
            peaks = bench.memory(sorted({RSS_SMALL, big}))
            memory_seconds = time.monotonic() - memory_started
    finally:
        bench.close()
    _report(bench, baselines, peaks)
    print(
        f"\n(pipeline figures took {(time.monotonic() - started) / 60:.1f} min"
        + (f", the memory part {memory_seconds / 60:.1f} min of it" if memory else "")
        + f"; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} cores)"
    )
    if bench.problems:
        print("\nPROBLEMS (a figure marked * comes from a run that did not do what was expected):")
        for problem in bench.problems:
            print(f"  - {problem}")
    if not keep:
        bench.remove_objects()
        if not bench.problems:
            shutil.rmtree(root, ignore_errors=True)
    if keep or bench.problems:
        _say(f"logs and inputs kept in {root}")
    return not bench.problems


def _speed(bench: Pipeline) -> None:
    """The rows, ordered so that the two rows of each ratio run one after the other."""
    bench.row("file-straight", "ingest file, straight to S3 (not counted)", "file", None, cases=("new",))
    bench.row("file", "ingest file", "file", 0.0)
    bench.row("file-30ms", "ingest file, +30 ms", "file", LATENCY)
    bench.row("run", "ingest run (a drop folder)", "run", 0.0)
    bench.row("run-30ms", "ingest run, +30 ms", "run", LATENCY)
    if not bench.broker:
        bench.problems.append("INGEST_BROKER_URL not set (make bench starts the local Redis): no dispatch rows")
        return
    for n in (1, 2, 4):
        label = f"ingest run --dispatch --wait, {n} worker{'s' if n > 1 else ''}"
        try:
            with bench.workers(n):
                bench.row(f"dispatch-{n}", label, "dispatch", 0.0)
        except BenchError as exc:
            bench.problems.append(str(exc))
    # The worker as shipped (prefork, its default slots per core), and one process of 32 threads beside it.
    shipped: tuple[tuple[str, int | None, str, str], ...] = (
        ("dispatch-default", None, "prefork", f"ingest worker as shipped ({default_concurrency()} processes)"),
        ("dispatch-t32", 32, "threads", "ingest worker --pool threads --concurrency 32"),
    )
    for key, slots, pool, label in shipped:
        try:
            with bench.workers(slots, pool=pool):
                bench.row(key, label, "dispatch", 0.0)
                bench.row(f"{key}-30ms", f"{label}, +30 ms", "dispatch", LATENCY)
        except BenchError as exc:
            bench.problems.append(str(exc))


def _make_bucket() -> None:
    import boto3
    from botocore.exceptions import ClientError

    with contextlib.suppress(ClientError):
        boto3.client("s3").create_bucket(Bucket=BUCKET)


def _cell(case: Case | None, *, requests: bool = True) -> str:
    if case is None:
        return f"{'-':>11}{'-':>9}" if requests else f"{'-':>11}"
    rate = f"{case.rate:.0f}{'*' if case.problem else ''}"
    per = f"{case.per_doc:.2f}" if case.per_doc is not None else "-"
    return f"{rate:>11}{per:>9}" if requests else f"{rate:>11}"


def _ratio(a: Case | None, b: Case | None, target: float | None) -> str:
    if a is None or b is None:
        return f"{'-':>20}"
    value = a.rate / b.rate
    verdict = "" if target is None else " ok" if value >= target else " low"
    return f"{value:.2f}{verdict}".rjust(20)


def _report(bench: Pipeline, baselines: dict[str, dict[str, Case]], memory: dict[tuple[str, int], Ran]) -> None:
    rows, w = bench.rows, 60

    def case(key: str, c: str) -> Case | None:
        return rows[key].cases.get(c) if key in rows else None

    if rows:
        print(
            f"\npipeline: the same {ARTICLES:,} BBC articles in every row (bbc/*/*.txt, sorted), the local SeaweedFS, "
            f"{os.cpu_count()} cores.\nEach row runs the real CLI in subprocesses under a fresh prefix; its S3 "
            "requests go through a counting pass-through\nproxy (0 ms added unless it says +30 ms). docs/s: files "
            "sent / wall time of the command, start-up included."
        )
        cases_head = "".join(f"{CASE_TITLES[c]:>20}" for c in CASES)
        print("\n" + " " * w + cases_head)
        print(" " * w + f"{'docs/s':>11}{'req/doc':>9}" * len(CASES))
        for key in ROW_ORDER:
            if key in rows:
                print(f"{rows[key].label:<{w}}" + "".join(_cell(case(key, c)) for c in CASES))
        print(f"\n{'ratios of docs/s (this run)':<{w}}{cases_head}   target")
        for label, a, b, target in RATIOS:
            if a in rows and b in rows:
                print(
                    f"{label:<{w}}" + "".join(_ratio(case(a, c), case(b, c), target) for c in CASES) + f"   >= {target}"
                )
        label = "ingest file: 0 ms proxy / straight"
        if "file-straight" in rows and "file" in rows:
            cells = "".join(_ratio(case("file", c), case("file-straight", c), None) for c in CASES)
            print(f"{label:<{w}}{cells}   ~1: the cost of counting")
        measured = [
            (c.proxy_cpu / c.seconds, r.label, k) for r in rows.values() for k, c in r.cases.items() if c.requests
        ]
        if measured:
            share, row_label, which = max(measured)
            through = baselines.get("s5cmd", {}).get("proxy")
            print(
                f"the proxy's own CPU: at most {100 * share:.0f} % of one core during a row ({row_label}, "
                f"{CASE_TITLES[which]})" + (f"; it passed s5cmd's PUTs at {through.rate:.0f}/s" if through else "")
            )
        _by_method(rows, w)
    if baselines:
        print(
            f"\nbaselines: PUT the same {ARTICLES:,} stored documents (their JSON, {bench.doc_kb:.1f} KB on average, "
            "from a temp dir) to the same S3"
        )
        print(f"{'':<{w}}{'objects/s':>11}{'objects/s':>11}")
        print(f"{'':<{w}}{'straight':>11}{'via proxy':>11}{'req/object':>12}")
        for key, label in BASELINES.items():
            direct, proxied = baselines[key].get("straight"), baselines[key].get("proxy")
            per = f"{proxied.per_doc:.2f}" if proxied and proxied.per_doc is not None else "-"
            print(f"{label:<{w}}{_cell(direct, requests=False)}{_cell(proxied, requests=False)}{per:>12}")
    if memory:
        _memory_table(memory, w)


ROW_ORDER = (
    "file",
    "run",
    "dispatch-1",
    "dispatch-2",
    "dispatch-4",
    "dispatch-default",
    "dispatch-t32",
    "file-30ms",
    "run-30ms",
    "dispatch-default-30ms",
    "dispatch-t32-30ms",
    "file-straight",
)
RATIOS = (
    ("ingest run / ingest file", "run", "file", RUN_OVER_FILE),
    ("dispatch: 2 workers / 1 worker", "dispatch-2", "dispatch-1", DISPATCH_2_OVER_1),
    ("ingest file: +30 ms / 0 ms", "file-30ms", "file", SLOW_OVER_FAST),
    ("ingest run: +30 ms / 0 ms", "run-30ms", "run", SLOW_OVER_FAST),
    ("worker as shipped: +30 ms / 0 ms", "dispatch-default-30ms", "dispatch-default", SLOW_OVER_FAST),
    ("worker, 32 threads: +30 ms / 0 ms", "dispatch-t32-30ms", "dispatch-t32", SLOW_OVER_FAST),
)
_COUNTED_AT_0_MS = ("file", "run", "dispatch-1", "dispatch-2", "dispatch-4", "dispatch-default", "dispatch-t32")
BASELINES = {
    "s5cmd": "s5cmd cp (256 workers)",
    "boto3-1": "boto3 put_object loop, 1 thread",
    "boto3-32": "boto3 put_object loop, 32 threads",
}


def _by_method(rows: dict[str, Row], w: int) -> None:
    table: list[tuple[str, list[str]]] = []
    for key in ROW_ORDER:
        # +30 ms rows make the same requests as at 0 ms, only slower; the straight row is not counted
        if key in rows and key in _COUNTED_AT_0_MS:
            cells = []
            for c in CASES:
                got = rows[key].cases.get(c)
                if got is None or got.requests is None:
                    cells.append("-")
                else:
                    cells.append(" ".join(f"{m} {_per(n, got.docs)}" for m, n in sorted(got.requests.items())))
            table.append((rows[key].label, cells))
    if not any(cell != "-" for _, cells in table for cell in cells):
        return
    widths = [max(len(CASE_TITLES[c]), *(len(cells[i]) for _, cells in table)) + 3 for i, c in enumerate(CASES)]
    print(
        f"\n{'S3 requests per doc, by method':<{w}}"
        + "".join(f"{CASE_TITLES[c]:<{n}}" for c, n in zip(CASES, widths, strict=True)).rstrip()
    )
    for label, cells in table:
        print(f"{label:<{w}}" + "".join(f"{cell:<{n}}" for cell, n in zip(cells, widths, strict=True)).rstrip())


def _per(n: int, docs: int) -> str:
    """``n`` requests per doc, with two decimals; one request a run shows as "<0.01", not as nothing."""
    return f"{n / docs:.2f}" if n == 0 or n / docs >= 0.005 else "<0.01"


def _memory_table(memory: dict[tuple[str, int], Ran], w: int) -> None:
    sizes = sorted({n for _, n in memory})
    small, large = sizes[0], sizes[-1]
    print(
        '\nmemory: peak RSS in MB on tiny generated files ("Story N\\n\\nParagraph N.\\n"), straight to the '
        "local S3.\nlargest: the largest process's peak (wait4's ru_maxrss, from a small launcher); tree: the "
        "peak of the summed RSS\nof the command and its child processes, sampled twice a second"
    )
    print(f"{'':<{w}}" + "".join(f"{f'{n:,} files':>26}" for n in sizes) + f"{f'{large:,} / {small:,}':>20}")
    print(f"{'':<{w}}" + f"{'largest':>10}{'tree':>8}{'time':>8}" * len(sizes) + f"{'largest':>12}{'tree':>8}   target")
    for how in ("file", "run"):
        cells = ""
        for n in sizes:
            ran = memory.get((how, n))
            if ran:
                cells += f"{ran.peak_kb / 1024:>10.1f}{ran.tree_kb / 1024:>8.1f}{_seconds(ran.seconds):>8}"
            else:
                cells += f"{'-':>10}{'-':>8}{'-':>8}"
        a, b = memory.get((how, large)), memory.get((how, small))
        if a and b and large != small:
            cells += f"{a.peak_kb / b.peak_kb:>12.2f}{a.tree_kb / max(b.tree_kb, 1):>8.2f}"
        else:
            cells += f"{'-':>12}{'-':>8}"
        print(f"{'ingest ' + how:<{w}}{cells}   <= {RSS_BIG_OVER_SMALL}")


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 600 else f"{s / 60:.0f} min"


def accuracy() -> None:
    rules = load_rules(ModuleSettings())
    web = score_web(rules)
    found, total = web.rate(("recirculation", "cta"))
    print(f"web corpus: recirculation + CTA lines taken out of the body: {found}/{total} = {100 * found / total:.1f} %")
    for kind in ("recirculation", "cta", "page-furniture"):
        print(
            f"  {kind:<15} {web.found[kind]:>4}/{web.total[kind]:<4} = {100 * web.found[kind] / web.total[kind]:.1f} %"
        )
    for file, line, kind, text in web.missed:
        if kind != "page-furniture" or "-v" in sys.argv:
            print(f"  missed {kind}: {file}:{line}: {text}")
    articles, paragraphs, fp, examples = score_bbc(rules)
    print(
        f"bbc corpus: {articles} articles, {paragraphs} body paragraphs, {fp} taken out as modules "
        f"(false positives: {100 * fp / max(paragraphs, 1):.3f} %)"
    )
    for file, text in examples[:20]:
        print(f"  false positive: {file}: {text}")
    n, mb, secs = speed(rules)
    print(
        f"speed (read+parse+split+validate+hash, one core): {n} files, {mb:.1f} MB in {secs:.2f} s = "
        f"{n / secs:.0f} files/s, {mb / secs:.1f} MB/s"
    )


SECTIONS = ("accuracy", "speed", "memory")


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    if not CORPUS.is_dir():
        print(f"bench: {CORPUS} not found beside the checkout; nothing to measure", file=sys.stderr)
        return 0
    chosen = [a for a in argv if not a.startswith("-")] or list(SECTIONS)
    if unknown := sorted(set(chosen) - set(SECTIONS)):
        print(f"bench: unknown section {', '.join(unknown)}; sections: {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    if "accuracy" in chosen:
        accuracy()
    fine = True
    if "speed" in chosen or "memory" in chosen:
        fine = pipeline(table="speed" in chosen, memory="memory" in chosen)
    return 0 if fine else 1


if __name__ == "__main__":
    raise SystemExit(main())
