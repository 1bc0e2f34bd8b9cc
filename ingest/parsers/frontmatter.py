"""Text or Markdown with YAML front matter: a ``---`` line, YAML, a ``---`` line, then plain text.

The text after the front matter has the plain-text layout (headline line, paragraphs). A ``headline``
key replaces that line: the text is then all body, except that a first line repeating the headline is
dropped and noted, as in plain text. A Markdown ``# `` before the headline is not part of it. A ``.md``
file without front matter is plain text. The parser reads; ``compose`` applies that layout (the draft
says the lines are Markdown), as it does for plain text.

Keys: ``id``, ``headline``, ``byline``, ``dates`` (``published``, ``updated``), ``embargoed`` (not to be
published before this ISO 8601 time), ``section``, ``tags``, ``language``, ``url``, ``version`` (an
integer or an ISO 8601 timestamp), ``note`` and ``editor`` (a correction: the new version is
``corrected``). Unknown keys are refused, naming the key: a typo such as ``tag:`` must not silently lose
metadata.

The YAML is read with a safe loader that also refuses anchors and aliases (front matter never needs
them, and they are how a small file expands into a huge one), and only up to ``MAX_FRONT_MATTER`` bytes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ingest.errors import ParseError, describe_validation, printable
from ingest.parsers._values import unique, version_hint, when
from ingest.parsers.base import Draft
from ingest.reader import Decoded

MAX_FRONT_MATTER = 64 * 1024


class _Refused(yaml.YAMLError):
    """YAML that is valid but not accepted in front matter."""


class _Loader(yaml.SafeLoader):
    """The safe loader, minus anchors and aliases."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            line = event.start_mark.line + 2 if event.start_mark else "?"
            raise _Refused(f"YAML anchors and aliases are not accepted (line {line})")
        return super().compose_node(parent, index)


def _moment(value: object) -> datetime | None:
    return None if value is None else when(value)


def _hold(value: object) -> datetime | None:
    """An embargo must say when it lifts: a day without a time of day is refused, not read as midnight UTC."""
    if isinstance(value, date) and not isinstance(value, datetime):
        raise ValueError("has no time of day (an embargo must say when it lifts)")
    return _moment(value)


def _version(value: object) -> int | datetime | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    try:
        return when(value)
    except ValueError:
        raise ValueError("must be an integer or an ISO 8601 date-time") from None


Moment = Annotated[datetime | None, BeforeValidator(_moment)]
Hold = Annotated[datetime | None, BeforeValidator(_hold)]
Version = Annotated[int | datetime | None, BeforeValidator(_version)]


class _Dates(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    published: Moment = None
    updated: Moment = None


class _FrontMatter(BaseModel):
    # Strict: YAML types are kept as written (`tags: 5` is an error, not "5").
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str | None = None
    headline: str | None = None
    byline: str | None = None
    dates: _Dates = Field(default_factory=_Dates)
    # Top level, not under dates: it is an instruction to the CMS, not a fact about the story.
    embargoed: Hold = None
    section: str | None = None
    tags: list[str] = Field(default_factory=list)
    language: str | None = None
    url: str | None = None
    version: Version = None
    note: str | None = None
    editor: str | None = None


class FrontMatterParser:
    name: str = "frontmatter"
    extensions: tuple[str, ...] = (".md", ".markdown", ".txt")
    description: str = "Text/Markdown with YAML front matter (id, headline, byline, dates, tags, ...)."
    controls: frozenset[str] = frozenset()

    def sniff(self, text: str) -> bool:
        # A wire story may open with a rule of dashes: only an opening AND a closing line make front matter.
        head = text[: 64 * 1024]
        return head.startswith("---\n") and ("\n---\n" in head[3:] or head[4:].startswith("---\n"))

    def parse(self, decoded: Decoded, name: str) -> Draft:
        meta, rest = _front_matter(decoded.text.split("\n"), name)
        version = meta.version
        return Draft(
            # No headline key: the text has the plain-text layout, Markdown marks and all.
            headline=meta.headline,
            lines=tuple(rest),
            markdown=True,
            byline=meta.byline,
            section=meta.section,
            tags=unique(meta.tags),
            language=meta.language,
            url=meta.url,
            published_at=meta.dates.published,
            updated_at=meta.dates.updated,
            embargoed=meta.embargoed,
            id=meta.id,
            version=version_hint(version, version if isinstance(version, datetime) else None),
            note=meta.note,
            editor=meta.editor,
            headline_from="front matter headline and first line",
            body_from="the text after the front matter",
        )


def _front_matter(lines: list[str], name: str) -> tuple[_FrontMatter, list[str]]:
    """The validated front matter and the lines after it (a Markdown file without any is all text)."""
    if lines[0] != "---":
        return _FrontMatter(), lines
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        raise ParseError(name, "front matter has no closing '---' line", field="front-matter")
    source = "\n".join(lines[1:end])
    if len(source.encode("utf-8")) > MAX_FRONT_MATTER:
        raise ParseError(name, f"front matter is larger than {MAX_FRONT_MATTER // 1024} KiB", field="front-matter")
    try:
        data = yaml.load(source, Loader=_Loader)  # _Loader: SafeLoader without aliases
    except _Refused as exc:
        raise _error(name, f"front matter refused: {exc}") from None
    except yaml.constructor.ConstructorError as exc:
        # The safe loader knows no constructor for tags like !!python/object/apply: never executed.
        problem = exc.problem or ""
        if "constructor for the tag" in problem:
            tag = problem.split("tag", 1)[-1].strip()
            reason = f"front matter refused: YAML tag {tag} is not allowed (plain YAML only){_at(exc)}"
            raise _error(name, reason) from None
        raise _error(name, f"front matter is not valid YAML: {problem or exc.context}{_at(exc)}") from None
    except yaml.MarkedYAMLError as exc:
        raise _error(name, f"front matter is not valid YAML: {exc.problem or exc.context}{_at(exc)}") from None
    except RecursionError:
        raise _error(name, "front matter is nested too deeply") from None
    except (ValueError, OverflowError) as exc:
        # A well-formed but impossible value, such as the timestamp 2024-13-45.
        raise _error(name, f"front matter has an impossible value: {exc}") from None
    except yaml.YAMLError as exc:
        raise _error(name, f"front matter is not valid YAML: {type(exc).__name__}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _error(name, f"front matter must be a mapping of keys, not a {type(data).__name__}")
    try:
        return _FrontMatter.model_validate(data), lines[end + 1 :]
    except ValidationError as exc:
        field, reason = describe_validation(exc, data)
        raise ParseError(name, f"front matter {field}: {reason}", field=field) from exc


def _error(name: str, reason: str) -> ParseError:
    return ParseError(name, printable(reason), field="front-matter")


def _at(exc: yaml.MarkedYAMLError) -> str:
    # Marks count from the YAML's first line, which is line 2 of the file.
    return f" (line {exc.problem_mark.line + 2})" if exc.problem_mark is not None else ""


PARSER = FrontMatterParser()
