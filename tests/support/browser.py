"""Headless Debian Chromium (/usr/bin/chromium, installed by hack/setup.sh) driven by
Playwright, for browser tests of pages served on loopback. Playwright is only the driver:
it never downloads a browser of its own (`playwright install` is never run).

    with chromium(tmp_path) as browser:
        page = browser.new_page()
        page.goto(url)
        page.screenshot(path=tmp_path / "page.png")
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialing Google's hosts, which
# this machine's closed network refuses; --no-sandbox because the tests run as root.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync")


@contextlib.contextmanager
def chromium(workdir: Path | None = None, *, executable: str = CHROMIUM,
             timeout_ms: float = 15_000, hosts: dict[str, str] | None = None,
             args: tuple[str, ...] = ()) -> Iterator[BrowserContext]:
    """A headless Chromium with a new, empty profile, closed when the block ends.
    `hosts` maps host names to loopback addresses (no DNS here), e.g.
    {"workspace.test": "127.0.0.1"}, or to an address and a port: Chromium's rules then
    send every URL of that host, whatever port it names, to that port. `args`: more
    command-line switches."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        profile = workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=False)
        playwright = stack.enter_context(sync_playwright())
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True,
            args=[*CHROMIUM_ARGS, *args, *(
                [f"--host-resolver-rules={', '.join(f'MAP {h} {a}' for h, a in hosts.items())}"]
                if hosts else [])])
        stack.callback(context.close)
        context.set_default_timeout(timeout_ms)
        yield context
