"""All configuration, in one object, with one precedence rule.

Precedence, highest first::

    command-line flags  >  INGEST_* environment variables  >  the YAML config file  >  defaults

The config file is ``--config PATH``, else ``$INGEST_CONFIG``, else ``./config/ingest.yaml`` when it
exists. An environment variable that is set but empty counts as set (``INGEST_PREFIX=`` means "no
prefix"). Storage endpoint and credentials are not ours: boto3 reads them the standard AWS way
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ...).

This is the only module that reads ``os.environ`` for ingest's own settings. It knows little of what
the settings drive: ``ingest.rules`` compiles the module rules, the parser registry checks a source's
``format`` when the source is opened. Rendition names are checked here, against their registry (a fixed
list), so a misspelt ``renditions`` entry is refused by key and origin before anything is stored.

Why not pydantic-settings: it merges its sources before validating, so an error could no longer say
which layer a bad value came from (``max_bytes (from $INGEST_MAX_BYTES): ...``); the merge below is
a few lines, and the model itself is pydantic either way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from ingest.errors import ConfigError, field_errors
from ingest.renditions import check_extra

_ENV_PREFIX = "INGEST_"
#: An S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, a letter or digit at each end.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DEFAULT_CONFIG = Path("config/ingest.yaml")
#: A scheme, then only characters a URI may hold (RFC 3986): what ``uri_template`` must look like.
_URI_TEMPLATE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]*")
_KEY_SAFE = "letters, digits, '.', '_' or '-'"


def _in_words(field: str, reason: str) -> Any:
    """A validator that checks ``field`` as declared and, when that fails, says ``reason`` instead of what
    pydantic would (its regular expression, its parser's complaint)."""

    def check(value: object, handler: ValidatorFunctionWrapHandler) -> object:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(reason) from None

    return field_validator(field, mode="wrap")(check)


class RuleSpec(BaseModel):
    """One detection rule as written in YAML."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: Literal["link", "heading", "cta", "furniture"]
    pattern: str = Field(min_length=1)
    ignore_case: bool = False
    max_chars: int | None = Field(default=None, gt=0)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class ModuleSettings(BaseModel):
    """How module detection is set up: a rules file, plus rules added or switched off."""

    model_config = ConfigDict(extra="forbid")

    rules_file: Path | None = Field(default=None, description="Rules YAML; default: the packaged rules.")
    add: list[RuleSpec] = Field(default_factory=list, description="Extra rules, tried before the file's.")
    disable: list[str] = Field(default_factory=list, description="Names of rules to switch off.")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number of seconds, or a number with one unit: ``90s``, ``30m``, ``2h``, ``1d``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: give seconds, or a number with s, m, h or d (e.g. 2h)")
    return float(match[1]) * _UNITS.get(match[2] or "s", 1)


class SourceSettings(BaseModel):
    """One place files arrive: a local drop folder or an S3 inbox prefix."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Short name used in reports, logs and `--source NAME`."
    )
    location: str = Field(min_length=1, description="A folder path, or s3://bucket/prefix/ for an S3 inbox.")
    format: str | None = Field(default=None, description="Force one input format; default: detect by content.")
    id_from: Literal["input", "file"] = Field(
        default="input",
        description="`input`: the id the file carries (front matter, wire id), else its name; "
        "`file`: always the file name.",
    )
    id_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$", description="Put before every id.")
    timezone: str | None = Field(
        default=None,
        description="IANA zone (e.g. Europe/Helsinki) in which this source's times without an offset are "
        "read; default UTC. The document records the zone it assumed.",
    )
    id_conflict: Literal["refuse", "replace"] = Field(
        default="refuse",
        description="A file whose id comes from its name and whose story shares no headline or paragraph with "
        "the stored article of that id: `refuse` it (moved to failed/, check id-conflict), or `replace` the story.",
    )
    settle_seconds: float = Field(
        default=5.0, ge=0, description="A file is taken only once unchanged (size and mtime) for this long."
    )
    # settle_seconds is "quiet for N s", judged when listed and again when read. A writer that stalls mid-file
    # longer than that (an FTP upload waiting on its network) needs a floor of its own, or a done marker.
    min_age_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Drop folders: a file is taken only once its mtime is at least this old, whatever "
        "settle_seconds says; for writers that pause mid-file for longer than settle_seconds.",
    )
    # A suffix, not a name: the marker is "<file><suffix>" beside its file, so one marker announces one file.
    done_marker: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,32}$",
        description="A file is taken only once `<name><done_marker>` exists beside it (e.g. `.done`); the "
        "marker is never input and moves along with its file.",
    )
    modules: ModuleSettings | None = Field(default=None, description="Module rules for this source only.")
    # Superdesk's "channel has gone strangely quiet": a feed that stops sending is the failure no error shows.
    quiet_after: float | None = Field(
        default=None,
        gt=0,
        description="Call the source quiet (`ingest status`, `ingest serve`, the `ingest_source_quiet` metric) "
        "when no file has arrived for this long: seconds, or a duration such as 90s, 30m, 2h, 1d. Off when unset.",
    )

    @field_validator("quiet_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_duration(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                example = "e.g. Europe/Helsinki, America/New_York"
                raise ValueError(f"{value!r} is not an IANA time zone ({example})") from None
        return value

    _name_in_words = _in_words("name", f"must be 1-64 characters of {_KEY_SAFE}")
    _id_prefix_in_words = _in_words("id_prefix", f"must be {_KEY_SAFE} only")
    _done_marker_in_words = _in_words("done_marker", f"must be 1-32 characters of {_KEY_SAFE}, e.g. .done")

    @property
    def is_s3(self) -> bool:
        return self.location.startswith("s3://")

    @property
    def bucket(self) -> str:
        """An S3 inbox's bucket ("" for a folder)."""
        return self.location[len("s3://") :].partition("/")[0] if self.is_s3 else ""

    @property
    def inbox_prefix(self) -> str:
        """An S3 inbox's key prefix, ending in "/" (or "" for a whole bucket, or a folder)."""
        rest = self.location[len("s3://") :].partition("/")[2].strip("/") if self.is_s3 else ""
        return f"{rest}/" if rest else ""

    @field_validator("location")
    @classmethod
    def _location(cls, value: str) -> str:
        if value.startswith("s3://"):
            bucket = value[5:].split("/", 1)[0]
            if not _BUCKET.fullmatch(bucket):
                raise ValueError(f"{value!r}: not an s3://bucket/prefix/ address")
        return value


class WebhookSettings(BaseModel):
    """One endpoint that is told of every new version (``ingest notify``, ``ingest watch``).

    The signing secret is never in the file: ``secret_env`` names the environment variable holding it, read by
    ``webhook_secret`` only when deliveries are about to be signed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A key segment (webhooks/{name}/cursor.json): no "/", and no "." or ".." of its own.
    name: str = Field(
        pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$",
        description="Short name used in keys (webhooks/{name}/), logs and `--webhook NAME`.",
    )
    url: str = Field(description="Where deliveries are POSTed: an http:// or https:// URL.")
    secret_env: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$",
        description="The environment variable holding the signing secret (whsec_ and base64 of 24-64 bytes).",
    )
    rendition: str | None = Field(
        default=None,
        description="Also embed the version in this rendition (ninjs, ninjs3, ans) in each delivery's data.",
    )
    # A new endpoint on a bucket with years of feed behind it would otherwise be sent all of it.
    since: datetime | None = Field(
        default=None,
        description="An endpoint with no cursor yet starts with the feed objects written at or after this time "
        "(ISO 8601; UTC if no zone); default: the whole feed.",
    )

    _name_in_words = _in_words("name", f"must be 1-64 characters of {_KEY_SAFE}, not starting with '.'")
    _secret_env_in_words = _in_words("secret_env", "must be an environment variable name such as CMS_WEBHOOK_SECRET")
    _since_in_words = _in_words("since", "must be a time such as 2026-11-24T00:00:00Z")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
            raise ValueError("must be an http:// or https:// URL with a host, e.g. https://cms.example.com/hooks/ingest")
        if parts.fragment:
            raise ValueError("must not hold a fragment (#...): it is never sent")
        if parts.username is not None:  # a password in the config file; the signature is what authenticates
            raise ValueError("must not hold a user or password (user:pass@): deliveries are signed instead")
        return value

    @field_validator("rendition")
    @classmethod
    def _known_rendition(cls, value: str | None) -> str | None:
        from ingest.renditions import check_extra  # the registry is the list; imported late, only to check it

        if value is not None:
            _as_value_error(check_extra, value)
        return value

    @field_validator("since")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


#: The variable holding the token that lets people change things through ``ingest serve`` (Retry).
UI_TOKEN_ENV = "INGEST_UI_TOKEN"


def ui_token(env: Mapping[str, str] | None = None) -> str | None:
    """The token that switches ``ingest serve``'s Retry on, from ``$INGEST_UI_TOKEN`` (``env``, by default the
    process environment); None when it is unset or blank, and every change through the page is refused. A
    secret, like a webhook's: never a config-file key, so it is not written down beside the settings."""
    value = (os.environ if env is None else env).get(UI_TOKEN_ENV, "").strip()
    return value or None


def webhook_secret(webhook: WebhookSettings, env: Mapping[str, str] | None = None) -> str:
    """The signing secret of ``webhook``, from the variable its ``secret_env`` names (``env``, by default the
    process environment); a ``ConfigError`` naming the variable (never a value) when it is unset or empty."""
    env = os.environ if env is None else env
    value = env.get(webhook.secret_env, "").strip()
    if not value:
        state = "is empty" if webhook.secret_env in env else "is not set"
        raise ConfigError(
            f"webhook {webhook.name}: ${webhook.secret_env} {state}; it must hold the endpoint's signing "
            "secret (whsec_ followed by the base64 of 24 to 64 random bytes)"
        )
    return value


def pick_sources(settings: Settings, picks: Sequence[str]) -> Settings:
    """``settings`` with only the sources ``--source`` names: a configured source by its name, a
    configured source by its location (with all its settings: id prefix, format, rules), or else a
    one-run source at that location with the defaults."""
    chosen = []
    for pick in picks:
        known = next((s for s in settings.sources if s.name == pick or _same_place(s.location, pick)), None)
        chosen.append(known or source_for(pick))
    try:
        picked = Settings.model_validate({**settings.model_dump(), "sources": [c.model_dump() for c in chosen]})
    except ValidationError as exc:
        raise ConfigError(describe_settings_error(exc, "--source")) from exc
    picked._config_file = settings.config_file
    return picked


def _same_place(a: str, b: str) -> bool:
    if a.startswith("s3://") or b.startswith("s3://"):
        return a.rstrip("/") == b.rstrip("/")
    return os.path.abspath(a) == os.path.abspath(b)


def source_for(location: str) -> SourceSettings:
    """A one-run source from ``--source PATH`` or ``--source s3://bucket/prefix/``."""
    stem = location.rstrip("/").rsplit("/", 1)[-1] or "source"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem)[:64].strip("-.") or "source"
    try:
        return SourceSettings(name=name, location=location)
    except ValidationError as exc:
        raise ConfigError(describe_settings_error(exc, "--source")) from exc


class Settings(BaseModel):
    """Everything a run needs to know. Build it with ``load_settings``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Not a setting (no key, no variable): where the YAML came from, so a message can name the file to edit.
    _config_file: Path | None = PrivateAttr(default=None)

    @property
    def config_file(self) -> Path | None:
        """The YAML file these settings were read from; None when none was (or they were not loaded)."""
        return self._config_file

    def in_use(self) -> str:
        """Which config file and bucket these settings use, in words for a note or a help page."""
        return in_use(self.config_file, self.bucket, self.prefix)

    bucket: str = Field(default="ingest", min_length=3, max_length=63, description="S3 bucket for documents.")
    prefix: str = Field(default="", description="Key prefix under the bucket; empty for none.")
    max_bytes: int = Field(default=5 * 1024 * 1024, gt=0, description="Largest input file accepted, in bytes.")
    batch_size: int = Field(
        default=100, ge=1, le=10_000, description="Files per changes-feed object (one S3 write per batch)."
    )
    workers: int = Field(
        default=32, ge=1, le=64, description="Articles written to S3 side by side (per process): hides S3 latency."
    )
    processes: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Processes writing to S3 for `ingest file` and `ingest run` (0: one per core).",
    )
    retry_attempts: int = Field(
        default=12,
        ge=1,
        le=20,
        description="Tries per S3 request, first one included (12: even with a quarter of requests failing, "
        "a run's requests all get through; see ingest/retry.py).",
    )
    retry_max_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Give up retrying one S3 request once the next wait would end past this many seconds "
        "(12 tries wait 31 s at most, so a store that is down fails each request well within it).",
    )
    modules: ModuleSettings = Field(default_factory=ModuleSettings)
    sources: list[SourceSettings] = Field(default_factory=list, description="Where `ingest run` looks for files.")
    lease_seconds: float = Field(
        default=120.0, gt=0, description="A file lease left by a run that died expires after this long."
    )
    poll_seconds: float = Field(default=2.0, gt=0, description="How often `ingest watch` looks for new files.")
    broker_url: str | None = Field(
        default=None,
        description="Celery broker for `ingest worker` and `--dispatch`, e.g. redis://127.0.0.1:6379/0.",
    )
    task_time_limit: float = Field(
        default=90.0,
        gt=0,
        description="Seconds one file's task may run before its worker process is replaced "
        "(below visibility_timeout and lease_seconds).",
    )
    visibility_timeout: float = Field(
        default=600.0,
        gt=0,
        description="Seconds before Redis hands a task whose worker vanished to another worker.",
    )
    max_deliveries: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Tries per file before a file that keeps stopping its worker is refused.",
    )
    # ninjs `uri` must be a URI and should be globally unique; a bare id ("bridge") is neither. The default
    # is a placeholder that is at least a URI: a newsroom puts its own domain in it.
    uri_template: str = Field(
        default="urn:newsml:localhost:{id}",
        description="How the ninjs and ANS renditions (`--as`) make an article's URI from its id: `{id}` is "
        "replaced by the id, e.g. urn:newsml:example.com:{id} or https://news.example.com/articles/{id}.",
    )

    # Off by default: each format costs two more PUTs per new version (README, "Storage layout").
    renditions: list[str] = Field(
        default_factory=list,
        description="Renditions stored with each new version, beside the document: `articles/{id}/v{N}.{format}"
        ".json` and `latest.{format}.json` (`ninjs`, `ninjs3`, `ans`); $INGEST_RENDITIONS a comma list.",
    )

    @field_validator("renditions", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        # $INGEST_RENDITIONS=ninjs,ans (a variable holds one string); "" is none.
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("renditions")
    @classmethod
    def _known_renditions(cls, value: list[str]) -> list[str]:
        for name in value:
            _as_value_error(check_extra, name)
        return _no_repeats("each rendition once", value)

    webhooks: list[WebhookSettings] = Field(
        default_factory=list, description="Endpoints told of every new version (`ingest notify`, `ingest watch`)."
    )
    webhook_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        description="Tries per delivery in one `ingest notify` pass while the receiver answers 5xx, 408 or 429, "
        "or does not answer; then the endpoint waits for the next pass, its cursor where it was.",
    )
    webhook_timeout_seconds: float = Field(
        default=15.0, gt=0, le=300, description="How long one delivery waits for the receiver's answer."
    )
    # Covers a feed writer's longest retry (retry_max_seconds) plus clock skew between writers; see ingest/feed.py.
    feed_lag_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How far behind the newest feed object `ingest notify` and `ingest changes --follow` look "
        "again for objects that became visible late.",
    )

    @field_validator("webhooks")
    @classmethod
    def _unique_webhooks(cls, value: list[WebhookSettings]) -> list[WebhookSettings]:
        _no_repeats("webhook names must be unique", [w.name for w in value])
        return value

    @field_validator("uri_template")
    @classmethod
    def _uri_template(cls, value: str) -> str:
        # The shape only; whether the result is a URI is checked for each id when a rendition is made.
        rest = value.replace("{id}", "")
        if "{id}" not in value:
            raise ValueError("must contain {id}, where the article id goes")
        if "{" in rest or "}" in rest:
            raise ValueError("{id} is the only placeholder")
        if "#" in value:
            raise ValueError("must not hold a fragment (#): renditions add their own, e.g. #related-1")
        if not _URI_TEMPLATE.fullmatch(rest):
            example = "e.g. urn:newsml:example.com:{id}"
            raise ValueError(f"must be an absolute URI: a scheme (urn:, https:), no spaces ({example})")
        return value

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, value: list[SourceSettings]) -> list[SourceSettings]:
        _no_repeats("source names must be unique", [s.name for s in value])
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not _BUCKET.fullmatch(value) or ".." in value:
            raise ValueError("must be 3-63 lowercase letters, digits, dots or hyphens (an S3 bucket name)")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.strip("/")
        if ".." in value.split("/"):
            raise ValueError("must not contain '..'")
        return f"{value}/" if value else ""


def load_settings(
    cli: Mapping[str, Any] | None = None,
    *,
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, the config file, ``INGEST_*`` variables and flags (``None`` flags are unset)."""
    env = os.environ if env is None else env
    path, explicit = config_location(config, env)
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    read = path.is_file()
    if read:
        data = read_yaml(path) or {}  # an empty file sets nothing
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must be a mapping of settings, not {type(data).__name__}")
        merged.update(data)
        origin.update(dict.fromkeys(data, str(path)))
    elif explicit:
        raise ConfigError(f"{path}: config file not found")
    for field_name in Settings.model_fields:
        var = _ENV_PREFIX + field_name.upper()
        if var in env and field_name != "modules":
            merged[field_name] = env[var]
            origin[field_name] = f"${var}"
    if env.get("INGEST_RULES"):
        merged["modules"] = {**merged.get("modules", {}), "rules_file": env["INGEST_RULES"]}
    for key, value in (cli or {}).items():
        if value is not None:
            merged[key] = value
            origin[key] = "command line"
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(describe_settings_error(exc, "settings", origin)) from exc
    settings._config_file = path if read else None
    return settings


def config_location(config: Path | None = None, env: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The config file ``load_settings`` reads: ``config`` (``--config``), else ``$INGEST_CONFIG``, else
    ``./config/ingest.yaml``; and whether it was named (a named file must exist, the default may not)."""
    env = os.environ if env is None else env
    named = config or (Path(env["INGEST_CONFIG"]) if env.get("INGEST_CONFIG") else None)
    return (named, True) if named is not None else (_DEFAULT_CONFIG, False)


def in_use(config_file: Path | str | None, bucket: str, prefix: str) -> str:
    """``config /srv/ingest/config/ingest.yaml, bucket s3://ingest/news/``: what a command says it used (its
    config file as an absolute path, as a command run from elsewhere finds another one, or none)."""
    config = f"config {os.path.abspath(config_file)}" if config_file else "no config file (defaults and INGEST_*)"
    return f"{config}, bucket s3://{bucket}/{prefix}"


def read_yaml(path: Path) -> Any:
    """A YAML file through the safe loader; every failure is one ``ConfigError`` line naming the file."""
    try:
        with path.open("rb") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def describe_settings_error(exc: ValidationError, where: str, origin: Mapping[str, str] | None = None) -> str:
    """A pydantic error on settings as one line: each bad key, where its value came from, and why."""
    parts = []
    for key, reason in field_errors(exc):
        source = (origin or {}).get(key.split(".")[0], where)
        parts.append(f"{key or '(top level)'} (from {source}): {reason}")
    return "invalid configuration: " + "; ".join(parts)


def _no_repeats(rule: str, names: list[str]) -> list[str]:
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"{rule}; repeated: {', '.join(dupes)}")
    return names


def _as_value_error(check: Callable[[str], str], value: str) -> str:
    """Run a check that raises ``ConfigError`` inside a validator, where pydantic wants a ``ValueError``."""
    try:
        return check(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
