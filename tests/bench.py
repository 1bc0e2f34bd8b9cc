"""``make bench``: how well and how fast ingest splits real articles. Prints figures; asserts nothing.

* recall on ../shared/corpus/web: of the lines the corpus index marks as recirculation or call to action,
  how many end up outside the body (and page furniture, reported apart);
* false positives on ../shared/corpus/bbc: clean articles in which nothing is a module, so every
  paragraph taken out of a body is a false positive;
* speed of the pure part (read, parse, split, validate, hash) in files and MB per second.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ingest.errors import InputError
from ingest.prepare import prepare
from ingest.rules import load_rules
from ingest.settings import ModuleSettings, load_settings
from ingest.split import Rules

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


def storage(count: int = 500) -> None:
    """Ingest ``count`` BBC articles into the local S3 (new, then unchanged); print files/s and requests."""
    import os
    import uuid
    from collections import Counter

    from ingest.api import ingest_files
    from ingest.stores.s3 import S3Store

    if not os.environ.get("AWS_ENDPOINT_URL"):
        print("storage: AWS_ENDPOINT_URL not set (run `make bench`, which starts the local S3); skipped")
        return
    paths = sorted((CORPUS / "bbc" / "bbc").glob("*/*.txt"))[:count]
    settings = load_settings({"bucket": "ingest-bench", "prefix": f"bench-{uuid.uuid4().hex[:8]}/"}, env={})
    store = S3Store(settings.bucket)
    calls: Counter[str] = Counter()
    store.client.meta.events.register("before-send.s3", lambda request, **_: calls.update([request.method]))
    store.ensure_bucket()
    for label in ("new articles", "unchanged re-send"):
        calls.clear()
        start = time.perf_counter()
        outcomes = ingest_files(paths, settings, store)
        secs = time.perf_counter() - start
        words = Counter(o.outcome for o in outcomes)
        per_file = {k: round(v / len(paths), 2) for k, v in sorted(calls.items())}
        print(
            f"storage, {label}: {len(paths)} files in {secs:.2f} s = {len(paths) / secs:.0f} files/s "
            f"(one process, local SeaweedFS); outcomes {dict(words)}; S3 requests per file {per_file}"
        )


def main() -> int:
    if not CORPUS.is_dir():
        print(f"bench: {CORPUS} not found beside the checkout; nothing to measure", file=sys.stderr)
        return 0
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
    storage()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
