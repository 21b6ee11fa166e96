"""Data parallelism: two CPU processes (gloo on 127.0.0.1), each training on a disjoint shard of
every batch, end with the weights of one process trained on the same draws."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from training_fixtures import *  # noqa: F403  (fixtures: office, lastfm)
from training_fixtures import tiny_config

from prerec.training.pretrain import pretrain
from shared_data import free_port

CFG = dict(epochs=2, max_instances_per_epoch=900, dropout=0.0, lr=2e-3, batch_size=64)


def _domains():
    sys.path.insert(0, str(Path(__file__).parent))
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from training_fixtures import first_users

    from prerec.data import load_domains

    data = Path(os.environ["PREREC_TEST_DATA"])
    office = first_users(load_domains([f"office=canonical:{data / 'amazon_office'}"])[0], 300)
    lastfm = first_users(load_domains([f"lastfm=canonical:{data / 'lastfm'}"])[0], 150)
    return [office, lastfm]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from prerec.training.loop import World

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        run = pretrain(_domains(), tiny_config(**CFG), world=World(rank, world))
        if rank == 0:
            save_file({k: v.contiguous() for k, v in run.model.state_dict().items()}, out)
    finally:
        # both ranks leave together: a rank that tears gloo down while its peer still talks to
        # it aborts the peer ("terminate called without an active exception")
        dist.barrier()
        dist.destroy_process_group()



def test_two_processes_match_one(office, lastfm, tmp_path, monkeypatch):
    from shared_data import SHARED_DATA

    monkeypatch.setenv("PREREC_TEST_DATA", str(SHARED_DATA))
    single = pretrain([office, lastfm], tiny_config(**CFG))
    out = tmp_path / "ddp.safetensors"
    ctx = mp.get_context("spawn")
    port = free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, str(out))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    for p in procs:
        if p.is_alive():
            p.kill()
            pytest.fail("a data-parallel worker hung")
        assert p.exitcode == 0
    ddp = load_file(str(out))
    for k, v in single.model.state_dict().items():
        if k == "pop.2.bias":
            # g's output bias adds the same constant to every candidate's score: the softmax
            # cannot see it, its gradient is 0 up to rounding, and Adam's normalisation turns
            # that rounding noise into steps of size lr. It never changes a loss or a ranking.
            continue
        torch.testing.assert_close(ddp[k], v, rtol=1e-4, atol=2e-5, msg=k)
    # and training did move the weights (the comparison is not between two untouched models)
    untouched = pretrain([office, lastfm], tiny_config(**{**CFG, "lr": 1e-12, "epochs": 1}))
    moved = (single.model.blocks[0].ff1.weight - untouched.model.blocks[0].ff1.weight).detach().abs().max()
    assert float(moved) > 1e-3
