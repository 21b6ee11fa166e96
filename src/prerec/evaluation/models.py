"""The bridge from evaluation to the PreRec model (``prerec.training`` / ``prerec.intervention``).

Everything PreRec-specific that evaluation needs goes through these few functions, so the
evaluation code depends on the model package only here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prerec.data.domain import Domain
from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError
from prerec.recommender import Recommender

MODES = ("zero-shot", "in-domain", "zero-shot-mc")


def load_run(run_dir: str | Path) -> Any:
    """A pre-trained run directory (``prerec pretrain --out``), or a clear error."""
    path = Path(run_dir)
    if not path.is_dir():
        raise PrerecError(f"--run {run_dir}: no such run directory")
    try:
        from prerec.training.run import load_run as _load
    except ImportError as exc:  # the model package is not installed in this checkout
        raise PrerecError(f"--run {run_dir}: PreRec runs cannot be loaded here ({exc})") from exc
    return _load(path)


def prepare_with_run(run: Any, domains: list[Domain]) -> list[PreparedDomain]:
    """Each domain prepared by the run (its encoder and split seed)."""
    return [run.prepare(d) for d in domains]


def prerec_recommender(run: Any, mode: str = "zero-shot", mc_draws: int | None = None,
                       mc_source: str | None = None) -> Recommender:
    """PreRec in one of its inference modes (SPEC.md section 4)."""
    if mode not in MODES:
        raise PrerecError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    from prerec.intervention import PreRecRecommender

    kwargs: dict[str, Any] = {"mode": mode}
    if mc_draws is not None:
        kwargs["mc_draws"] = mc_draws
    if mc_source is not None:
        kwargs["mc_source"] = mc_source
    return PreRecRecommender(run, **kwargs)


def source_item_ids(run: Any) -> set[str] | None:
    """Item ids of every source domain the run was pre-trained on (for the ``unseen`` subset);
    ``None`` when the run does not say."""
    for attr in ("source_item_ids", "source_items"):
        value = getattr(run, attr, None)
        if callable(value):
            value = value()
        if value is not None:
            if isinstance(value, dict):  # {domain: ids}
                return {str(i) for ids in value.values() for i in ids}
            return {str(i) for i in value}
    return None
