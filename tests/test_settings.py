"""Config precedence: flags > INGEST_* environment > YAML file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import ConfigError
from ingest.settings import load_settings


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ingest.yaml"
    path.write_text(text)
    return path


def test_defaults_apply_with_nothing_set(tmp_path: Path) -> None:
    s = load_settings(env={"INGEST_CONFIG": str(config(tmp_path, "{}"))})
    assert (s.bucket, s.prefix, s.max_bytes) == ("ingest", "", 5 * 1024 * 1024)


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    path = config(tmp_path, "bucket: from-file\nprefix: file/\nmax_bytes: 1000\n")
    assert load_settings(config=path, env={}).bucket == "from-file"
    env = {"INGEST_BUCKET": "from-env", "INGEST_MAX_BYTES": "2000"}
    s = load_settings(config=path, env=env)
    assert (s.bucket, s.prefix, s.max_bytes) == ("from-env", "file/", 2000)
    s = load_settings({"bucket": "from-flag", "prefix": None}, config=path, env=env)
    assert (s.bucket, s.prefix) == ("from-flag", "file/")


def test_prefix_set_but_empty_means_no_prefix(tmp_path: Path) -> None:
    path = config(tmp_path, "prefix: news/wire\n")
    assert load_settings(config=path, env={}).prefix == "news/wire/"
    assert load_settings(config=path, env={"INGEST_PREFIX": ""}).prefix == ""


def test_config_file_found_through_environment(tmp_path: Path) -> None:
    path = config(tmp_path, "bucket: via-env-path\n")
    assert load_settings(env={"INGEST_CONFIG": str(path)}).bucket == "via-env-path"


@pytest.mark.parametrize(
    ("text", "env", "words"),
    [
        ("bucket: Bad_Bucket\n", {}, "bucket (from"),
        ("max_bytes: -1\n", {}, "max_bytes (from"),
        ("nonsense: 1\n", {}, "nonsense"),
        ("bucket: [unclosed\n", {}, "not valid YAML"),
        ("{}", {"INGEST_MAX_BYTES": "lots"}, "max_bytes (from $INGEST_MAX_BYTES)"),
        ("modules:\n  add: [{name: x, kind: link, pattern: '(unclosed'}]\n", {}, "not a valid regular expression"),
    ],
)
def test_bad_config_names_the_key_and_why(tmp_path: Path, text: str, env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(config=config(tmp_path, text), env=env)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(config=tmp_path / "nope.yaml", env={})


def test_sources_are_validated_by_name_and_location(tmp_path: Path) -> None:
    bad = config(tmp_path, "sources:\n  - {name: 'has space', location: /x}\n  - {name: b, location: 's3://UP/x'}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(config=bad, env={})
    assert "sources.0.name (from" in str(err.value) and "sources.1.location (from" in str(err.value)


def test_source_flag_picks_a_configured_source_by_name_or_location_with_its_settings(tmp_path: Path) -> None:
    from ingest.settings import pick_sources

    inbox = tmp_path / "wires"
    path = config(
        tmp_path,
        f"sources:\n  - {{name: wires, location: {inbox}, id_prefix: ap-}}\n"
        "  - {name: inbox, location: 's3://inbox/race/', format: ninjs}\n",
    )
    settings = load_settings(config=path, env={})
    assert [(s.name, s.id_prefix) for s in pick_sources(settings, ["wires"]).sources] == [("wires", "ap-")]
    by_place = pick_sources(settings, [str(inbox) + "/", "s3://inbox/race"]).sources
    assert [(s.name, s.id_prefix, s.format) for s in by_place] == [("wires", "ap-", None), ("inbox", "", "ninjs")]
    other = pick_sources(settings, [str(tmp_path / "elsewhere")]).sources
    assert [(s.name, s.id_prefix) for s in other] == [("elsewhere", "")]  # a one-run source with the defaults


def test_renditions_are_off_by_default_and_a_list_in_yaml_a_comma_list_in_the_environment(tmp_path: Path) -> None:
    assert load_settings(env={"INGEST_CONFIG": str(config(tmp_path, "{}"))}).renditions == []
    path = config(tmp_path, "renditions: [ninjs, ans]\n")
    assert load_settings(config=path, env={}).renditions == ["ninjs", "ans"]
    assert load_settings(config=path, env={"INGEST_RENDITIONS": " ninjs3 ,ans"}).renditions == ["ninjs3", "ans"]
    assert load_settings(config=path, env={"INGEST_RENDITIONS": ""}).renditions == []  # set but empty: none
    flags = {"renditions": ["ninjs"]}
    assert load_settings(flags, config=path, env={"INGEST_RENDITIONS": "ans"}).renditions == ["ninjs"]


@pytest.mark.parametrize(
    ("text", "env", "words"),
    [
        ("renditions: [ninjs, nitf]\n", {}, "renditions (from {path}): unknown rendition 'nitf' (known: ninjs, "),
        ("{}", {"INGEST_RENDITIONS": "document"}, "renditions (from $INGEST_RENDITIONS): 'document' is always stored"),
        ("renditions: [ans, ans]\n", {}, "renditions (from {path}): each rendition once; repeated: ans"),
        ("renditions: {ninjs: true}\n", {}, "renditions (from {path}): "),
    ],
)
def test_a_rendition_that_cannot_be_stored_is_refused_by_key(
    tmp_path: Path, text: str, env: dict[str, str], words: str
) -> None:
    path = config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(config=path, env=env)
    assert words.format(path=path) in str(err.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "webhooks: [{name: .hidden, url: 'http://x/', secret_env: S}]\n",
            "webhooks.0.name (from {path}): must be 1-64 characters of letters, digits, '.', '_' or '-', "
            "not starting with '.'",
        ),
        (
            "webhooks: [{name: cms, url: 'http://x/', secret_env: 'not a name'}]\n",
            "webhooks.0.secret_env (from {path}): must be an environment variable name such as CMS_WEBHOOK_SECRET",
        ),
        (
            "webhooks: [{name: cms, url: 'http://x/', secret_env: S, since: yesterday}]\n",
            "webhooks.0.since (from {path}): must be a time such as 2026-11-24T00:00:00Z",
        ),
        (
            "sources: [{name: 'has space', location: /x}]\n",
            "sources.0.name (from {path}): must be 1-64 characters of letters, digits, '.', '_' or '-'",
        ),
        ("sources: [{name: a, location: /x, id_prefix: 'a/'}]\n", "sources.0.id_prefix (from {path}): must be letters"),
        ("sources: [{name: a, location: /x, done_marker: '/'}]\n", "sources.0.done_marker (from {path}): must be 1-32"),
    ],
)
def test_a_name_or_time_of_the_wrong_shape_is_refused_in_words_not_a_pattern(
    tmp_path: Path, text: str, words: str
) -> None:
    path = config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(config=path, env={})
    assert words.format(path=path) in str(err.value)
    assert "pattern" not in str(err.value) and "Input should" not in str(err.value)


def test_settings_know_the_config_file_they_were_read_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.settings import pick_sources

    path = config(tmp_path, "sources: [{name: wires, location: /srv/wires}]\n")
    assert load_settings(config=path, env={}).config_file == path
    assert load_settings(env={"INGEST_CONFIG": str(path)}).config_file == path
    assert pick_sources(load_settings(config=path, env={}), ["wires"]).config_file == path
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}).config_file is None  # no ./config/ingest.yaml here: no file read
    (tmp_path / "config").mkdir()
    config(tmp_path / "config", "{}")
    assert load_settings(env={}).config_file == Path("config/ingest.yaml")
