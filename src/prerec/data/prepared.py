"""A domain made ready for models: its split, text embeddings and popularity index."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from prerec.constants import SPLIT_SEED
from prerec.data.domain import Domain
from prerec.data.split import Split, split_users
from prerec.errors import PrerecError
from prerec.popularity import PopularityIndex

if TYPE_CHECKING:
    from prerec.text.taste import TasteSignal


@dataclass
class PreparedDomain:
    """Everything a recommender needs about one domain, computed once.

    ``item_emb[j]`` is the frozen text embedding of ``domain.item_ids[j]``. ``popularity``
    follows docs/method.md, "Popularity factors": the whole log when the domain has timestamps, otherwise one
    window over its training users' interactions.
    """

    domain: Domain
    split: Split
    item_emb: np.ndarray
    popularity: PopularityIndex

    @property
    def name(self) -> str:
        return self.domain.name

    @property
    def n_items(self) -> int:
        return self.domain.n_items

    @cached_property
    def taste(self) -> TasteSignal | None:
        """The text taste signal of the training users' log (:mod:`prerec.text.taste`; ``None``
        when undefined), read once per prepared domain (pre-training reads a source's here, and
        every scorer of a zero-shot target its weight from it)."""
        from prerec.text.taste import taste_signal  # the text layer builds on the data layer

        return taste_signal(self.item_emb, self.split.train)

    def factors(self, days: np.ndarray | int | None, items: np.ndarray) -> np.ndarray:
        """Popularity factors ``(n, 4)`` of the given (day, item) pairs."""
        return self.popularity.factors(days if self.popularity.days is not None else None, items)


def prepare_domain(domain: Domain, item_emb: np.ndarray, seed: int = SPLIT_SEED) -> PreparedDomain:
    """Split users with ``seed``, build the popularity index and attach the embeddings."""
    if item_emb.shape[0] != domain.n_items:
        raise ValueError(f"{domain.name}: {item_emb.shape[0]} embeddings for {domain.n_items} items")
    split = split_users(domain.sequences, seed)
    popularity = domain_popularity_index(domain, split)
    return PreparedDomain(domain, split, np.ascontiguousarray(item_emb, dtype=np.float32), popularity)


def domain_popularity_index(domain: Domain, split: Split) -> PopularityIndex:
    """docs/method.md, "Popularity factors": the whole log when the domain has timestamps, otherwise one window over
    its training users' interactions (the one place this rule lives)."""
    if domain.has_time:
        return PopularityIndex(domain.sequences.items, domain.sequences.days)
    return PopularityIndex(split.train.items, None)


def require_text(domain: Domain) -> None:
    """PreRec represents items by their text: a domain without any is unusable."""
    if (domain.texts.str.len() > 0).sum() == 0:
        raise PrerecError(
            f"{domain.source or domain.name}: domain {domain.name!r} has no item text at all; "
            "PreRec encodes items from their text (give the items a text column)"
        )
