"""B1 diagnosis: text post-processing, per-epoch zero-shot target curves, model selection.

Why: on B1 (Online Retail; targets Germany, France, Spain, Belgium, Switzerland, Portugal)
PreRec zero-shot (~.21 Recall@1%) sits below the text-last baseline (.27). This script trains
one cpu-preset run on the B1 sources and records, after every epoch (and before the first),

- the usual in-domain validation of every trained source (what the run selects on),
- zero-shot validation on held-out sources (``--loso``: leave-some-sources-out selection),
- zero-shot Recall@1% on the six targets' *test* users (all of them; diagnosis only: it is
  never used to pick the run's saved weights),

and evaluates the training-free baselines (text, text-last, popularity) on the same,
post-processed embeddings (``embedding_postprocess``: none | center | whiten, fitted on the
training sources only). The target domains are passed to ``pretrain`` as ``select_on``
domains so that they are encoded and split by the run but never trained on or fitted on;
the library's ``validation_sets``/``validate`` are wrapped here (not edited) to add the extra
sets while the selection metric stays the standard one (mean in-domain source r-NDCG@1%).

    nice -n 5 .venv/bin/python benchmarks/b1_diagnosis.py run --name none --out /tmp/b1diag
    nice -n 5 .venv/bin/python benchmarks/b1_diagnosis.py run --name center --out /tmp/b1diag \\
        --set embedding_postprocess=center
    nice -n 5 .venv/bin/python benchmarks/b1_diagnosis.py run --name loso --out /tmp/b1diag \\
        --loso EIRE,Netherlands
    .venv/bin/python benchmarks/b1_diagnosis.py table --out /tmp/b1diag
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

TARGETS = ("Germany", "France", "Spain", "Belgium", "Switzerland", "Portugal")
SPEC = "online-retail:embedded"


def _write(path: Path, obj: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> None:
    import prerec.training.pretrain as P
    from prerec.config import build_config
    from prerec.data import load_domains
    from prerec.data.instances import make_instances
    from prerec.evaluation.evaluate import EvalConfig, evaluate_model
    from prerec.evaluation.metrics import instance_metrics
    from prerec.registry import build_model
    from prerec.training.validation import ValidationSet

    loso = [s for s in (args.loso or "").split(",") if s]
    domains = load_domains([SPEC])
    names = [d.name for d in domains]
    missing = [t for t in (*TARGETS, *loso) if t not in names]
    if missing:
        sys.exit(f"not in the data: {missing}")
    cfg = build_config("cpu", None, [*args.set, f"select_on={','.join((*TARGETS, *loso))}",
                                     f"patience={args.patience}", "progress=false"])
    roles = {n: "target" if n in TARGETS else "loso" if n in loso else "train" for n in names}

    def sets(prepared, cfg_, sources):
        out = []
        for p in prepared:
            role = roles[p.name]
            if role == "train":
                out.append(ValidationSet.build(p, "in-domain", cfg_.valid_max_instances, cfg_.seed, cfg_.max_history))
            elif role == "loso":
                out.append(ValidationSet.build(p, "zero-shot", cfg_.valid_max_instances, cfg_.seed, cfg_.max_history))
            else:  # the target's test users, all of them, as evaluation does
                inst = make_instances(p.split.test)
                hist, lengths = inst.histories(cfg_.max_history)
                out.append(ValidationSet(p, "zero-shot", hist, lengths, inst.targets, inst.days))
        return [s for s in out if len(s)]

    orig_validate = P.validate

    def validate(recs, vsets, ratio, batch_size=512):
        _, details = orig_validate(recs, vsets, ratio, batch_size)
        src = [d["rndcg@k%"] for n, d in details.items() if roles[n] == "train"]
        return float(np.mean(src)), details

    epoch0: dict = {}
    orig_train = P.train

    def train(*a, **kw):
        t = time.perf_counter()
        m, d = kw["validate"](-1)
        epoch0.update({"epoch": 0, "valid_metric": m, "valid": d, "seconds": round(time.perf_counter() - t, 1)})
        return orig_train(*a, **kw)

    P.validation_sets, P.validate, P.train = sets, validate, train
    t0 = time.perf_counter()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    r = P.pretrain(domains, cfg, out_dir / f"run_{args.name}", specs=[f"{SPEC}#{n}" for n in names])
    history = [epoch0, *r.history]
    baselines = {}
    ecfg = EvalConfig(progress=False)
    for d in domains:
        if d.name not in TARGETS:
            continue
        prep = r.prepare(d)
        for b in ("popularity", "text", "text-last"):
            dr = evaluate_model(build_model(b), prep, ecfg)
            m = instance_metrics(dr.n_higher, dr.n_tied, dr.n_items, ecfg.ratio)
            baselines.setdefault(b, {})[d.name] = {"recall@k%": float(m["recall@k%"].mean()),
                                                   "instances": len(dr.n_higher)}
    _write(out_dir / f"{args.name}.json", {
        "name": args.name, "sets": args.set, "loso": loso, "config": cfg.to_dict(), "history": history,
        "baselines": baselines, "seconds": round(time.perf_counter() - t0, 1)})
    print(f"wrote {out_dir / (args.name + '.json')} in {time.perf_counter() - t0:.0f}s")


def baselines(args: argparse.Namespace) -> None:
    """Training-free baselines on the targets under each post-processing (fitted on the sources)."""
    from prerec.data import load_domains
    from prerec.data.prepared import prepare_domain
    from prerec.evaluation.evaluate import EvalConfig, evaluate_model
    from prerec.evaluation.metrics import instance_metrics
    from prerec.registry import build_model
    from prerec.text import EmbeddingTransform, embed_catalog, get_encoder

    domains = load_domains([SPEC])
    enc = get_encoder("e5")
    embs = {d.name: embed_catalog(d, enc, progress=False) for d in domains}
    ecfg = EvalConfig(progress=False)
    out: dict = {}
    for kind in ("none", "center", "whiten"):
        tr = EmbeddingTransform(kind).fit([e for n, e in embs.items() if n not in TARGETS])
        for d in domains:
            if d.name not in TARGETS:
                continue
            prep = prepare_domain(d, tr.apply(embs[d.name]), 2023)
            for b in ("popularity", "text", "text-last"):
                dr = evaluate_model(build_model(b), prep, ecfg)
                m = instance_metrics(dr.n_higher, dr.n_tied, dr.n_items, ecfg.ratio)
                out.setdefault(kind, {}).setdefault(b, {})[d.name] = float(m["recall@k%"].mean())
    print("| post-processing | model | " + " | ".join(TARGETS) + " | mean |")
    print("|---|---|" + "---|" * (len(TARGETS) + 1))
    for kind, models in out.items():
        for b, per in models.items():
            print(f"| {kind} | {b} | " + " | ".join(f"{per[t]:.3f}" for t in TARGETS)
                  + f" | {np.mean(list(per.values())):.3f} |")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    _write(Path(args.out) / "baselines.json.txt", out)


def _early_stop(metric: list[float], patience: int) -> int:
    """The epoch the trainer would keep with early stopping (index into the history; 0 = untrained)."""
    best, best_i, bad = -np.inf, 1, 0
    for i in range(1, len(metric)):
        if metric[i] > best:
            best, best_i, bad = metric[i], i, 0
        else:
            bad += 1
            if bad >= patience:
                break
    return best_i


def _mean(details: dict, role_names, key: str = "recall@k%") -> float:
    vals = [details[n][key] for n in role_names if n in details]
    return float(np.mean(vals)) if vals else float("nan")


def table(args: argparse.Namespace) -> None:
    out_dir = Path(args.out)
    rows = []
    for path in sorted(out_dir.glob("*.json")):
        r = json.loads(path.read_text())
        h = r["history"]
        loso = r["loso"]
        tgt = [_mean(e["valid"], TARGETS) for e in h]
        srcs = [n for n, d in h[0]["valid"].items() if n not in TARGETS and n not in loso]
        src_ndcg = [_mean(e["valid"], srcs, "rndcg@k%") for e in h]
        src_rec = [_mean(e["valid"], srcs) for e in h]
        lo = [_mean(e["valid"], loso, "rndcg@k%") for e in h]
        base = {b: float(np.mean([v["recall@k%"] for v in d.values()])) for b, d in r["baselines"].items()}
        print(f"\n## {r['name']}  (postprocess={r['config']['embedding_postprocess']}, sets={r['sets']}, "
              f"loso={loso}, {r['seconds']:.0f}s)")
        print("baselines (mean target Recall@1%): " + ", ".join(f"{b} {v:.3f}" for b, v in base.items()))
        print("| epoch | loss | D rms | source r-NDCG@1% (in-domain) | source R@1% | LOSO r-NDCG@1% | target R@1% (zero-shot, test) |")
        print("|---|---|---|---|---|---|---|")
        for i, e in enumerate(h):
            loss = f"{e['loss']:.3f}" if "loss" in e else "-"
            rms = f"{e['domain_rms']:.4f}" if e.get("domain_rms") is not None else "-"
            print(f"| {e['epoch']} | {loss} | {rms} | {src_ndcg[i]:.4f} | {src_rec[i]:.3f} | "
                  f"{lo[i]:.4f} | {tgt[i]:.3f} |" if loso else
                  f"| {e['epoch']} | {loss} | {rms} | {src_ndcg[i]:.4f} | {src_rec[i]:.3f} | - | {tgt[i]:.3f} |")
        trained = list(range(1, len(h)))  # selection among trained epochs (as the trainer does)
        picks = {"source in-domain r-NDCG (default)": max(trained, key=lambda i: src_ndcg[i]),
                 "same, preset patience 2": _early_stop(src_ndcg, 2),
                 "source in-domain R@1%": max(trained, key=lambda i: src_rec[i]),
                 "last epoch": trained[-1], "target (oracle)": max(trained, key=lambda i: tgt[i])}
        if loso:
            picks["LOSO zero-shot r-NDCG"] = max(trained, key=lambda i: lo[i])
        print("selection -> epoch, target R@1%: " + "; ".join(
            f"{k} -> {h[i]['epoch']}, {tgt[i]:.3f}" for k, v in picks.items() for i in [v]))
        rows.append((r["name"], base["text"], base["text-last"], tgt[0], tgt[1], picks, tgt, h))
        print("per target at the default pick: " + ", ".join(
            f"{t} {h[picks['source in-domain r-NDCG (default)']]['valid'][t]['recall@k%']:.3f}" for t in TARGETS)
            + " | text-last: " + ", ".join(f"{t} {r['baselines']['text-last'][t]['recall@k%']:.3f}" for t in TARGETS))
    print("\n## summary: mean target Recall@1% (zero-shot); prerec at the epoch each criterion picks (epoch)")
    print("| run | text | text-last | prerec ep0 (untrained) | ep1 | default (src r-NDCG) | preset patience 2 "
          "| src R@1% | LOSO r-NDCG | last | oracle |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, tx, tl, e0, e1, picks, tgt, h in rows:
        def cell(key: str, picks=picks, tgt=tgt, h=h) -> str:
            return f"{tgt[picks[key]]:.3f} ({h[picks[key]]['epoch']})" if key in picks else "-"
        print(f"| {name} | {tx:.3f} | {tl:.3f} | {e0:.3f} | {e1:.3f} | {cell('source in-domain r-NDCG (default)')} | "
              f"{cell('same, preset patience 2')} | {cell('source in-domain R@1%')} | {cell('LOSO zero-shot r-NDCG')} | "
              f"{cell('last epoch')} | {cell('target (oracle)')} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run", help="one cpu-preset B1 pre-training with per-epoch target curves")
    p.add_argument("--name", required=True)
    p.add_argument("--out", default="/tmp/b1diag")
    p.add_argument("--set", action="append", default=[], help="config key=value (as prerec pretrain --set)")
    p.add_argument("--loso", default="", help="comma list of source countries held out for zero-shot selection")
    p.add_argument("--patience", type=int, default=99, help="early stopping patience (default: off)")
    p.set_defaults(fn=run)
    t = sub.add_parser("table", help="print the tables of every run in --out")
    t.add_argument("--out", default="/tmp/b1diag")
    t.set_defaults(fn=table)
    b = sub.add_parser("baselines", help="text / text-last / popularity under none, center, whiten")
    b.add_argument("--out", default="/tmp/b1diag")
    b.set_defaults(fn=baselines)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
