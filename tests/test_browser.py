"""``ingest serve`` in a real browser: Debian's Chromium, driven by Playwright, against the real command (a
subprocess, as an operator starts it) and the suite's SeaweedFS. The person on call sees a failed file and why,
is refused without the token, puts the file back with it, and the next run stores it; then opens an article, its
history and the diff between two versions. Every page is saved as a PNG under test-output/screenshots/.

Playwright's own driver (in its wheel) talks to /usr/bin/chromium; it never downloads a browser. Without
Chromium these tests are skipped (``make browser`` installs it); on CI (``$CI`` set) they fail instead, so a
green CI always means they ran.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest import devserver
from tests.conftest import BUCKET, ROOT, cli
from tests.test_runner import story

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-output" / "screenshots"
TOKEN = "night-desk-token"
#: What keeps Chromium from reaching anything but the page under test, or doing anything slow at start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    why = f"{CHROMIUM} is missing: run `make browser` (as root it installs Debian's chromium) to run the browser tests"
    if os.environ.get("CI"):
        pytest.fail(why, pytrace=False)
    pytest.skip(why, allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402  (after the skip: needs the browser)


@dataclass
class Server:
    """``ingest serve`` running in its own process over one drop folder and one key prefix."""

    url: str
    drop: Path
    config: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def server(local_s3: devserver.LocalS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``ingest serve --port 0`` with the token set; stopped by SIGTERM at the end, which must exit 0."""
    home = tmp_path_factory.mktemp("serve")
    drop = home / "drop"
    drop.mkdir()
    config = home / "ingest.yaml"
    config.write_text(f"sources:\n  - name: wires\n    location: {drop}\n    settle_seconds: 1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update(local_s3.env())
    env.update({"INGEST_BUCKET": BUCKET, "INGEST_PREFIX": f"t-{uuid.uuid4().hex[:10]}/"})
    log = home / "serve.log"
    command = [sys.executable, "-m", "ingest", "serve", "--config", str(config), "--port", "0"]
    with log.open("wb") as err:
        process = subprocess.Popen(command, env={**env, "INGEST_UI_TOKEN": TOKEN}, stderr=err, cwd=home)
    try:
        url = _serving_at(log, process)
        yield Server(url, drop, config, env, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, f"ingest serve exited {code} on SIGTERM:\n{log.read_text()}"


def _serving_at(log: Path, process: subprocess.Popen[bytes]) -> str:
    """The address ``ingest serve`` logs once it listens (it was asked for any free port)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if found := re.search(r" on (http://127\.0\.0\.1:\d+/) ", log.read_text()):
            return found.group(1)
        if process.poll() is not None:
            raise AssertionError(f"ingest serve exited {process.returncode}:\n{log.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"ingest serve did not start:\n{log.read_text()}")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context per test (its own cookies); any JavaScript dialog fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        yield opened
    finally:
        context.close()
    assert dialogs == [], f"a script ran on the page: {dialogs}"


def settled(path: Path) -> None:
    """Make ``path`` two minutes old, as a file done being written (the source's settle_seconds is 1)."""
    stamp = time.time() - 120
    os.utime(path, (stamp, stamp))


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def ingest(server: Server, *args: str) -> str:
    """``ingest ARGS`` in this process, against the server's config, bucket and prefix."""
    ran = cli(*args, "--config", str(server.config), "--log-format", "text", env=server.env)
    assert ran.returncode in (0, 1), ran.stderr
    return ran.stdout


def test_a_failed_file_is_refused_without_the_token_put_back_with_it_and_stored_by_the_next_run(
    server: Server, page: Page
) -> None:
    (server.drop / "good.txt").write_text(story(1))
    (server.drop / "bad.txt").write_bytes(b"\x00\x01binary, not a story")
    for path in server.drop.iterdir():
        settled(path)
    ingest(server, "run")
    assert (server.drop / "failed" / "bad.txt").exists()

    page.goto(server.url)
    failed = page.locator("table.failed tr", has_text="bad.txt")
    assert "is binary, not text" in failed.inner_text() and "binary" in failed.inner_text()
    assert page.locator(".badge.failing").first.is_visible()
    shot(page, "01-sources-failing")

    failed.get_by_role("button", name="Retry").click()  # the token field left empty
    page.wait_for_load_state()
    assert "Retry refused" in page.locator("h1").inner_text()
    assert "no token was given" in page.locator(".problem").inner_text()
    shot(page, "02-retry-refused")
    assert (server.drop / "failed" / "bad.txt").exists() and not (server.drop / "bad.txt").exists()

    (server.drop / "failed" / "bad.txt").write_text(story(2))  # the cause fixed, the operator puts it back
    page.goto(server.url)
    failed = page.locator("table.failed tr", has_text="bad.txt")
    failed.get_by_label("Token").fill(TOKEN)
    failed.get_by_role("button", name="Retry").click()
    page.wait_for_url(re.compile(r"/\?retried=bad\.txt&source=wires$"))
    assert "bad.txt was put back into wires" in page.locator(".notice").inner_text()
    shot(page, "03-retry-done")
    assert (server.drop / "bad.txt").exists() and not (server.drop / "failed" / "bad.txt").exists()

    settled(server.drop / "bad.txt")
    assert re.search(r"^created +\S*bad\.txt -> ", ingest(server, "run"), re.M)
    page.goto(server.url)
    assert page.locator("table.failed").count() == 0
    assert page.locator("#source-wires .badge").inner_text().lower() == "healthy"
    shot(page, "04-sources-healthy")

    page.locator("#source-wires a[href^='/runs/']").click()  # the last sweep's run report
    files = page.locator("table.files").inner_text()
    assert "bad.txt" in files and "created" in files
    shot(page, "05-run-report")


def test_an_article_history_its_versions_and_the_diff_between_two(server: Server, page: Page, tmp_path: Path) -> None:
    path = tmp_path / "harbour-bridge.txt"
    path.write_text("<script>alert(1)</script> Harbour bridge closes\n\nThe bridge closes at noon.\n\nBuses divert.\n")
    ingest(server, "file", str(path))
    path.write_text("<script>alert(1)</script> Harbour bridge closes\n\nThe bridge closes at 2 pm.\n\nBuses divert.\n")
    ingest(server, "file", "--note", "Time corrected", "--editor", "J. Smith", str(path))

    page.goto(server.url)
    page.get_by_label("Article id").fill("harbour-bridge")
    page.get_by_role("button", name="Open").click()
    page.wait_for_url(re.compile(r"/articles/harbour-bridge$"))
    assert page.locator("h1").inner_text() == "<script>alert(1)</script> Harbour bridge closes"  # shown, not run
    rows = page.locator("table.history tbody tr")
    assert rows.count() == 2
    first, second = (rows.nth(n).locator("td").all_inner_texts()[:5] for n in (0, 1))
    assert (first[0], first[2], first[3], first[4]) == ("v1", "created", "", "")
    assert (second[0], second[2], second[3], second[4]) == ("v2", "corrected", "J. Smith", "Time corrected")
    shot(page, "06-article-history")

    rows.nth(1).get_by_role("link", name="ninjs", exact=True).click()
    assert '"uri": "urn:newsml:localhost:harbour-bridge"' in page.locator("pre").inner_text()
    shot(page, "07-article-v2-ninjs")

    page.go_back()
    page.get_by_role("button", name="Show the diff").click()  # from v1 to v2, the preselected pair
    page.wait_for_url(re.compile(r"/articles/harbour-bridge/diff\?a=1&b=2$"))
    assert page.locator(".diff .removed").inner_text() == "-The bridge closes at noon."
    assert page.locator(".diff .added").inner_text() == "+The bridge closes at 2 pm."
    shot(page, "08-article-diff")
