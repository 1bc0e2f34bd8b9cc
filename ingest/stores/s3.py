"""S3-compatible storage: the only pipeline module that sees boto3 and botocore.

(``ingest.devserver``, a development tool that runs a local S3 server, also uses boto3 to probe it.)

Endpoint, region and credentials come the standard AWS way (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``,
``AWS_ACCESS_KEY_ID``...), read by boto3 itself. Every botocore error is translated here, once:
transient ones are retried by ``ingest.retry``; a lost condition (412) is an answer, not an error;
anything else becomes a ``StoreError`` with the operation, key and status: ``StoreUnavailable`` when
retrying ran out (unreachable, 5xx, throttled), ``StoreDenied`` when a person must act (credentials,
policy, missing bucket), plain ``StoreError`` otherwise. ``S3Store`` implements ``ingest.stores.base.Store``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from urllib3.exceptions import ProtocolError

from ingest.errors import ConfigError, StoreDenied, StoreError, StoreUnavailable
from ingest.retry import policy
from ingest.stores.base import Listed, ListedObject, ListedPrefix, Stored

__all__ = ["S3Store", "is_transient"]

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from ingest.stores.base import Store

log = logging.getLogger("ingest.store")
T = TypeVar("T")

_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "OperationAborted",
        "BadGateway",
        "GatewayTimeout",
    }
)
_TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
_TRANSIENT_EXC = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError, ProtocolError)
# Not every one of these is retried (an SSL or proxy failure is not), but each means the server was not reached.
_UNREACHABLE_EXC = (BotoConnectionError, HTTPClientError, ProtocolError)
_DENIED_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"})
#: Keys per LIST request: S3's largest page (``MaxKeys``), and its default.
PAGE_SIZE = 1000


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _retry_reason(exc: BaseException) -> str:
    """Why a request is retried, as ``ingest_storage_retries_total`` labels it: S3's error code (``SlowDown``), the
    bare status when there is none (``HTTP 503``), or the exception's class (``EndpointConnectionError``)."""
    if not isinstance(exc, ClientError):
        return type(exc).__name__
    status = _status(exc)
    return _code(exc) or (f"HTTP {status}" if status else "ClientError")


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: connection trouble, timeouts, 5xx, throttling."""
    if isinstance(exc, _TRANSIENT_EXC):
        return True
    if isinstance(exc, ClientError):
        return _code(exc) in _TRANSIENT_CODES or _status(exc) in _TRANSIENT_STATUS
    return False


def _is_precondition(exc: ClientError) -> bool:
    return _status(exc) == 412 or _code(exc) in {"PreconditionFailed", "ConditionalRequestConflict"}


def _is_missing(exc: ClientError) -> bool:
    return _status(exc) == 404 or _code(exc) in {"NoSuchKey", "404", "NotFound"}


def _no_such_key(exc: ClientError) -> bool:
    """The object is missing (not the bucket: that is an error, never an answer)."""
    return _is_missing(exc) and _code(exc) != "NoSuchBucket"


class S3Store:
    """Documents, raw inputs and the changes feed in one bucket, under one prefix."""

    def __init__(
        self,
        bucket: str,
        *,
        attempts: int = 12,
        max_seconds: float = 60.0,
        client: S3Client | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.bucket = bucket
        self.attempts = attempts
        self.max_seconds = max_seconds
        #: Keys (and sub-prefixes) per LIST request; smaller only so tests can page past a page cheaply.
        self.page_size = page_size
        # botocore's own retries are off: tenacity (ingest.retry) is the one layer that retries.
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=32,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            self._session = boto3.session.Session()
            self.client: S3Client = client or self._session.client("s3", config=config)
        except (BotoCoreError, ValueError) as exc:  # an unknown AWS_PROFILE, an AWS_ENDPOINT_URL that is no URL
            raise ConfigError(f"S3 client cannot be set up: {exc}") from exc
        self._bucket_checked = False

    def credential_values(self) -> list[str]:
        """The resolved access key, secret and token, so logging can redact them (never logged here)."""
        try:
            creds = self._session.get_credentials()
        except BotoCoreError as exc:
            raise ConfigError(f"S3 credentials cannot be read: {exc}") from exc
        if creds is None:
            return []
        frozen = creds.get_frozen_credentials()
        return [v for v in (frozen.access_key, frozen.secret_key, frozen.token) if v]

    # -------------------------------------------------------------- one request, retried and translated

    def _call(self, what: str, key: str, fn: Callable[[], T]) -> T:
        try:
            for attempt in policy(self.attempts, self.max_seconds, is_transient, what, reason=_retry_reason):
                with attempt:
                    return fn()
        except ClientError as exc:
            raise self._translate(exc, what, key) from exc
        except NoCredentialsError as exc:
            raise StoreDenied(
                "no S3 credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)",
                operation=what,
                key=key,
            ) from exc
        except (BotoCoreError, ProtocolError) as exc:
            if isinstance(exc, _UNREACHABLE_EXC):
                message = f"storage unreachable: {what} failed after retrying: {exc}"
                raise StoreUnavailable(message, operation=what, key=key) from exc
            raise StoreError(f"S3 {what} failed: {exc}", operation=what, key=key) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _translate(self, exc: ClientError, what: str, key: str) -> StoreError:
        status, code = _status(exc), _code(exc)
        kind: type[StoreError]
        if is_transient(exc):
            kind, reason = StoreUnavailable, f"storage kept failing ({code or status}) after retrying"
        elif status == 403 or code in _DENIED_CODES:
            kind, reason = StoreDenied, f"access denied ({code or status}): check the S3 credentials and bucket policy"
        elif code == "NoSuchBucket":
            # ensure_bucket creates a missing bucket when it may; missing after that, a person must act.
            kind, reason = StoreDenied, f"bucket {self.bucket!r} does not exist"
        else:
            # Includes HEAD bucket's bare 404 (a HEAD reply has no error code): ensure_bucket reads ``status``.
            kind, reason = StoreError, f"{code or 'error'} (HTTP {status})"
        return kind(f"S3 {what}: {reason}", operation=what, key=key, status=status)

    # -------------------------------------------------------------- the API the pipeline uses

    def ensure_bucket(self) -> None:
        """Create the bucket when missing (once per store); fail early when storage is unreachable."""
        if self._bucket_checked:
            return
        try:
            self._call(f"HEAD bucket {self.bucket}", "", lambda: self.client.head_bucket(Bucket=self.bucket))
        except StoreError as exc:
            if exc.status not in (404, 400):
                raise
            log.info("creating bucket %s", self.bucket)
            self._call(f"CREATE bucket {self.bucket}", "", self._create_bucket)
        self._bucket_checked = True

    def _create_bucket(self) -> None:
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    def get(self, key: str) -> Stored | None:
        """The object at ``key``, or ``None`` when there is none."""

        def fetch() -> Stored | None:
            try:
                resp = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _no_such_key(exc):
                    return None
                raise
            return Stored(body=resp["Body"].read(), etag=resp["ETag"])

        return self._call(f"GET {key}", key, fetch)

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists (one HEAD request)."""

        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _no_such_key(exc):
                    return False
                raise
            return True

        return self._call(f"HEAD {key}", key, head)

    def put_new(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        """Create ``key`` only if absent (``If-None-Match: *``): its ETag, or None when it already existed."""
        return self._conditional(key, body, content_type, IfNoneMatch="*")

    def replace(self, key: str, body: bytes, etag: str | None, content_type: str = "application/json") -> str | None:
        """Overwrite ``key`` only while it still has ``etag`` (or create it, when ``etag`` is None).

        Returns the new ETag, or None when someone else changed it first: the caller reads it again.
        """
        if etag is None:
            return self._conditional(key, body, content_type, IfNoneMatch="*")
        return self._conditional(key, body, content_type, IfMatch=etag)

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        """Unconditional write, for objects no one else writes (changes-feed batches, run reports)."""

        def send() -> None:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

        self._call(f"PUT {key}", key, send)

    def put_file(self, key: str, body: BinaryIO, content_type: str = "application/json") -> None:
        """Unconditional write streamed from a seekable file (rewound before every try)."""

        def send() -> None:
            body.seek(0)
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

        self._call(f"PUT {key}", key, send)

    def _conditional(self, key: str, body: bytes, content_type: str, **condition: Any) -> str | None:
        def send() -> str | None:
            try:
                resp = self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **condition
                )
            except ClientError as exc:
                # If-Match on a missing key: AWS answers 404 NoSuchKey, SeaweedFS 412. Either way the
                # object we read is not there any more: a lost condition, not an error.
                if _is_precondition(exc) or ("IfMatch" in condition and _no_such_key(exc)):
                    return None
                raise
            return str(resp.get("ETag") or '""')

        return self._call(f"PUT {key}", key, send)

    def delete(self, key: str, if_match: str | None = None) -> bool:
        """Remove ``key`` (only while it has ETag ``if_match``, when given). False when it had changed;
        removing what is already gone is not an error."""

        def send() -> bool:
            condition: dict[str, Any] = {"IfMatch": if_match} if if_match else {}
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key, **condition)
            except ClientError as exc:
                if _is_precondition(exc):
                    return False
                if _no_such_key(exc):
                    # Gone already: done, unless a condition was asked for, which a missing object
                    # cannot meet (AWS answers 404 here, SeaweedFS 412: both are False).
                    return not if_match
                raise
            return True

        return self._call(f"DELETE {key}", key, send)

    def copy(self, source_key: str, target_key: str, if_match: str | None = None) -> bool:
        """Server-side copy inside the bucket (the bytes do not travel through us), only while the
        source still has ETag ``if_match`` when given. False when it had changed; a missing source is a
        ``StoreError`` with status 404 (S3's ``NoSuchKey``)."""

        def send() -> bool:
            condition: dict[str, Any] = {"CopySourceIfMatch": if_match} if if_match else {}
            try:
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=target_key,
                    CopySource={"Bucket": self.bucket, "Key": source_key},
                    **condition,
                )
            except ClientError as exc:
                if _is_precondition(exc):
                    return False
                raise
            return True

        return self._call(f"COPY {source_key} -> {target_key}", source_key, send)

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        """Keys under ``prefix`` in lexical order, after ``start_after``."""
        for key, _size in self.list_objects(prefix, start_after):
            yield key

    def list_objects(self, prefix: str, start_after: str = "") -> Iterator[tuple[str, int]]:
        """``(key, size)`` under ``prefix`` in lexical order, after ``start_after``."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": self.page_size}
            if token:
                kwargs["ContinuationToken"] = token
            elif start_after:
                kwargs["StartAfter"] = start_after
            page = self._call(f"LIST {prefix}", prefix, functools.partial(self.client.list_objects_v2, **kwargs))
            for item in page.get("Contents", []):
                yield item["Key"], int(item.get("Size", 0))
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def list_level(self, prefix: str) -> Iterator[Listed]:
        """Objects and sub-prefixes one level under ``prefix`` (``Delimiter="/"``), page by page."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "Bucket": self.bucket,
                "Prefix": prefix,
                "Delimiter": "/",
                "MaxKeys": self.page_size,
            }
            if token:
                kwargs["ContinuationToken"] = token
            call = functools.partial(self.client.list_objects_v2, **kwargs)
            page = self._call(f"LIST {prefix} (one level)", prefix, call)
            entries: list[Listed] = [
                ListedObject(o["Key"], int(o.get("Size", 0)), _modified(o)) for o in page.get("Contents", [])
            ]
            entries += [ListedPrefix(p["Prefix"]) for p in page.get("CommonPrefixes", []) if "Prefix" in p]
            # S3 answers objects and sub-prefixes in two lists; one page is one stretch of the key order.
            yield from sorted(entries, key=lambda entry: entry.key)
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")


def _modified(listed: Any) -> float | None:
    """An object's LastModified from a listing, as epoch seconds."""
    when = listed.get("LastModified")
    return when.timestamp() if when is not None else None


if TYPE_CHECKING:  # mypy proves S3Store keeps to the protocol
    _: type[Store] = S3Store
