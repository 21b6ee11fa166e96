"""The stages of the scale curve (benchmarks/scale.py), each run in its own process.

``python benchmarks/scale_stages.py CORPUS STAGE JSON [--steps N] [--eval-instances N]`` builds what
the stage needs the way the command line does (its prerequisites), then resets the process's
peak RSS (``/proc/self/clear_refs``), runs the stage alone and writes to JSON: the stage's
CPU seconds (one thread: the machine's other jobs do not count; ``wall_s`` beside it), the RSS
when it started, its peak RSS and details. Stages:

- ``read``: ``load_domains`` of the corpus's canonical domains;
- ``embed_split``: catalog embeddings through the ``table:`` encoder and the embedding cache,
  and the 40/30/30 user split;
- ``popularity``: each domain's ``PopularityIndex`` and the training factor table
  (``FactorTable``: the factors of every (day, item) pair of the logs' windows);
- ``instances``: training instances and the training corpus (``build_training``; its factor
  table's time, measured in ``popularity``, is subtracted);
- ``train``: ``--steps`` optimiser steps (``max_instances_per_epoch`` = steps x batch), instances/s;
- ``evaluate``: zero-shot full ranking of ``--eval-instances`` test instances of domain ``a``;
- ``serve_flat`` / ``serve_hnsw``: ``Service.attach`` of domain ``a`` (prepare, item vectors,
  the FAISS index), the index build timed on its own.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

from prerec.constants import set_thread_environment

set_thread_environment()

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_corpus import domain_specs, encoder_spec  # noqa: E402

clock = time.process_time  # CPU seconds of this process: one thread, so a shared machine's load
# (other jobs on the same cores) does not count; wall seconds are kept beside it
STAGES = ("read", "embed_split", "popularity", "instances", "train", "evaluate", "serve_flat", "serve_hnsw")
HIDDEN = 64
BATCH = 256


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def config(corpus: Path, steps: int):
    from prerec.config import build_config

    sets = [f"hidden_size={HIDDEN}", f"batch_size={BATCH}", "epochs=1", f"max_instances_per_epoch={steps * BATCH}",
            "progress=false", "device=cpu", "eval_batch_size=256"]
    return build_config("cpu", sets=sets, extra={"encoder": encoder_spec(corpus)})


class Ctx:
    """What the stages share: the corpus, its config and the prerequisites built so far."""

    def __init__(self, corpus: Path, steps: int, eval_instances: int) -> None:
        self.corpus, self.cfg, self.eval_instances = corpus, config(corpus, steps), eval_instances
        self.details: dict = {}

    def domains(self):
        from prerec.data import load_domains

        return load_domains(domain_specs(self.corpus))

    def prepared(self, domains):
        from prerec.text import get_encoder
        from prerec.training.pretrain import prepare_sources

        return prepare_sources(domains, self.cfg, get_encoder(self.cfg.encoder))[0]


def stage_read(ctx: Ctx, prereq: bool):
    if prereq:
        return None
    return lambda: ctx.details.update(interactions=sum(len(d.interactions) for d in ctx.domains()))


def stage_embed_split(ctx: Ctx, prereq: bool):
    from prerec.data.split import split_users
    from prerec.text import embed_catalog, get_encoder

    domains = ctx.domains()
    for d in domains:
        _ = d.sequences  # the CSR sequences are the reader's output, built once
    if prereq:
        return None

    def run() -> None:
        enc = get_encoder(ctx.cfg.encoder)
        embs = [embed_catalog(d, enc) for d in domains]
        splits = [split_users(d.sequences, ctx.cfg.split_seed) for d in domains]
        ctx.details.update(items=sum(len(e) for e in embs), users=sum(len(d.sequences) for d in domains),
                           train_users=sum(len(s.train) for s in splits))
    return run


def stage_popularity(ctx: Ctx, prereq: bool):
    from prerec.data.instances import make_instances
    from prerec.data.prepared import PreparedDomain, domain_popularity_index
    from prerec.training.data import FactorTable, Part

    prepared = ctx.prepared(ctx.domains())
    if prereq:
        return None

    def run() -> None:
        t0 = clock()
        indexes = [domain_popularity_index(p.domain, p.split) for p in prepared]
        t1 = clock()
        parts = [Part(PreparedDomain(p.domain, p.split, p.item_emb, pop), make_instances(p.split.train), k)
                 for k, (p, pop) in enumerate(zip(prepared, indexes))]
        t2 = clock()
        table = FactorTable(parts, ctx.cfg.model.popularity_factors)
        ctx.details.update(index_s=t1 - t0, factor_table_s=clock() - t2, factor_rows=len(table.rows),
                           instances_s_excluded=t2 - t1)
    return run


def stage_instances(ctx: Ctx, prereq: bool):
    import prerec.training.data as tdata
    from prerec.training.pretrain import build_training

    prepared = ctx.prepared(ctx.domains())
    if prereq:
        return prepared, build_training(prepared, ctx.cfg)
    spent = [0.0]

    class TimedTable(tdata.FactorTable):
        def __init__(self, *args, **kwargs) -> None:
            t0 = clock()
            super().__init__(*args, **kwargs)
            spent[0] += clock() - t0

    def run() -> None:
        tdata.FactorTable = TimedTable
        try:
            _, _, _, corpus, _ = build_training(prepared, ctx.cfg)
        finally:
            tdata.FactorTable = TimedTable.__bases__[0]
        ctx.details.update(instances=corpus.total_instances, factor_table_s=spent[0], subtract_s=spent[0],
                           chunks=int(sum(len(c) for c in corpus.chunk_start)))
    return run


def stage_train(ctx: Ctx, prereq: bool):
    from prerec.training.loop import TrainState, make_optimizer, train

    _, (_, _, model, corpus, X) = stage_instances(ctx, prereq=True)
    if prereq:
        return None

    def run() -> None:
        t0 = clock()
        opt = make_optimizer(model, ctx.cfg, corpus.total_instances)
        st = train(model, corpus, X, ctx.cfg, optimizer=opt, state=TrainState(), device=torch.device("cpu"))
        rec = st.history[-1]
        rate = rec["instances"] / max(clock() - t0, 1e-9)  # per CPU second
        ctx.details.update(steps=rec["steps"], instances=rec["instances"], instances_per_s=rate,
                           wall_instances_per_s=rec["instances_per_s"], train_instances=corpus.total_instances,
                           full_epoch_s=corpus.total_instances / rate)
    return run


def untrained_run(ctx: Ctx, prepared):
    """A run with the stage's model at its initial weights (scoring costs the same as trained)."""
    from prerec.run import Run
    from prerec.text import get_encoder
    from prerec.training.pretrain import build_training

    sources, _, model, _, _ = build_training(prepared, ctx.cfg)
    model.eval()
    enc = get_encoder(ctx.cfg.encoder)
    return Run(ctx.cfg, model, ctx.cfg.encoder, enc.identity, sources, {p.name: p.domain.item_ids for p in prepared})


def stage_evaluate(ctx: Ctx, prereq: bool):
    from prerec.evaluation.evaluate import EvalConfig, evaluate_model
    from prerec.intervention import PreRecRecommender

    prepared = ctx.prepared(ctx.domains())
    run = untrained_run(ctx, prepared)
    if prereq:
        return None

    def go() -> None:
        target = prepared[0]
        cfg = EvalConfig(max_instances=ctx.eval_instances, progress=False, batch_size=256)
        ranks = evaluate_model(PreRecRecommender(run, "zero-shot", batch_size=256), target, cfg)
        ctx.details.update(instances=len(ranks.n_higher), catalog=target.n_items,
                           instances_per_s=len(ranks.n_higher) / max(clock() - t0[0], 1e-9))
    t0 = [0.0]

    def run_it() -> None:
        t0[0] = clock()
        go()
    return run_it


def stage_serve(kind: str):
    def stage(ctx: Ctx, prereq: bool):
        from prerec.serving.api import Service
        from prerec.serving.model import ServingModel
        from prerec.serving.retrieval import FaissRetriever

        prepared = ctx.prepared(ctx.domains())
        run = untrained_run(ctx, prepared)
        domain = prepared[0].domain
        del prepared
        if prereq:
            return None
        built = {}

        class Timed(FaissRetriever):
            def build(self, base: np.ndarray) -> object:
                t0 = clock()
                index = super().build(base)
                built.update(index_build_s=clock() - t0, vectors=len(base))
                return index

        def go() -> None:
            model = ServingModel.from_module(run.model, lambda texts: run.transform.apply(run.encoder.encode(texts)),
                                             run.prepare)
            model.run = run  # names the text pipeline by the run's encoder, as ServingModel.from_run does
            service = Service(model, retrieval=Timed(kind, threads=1), sync_interval=None)
            service.attach(domain)
            now = float(domain.interactions["timestamp"].max())
            t0 = clock()
            for i in domain.item_ids[:100]:  # one request at a time, a one-item history each
                service.recommend(domain.name, [[str(i)]], k=10, timestamp=now)
            spent = clock() - t0  # not part of the stage's time (the attach)
            ctx.details.update(built, query_ms=1000 * spent / 100, subtract_s=spent, catalog=len(domain.item_ids))
            service.close()
        return go
    return stage


RUNNERS = {"read": stage_read, "embed_split": stage_embed_split, "popularity": stage_popularity,
           "instances": stage_instances, "train": stage_train, "evaluate": stage_evaluate,
           "serve_flat": stage_serve("flat"), "serve_hnsw": stage_serve("hnsw")}


def measure(corpus: Path, stage: str, steps: int, eval_instances: int) -> dict:
    """Prerequisites, then the stage alone with its time and peak RSS."""
    torch.set_num_threads(1)
    ctx = Ctx(corpus, steps, eval_instances)
    t_pre = clock()
    run = RUNNERS[stage](ctx, prereq=False)
    prereq_s = clock() - t_pre
    gc.collect()
    start = rss_mb()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: the peak from here on is the stage's
    t0, w0 = clock(), time.perf_counter()
    run()
    wall = time.perf_counter() - w0
    seconds = clock() - t0 - ctx.details.pop("subtract_s", 0.0)
    return {"stage": stage, "seconds": seconds, "wall_s": wall, "rss_start_mb": start, "peak_mb": rss_mb("VmHWM"),
            "prereq_s": prereq_s, **ctx.details}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("stage", choices=STAGES)
    ap.add_argument("json", type=Path)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--eval-instances", type=int, default=10_000)
    a = ap.parse_args()
    a.json.write_text(json.dumps(measure(a.corpus, a.stage, a.steps, a.eval_instances), default=float) + "\n")


if __name__ == "__main__":
    main()
