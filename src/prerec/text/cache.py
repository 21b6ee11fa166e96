"""On-disk embedding cache: only new or changed texts are encoded, reads are memory-mapped.

Layout, one folder per encoder identity::

    <cache dir>/embeddings/<slug>-<sha256(identity)[:16]>/
        identity.json             {"identity": ..., "dim": ...}: checked on every open
        <shard>.emb.npy           (n, dim) float32, read with np.load(mmap_mode="r")
        <shard>.keys.npy          (n,) S32: sha256(identity NUL text) of each row

A key hashes the encoder identity *and* the text, and the folder is per identity, so a cache
written by one encoder is never served to another. Writes never modify a file: each run that
encodes new texts adds one shard, written to temporary names and renamed into place (``.emb``
first, then ``.keys``, which makes the shard visible). Two processes writing the same cache
therefore never corrupt it (at worst both store a text once). When shards pile up they are
merged into one under a non-blocking ``flock``; old shards are removed only after the merged
one is in place, and a reader that loses a shard to a merge simply scans again.

The cache folder is ``cache_dir`` if given, else ``$PREREC_CACHE_DIR``, else ``~/.cache/prerec``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prerec.errors import PrerecError
from prerec.text.encoders import TextEncoder

log = logging.getLogger(__name__)
KEY_DTYPE = np.dtype("S32")
COMPACT_AT = 16  # merge shards once there are more than this many
CacheDir = str | os.PathLike | None | bool


def default_cache_dir() -> Path:
    """``$PREREC_CACHE_DIR``, else ``~/.cache/prerec``."""
    env = os.environ.get("PREREC_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prerec"


def resolve_cache_dir(cache_dir: CacheDir) -> Path | None:
    """``None``/``True``: the default folder; ``False``: no cache; a path: that folder."""
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        return default_cache_dir()
    return Path(cache_dir).expanduser()


def text_keys(identity: str, texts: list[str]) -> np.ndarray:
    """``(n,)`` S32 keys: sha256 of the encoder identity, a NUL byte and the UTF-8 text."""
    base = hashlib.sha256(identity.encode("utf-8") + b"\0")
    keys = np.empty(len(texts), dtype=KEY_DTYPE)
    for k, text in enumerate(texts):
        h = base.copy()
        h.update(text.encode("utf-8", "surrogatepass"))
        keys[k] = h.digest()
    return keys


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        with tmp.open("wb") as fh:
            np.save(fh, array, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class EmbeddingCache:
    """The cache folder of one encoder identity."""

    def __init__(self, root: str | os.PathLike, identity: str, dim: int) -> None:
        self.identity, self.dim = identity, int(dim)
        digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", identity)[:48].strip("-.")
        self.dir = Path(root).expanduser() / "embeddings" / f"{slug}-{digest}"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PrerecError(f"cannot create the embedding cache folder {self.dir}: {exc.strerror}") from exc
        meta = self.dir / "identity.json"
        if meta.exists():
            try:
                found = json.loads(meta.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise PrerecError(f"{meta}: unreadable cache description ({exc}); delete the folder") from exc
            if found.get("identity") != identity or int(found.get("dim", -1)) != self.dim:
                raise PrerecError(
                    f"{meta}: the cache folder belongs to encoder {found.get('identity')!r} (dim "
                    f"{found.get('dim')}), not {identity!r} (dim {self.dim}); delete the folder"
                )
        else:
            tmp = meta.with_name(f".tmp-{uuid.uuid4().hex}-identity.json")
            tmp.write_text(json.dumps({"identity": identity, "dim": self.dim}, indent=1) + "\n", "utf-8")
            os.replace(tmp, meta)
        self._shards: list[np.ndarray] = []  # memory-mapped (n, dim) float32 per shard
        self._keys = np.empty(0, dtype=KEY_DTYPE)  # sorted keys of all shards
        self._where = np.empty((0, 2), dtype=np.int64)  # (shard, row) of each sorted key
        self._seen: tuple[str, ...] | None = None

    # ---------------------------------------------------------------- reading
    def _shard_names(self) -> tuple[str, ...]:
        return tuple(sorted(p.name[: -len(".keys.npy")] for p in self.dir.glob("*.keys.npy")
                            if not p.name.startswith(".")))  # .tmp-* are writes in progress

    def refresh(self) -> None:
        """Re-scan the shards on disk (cheap when nothing changed)."""
        for _attempt in range(10):
            names = self._shard_names()
            if names == self._seen:
                return
            try:
                self._load(names)
                self._seen = names
                return
            except FileNotFoundError:  # a concurrent merge removed a shard between listing and opening
                time.sleep(0.05)
        raise PrerecError(f"embedding cache {self.dir} keeps changing under this process; try again")

    def _load(self, names: tuple[str, ...]) -> None:
        shards, keys, where = [], [], []
        for name in names:
            try:
                k = np.load(self.dir / f"{name}.keys.npy", mmap_mode="r", allow_pickle=False)
                e = np.load(self.dir / f"{name}.emb.npy", mmap_mode="r", allow_pickle=False)
            except FileNotFoundError:
                raise
            except (OSError, ValueError) as exc:  # not written by this module: skip, never crash
                log.warning("embedding cache: ignoring unreadable shard %s (%s)", self.dir / name, exc)
                continue
            if k.dtype != KEY_DTYPE or e.dtype != np.float32 or e.shape != (len(k), self.dim):
                log.warning("embedding cache: ignoring malformed shard %s", self.dir / name)
                continue
            where.append(np.stack([np.full(len(k), len(shards)), np.arange(len(k))], axis=1))
            keys.append(np.asarray(k))
            shards.append(e)
        all_keys = np.concatenate(keys) if keys else np.empty(0, dtype=KEY_DTYPE)
        order = np.argsort(all_keys, kind="stable")
        self._shards = shards
        self._keys = all_keys[order]
        self._where = np.concatenate(where)[order] if where else np.empty((0, 2), dtype=np.int64)

    def __len__(self) -> int:
        self.refresh()
        return len(self._keys)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(hit, emb)``: a mask of the keys found and their embeddings ``(hit.sum(), dim)``."""
        self.refresh()
        keys = np.asarray(keys, dtype=KEY_DTYPE)
        if not len(self._keys):
            return np.zeros(len(keys), dtype=bool), np.empty((0, self.dim), dtype=np.float32)
        pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        hit = self._keys[pos] == keys
        where = self._where[pos[hit]]
        out = np.empty((len(where), self.dim), dtype=np.float32)
        for s in np.unique(where[:, 0]):
            sel = where[:, 0] == s
            rows = where[sel, 1]
            order = np.argsort(rows)  # memory-mapped reads in file order
            block = np.empty((len(rows), self.dim), dtype=np.float32)
            block[order] = self._shards[s][rows[order]]
            out[sel] = block
        return hit, out

    # ---------------------------------------------------------------- writing
    def add(self, keys: np.ndarray, emb: np.ndarray) -> None:
        """Store new rows as one shard (atomic: invisible until its keys file is renamed in)."""
        keys = np.asarray(keys, dtype=KEY_DTYPE)
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        if emb.shape != (len(keys), self.dim):
            raise ValueError(f"embeddings {emb.shape} do not match {len(keys)} keys of dim {self.dim}")
        finite = np.isfinite(emb).all(axis=1)
        keys, emb = keys[finite], emb[finite]
        if not len(keys):
            return
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        _atomic_save(self.dir / f"{name}.emb.npy", emb)
        _atomic_save(self.dir / f"{name}.keys.npy", keys)
        if len(self._shard_names()) > COMPACT_AT:
            self.compact()

    def compact(self) -> bool:
        """Merge all shards into one (skipped when another process is merging). True if merged."""
        with (self.dir / "compact.lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
            try:
                self._seen = None
                self.refresh()
                names = self._seen or ()
                if len(names) < 2:
                    return False
                keys = np.unique(self._keys)
                _hit, emb = self.lookup(keys)
                merged = f"{time.time_ns():020d}-{os.getpid()}-merged-{uuid.uuid4().hex[:8]}"
                _atomic_save(self.dir / f"{merged}.emb.npy", emb)
                _atomic_save(self.dir / f"{merged}.keys.npy", keys)
                for name in names:  # keys first: a shard without keys is invisible
                    (self.dir / f"{name}.keys.npy").unlink(missing_ok=True)
                    (self.dir / f"{name}.emb.npy").unlink(missing_ok=True)
                self._seen = None
                return True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class EncodeStats:
    """What one cached encoding did: texts asked for, distinct texts, encoded (cache misses), seconds."""

    texts: int = 0
    unique: int = 0
    encoded: int = 0
    seconds: float = 0.0

    @property
    def cached(self) -> int:
        return self.unique - self.encoded


def encode_cached(
    encoder: TextEncoder, texts: list[str], *, cache_dir: CacheDir = None, progress: bool = False
) -> tuple[np.ndarray, EncodeStats]:
    """Embeddings of ``texts`` through the cache: each distinct text missing from it is encoded
    once and stored; ``cache_dir=False`` encodes without a cache."""
    start = time.perf_counter()
    texts = [str(t) for t in texts]
    unique = list(dict.fromkeys(texts))
    index = {t: k for k, t in enumerate(unique)}
    root = resolve_cache_dir(cache_dir)
    emb = np.empty((len(unique), encoder.dim), dtype=np.float32)
    if root is None:
        if unique:
            emb[:] = encoder.encode(unique, progress=progress)
        encoded = len(unique)
    else:
        cache = EmbeddingCache(root, encoder.identity, encoder.dim)
        keys = text_keys(encoder.identity, unique)
        hit, found = cache.lookup(keys)
        emb[hit] = found
        missing = np.flatnonzero(~hit)
        encoded = len(missing)
        if encoded:
            new = encoder.encode([unique[k] for k in missing], progress=progress)
            emb[missing] = new
            try:
                cache.add(keys[missing], new)
            except OSError as exc:  # read-only or full disk: the result is still right, just not kept
                log.warning("embedding cache %s: could not store %d new embeddings (%s)", cache.dir, encoded, exc)
    out = emb[[index[t] for t in texts]] if texts else np.empty((0, encoder.dim), dtype=np.float32)
    stats = EncodeStats(len(texts), len(unique), encoded, time.perf_counter() - start)
    return out, stats


class CachedEncoder(TextEncoder):
    """An encoder behind the cache; same identity and dim. ``last`` holds the latest call's stats."""

    def __init__(self, encoder: TextEncoder, cache_dir: CacheDir = None) -> None:
        self.inner, self.cache_dir = encoder, cache_dir
        self.identity, self.dim = encoder.identity, encoder.dim
        self.last = EncodeStats()

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        out, self.last = encode_cached(self.inner, list(texts), cache_dir=self.cache_dir, progress=progress)
        return out
