"""Headless Chromium driven over the DevTools protocol (a websocket; aiohttp is already a
dependency), for the dashboard's end-to-end test: type into the page, wait for it,
evaluate, take screenshots. Chromium is Debian's `chromium` package."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

START_SECONDS = 30.0
ARTIFACTS = Path(os.environ.get("DISPUTES_TEST_ARTIFACTS", Path(__file__).parents[1] / "artifacts"))


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = "headless Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI must run the dashboard page test")
        pytest.skip(reason)
    return path


class PageError(AssertionError):
    pass


class Page:
    """One tab, over the browser's websocket in flattened-session mode."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: str) -> None:
        self.ws = ws
        self.session = session
        self.next_id = 0
        self.exceptions: list[str] = []
        self.console_errors: list[str] = []

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        await self.ws.send_json(
            {"id": ident, "method": method, "params": params or {}, "sessionId": self.session}
        )
        while True:
            message = await self.ws.receive(timeout=60)
            if message.type != aiohttp.WSMsgType.TEXT:
                raise PageError(f"the browser closed the connection ({message.type})")
            reply = json.loads(message.data)
            if reply.get("id") == ident:
                if "error" in reply:
                    raise PageError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self._event(reply)

    def _event(self, event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.exceptions.append(
                details.get("exception", {}).get("description") or details.get("text", "")
            )
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.console_errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise PageError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Polls until `expression` is truthy; returns its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                value = await self.evaluate(expression)
            except PageError:  # the document is still being replaced (navigation)
                value = None
            if value:
                return value
            if loop.time() > deadline:
                state = await self.evaluate(
                    "JSON.stringify({view: document.body?.dataset.view, loaded: "
                    "document.body?.dataset.loaded, status: document.getElementById('status')"
                    "?.textContent, href: location.href})"
                )
                raise PageError(f"timed out waiting for {expression}: {state}")
            await asyncio.sleep(0.1)

    async def go(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})

    async def type_into(self, selector: str, text: str) -> None:
        """Focuses the element and types `text` as keyboard input would."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", {"text": text})

    async def screenshot(self, name: str) -> Path:
        """A PNG of the whole page under tests/artifacts (the CI keeps that folder)."""
        height = await self.evaluate("document.documentElement.scrollHeight")
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": int(height), "deviceScaleFactor": 1, "mobile": False},
        )
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        return path


@asynccontextmanager
async def browser(chromium: str, profile: Path) -> AsyncIterator[Page]:
    """A headless Chromium with one page open, closed afterwards."""
    process = await asyncio.create_subprocess_exec(
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--remote-debugging-port=0",
        "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        endpoint = await asyncio.wait_for(_devtools_url(process), START_SECONDS)
        assert process.stderr is not None
        drain = asyncio.create_task(process.stderr.read())  # a full pipe would stall it
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(endpoint, max_msg_size=64 * 1024 * 1024) as ws,
        ):
            setup = Page(ws, "")
            target = await _browser_call(setup, "Target.createTarget", {"url": "about:blank"})
            attached = await _browser_call(
                setup, "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )
            page = Page(ws, attached["sessionId"])
            page.next_id = setup.next_id
            await page.send("Page.enable")
            await page.send("Runtime.enable")
            await page.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            )
            # Before any of the page's own scripts: count CSP violations.
            await page.send(
                "Page.addScriptToEvaluateOnNewDocument",
                {
                    "source": "window.__csp = []; document.addEventListener("
                    "'securitypolicyviolation', (e) => window.__csp.push("
                    "e.violatedDirective + ' ' + e.blockedURI));"
                },
            )
            yield page
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        if "drain" in locals():
            await drain


async def _browser_call(page: Page, method: str, params: dict[str, Any]) -> dict[str, Any]:
    page.next_id += 1
    await page.ws.send_json({"id": page.next_id, "method": method, "params": params})
    while True:
        reply = json.loads((await page.ws.receive(timeout=30)).data)
        if reply.get("id") == page.next_id:
            if "error" in reply:
                raise PageError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply["result"]
            return result


async def _devtools_url(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    lines = []
    while True:
        line = (await process.stderr.readline()).decode(errors="replace")
        if not line:
            raise PageError("chromium exited before it listened:\n" + "".join(lines[-20:]))
        lines.append(line)
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            return found.group(1)
