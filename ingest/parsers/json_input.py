"""ingest's own JSON input: one ``InputArticle`` object (schema: ``schemas/input-article.schema.json``).

Body strings are paragraphs (lines inside one are kept) and go through module detection like plain
text; ``{"type": "heading"}`` blocks are sub-headings. Links listed in ``related_links`` are placed
after the body. Unknown keys are refused, naming the key.

Content decides the format only for an object with ``headline`` and ``body`` whose every key is one of
``InputArticle``'s own: any other key means another JSON format, or a typo. A ``.json`` file no format
claims still comes here (the registry's file-ending fallback), and its unknown key is named.
"""

from __future__ import annotations

from pydantic import ValidationError

from ingest.models import InputArticle
from ingest.parsers._json import field_error, load_json_object, sniff_json_object
from ingest.parsers._values import unique, version_hint, when
from ingest.parsers.base import Draft, Link, RawBlock
from ingest.reader import Decoded

_KEYS = frozenset(InputArticle.model_fields)


class JSONParser:
    name: str = "json"
    extensions: tuple[str, ...] = (".json",)
    description: str = "ingest's JSON article: headline, body paragraphs or blocks, metadata (see schemas/)."
    controls: frozenset[str] = frozenset()

    def sniff(self, text: str) -> bool:
        data = sniff_json_object(text)
        return data is not None and "headline" in data and "body" in data and data.keys() <= _KEYS

    def parse(self, decoded: Decoded, name: str) -> Draft:
        data = load_json_object(decoded.text, name)
        try:
            article = InputArticle.model_validate(data)
        except ValidationError as exc:
            raise field_error(name, exc, data) from exc
        version = article.version if isinstance(article.version, int) else (article.version or "").strip() or None
        # The model has checked that a version string of other than digits is an ISO 8601 date-time.
        timestamp = when(version) if isinstance(version, str) and not version.isdigit() else None
        return Draft(
            headline=article.headline,
            blocks=tuple(
                RawBlock("paragraph", item) if isinstance(item, str) else RawBlock(item.type, item.text)
                for item in article.body
            ),
            links=tuple(Link(link.title, link.url, link.label) for link in article.related_links),
            byline=article.byline,
            section=article.section,
            tags=unique(article.tags),
            language=article.language,
            url=article.url,
            published_at=when(article.published_at) if article.published_at else None,
            updated_at=when(article.updated_at) if article.updated_at else None,
            embargoed=when(article.embargoed) if article.embargoed else None,
            id=article.id,
            version=version_hint(version, timestamp),
            note=article.note,
            editor=article.editor,
        )


PARSER = JSONParser()
