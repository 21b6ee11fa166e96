"""Request limits of the HTTP service, and error messages that never echo much of the input.

Every limit has a safe default and a ``prerec serve`` option; a request over one is answered
413 (body size) or 422 (the others) with a message naming the field and quoting at most a short
excerpt of the offending value. Why each exists (measured on the B1 service before they did):

- ``max_body_bytes``: a 300 MB body was read whole (0.9 GB extra peak memory) and echoed back.
- ``max_id_chars``: a 5 MB ``user_id`` was stored for good.
- ``max_text_chars``: raw item texts are encoded by the run's text encoder; a text is also cut
  to the encoder's window before encoding (one window per item, serving/encoding.py).
- ``max_history``, ``max_batch``, ``max_k`` and ``max_results`` (batch size x k): 1,024
  one-item histories with k = 1000 (an 11 KB request) returned 89 MB and held ~600 MB.
- ``max_texts``: distinct raw texts in one recommend request (each costs an encoder window).
- ``max_events`` / ``max_items``: entries of one ``POST /events`` / ``PUT .../items``.

Timestamps are unix seconds in ``[0, MAX_TIMESTAMP]`` (up to 2100-01-01T00:00:00Z).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from prerec.errors import PrerecError

MAX_TIMESTAMP = 4_102_444_800  # 2100-01-01T00:00:00Z
EXCERPT_CHARS = 40


@dataclass(frozen=True)
class Limits:
    """The HTTP layer's limits (see the module docstring); all positive integers."""

    max_body_bytes: int = 2 * 1024 * 1024
    max_id_chars: int = 256
    max_text_chars: int = 10_000
    max_history: int = 1024
    max_batch: int = 256
    max_k: int = 1000
    max_results: int = 20_000
    max_texts: int = 32
    max_events: int = 10_000
    max_items: int = 1000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PrerecError(f"--{f.name.replace('_', '-')} {value!r}: expected a positive integer")


def excerpt(value: Any, n: int = EXCERPT_CHARS) -> str:
    """A short, printable, JSON-safe quotation of ``value`` (strings and lists are cut)."""
    if isinstance(value, str):
        head = repr(value[:n])  # repr escapes lone surrogates and control characters
        return head if len(value) <= n else f"{head}... ({len(value):,} characters)"
    if isinstance(value, list | tuple):
        return f"a list of {len(value):,} entries"
    if isinstance(value, dict):
        return f"an object with {len(value):,} keys"
    text = repr(value)
    return text if len(text) <= n else text[:n] + "..."


def _loc_part(part: Any) -> str | int:
    return part if isinstance(part, int) else (part if _printable(part, 60) else excerpt(part))


def _printable(s: Any, n: int) -> bool:
    return isinstance(s, str) and len(s) <= n and s.isprintable() and s.isascii()


def validation_details(errors: list[dict]) -> list[dict]:
    """pydantic's errors without their ``input``/``ctx`` (which may be megabytes, NaN or lone
    surrogates, none of which a JSON answer can carry), each field named by its location."""
    out = []
    for e in errors[:20]:
        loc = [_loc_part(p) for p in e.get("loc", ())]
        msg = str(e.get("msg", "invalid value"))
        if "input" in e and e.get("type") not in ("missing", "json_invalid"):
            msg = f"{msg} (got {excerpt(e['input'])})"
        out.append({"loc": loc, "msg": msg.encode("utf-8", "backslashreplace").decode("utf-8")[:300],
                    "type": str(e.get("type", "value_error"))})
    if len(errors) > 20:
        out.append({"loc": [], "msg": f"... and {len(errors) - 20} more errors", "type": "truncated"})
    return out


class BodySizeLimit:
    """ASGI middleware bounding request bodies: a declared ``Content-Length`` over the limit is
    answered 413 at once, before the body is read (400 if it is not a number); a body sent
    without a length is counted as it arrives and the read fails with a 413 once over."""

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, int(max_body_bytes)

    def _too_large(self, size: str) -> str:
        return f"request body {size}; at most {self.max_body_bytes:,} bytes (the service's --max-body-bytes)"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"), None)
        if declared is not None:
            if not declared.strip().isdigit():
                await json_reply(send, 400, "Content-Length is not a number")
                return
            if int(declared) > self.max_body_bytes:
                await json_reply(send, 413, self._too_large(f"of {int(declared):,} bytes"))
                return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    from starlette.exceptions import HTTPException

                    raise HTTPException(413, self._too_large("sent without a length grew too large"))
            return message

        await self.app(scope, counted, send)


async def json_reply(send: Any, status: int, detail: str, extra: list | None = None) -> None:
    """Send a complete JSON answer ``{"detail": ...}`` from ASGI middleware."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def safe_message(text: str, n: int = 400) -> str:
    """An exception's message made JSON-safe (no lone surrogates) and cut to ``n`` characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= n else text[:n] + "..."
