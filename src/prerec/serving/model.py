"""What the service needs from a model: a :class:`prerec.scoring.Scorer` and its run's text pipeline.

The service works on *vectors*, not on a fixed catalog: an item may be added by text at any
time, and a history may hold the raw text of an item no catalog has. So it asks for:

- ``embed_texts(texts)``: the run's frozen text pipeline (encoder, then the run's embedding
  post-processing, if any) -> x ``(n, F)``;
- ``item_vectors(x, domain, item_ids)``: V through the scorer (in-domain mode adds the
  catalog items' offsets; added and raw-text items have none);
- ``user_vectors(vectors, histories, lengths, domain)``: U through the scorer, from histories of
  row numbers into ``vectors``;
- ``popularity_scores(index, day, n_items)``: g(F) over a catalog through the scorer.

- ``transitions`` / ``transition_table(domain)``: the run's transition head (None without one)
  and its counts over a domain's catalog.

The score of item j for a user is U . V_j + g(F_j(today)) (+ beta log(1 + T_h(j)) with a
transition head), exactly what ``PreRecRecommender(run, inference).score`` computes (tested on a
trained run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from prerec.data.domain import Domain
from prerec.data.prepared import PreparedDomain
from prerec.intervention import Intervention
from prerec.popularity import PopularityIndex
from prerec.repeats import override
from prerec.run import load_run
from prerec.scoring import PopularityScores, Scorer
from prerec.transitions import TransitionHead, TransitionTable


class ServingModel:
    """A scorer with its text pipeline; thread-safe (text encoders run under one lock)."""

    def __init__(self, scorer: Scorer, embed: Callable[[list[str]], np.ndarray],
                 prepare: Callable[[Domain], PreparedDomain], name: str = "prerec",
                 offset_rows: Callable[[str, np.ndarray], np.ndarray | None] | None = None,
                 identity_rows: Callable[[Domain], np.ndarray | None] | None = None,
                 observe: Callable[[str, PreparedDomain], None] | None = None) -> None:
        self.scorer = scorer
        self._observe = observe
        self._embed = embed
        self._prepare = prepare
        self._offset_rows = offset_rows
        self._identity_rows = identity_rows
        self._embed_lock = threading.Lock()  # text encoders are not promised to be thread-safe
        self.name = name
        self.max_history = int(scorer.max_history)
        self.text_dim = int(scorer.model.cfg.text_dim)
        self.transitions: TransitionHead | None = None

    @classmethod
    def from_module(cls, module: object, embed: Callable[[list[str]], np.ndarray],
                    prepare: Callable[[Domain], PreparedDomain], name: str = "prerec") -> ServingModel:
        """A bare :class:`prerec.model.PreRec` module in zero-shot mode (D = 0, no offsets)."""
        return cls(Scorer(module, lambda domain: [(None, 1.0)]), embed, prepare, name)

    @property
    def repeat_mixture(self) -> bool:
        """Whether the model ranks by the repeat mixture (:mod:`prerec.repeats`)."""
        return bool(self.scorer.model.cfg.repeat_mixture)

    @classmethod
    def from_run(cls, run_dir: str | Path, inference: str = "auto", repeat_mixture: str = "run",
                 **options: object) -> ServingModel:
        """Load a run saved by ``prerec pretrain`` (once), in one inference mode; ``repeat_mixture``
        ``on``/``off`` switches the run's repeat mixture (:func:`prerec.repeats.override`)."""
        run = load_run(run_dir, device="cpu")
        override(run, repeat_mixture)
        intervention = Intervention(run, inference, **options)  # type: ignore[arg-type]

        def embed(texts: list[str]) -> np.ndarray:
            return run.transform.apply(run.encoder.encode(texts))

        model = cls(Scorer(run.model, intervention.draws), embed, run.prepare, name=str(run_dir),
                    offset_rows=intervention.offset_rows, identity_rows=intervention.identity_rows,
                    observe=intervention.observe)
        model.run = run
        if run.transitions is not None and run.transitions.beta:  # beta 0: the head changes nothing
            model.transitions = run.transitions
        return model

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.text_dim), np.float32)
        with self._embed_lock:
            return np.ascontiguousarray(self._embed(list(texts)), dtype=np.float32)

    def prepare(self, domain: Domain) -> PreparedDomain:
        with self._embed_lock:
            return self._prepare(domain)

    def observe(self, name: str, prepared: PreparedDomain) -> None:
        """Read what the intervention needs from a domain's log before it is scored under ``name``
        (its taste signal, with ``taste_calibration``: :meth:`prerec.intervention.Intervention.observe`)."""
        if self._observe is not None:
            self._observe(name, prepared)

    def item_vectors(self, emb: np.ndarray, domain: Domain | None = None) -> np.ndarray:
        """V ``(n, H)`` float32; for ``domain``'s whole catalog (``emb`` in catalog order) the items'
        identities and, in-domain, their offsets apply; without it the vectors are text only."""
        rows = ident = None
        if domain is not None and self._offset_rows is not None:
            rows = self._offset_rows(domain.name, domain.item_ids)
        if domain is not None and self._identity_rows is not None:
            ident = self._identity_rows(domain)
        return self.scorer.item_vectors(np.asarray(emb, np.float32), rows, ident).float().cpu().numpy()

    def user_vectors(self, vectors: np.ndarray, histories: np.ndarray, lengths: np.ndarray,
                     domain: str | None = None) -> np.ndarray:
        """U ``(b, H)`` float32; ``histories`` ``(b, L)`` are row numbers into ``vectors``, -1 padded."""
        return self.scorer.user_vectors(vectors, histories, lengths, domain).float().cpu().numpy()

    def transition_table(self, domain: Domain) -> TransitionTable | None:
        """The transition head's counts over ``domain``'s catalog (None: no head, or no shared ids)."""
        if self.transitions is None or self._identity_rows is None:
            return None
        return self.transitions.table(self._identity_rows(domain))

    def popularity_scores(self, index: PopularityIndex, day: int | None, n_items: int) -> PopularityScores:
        return self.scorer.popularity_scores(index, day, n_items)

