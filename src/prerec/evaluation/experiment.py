"""Several models, one split, one comparison table (in the spirit of Cornac's ``Experiment``).

    exp = Experiment(targets, {"text-last": TextLastBaseline(), "sasrec": lambda t: SASRecScratch().fit([], t)})
    results = exp.run()          # ranks every test instance of every target under every model
    exp.print()                  # one rich table: a row per model, a column per domain + the mean

A model is either a :class:`Recommender` (already trained, used for every target) or a factory
``target -> Recommender`` (trained per target, e.g. SASRec from scratch or PreRec fine-tuned).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from rich.console import Console
from rich.table import Table

from prerec.data.prepared import PreparedDomain
from prerec.evaluation.evaluate import DomainRanks, EvalConfig, Results, evaluate_model
from prerec.recommender import Recommender

log = logging.getLogger(__name__)
ModelSpec = Recommender | Callable[[PreparedDomain], Recommender]


class Experiment:
    """Evaluate ``models`` on ``targets`` with one protocol (docs/method.md, "Evaluation")."""

    def __init__(self, targets: list[PreparedDomain], models: dict[str, ModelSpec],
                 config: EvalConfig | None = None, source_items: Iterable[str] | None = None,
                 title: str = "") -> None:
        self.targets = targets
        self.models = models
        self.config = config or EvalConfig()
        self.source_items = set(source_items) if source_items is not None else None
        self.title = title
        self.results = Results(ratio=self.config.ratio, ks=tuple(self.config.ks))
        self.seconds: dict[str, float] = {}

    def run(self, on_result: Callable[[DomainRanks], None] | None = None) -> Results:
        """Train (factories) and rank every model on every target; returns the results.

        ``on_result`` sees each (model, target) result as soon as it is done (long benchmarks
        save their figures as they go)."""
        for target in self.targets:
            for name, spec in self.models.items():
                t0 = time.perf_counter()
                model = spec if isinstance(spec, Recommender) else spec(target)
                result = evaluate_model(model, target, self.config, name=name, source_items=self.source_items)
                self.results.add(result)
                if on_result is not None:
                    on_result(result)
                self.seconds[f"{name}/{target.name}"] = time.perf_counter() - t0
                log.info("%s on %s: %.1f s", name, target.name, self.seconds[f"{name}/{target.name}"])
        return self.results

    def table(self, subset: str = "all", metric: str = "recall@k%") -> Table:
        return comparison_table(self.results.summary(subset), metric,
                                title=self.title or f"{metric} ({subset} instances)")

    def print(self, console: Console | None = None) -> None:
        console = console or Console()
        console.print(self.table())


def comparison_table(summary: dict, metric: str = "recall@k%", title: str = "",
                     extra: tuple[str, ...] = ("rndcg@k%", "recall@20", "ndcg@20")) -> Table:
    """A row per model: ``metric`` per domain, then the mean of ``metric`` and of ``extra``."""
    domains = [d for d in summary if d != "mean"]
    models = list(summary.get("mean", {}))
    table = Table(title=title)
    table.add_column("model", no_wrap=True)
    for d in domains:
        table.add_column(d, justify="right")
    table.add_column(f"mean {metric}", justify="right", style="bold")
    for e in extra:
        table.add_column(f"mean {e}", justify="right")
    table.add_column("instances", justify="right")

    def cell(m: dict | None, key: str) -> str:
        v = None if m is None else m.get(key)
        return "-" if v is None or v != v else f"{v:.4f}"

    for model in models:
        row = [cell(summary[d].get(model), metric) for d in domains]
        mean = summary["mean"][model]
        table.add_row(model, *row, cell(mean, metric), *[cell(mean, e) for e in extra], f"{mean['instances']:,}")
    return table
