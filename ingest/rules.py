"""Module-detection rules: the rules files (``config/modules.yaml``, a source's own) compiled for the splitter.

Rules are data: ordered regular expressions of four kinds (``link``, ``heading``, ``cta``, ``furniture``)
read from YAML and validated by name. ``rules_for`` compiles a rule set once per process for each
distinct ``modules`` setting (rules file path, rules added and switched off), so every file of a run, and
every source sharing a rule set, uses the same compiled patterns; a rules file edited while the process
runs is read again only by a new process. A bad rule is a ``ConfigError`` naming the file, the key and
why. ``check_settings`` also checks that every source's ``format`` is a registered one.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.errors import ConfigError
from ingest.parsers import registry
from ingest.settings import ModuleSettings, RuleSpec, Settings, SourceSettings, describe_settings_error, read_yaml
from ingest.split import Rule, Rules

_compiled: dict[str, Rules] = {}
_lock = threading.Lock()


class RulesFile(BaseModel):
    """The shape of ``config/modules.yaml``."""

    model_config = ConfigDict(extra="forbid")

    heading_items: int = Field(default=8, ge=0, le=50)
    item_max_chars: int = Field(default=160, gt=0)
    line_max_chars: int = Field(default=2000, gt=0)
    max_lines: int = Field(default=20_000, gt=0)
    rules: list[RuleSpec]


def default_rules_file() -> Path:
    """The packaged rules: ``ingest/_config`` in a wheel, ``config/`` beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_config" / "modules.yaml", here.parent / "config" / "modules.yaml"):
        if candidate.is_file():
            return candidate
    return here.parent / "config" / "modules.yaml"


def load_rules(modules: ModuleSettings) -> Rules:
    """Read, check and compile a rule set: the rules file, plus rules added, minus rules switched off."""
    path = modules.rules_file or default_rules_file()
    try:
        spec = RulesFile.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(describe_settings_error(exc, str(path))) from exc
    known = {r.name for r in spec.rules} | {r.name for r in modules.add}
    unknown = [name for name in modules.disable if name not in known]
    if unknown:
        raise ConfigError(f"modules.disable: no rule named {', '.join(map(repr, unknown))}")
    chosen = [_compile(r) for r in [*modules.add, *spec.rules] if r.name not in modules.disable]
    return Rules(
        tuple(chosen),
        heading_items=spec.heading_items,
        item_max_chars=spec.item_max_chars,
        line_max_chars=spec.line_max_chars,
        max_lines=spec.max_lines,
    )


def rules_for(settings: Settings, source: SourceSettings | None = None) -> Rules:
    """A source's own rules when it has them, else the global ones; each rule set compiled once."""
    modules = source.modules if source is not None and source.modules is not None else settings.modules
    key = modules.model_dump_json()
    with _lock:
        if key not in _compiled:
            _compiled[key] = load_rules(modules)
        return _compiled[key]


def check_settings(settings: Settings) -> None:
    """What the settings name must exist: every rule set compiles, every source's ``format`` is a
    registered format. Called before any file is touched, so a mistake is a ``ConfigError`` (exit 2)."""
    rules_for(settings)
    for source in settings.sources:
        rules_for(settings, source)
        if source.format is not None:
            registry.get(source.format)  # a ConfigError naming the known formats


def _compile(spec: RuleSpec) -> Rule:
    flags = re.IGNORECASE if spec.ignore_case else 0
    return Rule(spec.name, spec.kind, re.compile(spec.pattern, flags), spec.max_chars)
