"""The dashboard page in a real headless Chromium, against a live queue.

The server is uvicorn in a thread, the queue lives on the embedded fakeredis server in wall-clock time and a live
Worker processes it. The browser is Debian's ``chromium`` package (``apt-get install chromium``), driven by the
Python ``playwright`` package; no browser is downloaded. Without chromium the test is skipped, except under
``CI=true`` where that is a failure.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI

import queuesim
from queuesim import Job, Queue, Worker

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
TOKEN = "e2e-admin-token-4567"


def _need(condition: bool, reason: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true needs this for the dashboard's browser test: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server() -> Iterator[tuple[str, queuesim.Connection]]:
    """The dashboard served by uvicorn on a free loopback port, over an embedded store in wall time."""
    import uvicorn

    from queuesim.dashboard import create_app

    conn = queuesim.connect()
    Queue("orders", conn)
    app = create_app(conn, ["orders"], token=TOKEN, health_interval_s=1.0, sample_interval_s=0.5)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True, name="dashboard-e2e-server")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", conn
    finally:
        server.should_exit = True
        thread.join(10)
        conn.close()


def test_the_page_shows_counts_moving_and_retries_a_failed_job_by_click(live_server: tuple[str, Any],
                                                                         tmp_path: Path) -> None:
    _need(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _need(False, "the playwright package is not installed (pip install playwright)")
        return
    url, conn = live_server
    queue = Queue("orders", conn)
    provider_fixed = threading.Event()

    def process(job: Job) -> dict[str, Any]:
        time.sleep(0.3)
        if job.name == "charge-card" and not provider_fixed.is_set():
            raise ConnectionError("payment provider returned 503")
        return {"order": job.data["order"], "ok": True}

    for n in range(1, 6):
        queue.add("pack-order", {"order": n})
    flaky = queue.add("charge-card", {"order": 6}, attempts=1)

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
        worker: Worker | None = None
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/#token={TOKEN}")
            row = page.locator('tr[data-queue="orders"]')

            def cell(col: str) -> Any:
                return row.locator(f'td[data-col="{col}"]')

            expect(cell("waiting")).to_have_text("6", timeout=10_000)
            expect(cell("completed")).to_have_text("0")
            assert "token" not in page.url  # the secret left the address bar
            page.select_option("#refresh", "1000")

            # a live worker starts: the page must show the counts moving, without a reload
            worker = Worker(queue, process, concurrency=1, drain_delay_s=0.2, name="e2e-worker").start()
            seen = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                value = cell("completed").inner_text()
                if not seen or seen[-1] != value:
                    seen.append(value)
                if value == "5" and cell("failed").inner_text() == "1":
                    break
                time.sleep(0.1)
            assert seen[0] == "0"
            assert seen[-1] == "5", seen
            assert [int(v) for v in seen] == sorted(int(v) for v in seen)
            expect(cell("waiting")).to_have_text("0")
            expect(page.locator(f'#failed tbody tr[data-job="{flaky.id}"]')).to_contain_text("503")

            # find the failed job by its id and retry it with the button
            page.select_option("#search-queue", "orders")
            page.fill("#search-id", flaky.id)
            page.click("#search-form button[type=submit]")
            expect(page.locator("#detail-state")).to_have_text("failed", timeout=5_000)
            expect(page.locator("#timeline li[data-event=failed]")).to_contain_text("payment provider returned 503")
            provider_fixed.set()
            page.click("#btn-retry")
            expect(page.locator("#toast")).to_contain_text(f"Job {flaky.id} queued for retry")
            expect(page.locator("#detail-state")).to_have_text("completed", timeout=15_000)
            expect(cell("completed")).to_have_text("6", timeout=10_000)
            expect(cell("failed")).to_have_text("0")
            expect(page.locator("#timeline li[data-event=completed]")).to_have_count(1)
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            assert errors == []
        finally:
            if worker is not None:
                worker.close(timeout=5)
            browser.close()

    # the retried job really ran again, in the queue itself
    done = queue.get_job(flaky.id)
    assert done is not None
    assert queue.get_job_state(flaky.id) == "completed"
    assert done.return_value == {"order": 6, "ok": True}
    assert done.attempts_started == 2
    assert done.processed_by == "e2e-worker"
