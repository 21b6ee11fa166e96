"""Zero-shot PreRec on a B2 target's *validation* users (every instance), for the runs that
``benchmarks/factor_transfer.py run`` left under WORK for each set and training seed 2023-2025:
the check, allowed by the project's rules, that chose ``taste_calibration`` where the held-out
sources tied (results/taste-calibration/README.md). Writes OUT/validation-FOLD.json.

    python benchmarks/probes/taste_validation.py WORK OUT DATA FOLD SET [SET ...]
"""
import json
import sys

import torch

from prerec.baselines.simple import PopularityRepeatBaseline
from prerec.data.readers import load_domain
from prerec.run import load_run
from prerec.training.pretrain import score_function
from prerec.training.validation import ValidationSet, validate

torch.set_num_threads(1)
work, out_dir, D, fold, *sets = sys.argv[1:]
SPEC = {"amazon_office": f"amazon_office=canonical:{D}/amazon_office", "lastfm": f"lastfm=canonical:{D}/lastfm",
        "amazon_scientific": f"amazon_scientific=unisrec:{D}/amazon_scientific",
        "online_retail_uk": f"online_retail_uk=online-retail:{D}/online_retail/online_retail_2010_2011.parquet#United Kingdom"}
out = {}
for s in sets:
    for seed in (2023, 2024, 2025):
        run = load_run(f"{work}/b2/{s}/seed{seed}/runs/{fold}-prerec")
        p = run.prepare(load_domain(SPEC[fold]))
        vs = ValidationSet.build(p, "zero-shot", 0, 2023)
        _, det = validate(score_function(run, 512), [vs], 0.01)
        d = det[p.name]
        out[f"{s}|{seed}"] = d
        print(f"{fold} {s} {seed} n={d['instances']} recall {d['recall@k%']:.4f} rndcg {d['rndcg@k%']:.4f}", flush=True)
pop = PopularityRepeatBaseline()
_, det = validate(lambda inference, p, h, n, days: torch.as_tensor(pop.score(p, h, n, days)), [vs], 0.01)
out["popularity-repeat"] = d = det[p.name]
print(f"{fold} popularity-repeat n={d['instances']} recall {d['recall@k%']:.4f} rndcg {d['rndcg@k%']:.4f}", flush=True)
with open(f"{out_dir}/validation-{fold}.json", "w") as fh:
    json.dump(out, fh, indent=1)
