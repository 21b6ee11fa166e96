"""A throw-away PostgreSQL server for the tests: initdb in a temporary folder, listening on a
free port of 127.0.0.1 only, trust authentication, stopped at the end.

The binaries are Debian's ``postgresql`` package (``.ci/run`` installs it): ``initdb`` and
``postgres`` are looked up on ``PATH`` and in ``/usr/lib/postgresql/*/bin``. PostgreSQL refuses
to run as root, so under root (as in CI) the server runs as the ``postgres`` user (made by the
package) and its folder belongs to that user.

:func:`start` raises :class:`Unavailable` with the reason when the server cannot be started;
the fixtures turn it into a failure when ``CI=true`` and into a skip elsewhere.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class Unavailable(RuntimeError):
    """PostgreSQL cannot be started here (the message says why)."""


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for path in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return path
    raise Unavailable(f"no {name!r} on PATH or in /usr/lib/postgresql/*/bin (install Debian's postgresql package: "
                      "apt-get install -y postgresql)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One running server; :meth:`create_database` gives each test a fresh database URL."""

    def __init__(self, folder: Path, port: int, proc: subprocess.Popen, user: str) -> None:
        self.folder, self.port, self.proc, self.user = folder, port, proc, user
        self._n = 0

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def create_database(self, prefix: str = "t") -> str:
        import psycopg

        self._n += 1
        name = f"{prefix}_{os.getpid()}_{self._n}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: clients are disconnected
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)


def _as_user() -> tuple[dict, str]:
    """Popen options that drop root to the ``postgres`` user (nothing when not root)."""
    if os.geteuid() != 0:
        return {}, pwd.getpwuid(os.geteuid()).pw_name
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise Unavailable("running as root and there is no 'postgres' user to run the server as") from exc

    def drop() -> None:
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    return {"preexec_fn": drop, "env": {**os.environ, "HOME": pw.pw_dir, "USER": "postgres"}}, "postgres"


def start(timeout: float = 60.0, fsync: bool = False) -> PostgresServer:
    """initdb + postgres on a free loopback port; :class:`Unavailable` if it cannot. ``fsync``
    off by default (the tests kill replicas, never the database; benchmarks turn it on)."""
    initdb, postgres = _binary("initdb"), _binary("postgres")
    options, user = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="prerec-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    r = subprocess.run([initdb, "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"],
                       capture_output=True, text=True, cwd=folder, **options)
    if r.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise Unavailable(f"initdb failed ({r.returncode}): {(r.stderr or r.stdout).strip()[-500:]}")
    port = free_port()
    log = open(folder / "server.log", "w")  # noqa: SIM115 - closed with the process
    if os.geteuid() == 0:
        os.chown(folder / "server.log", pwd.getpwnam("postgres").pw_uid, -1)
    proc = subprocess.Popen(
        [postgres, "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
         "-c", f"unix_socket_directories={folder}", "-c", f"fsync={'on' if fsync else 'off'}", "-c", "max_connections=100",
         "-c", "shared_buffers=32MB"],
        stdout=log, stderr=subprocess.STDOUT, cwd=folder, **options)
    server = PostgresServer(folder, port, proc, user)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = (folder / "server.log").read_text(errors="replace")[-800:]
            server.stop()
            raise Unavailable(f"postgres exited with code {proc.returncode}: {text}")
        try:
            import psycopg

            with psycopg.connect(server.url(), connect_timeout=2):
                return server
        except psycopg.OperationalError:
            time.sleep(0.2)
    server.stop()
    raise Unavailable(f"postgres did not accept connections on 127.0.0.1:{port} within {timeout:.0f}s")
