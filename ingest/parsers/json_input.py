"""ingest's own JSON input: one ``InputArticle`` object (schema: ``schemas/input-article.schema.json``).

Body strings are paragraphs (lines inside one are kept) and go through module detection like plain
text; ``{"type": "heading"}`` blocks are sub-headings. Links listed in ``related_links`` are placed
after the body. Unknown keys are refused, naming the key.
"""

from __future__ import annotations

from pydantic import ValidationError

from ingest.models import InputArticle, RelatedLink
from ingest.parsers._common import (
    RawBlock,
    assemble,
    drop_repeat,
    field_error,
    finish,
    load_json_object,
    sniff_json_object,
    unique,
    version_hint,
    when,
)
from ingest.parsers.base import Parsed
from ingest.parsers.ninjs import is_ninjs
from ingest.reader import Decoded
from ingest.split import Rules


class JSONParser:
    name: str = "json"
    extensions: tuple[str, ...] = (".json",)
    description: str = "ingest's JSON article: headline, body paragraphs or blocks, metadata (see schemas/)."

    def sniff(self, text: str) -> bool:
        data = sniff_json_object(text)
        return data is not None and "headline" in data and "body" in data and not is_ninjs(data)

    def parse(self, decoded: Decoded, name: str, rules: Rules) -> Parsed:
        data = load_json_object(decoded.text, name)
        try:
            article = InputArticle.model_validate(data)
        except ValidationError as exc:
            raise field_error(name, exc, data) from exc
        blocks: list[RawBlock] = [
            ("paragraph", item) if isinstance(item, str) else (item.type, item.text) for item in article.body
        ]
        blocks, repeated = drop_repeat(blocks, article.headline)
        parts = assemble(blocks, rules, name)
        after = len(parts.body)
        parts.related_links.extend(_link(link.title, link.url, link.label, after) for link in article.related_links)
        version = article.version if isinstance(article.version, int) else (article.version or "").strip() or None
        content = finish(
            name,
            article.headline,
            parts,
            headline_from="headline",
            body_from="body",
            byline=article.byline,
            section=article.section,
            tags=unique(article.tags),
            language=article.language,
            url=article.url,
            published_at=when(article.published_at) if article.published_at else None,
            updated_at=when(article.updated_at) if article.updated_at else None,
        )
        timestamp = when(version) if isinstance(version, str) and not version.isdigit() else None
        return Parsed(
            content=content,
            headline_repeated=repeated,
            id=article.id,
            version=version_hint(version, timestamp),
            note=article.note,
            editor=article.editor,
        )


def _link(title: str, url: str | None, label: str | None, position: int) -> RelatedLink:
    # A listed link has no input line of its own; its text is how it would read as one.
    text = " ".join(part for part in (f"{label}:" if label else None, title, url) if part)
    return RelatedLink(title=title, url=url, label=label, position=position, text=text)


PARSER = JSONParser()
