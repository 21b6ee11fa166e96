"""``prerec simulate``: write a synthetic world with planted biases (docs/synthetic.md).

    prerec simulate --out DIR [--n-domains 5] [--n-users 400] [--n-items 1000] [--n-days 60]
                    [--domain-bias 0.5] [--popularity-effect 1.0] [--seed 0] [...]

DIR gets one folder per domain in the canonical format (d0, d1, ...: interactions.parquet +
items.parquet), the ground truth (truth.safetensors, world.json) and the embeddings input
(embeddings.safetensors, read by the encoder ``table:DIR/embeddings.safetensors``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

from prerec.simulate import SimConfig, simulate

log = logging.getLogger(__name__)

HELP = {
    "n_domains": "number of domains K (d0 .. d{K-1})",
    "n_users": "users per domain",
    "n_items": "items in the universe the catalogs are drawn from",
    "catalog_fraction": "probability that an item is in a domain's catalog",
    "n_days": "days of every domain's log",
    "latent_dim": "dimension H of the item latents",
    "mean_length": "mean interactions per user (before the cut at the last day)",
    "mean_gap": "mean days between a user's interactions",
    "domain_bias": "planted cross-domain confounder: |D_k| (0: no domain bias)",
    "popularity_effect": "planted popularity effect: weight gamma of the trend b in the choice (0: none)",
    "popularity_persistence": "day-to-day correlation phi of the popularity trend",
    "sharpness": "kappa: how deterministic a user's choice is",
    "memory": "alpha: weight of the older user state when the user moves on",
    "taste": "scale of a user's own taste before the first item",
    "item_noise": "part of the item latent the text does not carry",
    "seed": "random seed (the same options and seed give the same world)",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="write a synthetic world with planted biases (docs/synthetic.md)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="new (or empty) folder to write the world to")
    for f in dataclasses.fields(SimConfig):
        p.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=type(f.default), default=f.default,
                       help=f"{HELP[f.name]} (default {f.default})")
    p.set_defaults(handler=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    cfg = SimConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SimConfig)}).validate()
    out = simulate(args.out, cfg)
    world = json.loads((out / "world.json").read_text())
    for name, st in world["stats"].items():
        log.info("%s: %d users, %d of %d catalog items in the log, %d interactions", name, st["users"],
                 st["items_in_log"], st["catalog"], st["interactions"])
    print(f"wrote {len(world['domains'])} domains to {out}; embeddings input: --set encoder={world['encoder_for_embeddings_input']}")
    return 0
