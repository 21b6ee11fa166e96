"""``prerec serve`` as a child process for the tests (one per replica), with bounded waits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

START_TIMEOUT = 90.0
KEY = "durability-test-key-0123456789"


def start_server(run: Path, target: Path, db: Path | str, port: int, log: Path,
                 extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """Start ``prerec serve`` (API key from the environment, non-default limits) and wait for /healthz."""
    cmd = [sys.executable, "-c", "import sys; from prerec.cli import main; sys.exit(main())", "serve",
           "--run", str(run), "--target", f"tiny=canonical:{target}", "--host", "127.0.0.1",
           "--port", str(port), "--db", str(db), "--retrieval", "hnsw", "--max-events", "50",
           "--max-body-bytes", "65536", "--max-id-chars", "64", "--no-access-log", *extra]
    env = {**os.environ, "PREREC_API_KEYS": KEY}
    proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server not ready within {START_TIMEOUT}s: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
