"""Module-detection rules files: added and disabled rules, refusals naming the rule, compiled once."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import ConfigError
from ingest.rules import check_settings, load_rules, rules_for
from ingest.settings import ModuleSettings, SourceSettings, load_settings


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ingest.yaml"
    path.write_text(text)
    return path


def test_rules_can_be_added_and_disabled(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        "modules:\n  disable: [read-more]\n  add:\n    - {name: wire-footer, kind: furniture, pattern: '^ENDS$'}\n",
    )
    rules = rules_for(load_settings(config=path, env={}))
    assert rules.classify("ENDS") is not None
    verdict = rules.classify("Read more: Something")
    assert verdict is None or verdict[0].name != "read-more"
    default = load_rules(ModuleSettings())
    assert default.classify("ENDS") is None
    found = default.classify("Read more: Something")
    assert found is not None and found[0].name == "read-more"


def test_disabling_an_unknown_rule_names_it(tmp_path: Path) -> None:
    settings = load_settings(config=config(tmp_path, "modules:\n  disable: [no-such-rule]\n"), env={})
    with pytest.raises(ConfigError, match=r"modules\.disable: no rule named 'no-such-rule'"):
        check_settings(settings)


def test_a_bad_rules_file_names_the_file_and_key(tmp_path: Path) -> None:
    rules_file = tmp_path / "modules.yaml"
    rules_file.write_text("rules:\n  - {name: x, kind: sideways, pattern: 'a'}\n")
    with pytest.raises(ConfigError, match=f"rules.0.kind \\(from {rules_file}\\)"):
        load_rules(ModuleSettings(rules_file=rules_file))


def test_a_source_with_its_own_rules_gets_them_and_the_others_share_one_compiled_set(tmp_path: Path) -> None:
    settings = load_settings(env={}).model_copy(
        update={
            "sources": [
                SourceSettings(name="a", location="/a"),
                SourceSettings(name="b", location="/b", modules=ModuleSettings(disable=["read-more"])),
            ]
        }
    )
    a, b = settings.sources
    assert rules_for(settings, a) is rules_for(settings)  # compiled once, shared
    assert rules_for(settings, b) is not rules_for(settings)
    assert "read-more" not in {r.name for r in rules_for(settings, b).rules}
