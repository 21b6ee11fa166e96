"""``prerec encode``: encode item texts into the embedding cache, or a text file into a .npy array.

    prerec encode NAME=FORMAT:PATH ... [--encoder e5|sentence-transformers:M|hash:DIM] [--cache-dir DIR]
    prerec encode --texts-file FILE --out OUT.npy [--encoder ...]

The first form fills the cache that training and evaluation read (only new or changed texts are
encoded); the second writes a float32 array (lines, dim), rows L2-normalised, one row per line.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from pathlib import Path

import numpy as np

from prerec.errors import PrerecError
from prerec.text.cache import EncodeStats, encode_cached, resolve_cache_dir
from prerec.text.encoders import DEFAULT_ENCODER, get_encoder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "encode", help="encode item texts into the embedding cache (or a text file into a .npy array)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("domains", nargs="*", metavar="NAME=FORMAT:PATH", help="domains whose catalogs to encode")
    p.add_argument("--encoder", default=DEFAULT_ENCODER,
                   help="e5 (default; e5:query for query-prefixed items), sentence-transformers:<model name or "
                        "local folder>, or hash:DIM")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="embedding cache folder (default: $PREREC_CACHE_DIR, else ~/.cache/prerec)")
    p.add_argument("--no-cache", action="store_true", help="encode everything; read and write no cache")
    p.add_argument("--texts-file", type=Path, help="UTF-8 file, one text per line (instead of domains)")
    p.add_argument("--out", type=Path, help="with --texts-file: the .npy file to write")
    p.set_defaults(handler=run_encode)


def read_texts_file(path: Path) -> list[str]:
    """One text per line (UTF-8, optional BOM, LF or CRLF); a clear error for anything else."""
    if not path.exists():
        raise PrerecError(f"--texts-file {path}: no such file")
    if not path.is_file():
        raise PrerecError(f"--texts-file {path}: not a file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PrerecError(
            f"--texts-file {path}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
            "convert it, e.g. iconv -f latin1 -t utf-8"
        ) from exc
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    lines = [ln.removesuffix("\r") for ln in lines]
    if not any(ln.strip() for ln in lines):
        raise PrerecError(f"--texts-file {path}: empty, expected one text per line")
    return lines


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically (temporary file, then rename)."""
    if path.suffix.lower() != ".npy":
        raise PrerecError(f"--out {path}: expected a .npy file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        with tmp.open("wb") as fh:
            np.save(fh, array, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as exc:
        raise PrerecError(f"--out {path}: cannot write: {exc.strerror or exc}") from exc


def summary(stats: EncodeStats) -> str:
    rate = stats.texts / stats.seconds if stats.seconds > 0 else float("inf")
    return (f"{stats.texts:,} texts in {stats.seconds:.2f} s, {rate:,.1f} texts/s "
            f"({stats.encoded:,} encoded, {stats.cached:,} distinct from cache)")


def run_encode(args: argparse.Namespace) -> int:
    progress = not getattr(args, "quiet", False)
    cache_dir = False if args.no_cache else resolve_cache_dir(args.cache_dir)
    if args.texts_file is not None:
        if args.domains:
            raise PrerecError("give either domains or --texts-file, not both")
        if args.out is None:
            raise PrerecError("--texts-file needs --out OUT.npy")
        if args.out.suffix.lower() != ".npy":
            raise PrerecError(f"--out {args.out}: expected a .npy file name")
        texts = read_texts_file(args.texts_file)
        encoder = get_encoder(args.encoder)
        emb, stats = encode_cached(encoder, texts, cache_dir=cache_dir, progress=progress)
        save_npy(args.out, np.ascontiguousarray(emb, dtype=np.float32))
        print(f"wrote {args.out} {emb.shape} float32 ({encoder.identity})")
        print(f"encoded {summary(stats)}")
        return 0
    if args.out is not None:
        raise PrerecError("--out goes with --texts-file; domains are encoded into the cache")
    if not args.domains:
        raise PrerecError("nothing to encode: give domains NAME=FORMAT:PATH ... or --texts-file FILE --out OUT.npy")
    from prerec.data.readers import load_domains

    domains = load_domains(args.domains)
    encoder = get_encoder(args.encoder)
    total = EncodeStats()
    start = time.perf_counter()
    for domain in domains:
        _emb, st = encode_cached(encoder, domain.texts.astype(str).tolist(), cache_dir=cache_dir, progress=progress)
        print(f"{domain.name}: {domain.n_items:,} items, {st.encoded:,} encoded, {st.cached:,} from cache, "
              f"{st.seconds:.2f} s")
        total.texts += st.texts
        total.unique += st.unique
        total.encoded += st.encoded
    total.seconds = time.perf_counter() - start
    where = f"cache {cache_dir}" if cache_dir else "no cache"
    print(f"encoded {summary(total)} with {encoder.identity}; {where}")
    return 0
