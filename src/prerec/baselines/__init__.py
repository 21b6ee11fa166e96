"""Baselines of BENCHMARKS.md, each a :class:`~prerec.recommender.Recommender`.

``popularity``, ``text`` and ``text-last`` need no training; ``sasrec-scratch`` trains on the
target's training users. ``make_baseline(name)`` builds one by its benchmark name.
"""

from __future__ import annotations

from prerec.baselines.simple import PopularityBaseline, TextLastBaseline, TextMeanBaseline
from prerec.errors import PrerecError
from prerec.recommender import Recommender

TRAINING_FREE = {
    "popularity": PopularityBaseline,
    "text": TextMeanBaseline,
    "text-last": TextLastBaseline,
}
ALL_BASELINES = (*TRAINING_FREE, "sasrec-scratch")


def make_baseline(name: str) -> Recommender:
    """A baseline by its benchmark name; an unknown name is a clear error."""
    if name in TRAINING_FREE:
        return TRAINING_FREE[name]()
    if name == "sasrec-scratch":
        from prerec.baselines.sasrec import SASRecScratch

        return SASRecScratch()
    raise PrerecError(f"unknown baseline {name!r}; known: {', '.join(ALL_BASELINES)}")


def parse_baselines(text: str | None) -> list[str]:
    """``"popularity,text"`` -> names, checked; empty or None -> []."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    for n in names:
        if n not in ALL_BASELINES:
            raise PrerecError(f"--baselines: unknown baseline {n!r}; known: {', '.join(ALL_BASELINES)}")
    return names


__all__ = ["ALL_BASELINES", "PopularityBaseline", "TextLastBaseline", "TextMeanBaseline", "make_baseline",
           "parse_baselines"]
