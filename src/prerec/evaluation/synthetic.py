"""What a synthetic world (:mod:`prerec.simulate`) lets us check that real data cannot.

- :class:`OracleRecommender`: the world's own generating scores (an upper bound), with or
  without the target's confounder D_k and popularity trend;
- :class:`DayOne`: any recommender on a target whose popularity factors are all 0;
- :func:`domain_recovery`: does the learned D_k do what the planted D_k does? For each
  trained source k, the *tilt* that D_k puts on item scores, averaged over users' histories,
  is compared with the planted tilt kappa <D_k, q_j> by a Pearson correlation over the
  domain's items. The comparison is made in score space because the model's latent space is
  an unknown transformation of the world's.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from prerec.data.instances import make_instances
from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError
from prerec.popularity import PopularityIndex
from prerec.recommender import Recommender
from prerec.simulate import Truth, oracle_scores


class OracleRecommender(Recommender):
    """Scores with the world's generating function l (the target must be a domain of the world);
    ``with_bias=False`` drops D_k, ``with_popularity=False`` the trend term."""

    def __init__(self, truth: Truth, with_bias: bool = True, with_popularity: bool = True) -> None:
        self.truth = truth
        self.with_bias = with_bias
        self.with_popularity = with_popularity
        self.name = "oracle" + ("" if with_bias else "-no-domain") + ("" if with_popularity else "-no-pop")

    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        if target.name not in self.truth.domain_names:
            raise PrerecError(f"oracle: {target.name!r} is not a domain of this world "
                              f"({', '.join(self.truth.domain_names)})")
        days = np.broadcast_to(np.asarray(days, dtype=np.int64), (len(histories),))
        return oracle_scores(self.truth, target.name, target.domain.item_ids, np.asarray(histories, dtype=np.int64),
                             np.asarray(lengths), days, with_bias=self.with_bias,
                             with_popularity=self.with_popularity)


class DayOne(Recommender):
    """A recommender that sees a target without its log's popularity (every factor 0, as on the
    target's first day): what is left of zero-shot when the target's counts cannot reveal its bias."""

    def __init__(self, inner: Recommender, name: str) -> None:
        self.inner, self.name = inner, name

    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        empty = np.zeros(0, dtype=np.int64)
        blind = dataclasses.replace(target, popularity=PopularityIndex(empty, empty))
        return self.inner.score(blind, histories, lengths, days)


def planted_tilt(truth: Truth, domain: str, item_ids: np.ndarray, shift: np.ndarray | float = 0.0) -> np.ndarray:
    """kappa <D_k - shift, q_j> for the given items, D_k of world domain ``domain``."""
    k = truth.domain_names.index(domain)
    universe = np.array([int(str(i)[1:]) for i in item_ids], dtype=np.int64)
    return truth.config.sharpness * truth.item_latents[universe] @ (truth.domain_bias[k] - shift)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0


@torch.no_grad()
def learned_tilt(run, prepared: PreparedDomain, n_histories: int = 256, seed: int = 0) -> np.ndarray:
    """Mean over training histories of (U(D_k) - U(D=0)) . V_j for every item j (offsets off)."""
    from prerec.intervention import PreRecRecommender
    from prerec.scoring import Scorer

    model = run.model
    if model.domain is None:
        raise PrerecError("learned_tilt: the run has no domain confounder")
    k = run.domain_index(prepared.name)
    inst = make_instances(prepared.split.train)
    if len(inst) > n_histories:
        inst = inst.take(np.sort(np.random.default_rng(seed).choice(len(inst), n_histories, replace=False)))
    hist, lengths = inst.histories(model.cfg.max_history)
    rec = PreRecRecommender(run, "zero-shot")
    V = rec.item_tensor(prepared)
    u0 = rec.scorer.user_vectors(V, hist, lengths, prepared.name)
    with_dk = Scorer(model, lambda domain: [(model.domain[k].detach(), 1.0)])  # D = D_k, the rest as zero-shot
    uk = with_dk.user_vectors(V, hist, lengths, prepared.name)
    return ((uk - u0).mean(0) @ V.T).float().cpu().numpy()


def recovery_matrix(run, sources: list[PreparedDomain], truth: Truth, n_histories: int = 256,
                    centred: bool = False) -> tuple[list[str], np.ndarray]:
    """``C[a, b]``: Pearson correlation, over the items of trained source a, of the tilt the
    learned D_a puts on them and the tilt the planted D_b would put on them. Recovery means a
    large diagonal; the off-diagonal is the control (the planted D_k are independent).

    ``centred``: the planted D_b minus the mean planted D of the trained sources. What all
    sources share cannot be told apart from the shared weights (a constant added to every
    D_k and taken out of the user tower gives the same likelihood), so only the centred
    part is identifiable."""
    trained = [p for p in sources if p.name in run.source_names]
    names = [p.name for p in trained]
    k_of = [truth.domain_names.index(n) for n in names]
    shift = truth.domain_bias[k_of].mean(0) if centred else 0.0
    C = np.zeros((len(names), len(names)))
    for a, p in enumerate(trained):
        learned = learned_tilt(run, p, n_histories)
        for b, other in enumerate(names):
            C[a, b] = _corr(learned, planted_tilt(truth, other, p.domain.item_ids, shift))
    return names, C


def absorbed_fraction(run, sources: list[PreparedDomain], truth: Truth, n_histories: int = 256) -> dict[str, float]:
    """Per trained source: the slope of the learned D_k's tilt on the planted centred tilt, i.e.
    the share of the (identifiable) planted bias that D_k carries (1: all of it; 0: none, the
    shared weights carry it). The correlation says whether D points the right way, this how far."""
    trained = [p for p in sources if p.name in run.source_names]
    k_of = [truth.domain_names.index(p.name) for p in trained]
    shift = truth.domain_bias[k_of].mean(0)
    out = {}
    for p in trained:
        learned = learned_tilt(run, p, n_histories)
        planted = planted_tilt(truth, p.name, p.domain.item_ids, shift)
        out[p.name] = float(np.cov(learned, planted)[0, 1] / planted.var()) if planted.var() > 0 else 0.0
    return out


def domain_recovery(run, sources: list[PreparedDomain], truth: Truth, n_histories: int = 256,
                    centred: bool = False) -> dict[str, float]:
    """Correlation of learned and planted tilts, per trained source domain (the diagonal)."""
    names, C = recovery_matrix(run, sources, truth, n_histories, centred)
    return {n: float(C[k, k]) for k, n in enumerate(names)}


def domain_norms(run) -> dict[str, float]:
    """RMS of each trained source's learned D_k (per coordinate)."""
    if run.model.domain is None:
        return {}
    D = run.model.domain.detach().float().cpu().numpy()
    return {s.name: float(np.sqrt((D[s.domain_index] ** 2).mean())) for s in run.sources if s.role == "train"}
