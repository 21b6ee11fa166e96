"""A small W3C WebDriver client (httpx) for Debian's chromedriver + headless chromium.

The WebDriver protocol is JSON over HTTP; these few calls are all the page test needs, so no
selenium (whose current release needs packages newer than this project pins).
:func:`start` raises :class:`Unavailable` with the reason when the browser cannot be started.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class Unavailable(RuntimeError):
    """No headless browser here (the message says why)."""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """One chromedriver process and one headless chromium session."""

    def __init__(self, proc: subprocess.Popen, url: str, session: str) -> None:
        self.proc, self.base, self.session = proc, url, session
        self.http = httpx.Client(base_url=f"{url}/session/{session}", timeout=60)

    def _call(self, method: str, path: str, body: dict | None = None) -> object:
        r = self.http.request(method, path, json=body if method == "POST" else None)
        value = r.json().get("value")
        if r.status_code != 200:
            raise AssertionError(f"webdriver {method} {path}: {r.status_code} {value}")
        return value

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def find_all(self, css: str) -> list[str]:
        return [e[ELEMENT] for e in self._call("POST", "/elements", {"using": "css selector", "value": css})]

    def wait_for(self, css: str, count: int = 1, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.find_all(css)
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{css!r}: fewer than {count} elements after {timeout}s")

    def click(self, element: str) -> None:
        self._call("POST", f"/element/{element}/click", {})

    def type(self, element: str, text: str) -> None:
        self._call("POST", f"/element/{element}/value", {"text": text})

    def text(self, element: str) -> str:
        return str(self._call("GET", f"/element/{element}/text"))

    def attribute(self, element: str, name: str) -> str | None:
        return self._call("GET", f"/element/{element}/attribute/{name}")

    def script(self, source: str, *args: object) -> object:
        return self._call("POST", "/execute/sync", {"script": source, "args": list(args)})

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(str(self._call("GET", "/screenshot"))))

    def close(self) -> None:
        try:
            self.http.delete("")
        finally:
            self.http.close()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start(width: int = 1280, height: int = 1100) -> Browser:
    """chromedriver on a free loopback port driving headless chromium."""
    driver = shutil.which("chromedriver")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not driver or not binary:
        raise Unavailable("no chromedriver/chromium on PATH (install Debian's chromium and chromium-driver: "
                          "apt-get install -y chromium chromium-driver)")
    port = _port()
    proc = subprocess.Popen([driver, f"--port={port}", "--allowed-ips=127.0.0.1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/status", timeout=2).json()["value"]["ready"]:
                break
        except (httpx.TransportError, ValueError, KeyError):
            time.sleep(0.2)
    else:
        proc.kill()
        raise Unavailable("chromedriver did not answer within 30 s")
    args = ["--headless=new", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}",
            "--no-first-run", "--disable-extensions"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # chromium's sandbox cannot run as root (CI)
    caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome",
                                             "goog:chromeOptions": {"binary": binary, "args": args}}}}
    r = httpx.post(f"{url}/session", json=caps, timeout=60)
    if r.status_code != 200:
        proc.kill()
        raise Unavailable(f"chromium did not start: {r.text[:500]}")
    return Browser(proc, url, r.json()["value"]["sessionId"])
