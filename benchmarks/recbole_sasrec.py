"""RecBole 1.2.1's SASRec on B1's targets: same split, same test instances, same metrics.

Trains RecBole's own SASRec (its defaults: 2 layers, 2 heads, hidden 64, CE loss, Adam 1e-3,
batch 2048, <= 300 epochs, early stopping on validation MRR@10 with patience 10) on each target's
training users, exported with ``prerec export recbole`` semantics (one row per instance, the
last <= 50 items; the item file makes the vocabulary the whole catalog). The best checkpoint
then scores the very instances ``prerec evaluate`` ranks, and ``prerec.evaluation.metrics``
turns the scores into Recall@K% etc. with shared ties. RecBole's own test Recall@20 is printed
beside ours as a cross-check of the alignment.

RecBole is not a project dependency; install it beside the venv without touching it:

    .venv/bin/pip install --target .venv/recbole-site --no-deps recbole==1.2.1 colorlog==4.7.2 \
        colorama==0.4.4 texttable tabulate thop psutil

Work-arounds kept here (the installed package is never patched; see docs/evaluation.md):
numpy 2 aliases (``np.float_`` ...) defined before import; ``torch.utils.tensorboard`` stubbed
when the ``tensorboard`` package is absent; ``Series.agg(len)`` (one number under pandas 3) replaced
by ``map(len)`` in a ``SequentialDataset`` subclass; the best checkpoint loaded here with
``weights_only=False``; ``recbole.quick_start`` (needs ray) is not imported.

Usage: .venv/bin/python benchmarks/recbole_sasrec.py [--targets Germany,France] [--epochs 300]
       [--out results/recbole_sasrec] [--compare experiments/b1/results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".venv" / "recbole-site"))

from prerec.data.instances import make_instances  # noqa: E402
from prerec.data.readers import load_domain  # noqa: E402
from prerec.data.split import DEFAULT_SEED, split_users  # noqa: E402
from prerec.evaluation.evaluate import DomainRanks, Results  # noqa: E402
from prerec.evaluation.metrics import rank_counts  # noqa: E402
from prerec.evaluation.recbole_export import export_recbole  # noqa: E402

B1_TARGETS = ("Germany", "France", "Spain", "Belgium", "Switzerland", "Portugal")
MAX_LEN = 50


def import_recbole():
    """Import RecBole's core modules with the work-arounds; returns a namespace of what we use."""
    for alias, real in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, alias):
            setattr(np, alias, real)
    try:
        import tensorboard  # noqa: F401
    except ImportError:  # RecBole's utils import SummaryWriter at module level; it only logs
        stub = types.ModuleType("torch.utils.tensorboard")

        class SummaryWriter:
            def __init__(self, *a, **k) -> None:
                pass

            def __getattr__(self, name):
                return lambda *a, **k: None

        stub.SummaryWriter = SummaryWriter
        sys.modules["torch.utils.tensorboard"] = stub
    try:
        from recbole.config import Config
        from recbole.data import data_preparation
        from recbole.data.dataset import SequentialDataset
        from recbole.data.interaction import Interaction
        from recbole.model.sequential_recommender import SASRec
        from recbole.trainer import Trainer
        from recbole.utils import FeatureSource, FeatureType, init_seed
    except ImportError as exc:
        raise SystemExit(f"RecBole 1.2.1 is not importable ({exc}); install it as the docstring says") from exc

    class Pandas3SequentialDataset(SequentialDataset):
        """``Series.agg(len)`` returns one number under pandas 3: use ``map(len)``."""

        def _remap(self, remap_list):
            if len(remap_list) == 0:
                return
            tokens, split_point = self._concat_remaped_tokens(remap_list)
            new_ids_list, mp = pd.factorize(tokens)
            new_ids_list = np.split(new_ids_list + 1, split_point)
            mp = np.array(["[PAD]", *list(mp)])
            token_id = {t: i for i, t in enumerate(mp)}
            for (feat, field, ftype), new_ids in zip(remap_list, new_ids_list):
                if field not in self.field2id_token:
                    self.field2id_token[field] = mp
                    self.field2token_id[field] = token_id
                if ftype == FeatureType.TOKEN:
                    feat[field] = new_ids
                elif ftype == FeatureType.TOKEN_SEQ:
                    split = np.cumsum(feat[field].map(len))[:-1]
                    feat[field] = np.split(new_ids, split)

        def _benchmark_presets(self):
            list_suffix = self.config["LIST_SUFFIX"]
            for field in self.inter_feat:
                if field + list_suffix in self.inter_feat:
                    setattr(self, f"{field}_list_field", field + list_suffix)
            self.set_field_property(self.item_list_length_field, FeatureType.TOKEN, FeatureSource.INTERACTION, 1)
            self.inter_feat[self.item_list_length_field] = self.inter_feat[self.item_id_list_field].map(len)

    return types.SimpleNamespace(Config=Config, data_preparation=data_preparation, Dataset=Pandas3SequentialDataset,
                                 Interaction=Interaction, SASRec=SASRec, Trainer=Trainer, init_seed=init_seed)


def run_target(rb, name: str, spec: str, work: Path, epochs: int, device: str) -> tuple[DomainRanks, dict]:
    domain = load_domain(spec)
    split = split_users(domain.sequences, DEFAULT_SEED)
    counts = export_recbole(domain, work, split=split, max_len=MAX_LEN)
    config = rb.Config(model="SASRec", dataset=name, config_dict={
        "data_path": str(work), "checkpoint_dir": str(work / "ckpt"),
        "benchmark_filename": ["train", "valid", "test"], "alias_of_item_id": ["item_id_list"],
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"], "item": ["item_id"]},
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "MAX_ITEM_LIST_LENGTH": MAX_LEN,
        "train_neg_sample_args": None, "loss_type": "CE", "epochs": epochs, "stopping_step": 10,
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "TO", "group_by": "user", "mode": "full"},
        "metrics": ["Recall", "NDCG", "MRR"], "topk": [10, 20], "valid_metric": "MRR@10",
        "seed": DEFAULT_SEED, "reproducibility": True, "show_progress": False, "save_dataset": False,
        "save_dataloaders": False, "use_gpu": device != "cpu", "log_wandb": False,
    })
    rb.init_seed(config["seed"], config["reproducibility"])
    dataset = rb.Dataset(config)
    train, valid, test = rb.data_preparation(config, dataset)
    model = rb.SASRec(config, train.dataset).to(config["device"])
    trainer = rb.Trainer(config, model)
    t0 = time.perf_counter()
    best_valid, _ = trainer.fit(train, valid, saved=True, show_progress=False)
    seconds = time.perf_counter() - t0
    # torch >= 2.6 refuses RecBole's own torch.load of its checkpoint: load it here
    ckpt = torch.load(trainer.saved_model_file, map_location=config["device"], weights_only=False)
    model.load_state_dict(ckpt["state_dict"])
    model.load_other_parameter(ckpt.get("other_parameter"))
    recbole_test = trainer.evaluate(test, load_best_model=False, show_progress=False)

    # our instances, our metric: RecBole's scores over the catalog in our catalog order
    inst = make_instances(split.test)
    hist, lengths = inst.histories(MAX_LEN)
    tok = dataset.field2token_id["item_id"]
    to_rb = np.array([tok[str(i)] for i in domain.item_ids], dtype=np.int64)
    model.eval()
    higher, tied = np.empty(len(inst), np.int64), np.empty(len(inst), np.int64)
    with torch.no_grad():
        for a in range(0, len(inst), 1024):
            h, n = hist[a : a + 1024], lengths[a : a + 1024]
            seq = np.where(h >= 0, to_rb[np.maximum(h, 0)], 0)
            inter = rb.Interaction({"item_id_list": torch.from_numpy(seq), "item_length": torch.from_numpy(n)})
            scores = model.full_sort_predict(inter.to(config["device"])).float().cpu().numpy()
            scores = scores.reshape(len(h), -1)[:, to_rb]
            higher[a : a + 1024], tied[a : a + 1024] = rank_counts(scores, inst.targets[a : a + 1024])
    ranks = DomainRanks("recbole-sasrec", name, domain.n_items, inst.users, inst.pos,
                        domain.item_ids[inst.targets], higher, tied, np.zeros(len(inst), dtype=bool))
    info = {"rows": counts, "train_seconds": seconds, "epochs_run": len(getattr(trainer, "train_loss_dict", {})) or None, "best_valid_mrr@10": float(best_valid) if best_valid is not None else None,
            "recbole_test": {k: float(v) for k, v in dict(recbole_test).items()}}
    return ranks, info


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", default=",".join(B1_TARGETS))
    p.add_argument("--data", default="embedded", help="Online Retail parquet (default: the packaged copy)")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "recbole_sasrec")
    p.add_argument("--compare", type=Path, help="a prerec experiment results.json to print beside")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # RecBole's pandas-1 idioms (chained inplace fillna) warn under pandas 3; the exported files
    # have no missing values, so those no-op fills change nothing here
    warnings.filterwarnings("ignore", module="recbole")
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    rb = import_recbole()
    results = Results(ratio=0.01, ks=(20,))
    infos = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in [t.strip() for t in args.targets.split(",") if t.strip()]:
            ranks, info = run_target(rb, name, f"{name}=online-retail:{args.data}#{name}", Path(tmp), args.epochs,
                                     args.device)
            results.add(ranks)
            infos[name] = info
            ours = results.summary()[name]["recbole-sasrec"]
            print(f"{name}: Recall@1% {ours['recall@k%']:.4f}  r-NDCG@1% {ours['rndcg@k%']:.4f}  "
                  f"Recall@20 {ours['recall@20']:.4f} (RecBole's own test recall@20 "
                  f"{info['recbole_test'].get('recall@20', float('nan')):.4f})  {info['train_seconds']:.0f} s",
                  flush=True)
    summary = results.summary()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"results": summary, "runs": infos}, indent=2) + "\n")
    results.instances_frame().to_parquet(args.out / "instances.parquet", index=False)
    m = summary["mean"]["recbole-sasrec"]
    line = f"mean over {len(infos)} targets: Recall@1% {m['recall@k%']:.4f}, r-NDCG@1% {m['rndcg@k%']:.4f}, " \
           f"Recall@20 {m['recall@20']:.4f}, NDCG@20 {m['ndcg@20']:.4f} ({m['instances']:,} instances)"
    print(line)
    if args.compare and args.compare.exists():
        other = json.loads(args.compare.read_text())["results"]["mean"]
        for model in ("sasrec-scratch", "text-last", "prerec"):
            if model in other:
                print(f"  {model:15s} Recall@1% {other[model]['recall@k%']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
