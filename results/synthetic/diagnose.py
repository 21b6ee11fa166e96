"""Why PreRec and its no-domain ablation tie on the synthetic sweep: where does each model put
the domain tilts? Reads the sweep's worlds and runs (``--work``, the sweep's runs_dir) and
prints, per (seed, beta), for each variant:

- absorbed: slope of the learned D_k's tilt on the planted centred tilt (sources; 1 = D carries
  the whole planted tilt, 0 = none of it; prerec variants only);
- on the target (test histories, zero-shot): correlation over items of the model's mean score
  (over histories, popularity factors as served) with the target's planted tilt kappa <D_t, q_j>
  and with the sources' mean tilt kappa <mean D_src, q_j> (what a model that bakes the
  sources' bias into its shared weights would carry over).

    PYTHONPATH=src python results/synthetic/diagnose.py --work WORK [--seeds 0,1,2] [--biases 0.5,1,2]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from prerec.data import load_domains
from prerec.data.instances import make_instances
from prerec.evaluation.synthetic import DayOne, learned_tilt, planted_tilt
from prerec.intervention import PreRecRecommender
from prerec.run import load_run
from prerec.simulate import load_truth

VARIANTS = ("prerec", "prerec-no-domain", "prerec-no-pop", "zesrec")


def corr(a, b):
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--biases", default="0.25,0.5,1,2")
    ap.add_argument("--target", default="d5")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| seed | beta | variant | absorbed by D | target: corr with own tilt | corr with sources' mean tilt "
          "| day one: own | day one: sources' |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in map(int, args.seeds.split(",")):
        for bias in map(float, args.biases.split(",")):
            tag = f"s{seed}-b{bias:g}"
            world = f"{args.work}/worlds/{tag}"
            truth = load_truth(world)
            for v in VARIANTS:
                run = load_run(f"{args.work}/runs/{tag}-weight-decay-{v}")
                absorbed = ""
                names = run.source_names
                ks = [truth.domain_names.index(n) for n in names]
                shift = truth.domain_bias[ks].mean(0)
                if run.model.domain is not None:
                    slopes = []
                    for n in names:
                        p = run.prepare(load_domains([f"{n}=canonical:{world}/{n}"])[0])
                        a, b = learned_tilt(run, p), planted_tilt(truth, n, p.domain.item_ids, shift)
                        slopes.append(float(np.cov(a, b)[0, 1] / b.var()))
                    absorbed = f"{np.mean(slopes):.2f}"
                t = run.prepare(load_domains([f"{args.target}=canonical:{world}/{args.target}"])[0])
                inst = make_instances(t.split.test)
                hist, lengths = inst.histories(64)
                own = planted_tilt(truth, args.target, t.domain.item_ids)
                src = truth.config.sharpness * truth.item_latents[[int(i[1:]) for i in t.domain.item_ids]] @ shift
                cells = []
                for rec in (PreRecRecommender(run), DayOne(PreRecRecommender(run), "day-one")):
                    mean_score = rec.score(t, hist, lengths, inst.days).mean(0)
                    cells += [f"{corr(mean_score, own):+.2f}", f"{corr(mean_score, src):+.2f}"]
                print(f"| {seed} | {bias:g} | {v} | {absorbed} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
