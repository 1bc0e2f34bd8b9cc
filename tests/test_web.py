"""``ingest serve`` over plain HTTP (Starlette's TestClient, no browser): every page with real data from real runs
into a ``MemoryStore``, escaping, the guarded Retry, 404s, probes and metrics. ``test_browser.py`` clicks through
the same pages in Chromium against the real CLI and SeaweedFS."""

from __future__ import annotations

import html
import io
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ingest.api import ingest_files, open_sources
from ingest.keys import Keys
from ingest.report import Reporter, RunReport
from ingest.runner import run_once
from ingest.settings import Settings, SourceSettings, ui_token
from ingest.stores.faults import FaultyStore
from ingest.stores.memory import MemoryStore
from ingest.web import LOOPBACK_NAMES, create_app, is_loopback
from ingest.web import app as web_app
from ingest.web import server as web_server
from ingest.web.app import retry_action
from tests.conftest import cli
from tests.test_runner import NOW, PREFIX, aged, fill, settings_with, story

TOKEN = "correct horse battery staple"
HOSTILE_NAME = "<img src=x onerror=alert(1)>.json"
SCRIPT = "<script>alert(1)</script>"
ORIGIN = "http://testserver"


@dataclass
class Site:
    """A drop folder swept once: ``story-000.txt`` stored, ``bad.txt`` (binary) and a hostile name refused."""

    store: MemoryStore
    settings: Settings
    drop: Path
    run_id: str


def sweep(site: Site, at: datetime) -> RunReport:
    sources = open_sources(site.settings, open_store=lambda bucket: site.store)
    return run_once(site.settings, site.store, sources, Reporter("text", out=io.StringIO()), clock=lambda: at)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    drop = tmp_path / "drop"
    fill(drop, 1)
    (drop / "bad.txt").write_bytes(b"\x00\x01\x02")
    aged(drop / "bad.txt")
    (drop / HOSTILE_NAME).write_text("{not json")
    aged(drop / HOSTILE_NAME)
    settings = settings_with(SourceSettings(name="wires", location=str(drop), settle_seconds=1))
    made = Site(MemoryStore(), settings, drop, "")
    made.run_id = sweep(made, NOW).run_id
    return made


def client(site: Site, token: str | None = TOKEN, **options: object) -> TestClient:
    app = create_app(
        site.settings,
        site.store,
        open_store=lambda bucket: site.store,
        token=token,
        clock=lambda: NOW + timedelta(minutes=5),
        **options,  # type: ignore[arg-type]
    )
    return TestClient(app, base_url=ORIGIN)


def retry_form(page: str, name: str) -> tuple[str, str]:
    """The action and the ``csrf`` field of the Retry form for ``name``, as the page has them."""
    for action, csrf in re.findall(r'<form class="retry" method="post" action="([^"]+)">\s*<input type="hidden" '
                                   r'name="csrf" value="([0-9a-f]+)">', page):
        if html.unescape(action) == retry_action("wires", name):
            return html.unescape(action), csrf
    raise AssertionError(f"no Retry form for {name}")


def in_failed(site: Site, name: str) -> bool:
    return (site.drop / "failed" / name).exists()


def test_the_page_shows_every_source_its_state_sweeps_backlog_and_failed_files_with_reasons(site: Site) -> None:
    (site.drop / "late.txt").write_text(story(9))
    aged(site.drop / "late.txt", seconds=120, now=NOW + timedelta(minutes=5))
    page = client(site).get("/")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert '<span class="badge failing">failing</span>' in text
    assert "2 files in failed/" in text
    assert f'<a href="/runs/{site.run_id}"' in text and "1 created, 2 failed" in text  # last sweep and its run
    assert "Last clean sweep</dt> <dd>" + NOW.strftime("%Y-%m-%d %H:%M:%S UTC") in text
    assert "1 file, the oldest 2m old" in text  # late.txt waits
    assert "is binary, not text" in text and "<td>binary</td>" in text  # bad.txt: its check and reason
    assert 'action="/articles"' in text  # the form that opens an article by id
    assert text.count("<button type=\"submit\">Retry</button>") == 2
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("ingest_csrf=") and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_article_text_and_file_names_are_escaped_everywhere(site: Site, tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.txt"
    hostile.write_text(f"{SCRIPT} Harbour\n\nBody with <b>bold</b> & {SCRIPT}.\n")
    ingest_files([hostile], site.settings, site.store)
    hostile.write_text(f"{SCRIPT} Harbour\n\nBody changed <i>now</i> & {SCRIPT}.\n")
    ingest_files([hostile], site.settings, site.store, note=SCRIPT, editor="<b>desk</b>")
    web = client(site)
    pages = {
        "/": web.get("/").text,
        "run": web.get(f"/runs/{site.run_id}").text,
        "article": web.get("/articles/hostile").text,
        "version": web.get("/articles/hostile/v/2").text,
        "ninjs": web.get("/articles/hostile/v/2?as=ninjs").text,
        "diff": web.get("/articles/hostile/diff?a=1&b=2").text,
    }
    for name, text in pages.items():
        assert "<script" not in text and "<img src=x" not in text and "<b>" not in text, name
    assert "&lt;img src=x onerror=alert(1)&gt;.json" in pages["/"] and "&lt;img src=x" in pages["run"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Harbour" in pages["article"]
    assert "&lt;b&gt;desk&lt;/b&gt;" in pages["article"]  # editor and note too
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["version"] and "&lt;i&gt;now&lt;/i&gt;" in pages["diff"]


def test_retry_is_off_without_a_token_and_the_button_says_so(site: Site) -> None:
    web = client(site, token=None)
    page = web.get("/").text
    assert "Retry (off: INGEST_UI_TOKEN not set)" in page and "disabled" in page
    refused = web.post("/sources/wires/failed/bad.txt/retry", data={"token": "anything"}, headers={"origin": ORIGIN})
    assert refused.status_code == 403
    assert "INGEST_UI_TOKEN was not set" in refused.text and "Retry refused" in refused.text
    assert in_failed(site, "bad.txt")


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("no token", "no token was given"),
        ("wrong token", "the token is wrong"),
        ("another site", "the request came from another site (https://evil.example)"),
        ("opaque origin", "the request came from another site (null)"),
        ("cross-site fetch", "the request came from another site"),
        ("referer elsewhere", "the request came from another site (https://evil.example/page)"),
        ("no form check", "the form's cross-site check is missing"),
        ("another file's form check", "the form's cross-site check does not match"),
        ("no cookie", "the form's cross-site check is missing"),
    ],
)
def test_retry_is_refused_without_the_token_from_another_site_or_without_the_form_check(
    site: Site, case: str, why: str
) -> None:
    web = client(site)
    page = web.get("/").text
    action, csrf = retry_form(page, "bad.txt")
    form = {"csrf": csrf, "token": TOKEN}
    headers = {"origin": ORIGIN}
    if case == "no token":
        form["token"] = ""
    elif case == "wrong token":
        form["token"] = TOKEN + "x"
    elif case == "another site":
        headers = {"origin": "https://evil.example"}
    elif case == "opaque origin":
        headers = {"origin": "null"}
    elif case == "cross-site fetch":
        headers = {"sec-fetch-site": "cross-site"}
    elif case == "referer elsewhere":
        headers = {"referer": "https://evil.example/page"}
    elif case == "no form check":
        del form["csrf"]
    elif case == "another file's form check":
        form["csrf"] = retry_form(page, HOSTILE_NAME)[1]
    elif case == "no cookie":
        web.cookies.clear()
    refused = web.post(action, data=form, headers=headers, follow_redirects=False)
    assert refused.status_code == 403, case
    assert why in html.unescape(refused.text), case
    assert in_failed(site, "bad.txt") and not (site.drop / "bad.txt").exists(), case


def test_retry_with_the_token_puts_the_file_back_and_the_next_run_stores_it(site: Site) -> None:
    web = client(site)
    action, csrf = retry_form(web.get("/").text, "bad.txt")
    (site.drop / "failed" / "bad.txt").write_text(story(5))  # the cause is fixed first
    done = web.post(action, data={"csrf": csrf, "token": TOKEN}, headers={"origin": ORIGIN}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/?retried=bad.txt&source=wires"
    assert (site.drop / "bad.txt").exists() and not in_failed(site, "bad.txt")
    assert not (site.drop / "failed" / "bad.txt.error.json").exists()
    after = web.get(done.headers["location"]).text
    assert f"bad.txt was put back into wires ({site.drop}); the next run will take it." in after
    assert after.count('<button type="submit">Retry</button>') == 1  # only the hostile one is left
    aged(site.drop / "bad.txt", now=NOW + timedelta(minutes=10))
    report = sweep(site, NOW + timedelta(minutes=10))
    assert [(f.path.rsplit("/", 1)[-1], f.outcome) for f in report.files] == [("bad.txt", "created")]
    assert site.store.get(Keys(PREFIX, "bad").version(1)) is not None


def test_a_script_may_retry_with_a_bearer_token_and_no_form_but_never_from_another_site(site: Site) -> None:
    web = client(site)
    bearer = {"authorization": f"Bearer {TOKEN}"}
    cross = web.post("/sources/wires/failed/bad.txt/retry", headers={**bearer, "origin": "https://evil.example"})
    assert cross.status_code == 403 and in_failed(site, "bad.txt")
    wrong = web.post("/sources/wires/failed/bad.txt/retry", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "the token is wrong" in wrong.text
    done = web.post("/sources/wires/failed/bad.txt/retry", headers=bearer, follow_redirects=False)
    assert done.status_code == 303 and (site.drop / "bad.txt").exists()


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/sources/elsewhere/failed/bad.txt/retry", "is not a configured source"),  # never a one-run source
        ("/sources/%2Ftmp/failed/bad.txt/retry", "nothing here"),  # a path is not a name
        ("/sources/wires/failed/gone.txt/retry", "gone.txt is not in failed/ of wires"),
        ("/sources/wires/failed/../retry", "nothing here"),
    ],
)
def test_retry_of_an_unknown_source_or_a_file_not_in_failed_is_404(site: Site, path: str, words: str) -> None:
    refused = client(site).post(path, headers={"authorization": f"Bearer {TOKEN}"}, follow_redirects=False)
    assert refused.status_code == 404, refused.text
    assert words in html.unescape(refused.text)
    assert in_failed(site, "bad.txt")


def test_a_run_page_shows_counts_timings_errors_and_file_records(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    web = client(site)
    page = html.unescape(" ".join(web.get(f"/runs/{site.run_id}").text.split()))
    assert f"Run <span class=\"mono\">{site.run_id}</span>" in page
    assert "1 created, 2 failed" in page and "wires" in page
    assert "read_and_parse" in page  # a timing
    assert "<h3>Errors (2)</h3>" in page and "is binary, not text (NUL byte at offset 0)" in page
    assert '<a href="/articles/story-000">story-000</a> v1' in page  # a stored file's article
    assert f"runs/{site.run_id}.json" in page
    monkeypatch.setattr(web_app, "FILES_SHOWN", 1)
    capped = client(site).get(f"/runs/{site.run_id}").text
    assert "The first 1 of 3 files are shown" in capped


@pytest.mark.parametrize(
    "run_id", ["..%2F..%2Fstatus%2Fwires", "20261124T131357-F5E3F7", "latest.json", "20261124T131357-f5e3f7"]
)
def test_run_ids_are_checked_before_a_key_is_built_and_unknown_runs_are_404(site: Site, run_id: str) -> None:
    page = client(site).get(f"/runs/{run_id}")
    assert page.status_code == 404
    assert "No such run" in page.text or "nothing here" in page.text


def test_an_article_shows_every_version_its_documents_renditions_and_the_diff(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "harbour.txt"
    path.write_text("Harbour bridge closes\n\nThe bridge closes at noon.\n\nTraffic is diverted.\n")
    ingest_files([path], site.settings, site.store)
    path.write_text("Harbour bridge closes\n\nThe bridge closes at 2 pm.\n\nTraffic is diverted.\n")
    ingest_files([path], site.settings, site.store, note="Time corrected", editor="J. Smith")
    web = client(site)
    article = " ".join(web.get("/articles/harbour").text.split())
    assert "<h1>Harbour bridge closes</h1>" in article and "2 versions" in article
    assert "<td>v1</td>" in article and "<td>created</td>" in article
    assert "<td>v2</td>" in article and "<td>J. Smith</td> <td>Time corrected</td>" in article
    for link in ('href="/articles/harbour/v/2"', 'href="/articles/harbour/v/1?as=ninjs"', "?as=ans", "?as=ninjs3"):
        assert link in article
    assert 'action="/articles/harbour/diff"' in article and '<option value="1" selected>v1</option>' in article

    document = html.unescape(web.get("/articles/harbour/v/1").text)  # JSON in a <pre>: its quotes are escaped
    assert '"version": 1,' in document and '"headline": "Harbour bridge closes"' in document
    assert "The bridge closes at noon." in document
    ninjs = html.unescape(web.get("/articles/harbour/v/2?as=ninjs").text)
    assert '"uri": "urn:newsml:localhost:harbour"' in ninjs and "<strong>ninjs</strong>" in ninjs
    assert "2 pm" in web.get("/articles/harbour/v/2?as=ans").text

    diff = web.get("/articles/harbour/diff?a=1&b=2").text
    assert '<div class="removed"><del>-The bridge closes at noon.</del></div>' in diff
    assert '<div class="added"><ins>+The bridge closes at 2 pm.</ins></div>' in diff
    assert "v1 and v1 have the same content" in web.get("/articles/harbour/diff?a=1&b=1").text

    opened = web.get("/articles", params={"id": "Harbour"}, follow_redirects=False)  # the header's form
    assert opened.status_code == 303 and opened.headers["location"] == "/articles/Harbour"
    assert web.get("/articles/harbour story", follow_redirects=False).headers["location"] == "/articles/harbour-story"


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/articles/nobody", 404, "no such document"),
        ("/articles/story-000/v/9", 404, "no such document"),
        ("/articles/story-000/v/1?as=rss", 404, "'rss' is not a rendition"),
        ("/articles/story-000/diff?a=1", 400, "b must be a version number"),
        ("/articles/story-000/diff?a=0&b=1", 400, "a must be a version number"),
        ("/articles/story-000/diff?a=1&b=3", 404, "no such document"),
        ("/articles/%E6%97%A5%E6%9C%AC", 404, "is not an article id"),
        ("/articles?id=", 400, "Type an article id"),
        ("/nowhere", 404, "nothing here: /nowhere"),
    ],
)
def test_unknown_articles_versions_and_pages_are_clear_error_pages(
    site: Site, path: str, status: int, words: str
) -> None:
    page = client(site).get(path)
    assert page.status_code == status
    assert words in html.unescape(page.text) and page.headers["content-type"].startswith("text/html")


def test_healthz_is_ok_while_the_store_reads_and_503_when_it_cannot(site: Site) -> None:
    ok = client(site).get("/healthz")
    assert (ok.status_code, ok.text, ok.headers["content-type"]) == (200, "ok\n", "text/plain; charset=utf-8")
    site.store = FaultyStore(site.store, rate=1.0, after=False, operations=frozenset({"get"}))  # type: ignore[assignment]
    down = client(site).get("/healthz")
    assert down.status_code == 503 and down.text.startswith("storage cannot be read:")
    page = client(site).get("/")
    assert page.status_code == 503 and "Storage failed" in page.text


def test_metrics_serve_the_stored_file_counters_and_the_source_gauges(site: Site) -> None:
    scraped = client(site).get("/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain; version=")
    lines = scraped.text.splitlines()
    assert 'ingest_files_total{outcome="created",source="wires"} 1.0' in lines
    assert 'ingest_files_total{outcome="failed",source="wires"} 2.0' in lines
    assert 'ingest_file_errors_total{check="binary",source="wires"} 1.0' in lines
    assert 'ingest_source_failed_files{source="wires"} 2.0' in lines
    assert 'ingest_source_backlog_files{source="wires"} 0.0' in lines
    assert 'ingest_source_quiet{source="wires"} 0.0' in lines
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("ingest_")}
    # the sweep's end: its start on the run's clock plus how long it took
    success = values['ingest_source_last_success_timestamp_seconds{source="wires"}']
    assert success == pytest.approx(NOW.timestamp(), abs=5)
    arrived = (NOW - timedelta(minutes=1)).timestamp()  # fill() writes files a minute before NOW
    assert values['ingest_source_last_item_timestamp_seconds{source="wires"}'] == arrived


def test_every_response_is_locked_down_and_a_loopback_server_answers_only_loopback_names(site: Site) -> None:
    page = client(site).get("/")
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no script at all
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    guarded = client(site, hosts=LOOPBACK_NAMES)
    rebound = guarded.get("/", headers={"host": "evil.example:8080"})
    assert rebound.status_code == 421 and "answers only requests addressed to" in rebound.text
    for host in ("127.0.0.1:8080", "localhost", "[::1]:8080"):
        assert guarded.get("/healthz", headers={"host": host}).status_code == 200, host


def test_the_token_comes_from_ingest_ui_token_and_blank_is_none() -> None:
    assert ui_token({"INGEST_UI_TOKEN": "  s3cret \n"}) == "s3cret"
    assert ui_token({"INGEST_UI_TOKEN": "  "}) is None and ui_token({}) is None
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("example.org")


def config_file(tmp_path: Path, sources: bool = True) -> Path:
    (tmp_path / "drop").mkdir(exist_ok=True)
    config = tmp_path / "ingest.yaml"
    listed = f"sources:\n  - name: wires\n    location: {tmp_path / 'drop'}\n" if sources else ""
    config.write_text(f"bucket: ingest-test\nprefix: web/\n{listed}")
    return config


#: `ingest serve` is a service: its logs are JSON unless on a terminal; these tests read the lines people see.
TEXT = ("--log-format", "text")


def test_serve_exits_2_when_the_address_is_taken_or_no_source_is_configured(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        out = cli("serve", *TEXT, "--config", str(config_file(tmp_path)), "--port", port, env={})
    assert out.returncode == 2 and f"error: cannot listen on 127.0.0.1:{port}:" in out.stderr
    out = cli("serve", *TEXT, "--config", str(config_file(tmp_path, sources=False)), "--port", "0", env={})
    assert out.returncode == 2 and "no sources configured" in out.stderr
    out = cli("serve", *TEXT, "--config", str(config_file(tmp_path)), "--port", "70000", env={})
    assert out.returncode == 2 and "cannot listen on 127.0.0.1:70000" in out.stderr


def test_serve_warns_that_a_host_other_than_loopback_exposes_the_stories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound: list[str] = []
    real = web_server.bind

    def bind(host: str, port: int) -> socket.socket:  # nothing really listens beyond this machine
        bound.append(host)
        return real("127.0.0.1", 0)

    monkeypatch.setattr(web_server, "bind", bind)
    monkeypatch.setattr(web_server._Server, "run", lambda self, sockets=None: None)  # stopped at once
    out = cli("serve", *TEXT, "--config", str(config_file(tmp_path)), "--host", "0.0.0.0", "--port", "0", env={})
    assert out.returncode == 0, out.stderr
    assert bound == ["0.0.0.0"]
    assert "WARNING: serving on http://0.0.0.0:" in out.stderr
    assert "which is not loopback: anyone who can reach it can read the stories" in out.stderr
    quiet = cli("serve", *TEXT, "--config", str(config_file(tmp_path)), "--port", "0", env={"INGEST_UI_TOKEN": "t"})
    assert quiet.returncode == 0 and "WARNING" not in quiet.stderr and "retry on" in quiet.stderr
