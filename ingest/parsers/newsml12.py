"""NewsML 1.x (1.2, and the 1.0/1.1 it extends): a ``NewsML`` envelope of ``NewsItem``s, one document per story.

**Where the story is.** A ``NewsItem`` holds nested ``NewsComponent``s. A story is the component that carries
its own ``NewsLines/HeadLine`` together with the text ``ContentItem``s in it or in components under it that
have no headline of their own: AFP puts NITF straight under the headlined component, ANA-MPA one component
lower (role ``Main``), Business Wire in role components (``Body``, then ``Contact``: the release's media
contacts close it). Role components that repeat the headline or hold something else (``HeadLine``,
``SubHeadLine``, ``Abstract``, ``TweetText``, ``StyleSheet``, ``Logo``, ``Caption``) are not body text. Of an
``EquivalentsList="yes"`` component (the same content several ways) only the first alternative with text is
read. An envelope of several ``NewsItem``s, or an item with several headlined text components, gives one
draft per story; photo, video and graphics components are not text: they are left out beside a story (and
listed as its ``associations``, references with their captions), and an input with no text story at all is
refused, naming what it holds ("is a NewsML 1.2 package of photo items, no text").

A ``ContentItem`` is text by its ``MediaType`` (``Text``), else its ``MimeType`` (``text/*`` but CSS, XHTML,
NITF), else its ``Format`` (NITF, XHTML, HTML, BW-Text). Its ``DataContent`` is NITF (read with ``_nitf``),
XHTML or bare ``<p>`` elements (``_xml.blocks``), or a string: HTML (ANA-MPA sends ``<P>`` paragraphs in
CDATA) or plain text. A ``ContentItem`` with only an ``Href`` is remote and is never fetched.

**Mapping.** ``HeadLine`` (else the NITF ``hl1``); ``ByLine`` (else the NITF byline, else the names of the
``AdministrativeMetadata/Creator`` parties, as AFP credits its reporters); the ``DateLine`` opens the first
paragraph as the wire prints it ("STOCKHOLM, Aug 29, 2014 (AFP) - A Chinese-owned company ..."), joined by a
space when it ends in a dash or colon and by " - " otherwise, unless the paragraph already starts with it.
The id is ``ProviderId:DateId:NewsItemId`` (the ``PublicIdentifier`` without its last part, the
``RevisionId``, which changes with every revision), with ``-<n>`` after it for the n-th of several stories in
one item; the version is ``RevisionId`` (else ``ThisRevisionCreated``). ``FirstCreated`` is the publication
time and ``ThisRevisionCreated`` the update time. ``Status`` ``Withdrawn``/``Canceled`` withdraws. An
``Embargoed`` or ``Withheld`` status holds the story until ``StatusWillChange/DateAndTime`` (where the
agencies and Business Wire state a scheduled release); one with no such time is refused rather than published
unheld. ``SlugLine``; ``Urgency``; the ``Abstract`` role component (Business Wire), else the NITF abstract,
else the ``SubHeadLine``; ``CopyrightLine``; ``RightsMetadata/UsageRights/UsageType``. ``SlugLine``,
``KeywordLine``, ``Keyword`` properties (and Business Wire's ``*Keywords``) and subjects (their ``TopicSet``
name, else their code) are tags. ``NewsLine`` texts of the story (AFP's ``AdvisoryLine``: "RECASTS with ...,
UPDATES throughout") are advice to the desk and go to ``internal_notes`` only.

**Dates** use ISO 8601's basic form (``20130731T140000+0000``, ``20140829T135006Z``) and are read with their
zone. NewsML 1.2 makes the zone optional and names no default; a time without one is read as **UTC** (the
document schema needs an offset, and every agency in the corpus sends one, mostly ``Z``/``+0000``). A source
that sends local times without a zone would be read off by its UTC offset.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime

from ingest.errors import Check, InputError, ParseError, printable
from ingest.models import Association
from ingest.parsers import _nitf, _xml
from ingest.parsers._markup import html_blocks
from ingest.parsers._values import collapse, embargo, text_blocks, unique, urgency, version_hint, when_field
from ingest.parsers.base import Draft, RawBlock, per_item
from ingest.reader import Decoded

_ROOTS = frozenset(("NewsML", "NewsItem"))
_WITHDRAWN = frozenset(("withdrawn", "canceled", "cancelled", "killed"))
_HELD = frozenset(("embargoed", "withheld"))
# Role components whose text is not the story's body.
_NOT_BODY = frozenset(
    ("stylesheet", "headline", "subheadline", "abstract", "summary", "tweettext", "caption", "logo", "teaser")
)
# Role components read after the rest of the story (Business Wire sends the contacts before the body).
_LAST = frozenset(("contact", "contacts"))
_SUMMARIES = frozenset(("abstract", "summary", "subheadline"))
_TEXT_FORMAT = re.compile(r"nitf|html|text", re.IGNORECASE)
_IMAGE_FORMAT = re.compile(r"jpe?g|png|gif|tiff?|bmp|webp", re.IGNORECASE)
# A string DataContent that is really HTML, whatever its type says.
_MARKUP = re.compile(r"\s*<(?:p|div|html|body|section|h[1-6])[\s>]", re.IGNORECASE)
_DASHES = ("-", "\u2013", "\u2014", ":")
# A paragraph that is only a credit line.
_CREDIT = re.compile(r"(?:By|BY)\s+\S[^\n]*$")
_CREDIT_MAX = 100
_KINDS = {"photo": "picture", "picture": "picture", "image": "picture", "video": "video", "graphic": "graphic"}
_KINDS |= {"audio": "audio"}
_SHOWN = 200  # characters of an input value shown in a message


class NewsML12Parser:
    name: str = "newsml-1.2"
    extensions: tuple[str, ...] = (".xml", ".newsml")
    description: str = "NewsML 1.2 envelope of NewsItems: one document per text story (NITF, XHTML or text)."
    controls: frozenset[str] = frozenset()

    def sniff(self, text: str) -> bool:
        return _xml.root_name(text) in _ROOTS

    def parse(self, decoded: Decoded, name: str) -> Draft | list[Draft | InputError]:
        root = _xml.parse(decoded.text, name)
        kind = _xml.local(root.tag)
        if kind not in _ROOTS:
            raise ParseError(name, f"root element is <{printable(kind)}>, not NewsML", check=Check.FORMAT)
        items = [root] if kind == "NewsItem" else list(_xml.descendants(root, "NewsItem"))
        if not items:
            raise ParseError(name, "is a NewsML 1.2 envelope with no NewsItem", check=Check.FORMAT)
        stories: list[_Story] = []
        media: list[str] = []
        for item in items:
            found, left_out = _stories(item)
            stories.extend(found)
            media.extend(left_out)
        if not stories:
            kinds = ", ".join(unique(media))
            what = f"of {kinds} items" if kinds else "with no content item"
            raise ParseError(name, f"is a NewsML 1.2 package {what}, no text", check=Check.FORMAT)
        several = len(stories) > 1
        if not several:
            return _draft(stories[0], name, several)
        return per_item(stories, lambda story: _draft(story, name, several))


@dataclass
class _Story:
    """One story of a NewsItem: its headlined component, its text in reading order, what it refers to."""

    item: ET.Element
    #: The component whose NewsLines carry the headline (None: no component above the text has one).
    component: ET.Element | None
    #: The story's place among several stories of one item (None: the item's only story).
    n: int | None = None
    #: Text ContentItems with their ``MimeType``/``Format`` (to tell an HTML string from plain text).
    texts: list[tuple[ET.Element, str]] = field(default_factory=list)
    #: Summary role components' ContentItems (Business Wire's ``Abstract`` and ``SubHeadLine``), with the role.
    summaries: list[tuple[str, ET.Element]] = field(default_factory=list)
    #: Media components inside the story.
    media: list[ET.Element] = field(default_factory=list)


def _stories(item: ET.Element) -> tuple[list[_Story], list[str]]:
    """The text stories of one NewsItem, and the kinds of the non-text content in it."""
    groups: dict[int, _Story] = {}
    closing: dict[int, list[tuple[ET.Element, str]]] = {}
    summaries: dict[int, list[tuple[str, ET.Element]]] = {}
    attached: dict[int, list[ET.Element]] = {}
    media: list[str] = []
    captioned: set[int] = set()
    chosen: dict[int, int] = {}  # EquivalentsList component -> the alternative that is read
    # Depth-first in document order, without recursion (components can nest deeply); a NewsItem nested in a
    # component is an item of its own. Each entry: element, owner (the headlined component above it), role,
    # and (for content under an EquivalentsList) which alternative of which list it is in.
    stack: list[tuple[ET.Element, ET.Element | None, str, tuple[int, int] | None]] = [
        (part, None, "", None) for part in reversed(_parts(item))
    ]
    while stack:
        element, owner, role, alternative = stack.pop()
        if _xml.local(element.tag) == "NewsComponent":
            parts = _parts(element)
            if any(_is_media(part) for part in parts):
                attached.setdefault(id(owner), []).append(element)
                if _headline(element) and any(_is_content(part) and _kind(part) == "text" for part in parts):
                    captioned.add(id(element))  # a photo with its caption beside it: not a story
            if _headline(element):
                owner = element
            role = (_xml.attr(_xml.child(element, "Role"), "FormalName") or role).lower()
            equivalents = (_xml.attr(element, "EquivalentsList") or "").lower() == "yes"
            stack.extend(
                (part, owner, role, (id(element), i) if equivalents else alternative)
                for i, part in reversed(list(enumerate(parts)))
            )
            continue
        kind = _kind(element)
        if kind == "style":
            continue
        if kind != "text":
            media.append(kind)
            continue
        if role in _NOT_BODY:
            if role in _SUMMARIES:
                summaries.setdefault(id(owner), []).append((role, element))
            continue
        if alternative is not None and chosen.setdefault(alternative[0], alternative[1]) != alternative[1]:
            continue  # another rendering of content already read
        story = groups.setdefault(id(owner), _Story(item, owner))
        entry = (element, _type(element))
        if role in _LAST:
            closing.setdefault(id(owner), []).append(entry)
        else:
            story.texts.append(entry)
    stories: list[_Story] = []
    for key, story in groups.items():
        if key in captioned:
            media.append("captioned media")
            continue
        story.texts += closing.get(key, [])
        story.summaries = summaries.get(key, [])
        story.media = attached.get(key, [])
        stories.append(story)
    if not stories and _status(item) in _WITHDRAWN:
        # A kill notice may carry the story's NewsLines and no content at all.
        killed = next((c for c in _xml.descendants(item, "NewsComponent") if _headline(c)), None)
        stories.append(_Story(item, killed))
    if len(stories) > 1:
        for n, story in enumerate(stories, 1):
            story.n = n
    return stories, media


def _parts(element: ET.Element) -> list[ET.Element]:
    """The NewsComponents and ContentItems directly in an element."""
    return [e for e in element if _xml.local(e.tag) in ("NewsComponent", "ContentItem")]


def _headline(component: ET.Element | None) -> str | None:
    return _xml.text_of(_xml.child(component, "NewsLines", "HeadLine"))


def _type(content: ET.Element) -> str:
    names = (_xml.attr(_xml.child(content, tag), "FormalName") for tag in ("MimeType", "Format", "MediaType"))
    return " ".join(n for n in names if n).lower()


def _is_content(part: ET.Element) -> bool:
    return _xml.local(part.tag) == "ContentItem"


def _is_media(part: ET.Element) -> bool:
    return _is_content(part) and _kind(part) not in ("text", "style")


def _kind(content: ET.Element) -> str:
    """``text``, ``style`` (CSS), or the kind of media a ContentItem holds (``photo``, ``video`` ...)."""
    media = (_xml.attr(_xml.child(content, "MediaType"), "FormalName") or "").lower()
    mime = (_xml.attr(_xml.child(content, "MimeType"), "FormalName") or "").lower()
    form = (_xml.attr(_xml.child(content, "Format"), "FormalName") or "").lower()
    if mime == "text/css" or form == "css":
        return "style"
    if media:
        return "text" if media == "text" else printable(collapse(media))[:40]
    if mime:
        major = mime.split("/", 1)[0]
        if major == "text" or any(word in mime for word in ("html", "nitf", "xml")):
            return "text"
        return "photo" if major == "image" else printable(collapse(major))[:40]
    if form:
        if _TEXT_FORMAT.search(form):
            return "text"
        return "photo" if _IMAGE_FORMAT.search(form) else printable(collapse(form))[:40]
    return "text" if _xml.child(content, "DataContent") is not None else "untyped"


def _status(item: ET.Element) -> str:
    return (_xml.attr(_xml.child(item, "NewsManagement", "Status"), "FormalName") or "").lower()


def _draft(story: _Story, name: str, several: bool) -> Draft:
    item, component = story.item, story.component
    management = _xml.child(item, "NewsManagement")
    lines = _xml.child(component, "NewsLines")
    scope = _scope(item, component)
    nitf = next((e for text, _ in story.texts for e in _xml.descendants(text, "nitf")), None)
    status = _status(item)
    withdrawn = status in _WITHDRAWN
    blocks, remote = _body(story, name)
    body_from = "ContentItem/DataContent"
    if remote and not blocks and not withdrawn:
        where = f"its content is remote ({printable(remote)[:_SHOWN]}) and is not fetched"
        if not several:
            raise ParseError(name, f"has no inline text: {where}", field="body")
        body_from += f": {where}"  # one story of several: refused on its own, the others stand
    dateline = _xml.text_of(_xml.child(lines, "DateLine"))
    if dateline:
        blocks = _with_dateline(blocks, dateline, _headline(component))
    created = when_field(_xml.text_of(_xml.child(management, "FirstCreated")), name, "FirstCreated")
    revised = when_field(_xml.text_of(_xml.child(management, "ThisRevisionCreated")), name, "ThisRevisionCreated")
    revision = _xml.text_of(_xml.child(item, "Identification", "NewsIdentifier", "RevisionId"))
    slugline = _xml.text_of(_xml.child(lines, "SlugLine"))
    return Draft(
        headline=_headline(component) or (_nitf.headline(nitf) if nitf is not None else None),
        blocks=tuple(blocks),
        byline=_xml.text_of(_xml.child(lines, "ByLine"))
        or (_nitf.byline(nitf) if nitf is not None else None)
        or _creators(scope),
        tags=_tags(item, scope, lines, slugline),
        language=_language(item, scope),
        published_at=created,
        updated_at=revised,
        withdrawn=withdrawn,
        embargoed=None if withdrawn else _embargo(management, status, name),
        slugline=slugline,
        urgency=urgency(_xml.attr(_xml.child(management, "Urgency"), "FormalName")),
        abstract=_abstract(story, nitf, lines, name),
        copyright=_inherited(scope, "NewsLines", "CopyrightLine"),
        usage_terms=_inherited(scope, "RightsMetadata", "UsageRights", "UsageType")
        or _inherited(scope, "NewsLines", "RightsLine"),
        associations=tuple(_association(media) for media in story.media),
        internal_notes=unique(_xml.text_of(_xml.child(n, "NewsLineText")) for n in _xml.children(lines, "NewsLine")),
        id=_identity(item, story.n),
        version=version_hint(revision, None) if revision and revision.isdigit() else version_hint(None, revised),
        headline_from="NewsLines/HeadLine",
        body_from=body_from,
    )


def _body(story: _Story, name: str) -> tuple[list[RawBlock], str | None]:
    """The story's text ContentItems in reading order, and the first remote one's ``Href`` (never fetched)."""
    blocks: list[RawBlock] = []
    remote: str | None = None
    for content, kind in story.texts:
        data = _xml.child(content, "DataContent")
        if data is None:
            remote = remote or _xml.attr(content, "Href")
            continue
        blocks.extend(_data_blocks(data, kind, name))
    return blocks, remote


def _data_blocks(data: ET.Element, kind: str, name: str) -> list[RawBlock]:
    nitfs = [e for e in data if _xml.local(e.tag) == "nitf"]
    if nitfs:
        return [block for nitf in nitfs for block in _nitf.blocks(nitf)]
    if any(isinstance(e.tag, str) for e in data):
        return _xml.blocks(data)  # XHTML, or <p> elements straight in DataContent (AFP)
    text = data.text or ""
    if "html" in kind or _MARKUP.match(text):
        return html_blocks(text, name)
    return text_blocks(text)


def _with_dateline(blocks: list[RawBlock], dateline: str, headline: str | None) -> list[RawBlock]:
    """The dateline opening the first story paragraph, as the wire prints it. A paragraph that repeats the
    headline, or is a credit line ("By Ann Lee"), is not the story's opening: the dateline goes after it."""
    for i, block in enumerate(blocks):
        line = collapse(block.text)
        if block.kind != "paragraph" or line == headline or (_CREDIT.match(line) and len(line) < _CREDIT_MAX):
            continue
        if line.casefold().startswith(dateline.casefold()):
            return blocks
        opening = dateline + (" " if dateline.endswith(_DASHES) else " - ")
        # Links inside the paragraph keep pointing at their own words.
        links = tuple(
            link._replace(start=link.start + len(opening), end=link.end + len(opening)) for link in block.links
        )
        return [*blocks[:i], block._replace(text=opening + block.text, links=links), *blocks[i + 1 :]]
    return blocks


def _scope(item: ET.Element, component: ET.Element | None) -> list[ET.Element]:
    """The story's component and the components above it in its item, innermost first (metadata is inherited)."""
    if component is None:
        return _xml.children(item, "NewsComponent")
    parents = {id(child): parent for parent in item.iter() for child in parent}
    chain: list[ET.Element] = []
    current: ET.Element | None = component
    while current is not None and current is not item:
        chain.append(current)
        current = parents.get(id(current))
    return chain


def _inherited(scope: list[ET.Element], *path: str) -> str | None:
    """The innermost value down ``path`` in the story's component or a component above it."""
    return next((value for c in scope if (value := _xml.text_of(_xml.child(c, *path)))), None)


def _creators(scope: list[ET.Element]) -> str | None:
    for component in scope:
        creator = _xml.child(component, "AdministrativeMetadata", "Creator")
        names = unique(
            _xml.attr(party, "FormalName") or _xml.text_of(party) for party in _xml.children(creator, "Party")
        )
        if names:
            return "; ".join(names)
    return None


def _language(item: ET.Element, scope: list[ET.Element]) -> str | None:
    for component in scope:
        tag = _xml.attr(_xml.child(component, "DescriptiveMetadata", "Language"), "FormalName")
        if tag:
            return tag.lower() if len(tag) <= 3 else tag
    return _xml.attr(item, "lang")


def _tags(item: ET.Element, scope: list[ET.Element], lines: ET.Element | None, slugline: str | None) -> tuple[str, ...]:
    found: list[str | None] = [slugline, *(_xml.text_of(k) for k in _xml.children(lines, "KeywordLine"))]
    names = _topic_names(item)
    for component in reversed(scope):  # outermost first: the item's own metadata, then the story's
        found += _sources(component, scope)
        described = _xml.child(component, "DescriptiveMetadata")
        found += [_xml.attr(p, "Value") for p in _xml.children(described, "Property") if _is(p, "Keyword")]
        for metadata in _xml.children(component, "Metadata"):
            found += [_xml.attr(p, "Value") for p in _xml.children(metadata, "Property") if _is(p, "*Keywords")]
        for code in _xml.children(described, "SubjectCode"):
            found += [names.get(c, c) for c in (_xml.attr(s, "FormalName") for s in code) if c]
    return unique(found)


def _sources(component: ET.Element, scope: list[ET.Element]) -> list[str | None]:
    """``Source`` parties that are not the item's own credit (a press release's organisation: Business Wire
    names the issuing company there; ANA-MPA names itself, as in its ``CreditLine``)."""
    administrative = _xml.child(component, "AdministrativeMetadata")
    credits = " ".join(filter(None, (_inherited(scope, "NewsLines", tag) for tag in ("CreditLine", "CopyrightLine"))))
    providers = {_xml.attr(p, "FormalName") for p in _xml.children(_xml.child(administrative, "Provider"), "Party")}
    names = [_xml.attr(p, "FormalName") for p in _xml.children(_xml.child(administrative, "Source"), "Party")]
    return [n for n in names if n and n not in providers and n not in credits]


def _is(prop: ET.Element, formal_name: str) -> bool:
    given = _xml.attr(prop, "FormalName") or ""
    return given.endswith(formal_name[1:]) if formal_name.startswith("*") else given == formal_name


def _topic_names(item: ET.Element) -> dict[str, str]:
    """Subject names a ``TopicSet`` gives (ANA-MPA), by code: the English name, else the first."""
    names: dict[str, str] = {}
    for topic in _xml.descendants(item, "Topic"):
        code = _xml.text_of(_xml.child(topic, "FormalName"))
        labels = [d for d in _xml.children(topic, "Description") if (_xml.attr(d, "Variant") or "") == "Name"]
        english = [d for d in labels if (_xml.attr(d, "lang") or "").lower().startswith("en")]
        chosen = english or labels
        label = _xml.text_of(chosen[0]) if chosen else None
        if code and label:
            names.setdefault(code, label)
    return names


def _abstract(story: _Story, nitf: ET.Element | None, lines: ET.Element | None, name: str) -> str | None:
    """The ``Abstract`` role component, else the NITF abstract, else the ``SubHeadLine`` (a line, or Business
    Wire's role component): the deck under the headline, which sums the story up."""
    summaries = [content for role, content in story.summaries if role != "subheadline"]
    decks = [content for role, content in story.summaries if role == "subheadline"]
    given = _text(summaries, name)
    given = given or (
        _xml.text_of(_xml.child(nitf, "body", "body.head", "abstract"), " ") if nitf is not None else None
    )
    return given or _xml.text_of(_xml.child(lines, "SubHeadLine")) or _text(decks, name)


def _text(contents: list[ET.Element], name: str) -> str | None:
    """The text of the first of these ContentItems that has any, as one line."""
    for content in contents:
        data = _xml.child(content, "DataContent")
        if data is not None and (found := " ".join(b.text for b in _data_blocks(data, _type(content), name))):
            return collapse(found)
    return None


def _association(component: ET.Element) -> Association:
    """A media component as a reference: its largest rendition's address, its caption and credit."""
    contents = [part for part in _parts(component) if _is_media(part)]
    kinds = [_kind(content) for content in contents]
    kind = next((_KINDS[k] for k in ("video", "audio", "graphic", "photo") if k in kinds), "other")

    def size(content: ET.Element) -> int:
        given = _xml.text_of(_xml.child(content, "Characteristics", "SizeInBytes")) or ""
        return int(given) if given.isdigit() else -1

    biggest = max(contents, key=size)
    return Association(
        kind=kind,  # type: ignore[arg-type]  # one of the literals, by _KINDS
        uri=_xml.attr(biggest, "Href") or _xml.attr(biggest, "Duid"),
        caption=_headline(component),
        credit=_xml.text_of(_xml.child(component, "NewsLines", "CreditLine")),
        role=_xml.attr(_xml.child(component, "Role"), "FormalName"),
    )


def _embargo(management: ET.Element | None, status: str, name: str) -> datetime | None:
    """The release time of a held item (``Embargoed``/``Withheld``): ``StatusWillChange/DateAndTime``."""
    if status not in _HELD:
        return None
    change = _xml.child(management, "StatusWillChange")
    held = embargo(_xml.text_of(_xml.child(change, "DateAndTime")), name, "StatusWillChange/DateAndTime")
    if held is None:
        reason = f"is {status} (Status) with no release time in StatusWillChange: refused rather than published unheld"
        raise ParseError(name, reason, field="StatusWillChange/DateAndTime")
    return held


def _identity(item: ET.Element, n: int | None) -> str | None:
    """``ProviderId:DateId:NewsItemId``, the item's identity across its revisions (``-n`` for its n-th story)."""
    identifier = _xml.child(item, "Identification", "NewsIdentifier")
    parts = [_xml.text_of(_xml.child(identifier, tag)) for tag in ("ProviderId", "DateId", "NewsItemId")]
    # urn:newsml:ProviderId:DateId:NewsItemId:RevisionId (the revision part changes with every revision)
    public = _xml.text_of(_xml.child(identifier, "PublicIdentifier")) or ""
    pieces = public.split(":")
    found: str | None = ":".join(p for p in parts if p) if all(parts) else None
    if found is None and len(pieces) >= 6 and pieces[0].lower() == "urn":
        found = ":".join(pieces[2:-1])
    found = found or public or None
    return f"{found}-{n}" if found and n is not None else found


PARSER = NewsML12Parser()
