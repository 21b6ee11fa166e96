"""The model: padding cannot change U, sequence and instance layouts are the same model,
initialisation, switches, and the score U.V + g(F) against a direct computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prerec.model import VARIANTS, ModelConfig, PreRec


def tiny(variant: str = "prerec", **kw) -> PreRec:
    torch.manual_seed(0)
    cfg = ModelConfig.for_variant(variant, text_dim=12, hidden_size=16, max_history=8, pop_hidden=8,
                                  domain_items=[30, 20], **kw)
    model = PreRec(cfg)
    with torch.no_grad():  # move D, e, positions off zero so they matter in the checks
        for p in (model.domain, model.offsets, model.positions):
            if p is not None:
                p.normal_(0, 0.3)
    return model.eval()


def test_padding_cannot_change_user_vector():
    model = tiny()
    V = torch.randn(50, 16)
    lengths = torch.tensor([1, 3, 8, 5])
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 50, (4, 8), generator=g)
    real = torch.arange(8)[None, :] < lengths[:, None]
    hist_a = torch.where(real.unsqueeze(-1), V[ids], torch.zeros(()))  # zero padding
    other = V[torch.randint(0, 50, (4, 8), generator=g)] * 100  # wild padding
    hist_b = torch.where(real.unsqueeze(-1), V[ids], other)
    d = model.domain[torch.tensor([0, 1, 0, 1])]
    with torch.no_grad():
        ua = model.user_vectors(hist_a, lengths, d)
        ub = model.user_vectors(hist_b, lengths, d)
        # and a shorter padded width: padding removed altogether for each row
        uc = torch.stack([model.user_vectors(hist_a[i:i + 1, : int(n)], lengths[i:i + 1], d[i:i + 1])[0]
                          for i, n in enumerate(lengths)])
    torch.testing.assert_close(ua, ub, rtol=0, atol=1e-6)
    torch.testing.assert_close(ua, uc, rtol=1e-5, atol=1e-6)


def test_dropout_off_in_eval_and_on_in_train():
    model = tiny()
    hist = torch.randn(2, 5, 16)
    lengths = torch.tensor([5, 3])
    with torch.no_grad():
        a, b = model.user_vectors(hist, lengths), model.user_vectors(hist, lengths)
        torch.testing.assert_close(a, b)
        model.train()
        c = model.user_vectors(hist, lengths)
    assert not torch.allclose(a, c)


def _batches(model: PreRec, seq_len: int = 9, n_neg: int = 6):
    """One chunk in the sequence layout and the same targets as separate instances."""
    g = torch.Generator().manual_seed(3)
    n_items = 30
    x = torch.randn(n_items, 12, generator=g)
    rows = torch.arange(n_items)  # global ids of domain 0 = offset rows
    seq = torch.randint(0, n_items, (seq_len,), generator=g)
    neg = torch.randint(0, n_items, (n_neg,), generator=g)
    pop_rows = torch.rand(5, 4, generator=g)
    tpop = torch.randint(0, 5, (seq_len - 1,), generator=g)
    npop = torch.randint(0, 5, (seq_len - 1, n_neg), generator=g)
    common = {"x": x, "rows": rows, "pop_rows": pop_rows, "domain": torch.tensor([1])}
    L = seq_len - 1
    seq_batch = {**common, "hist": seq[None, :L], "target": seq[None, 1:], "neg": neg[None],
                 "target_pop": tpop[None], "neg_pop": npop, "neg_pop_index": torch.arange(L)[None],
                 "norm": torch.tensor(float(L))}
    hist = torch.full((L, L), -1)
    for t in range(L):
        hist[t, : t + 1] = seq[: t + 1]
    inst_batch = {**common, "domain": torch.tensor([1] * L), "hist": hist, "lengths": torch.arange(1, L + 1),
                  "target": seq[1:], "neg": neg[None].expand(L, -1), "target_pop": tpop, "neg_pop": npop,
                  "norm": torch.tensor(float(L))}
    return seq_batch, inst_batch


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sequence_layout_equals_instance_layout(variant):
    """One causal pass over a chunk = every prefix through the tower on its own (loss and grads)."""
    model = tiny(variant)
    seq_batch, inst_batch = _batches(model)
    loss_s = model(seq_batch)
    grads_s = torch.autograd.grad(loss_s, [p for p in model.parameters()])
    loss_i = model(inst_batch)
    grads_i = torch.autograd.grad(loss_i, [p for p in model.parameters()])
    torch.testing.assert_close(loss_s, loss_i, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_s, grads_i):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_loss_matches_direct_sampled_softmax():
    model = tiny()
    _, b = _batches(model)
    with torch.no_grad():
        loss = model(b)
        V = model.item_proj(b["x"]) + model.offsets[b["rows"]]
        Z = model.pop(b["pop_rows"]).squeeze(-1)
        total = 0.0
        for i in range(len(b["target"])):
            n = int(b["lengths"][i])
            h = V[b["hist"][i, :n]] + model.domain[1]
            u = model.encode(h[None])[0, -1]
            cand = torch.cat([b["target"][i:i + 1], b["neg"][i]])
            z = torch.cat([Z[b["target_pop"][i:i + 1]], Z[b["neg_pop"][i]]])
            s = V[cand] @ u + z
            total += float(-torch.log_softmax(s, 0)[0])
    assert float(loss) == pytest.approx(total / len(b["target"]), rel=1e-5)


def test_initialisation():
    torch.manual_seed(0)
    model = PreRec(ModelConfig(text_dim=384, hidden_size=256, domain_items=[1000, 500]))
    assert model.item_proj.bias is None
    assert model.item_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.blocks[0].ff1.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    for p in (model.domain, model.offsets, model.positions, model.blocks[0].ff1.bias):
        assert float(p.detach().abs().max()) == 0.0
    assert model.offsets.shape == (1500, 256) and model.domain.shape == (2, 256)
    assert model.offset_base.tolist() == [0, 1000]
    assert model.pop[0].in_features == 4 and model.pop[0].out_features == 512
    assert isinstance(model.pop[1], torch.nn.GELU)
    assert model.blocks[0].ff1.out_features == 256 and len(model.blocks) == 2


def test_switches():
    assert tiny("prerec-no-domain").domain is None
    assert tiny("prerec-no-pop").pop is None and tiny("prerec-no-pop").domain is not None
    z = tiny("zesrec")
    assert z.pop is None and z.domain is None
    assert tiny(item_offsets=False).offsets is None
    assert float(z.popularity(torch.ones(3, 4)).abs().sum()) == 0.0
    with pytest.raises(ValueError):
        ModelConfig.for_variant("nope")


def test_item_vectors_offsets_only_where_given():
    model = tiny()
    x = torch.randn(3, 12)
    rows = torch.tensor([0, -1, 35])
    with torch.no_grad():
        v = model.item_vectors(x, rows)
        w = model.item_proj(x)
    torch.testing.assert_close(v[1], w[1])
    torch.testing.assert_close(v[0], w[0] + model.offsets[0])
    torch.testing.assert_close(v[2], w[2] + model.offsets[35])
    np.testing.assert_allclose(model.item_vectors(x).detach().numpy(), w.numpy())
