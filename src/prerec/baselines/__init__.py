"""Baselines, each a :class:`~prerec.recommender.Recommender`; they are built by name through
:mod:`prerec.registry`.

``popularity``, ``text`` and ``text-last`` need no training (:mod:`prerec.baselines.simple`);
``sasrec-scratch`` trains on the target's training users (:mod:`prerec.baselines.sasrec`);
``markov`` (:mod:`prerec.baselines.markov`) and ``sasrec-sources``
(:mod:`prerec.baselines.sasrec_sources`) learn from the source domains by shared item id.
"""

from prerec.baselines.simple import PopularityBaseline, TextLastBaseline, TextMeanBaseline

__all__ = ["PopularityBaseline", "TextLastBaseline", "TextMeanBaseline"]
