"""Access control of the HTTP service: API keys, the Host allow-list, where it may listen.

- API keys come from a file (``--api-keys-file``: one key per line, ``#`` comments) or from an
  environment variable (``PREREC_API_KEYS`` by default: keys separated by commas or
  whitespace), never from the command line (it is visible to every local user in ``ps``). A
  client sends ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``. Keys are required on the
  write endpoints (``POST /events``, ``PUT``/``DELETE`` items) and, with ``--protect-reads``,
  on every other one but ``GET /healthz``. No key: 401 (with ``WWW-Authenticate``); a key that
  is not one of them: 403. The given key is compared with every configured key through
  SHA-256 digests and :func:`hmac.compare_digest`, all of them each time (constant time).
- Host allow-list: Starlette's ``TrustedHostMiddleware``, loopback names by default, so a web
  page cannot reach the service through DNS rebinding (its requests carry the attacker's host
  name). Behind a reverse proxy, allow the public name (``--allowed-host api.example.com``).
- Listening on a non-loopback address without API keys is refused unless forced
  (``--insecure-bind``); a warning is logged either way.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from prerec.errors import PrerecError
from prerec.serving.limits import json_reply

log = logging.getLogger(__name__)

KEYS_ENV = "PREREC_API_KEYS"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
MIN_KEY_CHARS = 16
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
READ_ONLY_POSTS = frozenset({"/recommend", "/recommend/batch"})  # POST, but they change nothing
OPEN_PATHS = frozenset({"/healthz", "/"})  # "/": the web page (static; its requests carry the key)
OPEN_PREFIXES = ("/static/docs/", "/static/web/")  # public files: Swagger UI, ReDoc, the page's script


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


class ApiKeys:
    """A set of keys, checked in constant time (only their SHA-256 digests are kept)."""

    def __init__(self, keys: Iterable[str]) -> None:
        keys = [k.strip() for k in keys if k.strip()]
        short = [n for n, k in enumerate(keys) if len(k) < MIN_KEY_CHARS]
        if short:
            raise PrerecError(f"API key {short[0] + 1}: shorter than {MIN_KEY_CHARS} characters "
                              f"(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        self._digests = [_digest(k.encode("utf-8")) for k in keys]

    def __len__(self) -> int:
        return len(self._digests)

    def check(self, given: bytes) -> bool:
        """True if ``given`` is one of the keys (every key compared, no early exit)."""
        d = _digest(given)
        ok = False
        for known in self._digests:
            ok |= hmac.compare_digest(d, known)
        return ok

    @classmethod
    def from_file(cls, path: str | Path) -> ApiKeys:
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise PrerecError(f"--api-keys-file {path}: cannot read ({exc})") from exc
        keys = cls(line.split("#", 1)[0] for line in lines)
        if not len(keys):
            raise PrerecError(f"--api-keys-file {path}: no key in the file")
        if os.name == "posix" and path.stat().st_mode & 0o077:
            log.warning("--api-keys-file %s is readable by other users (chmod 600 it)", path)
        return keys

    @classmethod
    def from_env(cls, name: str = KEYS_ENV) -> ApiKeys | None:
        """Keys from the environment variable ``name`` (None when it is unset or empty)."""
        value = os.environ.get(name, "")
        keys = cls(value.replace(",", " ").split())
        return keys if len(keys) else None


def is_loopback(host: str) -> bool:
    """True for a loopback name or address (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, keys: ApiKeys | None, force: bool, allowed_hosts: list[str]) -> None:
    """Refuse a non-loopback ``host`` without keys unless ``force``; warn either way."""
    if is_loopback(host):
        return
    if keys is None and not force:
        raise PrerecError(f"--host {host}: listening on a non-loopback address without API keys would let anyone "
                          f"who reaches the port rewrite the catalog; give --api-keys-file (or {KEYS_ENV}), "
                          "bind 127.0.0.1 behind a reverse proxy, or pass --insecure-bind to force it")
    log.warning("listening on %s, reachable from other machines%s; serve it behind a TLS reverse proxy", host,
                "" if keys is not None else " WITHOUT API keys (--insecure-bind)")
    if all(is_loopback(h) for h in allowed_hosts):
        log.warning("only loopback Host names are allowed (%s): remote clients get 400 until you add the "
                    "name they use with --allowed-host", ", ".join(allowed_hosts))


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


def needs_key(method: str, path: str, protect_reads: bool) -> bool:
    """Whether a request must carry a key: writes always, reads with ``protect_reads``."""
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return False
    if method in WRITE_METHODS and not (method == "POST" and path in READ_ONLY_POSTS):
        return True
    return protect_reads


class ApiKeyMiddleware:
    """ASGI middleware: 401 without a key, 403 with a wrong one, before the body is read."""

    def __init__(self, app: object, keys: ApiKeys, protect_reads: bool = False) -> None:
        self.app, self.keys, self.protect_reads = app, keys, protect_reads

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        if scope["type"] != "http" or not needs_key(scope["method"], scope["path"], self.protect_reads):
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-api-key")
        auth = _header(scope, b"authorization")
        if given is None and auth is not None and auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        if not given:
            await json_reply(send, 401, "an API key is required (Authorization: Bearer KEY or X-API-Key: KEY)",
                         [(b"www-authenticate", b'Bearer realm="prerec"')])
        elif not self.keys.check(given):
            await json_reply(send, 403, "this API key is not accepted")
        else:
            await self.app(scope, receive, send)
