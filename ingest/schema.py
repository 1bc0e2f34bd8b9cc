"""Generate the JSON Schemas in ``schemas/`` from the models, or check that they are current.

``python -m ingest.schema`` rewrites them; ``python -m ingest.schema --check`` exits 1 when a file
is missing or differs (``make check`` and the test suite run it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from ingest.models import ChangeEntry, Document, InputArticle

SCHEMAS: dict[str, type[BaseModel]] = {
    "document.schema.json": Document,
    "change-entry.schema.json": ChangeEntry,
    "input-article.schema.json": InputArticle,
}
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "schemas"


def render(model: type[BaseModel], file_name: str) -> str:
    schema = model.model_json_schema(mode="serialization")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://ingest.invalid/schemas/{file_name}",
        **schema,
    }
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def stale(directory: Path = DEFAULT_DIR) -> list[str]:
    """Names of schema files that are missing or differ from what the models generate."""
    out = []
    for name, model in SCHEMAS.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(model, name):
            out.append(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest.schema", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if a schema is stale")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the schemas live")
    args = parser.parse_args(argv)
    if args.check:
        names = stale(args.dir)
        for name in names:
            print(f"schemas/{name} is stale: run `make schemas`", file=sys.stderr)
        return 1 if names else 0
    args.dir.mkdir(parents=True, exist_ok=True)
    for name, model in SCHEMAS.items():
        (args.dir / name).write_text(render(model, name), encoding="utf-8")
        print(f"wrote {args.dir / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
