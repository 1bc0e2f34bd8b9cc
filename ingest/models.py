"""The document a CMS reads, as pydantic models.

``Content`` is what an article *says*; its canonical JSON is hashed into ``content_sha256``, so two
inputs with the same content are the same version whatever their timestamps or file names.
``Document`` adds identity, versioning and provenance around it. The JSON Schemas in ``schemas/`` are
generated from these classes (``python -m ingest.schema``); a test fails when they are stale.

Field names borrow from IPTC ninjs 2.1 and Arc XP ANS where they fit; the README maps them.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Bumped when a change to ``Document`` would break a CMS that reads it.
SCHEMA_VERSION: Literal["1.0"] = "1.0"

NonEmpty = Annotated[str, Field(min_length=1)]
HeadlineDerived = Literal["first-sentence", "stored-version"]
Action = Literal["created", "updated", "corrected", "rolled_back", "withdrawn"]


#: Content fields added after documents were stored: left out of the hash while unset (see ``Content.sha256``).
_ADDED_LATER = frozenset(
    {"embargoed", "slugline", "urgency", "abstract", "copyright", "usage_terms", "associations", "inline_links"}
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Block(_Model):
    """One block of the story body, in reading order."""

    type: Literal["paragraph", "heading"] = Field(
        description="`paragraph` for story text; `heading` for a sub-heading inside the story."
    )
    text: NonEmpty = Field(
        description="The block exactly as in the input (line breaks normalised to LF, nothing else changed)."
    )


class RelatedLink(_Model):
    """A related-link (recirculation) item taken out of the body, with where it stood."""

    title: str = Field(description="The linked headline, without its label, URL or media tag.")
    url: str | None = Field(default=None, description="The link target when the input carried one.")
    label: str | None = Field(
        default=None, description='The teaser label as written, e.g. "READ MORE", "SEE ALSO", "Related".'
    )
    media: str | None = Field(default=None, description='A media tag such as "PHOTOS" or "VIDEO", if present.')
    heading: str | None = Field(
        default=None, description="The module heading this item stood under, e.g. 'More from The Daily Beast'."
    )
    position: int = Field(ge=0, description="How many body blocks precede it; 0 means before the first one.")
    text: NonEmpty = Field(description="The input line exactly as it was, so a CMS can put it back verbatim.")


class ModuleHeading(_Model):
    """A module heading ('Related from X', 'RELATED COVERAGE'), kept apart from the body."""

    text: NonEmpty = Field(description="The heading line exactly as in the input.")
    position: int = Field(ge=0, description="How many body blocks precede it.")


class Boilerplate(_Model):
    """A line that is neither story nor link: social and newsletter prompts, ad slots, widget labels."""

    kind: Literal["cta", "page-furniture"] = Field(
        description="`cta`: follow/subscribe/share/comment prompts; `page-furniture`: ad slots, widget labels, "
        "credits, script residue."
    )
    text: NonEmpty = Field(description="The line exactly as in the input.")
    position: int = Field(ge=0, description="How many body blocks precede it.")


class InlineLink(_Model):
    """A link inside a body paragraph of an HTML or XHTML body. The paragraph's text stays exactly what a
    reader sees; the link says where in it the linked words stand."""

    block: int = Field(ge=0, description="Index of the body block that holds the link.")
    start: int = Field(ge=0, description="Offset of the linked text in the block's text (characters).")
    end: int = Field(ge=0, description="Offset just after the linked text: `text == body[block].text[start:end]`.")
    text: str = Field(description="The linked words.")
    url: str = Field(description="Where the link points, as the input gives it.")


class Association(_Model):
    """A picture, video, graphic or audio item an article refers to (the reference, never the media)."""

    kind: Literal["picture", "video", "graphic", "audio", "text", "other"] = Field(
        description="What the associated item is."
    )
    uri: str | None = Field(default=None, description="The associated item's id or address, as the input gives it.")
    caption: str | None = Field(default=None, description="Its caption or headline.")
    credit: str | None = Field(default=None, description="Its credit (photographer, agency).")
    role: str | None = Field(default=None, description="Its role in the article, as the input names it.")


class Content(_Model):
    """What the article says. Everything here, and nothing else, goes into ``content_sha256``.

    Its times are the input's: they keep the UTC offset the input gave (a newsroom wants a story's local
    publication time, and the offset is part of what the agency said); a time given without one is read in
    the source's ``timezone``, else UTC. Times ingest itself records (``created_at``, ``received_at``, the
    feed's ``time``) are UTC. Either way each is one instant; a CMS compares them as instants.
    """

    headline: NonEmpty = Field(description="The headline, once (a repeated headline line is dropped).")
    byline: str | None = Field(default=None, description="Author credit as given by the input.")
    section: str | None = Field(default=None, description="Desk or section, as given by the input.")
    tags: list[str] = Field(default_factory=list, description="Keywords or subjects, as given by the input.")
    language: str | None = Field(default=None, description="BCP 47 language tag, when the input gives one.")
    url: str | None = Field(default=None, description="Canonical URL of the article, when known.")
    published_at: datetime | None = Field(
        default=None, description="First publication time from the input, in the input's own UTC offset."
    )
    updated_at: datetime | None = Field(
        default=None, description="Last update time stated by the input, in the input's own UTC offset."
    )
    withdrawn: bool = Field(default=False, description="True when the source withdrew (killed) the story.")
    embargoed: datetime | None = Field(
        default=None,
        description="Not to be published before this time, in the input's own UTC offset; a CMS must hold the "
        "story until then.",
    )
    slugline: str | None = Field(default=None, description="The agency's slugline (keyword line), as given.")
    urgency: int | None = Field(
        default=None,
        ge=1,
        le=9,
        description="News urgency as the input rates it, 1 (most urgent: flash) to 9 (ninjs/NewsML-G2 urgency, "
        "NITF ed-urg, ANPA priority mapped).",
    )
    abstract: str | None = Field(default=None, description="A summary the input gives apart from the body.")
    copyright: str | None = Field(default=None, description="Copyright notice or holder, as given by the input.")
    usage_terms: str | None = Field(default=None, description="Usage terms or restrictions, as given by the input.")
    inline_links: list[InlineLink] = Field(
        default_factory=list, description="Links inside body paragraphs (HTML and XHTML bodies), in order."
    )
    associations: list[Association] = Field(
        default_factory=list,
        description="Pictures, video, graphics and audio the item refers to: references with captions and "
        "credits, not the media.",
    )
    body: list[Block] = Field(
        description="The story text, in order, without any module lines. Never empty, except for a withdrawn "
        "(killed) item that came without a body.",
    )
    related_links: list[RelatedLink] = Field(default_factory=list, description="Related-link modules, in order.")
    module_headings: list[ModuleHeading] = Field(
        default_factory=list, description="Headings of related-link modules, in order."
    )
    boilerplate: list[Boilerplate] = Field(
        default_factory=list, description="Calls to action and page furniture, in order."
    )

    @model_validator(mode="after")
    def _has_body(self) -> Content:
        if not self.body and not self.withdrawn:
            raise ValueError("body must have at least one block (only a withdrawn item may have none)")
        return self

    def sha256(self) -> str:
        """Hash of the canonical JSON of the content: sorted keys, UTF-8, no insignificant whitespace.

        A field added after documents were stored is left out while it is unset, so content that does not
        use it keeps the hash it always had (a re-sent story stays ``unchanged``, not a new version).
        """
        data = self.model_dump(mode="json")
        for field in _ADDED_LATER:
            if data.get(field) in (None, []):
                del data[field]
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class SourceInfo(_Model):
    """Where the document came from and how the input was read."""

    format: NonEmpty = Field(description="Input format name, as listed by `ingest formats`.")
    file_name: NonEmpty = Field(description="Base name of the input file.")
    raw_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the input bytes as received.")
    raw_key: str | None = Field(
        default=None,
        description="Storage key of the archived input bytes; null when nothing is archived (`ingest parse`).",
    )
    size_bytes: int = Field(ge=0, description="Size of the input in bytes.")
    received_at: datetime = Field(description="When this input was read (UTC).")
    encoding: str = Field(description="Text encoding the input was decoded with, e.g. `utf-8`, `cp1252`.")
    encoding_rule: Literal["bom", "utf-8", "cp1252-fallback"] = Field(
        description="Why that encoding: a byte-order mark, valid UTF-8, or the Windows-1252 fallback for "
        "bytes that are not UTF-8."
    )
    line_endings: Literal["lf", "crlf", "cr", "mixed", "none"] = Field(
        description="Line endings found in the input; the document always uses LF."
    )
    input_version: str | None = Field(
        default=None,
        description="The version the input itself declares (front-matter `version`, a wire item's version or "
        "version timestamp); an incoming item older than the stored one is `stale`.",
    )
    assumed_timezone: str | None = Field(
        default=None,
        description="The zone read into times the input gave without an offset: the source's `timezone` "
        "setting, else `UTC`. Unset when every time carried its offset.",
    )
    headline_derived: HeadlineDerived | None = Field(
        default=None,
        description="Set when the input stated no headline (an AP news alert, a kill notice): `first-sentence` "
        "of the body, or `stored-version` (a kill takes the headline of the story it withdraws).",
    )
    headline_repeated: bool = Field(
        default=False,
        description="True when the input repeated the headline as its next line (a scraping artefact that "
        "is dropped, the one input line not kept in the document).",
    )
    # Notes the source marks non-public (a NewsML-G2 edNote with a "nonpublic" pubconstraint: reporters'
    # phone numbers) are not kept here either: the parsers drop them.
    internal_notes: list[str] = Field(
        default_factory=list,
        description="Agency notes for editors (NewsML-G2 edNote, ninjs ednote, NITF ed-msg); internal advice, "
        "never for readers",
    )


class Correction(_Model):
    """An editor's correction note, recorded on the version it made."""

    note: NonEmpty = Field(description="What was corrected and why, as the editor wrote it.")
    editor: str | None = Field(default=None, description="Who made the correction.")


class ChangeSummary(_Model):
    """How this version differs from the previous one, paragraph by paragraph."""

    paragraphs_added: int = Field(ge=0)
    paragraphs_removed: int = Field(ge=0)
    paragraphs_changed: int = Field(ge=0)
    links_added: int = Field(ge=0)
    links_removed: int = Field(ge=0)
    headline_changed: bool = False


class VersionRecord(_Model):
    """One earlier version, as listed in a document's ``history``."""

    version: int = Field(ge=1)
    content_sha256: str
    action: Action
    created_at: datetime
    note: str | None = None
    editor: str | None = None


class _VersionHead(_Model):
    """Identity and versioning fields, first in every stored document so people see them first."""

    schema_version: Literal["1.0"] = Field(default=SCHEMA_VERSION, description="Version of this schema.")
    id: str = Field(
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="Stable article identity: front-matter `id`, else the file name stem, made key-safe "
        "(never contains `..`).",
    )
    version: int = Field(ge=1, description="1 for the first version, +1 for every content change.")
    content_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the canonical content.")
    action: Action = Field(
        description="What made this version: created, updated, corrected, rolled_back, or withdrawn (the "
        "source killed the story in this version)."
    )
    created_at: datetime = Field(description="When this version was stored (UTC).")
    previous_version: int | None = Field(default=None, description="The version this one replaced.")
    correction: Correction | None = Field(default=None, description="The editor's note, for corrections.")
    rolled_back_to: int | None = Field(default=None, description="For a rollback: whose content this is.")
    change_summary: ChangeSummary | None = Field(default=None, description="Difference to the previous version.")


class Document(Content, _VersionHead):
    """One immutable version of an article, as stored at ``articles/{id}/v{version}.json``.

    Field order in the JSON: identity and versioning, then the content, then provenance and history.
    """

    source: SourceInfo
    history: list[VersionRecord] = Field(
        default_factory=list, description="Every earlier version of this article, oldest first."
    )

    @field_validator("id")
    @classmethod
    def _no_parent(cls, value: str) -> str:
        if ".." in value:
            raise ValueError("must not contain '..'")
        return value

    def record(self) -> VersionRecord:
        """This version as one row of ``history``."""
        return VersionRecord(
            version=self.version,
            content_sha256=self.content_sha256,
            action=self.action,
            created_at=self.created_at,
            note=self.correction.note if self.correction else None,
            editor=self.correction.editor if self.correction else None,
        )

    def content(self) -> Content:
        """The hashed part of this document."""
        return Content.model_validate(self.model_dump(include=set(Content.model_fields)))

    def to_json(self) -> bytes:
        """The exact bytes stored for this version (and for ``latest.json``)."""
        return self.model_dump_json(indent=2).encode("utf-8") + b"\n"


class ChangeEntry(_Model):
    """One line of the changes feed: a new version a CMS should pick up."""

    id: str = Field(description="Article id.")
    version: int = Field(ge=1, description="The new version number.")
    key: str = Field(description="Storage key of the version document.")
    action: Action = Field(description="created, updated, corrected, rolled_back or withdrawn (a kill).")
    content_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    time: datetime = Field(description="When the version was stored (UTC).")
    embargoed: datetime | None = Field(
        default=None,
        description="The version's embargo: not to be published before this time; a CMS must hold it until then.",
    )
    backfill: bool = Field(
        default=False,
        description="Stored by an archive load (`ingest backfill`), not fresh news: a CMS may index it "
        "without alerting anyone.",
    )


# ---------------------------------------------------------------------------------------------- input


class InputLink(_Model):
    """A related link given apart from the body in ``json`` input."""

    title: NonEmpty = Field(description="The linked headline.")
    url: str | None = Field(default=None, description="The link target.")
    label: str | None = Field(default=None, description='A teaser label such as "READ MORE", if any.')


class InputArticle(_Model):
    """An article in ingest's own JSON input format (`ingest formats`: `json`); unknown keys are refused.

    Body paragraphs go through the same module detection as plain text, so related-link lines inside
    the body are taken out; links in `related_links` are placed after the body.
    """

    id: str | None = Field(default=None, description="Article id; default: the file name stem. Made key-safe.")
    headline: NonEmpty = Field(description="The headline.")
    byline: str | None = Field(default=None, description="Author credit.")
    section: str | None = Field(default=None, description="Desk or section.")
    tags: list[str] = Field(default_factory=list, description="Keywords or subjects.")
    language: str | None = Field(default=None, description="BCP 47 language tag.")
    url: str | None = Field(default=None, description="Canonical URL of the article.")
    published_at: datetime | None = Field(
        default=None, description="First publication time, ISO 8601; without an offset it is read as UTC."
    )
    updated_at: datetime | None = Field(
        default=None, description="Last update time, ISO 8601; without an offset it is read as UTC."
    )
    embargoed: datetime | None = Field(
        default=None,
        description="Not to be published before this time, ISO 8601 with a time of day; without an offset it is "
        "read as UTC.",
    )
    version: Annotated[int, Field(ge=0, strict=True)] | str | None = Field(
        default=None,
        description="The article's own version: an integer (or a string of digits), or an ISO 8601 version "
        "timestamp. An incoming version older than the stored one is `stale`.",
    )
    note: str | None = Field(default=None, description="Correction note: makes the new version `corrected`.")
    editor: str | None = Field(default=None, description="Who made the correction.")
    body: list[NonEmpty | Block] = Field(
        min_length=1,
        description="The story in order: paragraph strings, or `{type, text}` blocks (`paragraph` or `heading`).",
    )
    related_links: list[InputLink] = Field(default_factory=list, description="Related links, after the body.")

    @field_validator("embargoed", mode="before")
    @classmethod
    def _embargo_has_a_time(cls, value: object) -> object:
        if isinstance(value, str) and re.fullmatch(r"\s*\d{4}-?\d{2}-?\d{2}\s*", value):
            raise ValueError("has no time of day (an embargo must say when it lifts)")
        return value

    @field_validator("version")
    @classmethod
    def _version_form(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, str) and not value.strip().isdigit():
            try:
                datetime.fromisoformat(value.strip())
            except ValueError:
                raise ValueError("must be an integer or an ISO 8601 date-time") from None
        return value
