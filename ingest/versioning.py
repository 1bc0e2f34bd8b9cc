"""Article identity, version numbers, and what changed between two versions.

* identity: ``safe_id`` and ``id_from_file_name`` make every id key-safe;
* numbering: ``new_version`` builds version N+1 of an article from version N (or v1 from nothing),
  with its history, change summary and action (a kill is its own action, ``withdrawn``); ``stale_reason``
  says when an input must not become a new version (an older input version, or the content of a
  superseded version);
* differences: ``summarize`` (stored on each version) and ``diff_lines`` (``ingest diff``).

Pure functions only: the clock is passed in, and ``commit`` does the I/O.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from pathlib import PurePath

from ingest.errors import Check, InvalidDocument
from ingest.models import Action, ChangeSummary, Content, Correction, Document, SourceInfo

MAX_ID_LENGTH = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")


def safe_id(raw: str, name: str) -> str:
    """Make an article id key-safe: only ``A-Z a-z 0-9 . _ -``, no ``..``, at most 200 characters.

    Compatibility forms are folded first (fullwidth letters become ASCII, accents are dropped: "café" is
    "cafe"), anything else becomes ``-``, so no id can name another key or escape its folder.
    ``name`` is the input file, for the error.
    """
    folded = "".join(c for c in unicodedata.normalize("NFKD", raw) if not unicodedata.combining(c))
    cleaned = _DOTS.sub(".", _UNSAFE.sub("-", folded)).strip(".-")[:MAX_ID_LENGTH].strip(".-")
    if not cleaned:
        raise InvalidDocument(name, f"has no usable id ({raw!r} has no letters or digits)", check=Check.ID, field="id")
    return cleaned


def id_from_file_name(file_name: str, name: str) -> str:
    """The article id a file gets when its content names none: the file name without its extension.

    A name with no usable characters at all (``ファイル名.txt``) gets a stable id from its hash,
    ``file-<12 hex>``, rather than being refused: the same name always gives the same id.
    """
    stem = PurePath(file_name).stem or file_name
    try:
        return safe_id(stem, name)
    except InvalidDocument:
        if not stem.strip(". "):
            raise
        return "file-" + hashlib.sha256(stem.encode("utf-8")).hexdigest()[:12]


def is_older(incoming: str, stored: str) -> bool:
    """True when an input's own version is older than the stored one's.

    Versions are compared as integers when both are integers ("3" < "12"), as times when both are
    ISO 8601 timestamps, and are otherwise not comparable (never older): we do not guess.
    """
    if incoming.strip().isdigit() and stored.strip().isdigit():
        return int(incoming) < int(stored)
    try:
        a = datetime.fromisoformat(incoming.strip().replace("Z", "+00:00"))
        b = datetime.fromisoformat(stored.strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    if (a.tzinfo is None) != (b.tzinfo is None):
        a, b = a.replace(tzinfo=a.tzinfo or UTC), b.replace(tzinfo=b.tzinfo or UTC)
    return a < b


def summarize(old: Content, new: Content) -> ChangeSummary:
    """Paragraphs added, removed and changed, and links added and removed, from ``old`` to ``new``."""
    added = removed = changed = 0
    matcher = difflib.SequenceMatcher(a=[b.text for b in old.body], b=[b.text for b in new.body], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "replace":
            common = min(i2 - i1, j2 - j1)
            changed += common
            removed += (i2 - i1) - common
            added += (j2 - j1) - common
        elif tag == "delete":
            removed += i2 - i1
        elif tag == "insert":
            added += j2 - j1
    old_links = {(link.title, link.url) for link in old.related_links}
    new_links = {(link.title, link.url) for link in new.related_links}
    return ChangeSummary(
        paragraphs_added=added,
        paragraphs_removed=removed,
        paragraphs_changed=changed,
        links_added=len(new_links - old_links),
        links_removed=len(old_links - new_links),
        headline_changed=old.headline != new.headline,
    )


def diff_lines(old: Content, new: Content, old_label: str, new_label: str) -> list[str]:
    """A readable paragraph-level unified diff: one paragraph a line, headline first, then a status line
    for a withdrawn (``[withdrawn]``) or embargoed (``[embargoed until <time>]``) version."""

    def lines(content: Content) -> list[str]:
        out = [f"# {content.headline}"]
        # What a CMS must act on, not only the text: a kill or an embargo is a change a diff must show.
        if content.withdrawn:
            out.append("[withdrawn]")
        if content.embargoed is not None:
            out.append(f"[embargoed until {content.embargoed.isoformat()}]")
        out += [block.text.replace("\n", " ") for block in content.body]
        out += [f"[link] {link.text.strip()}" for link in content.related_links]
        return out

    return list(difflib.unified_diff(lines(old), lines(new), old_label, new_label, lineterm="", n=1))


def stale_reason(
    prev: Document, content_sha256: str, input_version: str | None, withdrawn: bool = False
) -> str | None:
    """Why an input must not become the version after ``prev``; only an explicit rollback may go back.

    A kill is final: once a version is withdrawn, a live copy is stale unless it declares a version newer
    than the kill's (the source reinstating the story), so a late or unversioned re-send never republishes it.
    """
    stored = prev.source.input_version
    if input_version and stored and is_older(input_version, stored):
        return f"input version {input_version} is older than stored {stored}"
    if prev.withdrawn and not withdrawn:
        newer = bool(input_version and stored and is_older(stored, input_version))
        if not newer:
            how = f"an input declaring a version newer than {stored}" if stored else "`ingest rollback`"
            return f"v{prev.version} withdrew the story; only {how} reinstates it"
    earlier = [h.version for h in prev.history if h.content_sha256 == content_sha256]
    if earlier:
        return f"same content as superseded v{earlier[-1]}; latest is v{prev.version}"
    return None


def unrelated(old: Content, new: Content) -> bool:
    """True when ``new`` shares nothing with ``old``: another headline and not one body paragraph in
    common. A correction, however heavy, keeps one or the other; a different story keeps neither."""
    if old.headline == new.headline:
        return False
    return not {b.text for b in old.body if b.type == "paragraph"} & {b.text for b in new.body if b.type == "paragraph"}


def new_version(
    prev: Document | None,
    *,
    article_id: str,
    content: Content,
    content_sha256: str,
    source: SourceInfo,
    now: datetime,
    note: str | None = None,
    editor: str | None = None,
    rolled_back_to: int | None = None,
) -> Document:
    """Version ``prev.version + 1`` of an article (v1 when ``prev`` is None) with this content.

    Its action: ``rolled_back`` for a rollback; ``withdrawn`` when the story is withdrawn now and was not
    before (or arrives withdrawn), whatever else changed, so a kill never reads as an update; else
    ``created``, ``corrected`` (with a note) or ``updated``.
    """
    action: Action
    if rolled_back_to is not None:
        action = "rolled_back"
    elif content.withdrawn and not (prev is not None and prev.withdrawn):
        action = "withdrawn"
    elif prev is None:
        action = "created"
    elif note:
        action = "corrected"
    else:
        action = "updated"
    return Document(
        **content.model_dump(),
        id=article_id,
        version=prev.version + 1 if prev else 1,
        content_sha256=content_sha256,
        action=action,
        created_at=now,
        previous_version=prev.version if prev else None,
        correction=Correction(note=note, editor=editor) if note else None,
        rolled_back_to=rolled_back_to,
        change_summary=summarize(prev.content(), content) if prev else None,
        source=source,
        history=[*prev.history, prev.record()] if prev else [],
    )
