"""Headless Chromium driven through the DevTools protocol (over its WebSocket, with the
`websockets` that uvicorn[standard] brings): open a page, run JavaScript in it, wait for what it
draws, press and drag the mouse, take screenshots, and list every URL it fetched."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.services import require_chromium

START_TIMEOUT_S = 60
WAIT_TIMEOUT_S = 60
LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class BrowserError(AssertionError):
    pass


class Page:
    """One tab: its DevTools session on the browser's connection."""

    def __init__(self, connection: ClientConnection, session_id: str) -> None:
        self.connection = connection
        self.session_id = session_id
        self.ids = itertools.count(1)
        self.requested: list[str] = []  # every URL the page asked for
        self.errors: list[str] = []  # uncaught exceptions and console errors

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result, keeping the events that come before it."""
        message_id = next(self.ids)
        message = {"id": message_id, "method": method, "params": params}
        self.connection.send(json.dumps({**message, "sessionId": self.session_id}))
        while True:
            answer = json.loads(self.connection.recv(timeout=WAIT_TIMEOUT_S))
            if answer.get("id") == message_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})  # type: ignore[no-any-return]
            self.note(answer)

    def note(self, event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requested.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description") or details["text"])
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(
                " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"])
            )

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout_s: float = WAIT_TIMEOUT_S) -> None:
        """Poll until the expression is truthy in JavaScript (one that throws, as while the
        page loads, is not yet)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.evaluate(f"Boolean({expression})"):
                    return
            except BrowserError:
                pass
            if time.monotonic() > deadline:
                text = self.evaluate("document.getElementById('content')?.innerText ?? ''")
                raise BrowserError(
                    f"timed out waiting for {expression}; errors {self.errors}; page: {text[:2000]}"
                )
            time.sleep(0.2)

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def text(self, selector: str = "#content") -> str:
        """The text of an element (of SVG ones too: plotly's legends and ticks)."""
        node = f"document.querySelector({json.dumps(selector)})"
        return str(self.evaluate(f"{node}?.innerText ?? {node}?.textContent ?? ''"))

    def box(self, selector: str) -> dict[str, float]:
        """The element's place on the page, in CSS pixels (scrolled into view first)."""
        return self.evaluate(  # type: ignore[no-any-return]
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
            "return {x: r.x, y: r.y, width: r.width, height: r.height}; })()"
        )

    def drag(self, selector: str, points: Sequence[tuple[float, float]]) -> None:
        """Press the mouse at the first point (fractions of the element's box), move through
        the others, release: the browser turns it into pointer events."""
        box = self.box(selector)
        at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
        mouse = {"button": "left", "clickCount": 1}
        self.call("Input.dispatchMouseEvent", type="mousePressed", x=at[0][0], y=at[0][1], **mouse)
        for x, y in at[1:]:
            self.call(
                "Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y, button="left", buttons=1
            )
        self.call(
            "Input.dispatchMouseEvent", type="mouseReleased", x=at[-1][0], y=at[-1][1], **mouse
        )

    def screenshot(self, selector: str) -> bytes:
        """A PNG of the element as it is drawn, scrolled into the viewport (capturing beyond
        the viewport would resize it, and the page's layout with it)."""
        box = self.box(selector)
        scroll = self.evaluate("({x: window.scrollX, y: window.scrollY})")
        clip = {**box, "x": box["x"] + scroll["x"], "y": box["y"] + scroll["y"], "scale": 1}
        result = self.call("Page.captureScreenshot", format="png", clip=clip)
        return base64.b64decode(result["data"])

    def full_screenshot(self) -> bytes:
        """A PNG of the whole page, below the fold too (for a person to look at)."""
        result = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(result["data"])


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the block, in a profile of its own."""
    program = require_chromium()
    profile = tempfile.mkdtemp(prefix="d2l-chromium-")
    command = [
        program,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
        "about:blank",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        url = listening_url(process)
        with connect(url, max_size=None, open_timeout=START_TIMEOUT_S) as connection:
            yield Browser(connection)
    finally:
        process.kill()
        process.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def listening_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    lines = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        match = LISTENING.search(line)
        if match:
            return match.group(1)
    raise BrowserError("Chromium did not start: " + "".join(lines[-20:]))


class Browser:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.ids = itertools.count(1_000_000)

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        self.connection.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            answer = json.loads(self.connection.recv(timeout=WAIT_TIMEOUT_S))
            if answer.get("id") == message_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})  # type: ignore[no-any-return]

    @contextmanager
    def page(self, url: str, *, width: int = 1400, height: int = 1000) -> Iterator[Page]:
        """A new tab on `url`, recording its requests and errors from the start."""
        target = self.command("Target.createTarget", url="about:blank")["targetId"]
        session = self.command("Target.attachToTarget", targetId=target, flatten=True)
        page = Page(self.connection, session["sessionId"])
        try:
            for domain in ("Page", "Runtime", "Network"):
                page.call(f"{domain}.enable")
            page.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            page.goto(url)
            yield page
        finally:
            self.command("Target.closeTarget", targetId=target)
