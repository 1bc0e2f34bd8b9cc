"""Who may change anything through ``ingest serve``, and from where.

The page reads freely (it is bound to loopback unless told otherwise); the one thing it changes, putting a
refused file back into its source, must pass every check below, in this order, or it is refused (403):

1. **Retry is switched on**: ``INGEST_UI_TOKEN`` was set where ``ingest serve`` started. Without it no request
   can change anything.
2. **Same site**: a browser's ``Origin`` (or, without one, its ``Referer``) names this server's own host and
   port, and ``Sec-Fetch-Site`` does not say ``cross-site``. A request without those headers (curl, a script) is
   judged by the checks after this one.
3. **The form came from this server** (cross-site request forgery): the page sets a random cookie,
   ``ingest_csrf`` (``HttpOnly; SameSite=Strict``), and each Retry form carries ``csrf``, an HMAC of that cookie
   and the form's own action, keyed by a secret made when the process starts. Another site can neither read
   the cookie nor make the HMAC, and a field made for one file's form does not fit another's. A request that
   sends the token as ``Authorization: Bearer`` needs no form field: a browser never adds that header by itself.
4. **The token**: the operator types it into the form's password field (or sends it as ``Authorization:
   Bearer``); it is compared in constant time.

Everything here is pure: the app hands in the headers, the cookie and the form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: The cookie a browser session's forms are tied to.
CSRF_COOKIE = "ingest_csrf"
#: The hidden form field carrying the HMAC of that cookie and the form's action.
CSRF_FIELD = "csrf"
#: The password field the operator types the token into.
TOKEN_FIELD = "token"
#: Switched off: what a refused request is told, and what the page says beside each Retry button.
DISABLED = "retry is switched off: INGEST_UI_TOKEN was not set where `ingest serve` was started"


def new_session() -> str:
    """A fresh value for the ``ingest_csrf`` cookie."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Guard:
    """The checks a state-changing request must pass. ``token`` None switches every change off."""

    token: str | None
    #: Keys the forms' HMACs; a new one per process, so a page left open across a restart must be reloaded.
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def form_token(self, session: str, action: str) -> str:
        """The ``csrf`` field of the form that posts to ``action`` (a path), for the browser holding ``session``."""
        return hmac.new(self.secret, f"{session}\n{action}".encode(), hashlib.sha256).hexdigest()

    def refusal(
        self, headers: Mapping[str, str], session: str | None, form: Mapping[str, str], action: str
    ) -> str | None:
        """Why a request to ``action`` must be refused, in words for the refusal page; None when it may go on.
        ``headers`` are the request's (lower-case names), ``session`` its ``ingest_csrf`` cookie."""
        if not self.token:
            return DISABLED
        if (other := cross_site(headers)) is not None:
            return f"the request came from another site ({other}); only this page's own forms may retry files"
        bearer = _bearer(headers.get("authorization", ""))
        if bearer is None:
            given = form.get(CSRF_FIELD, "")
            if not session or not given:
                return "the form's cross-site check is missing (reload the page, then try again)"
            if not hmac.compare_digest(given.encode(), self.form_token(session, action).encode()):
                return "the form's cross-site check does not match (the page is stale: reload it, then try again)"
        offered = bearer if bearer is not None else form.get(TOKEN_FIELD, "")
        if not offered:
            return "no token was given: type the INGEST_UI_TOKEN value into the token field"
        if not hmac.compare_digest(offered.encode(), self.token.encode()):
            return "the token is wrong"
        return None


def cross_site(headers: Mapping[str, str]) -> str | None:
    """The other site a browser says the request came from; None when it is this server, or nothing says."""
    host = headers.get("host", "").lower()
    if headers.get("sec-fetch-site", "") == "cross-site":
        return headers.get("origin") or "Sec-Fetch-Site: cross-site"
    origin = headers.get("origin")
    if origin is not None:
        return None if _netloc(origin) == host and host else origin
    referer = headers.get("referer")
    if referer:
        return None if _netloc(referer) == host and host else referer
    return None


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def _bearer(authorization: str) -> str | None:
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None
