"""Every model the project evaluates, registered once by name (as Cornac and implicit do).

``prerec experiment``, ``prerec evaluate --baselines``, ``prerec recommend --model`` and the
contract tests take their models from :data:`MODELS`; adding a model is one :func:`register`
call. An entry says what the model needs (a pre-trained PreRec variant, the target's training
users) and how to build it from a :class:`ModelContext`. ``build`` returns a
:class:`~prerec.recommender.Recommender`, or a factory ``target -> Recommender`` for models
trained per target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from prerec.baselines.markov import MarkovBaseline
from prerec.baselines.popularity_sets import ROWS as POPULARITY_ROWS
from prerec.baselines.popularity_sets import FactorSetBaseline
from prerec.baselines.sasrec import SASRecConfig, SASRecScratch
from prerec.baselines.sasrec_sources import SASRecSources
from prerec.baselines.simple import (
    PopularityBaseline,
    PopularityRepeatBaseline,
    TextLastBaseline,
    TextMeanBaseline,
)
from prerec.config import FinetuneConfig
from prerec.data.instances import make_instances
from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError
from prerec.intervention import PreRecRecommender
from prerec.recommender import Recommender
from prerec.run import Run
from prerec.training.finetune import finetune

ModelSpec = Recommender | Callable[[PreparedDomain], Recommender]


@dataclass
class ModelContext:
    """What a model may be built from: the pre-trained run of its variant and the settings."""

    run: Run | None = None
    mc: dict = field(default_factory=dict)  # draws, source
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    sasrec: SASRecConfig = field(default_factory=SASRecConfig)
    n: int | None = None  # target training instances (the incremental curve); None: all of them
    sources: list[PreparedDomain] = field(default_factory=list)  # the source domains (id-based models)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Callable[[ModelContext], ModelSpec]
    description: str
    variant: str | None = None  # the pre-trained PreRec variant it needs (None: no run)
    curve: Callable[[ModelContext], ModelSpec] | None = None  # built at N target instances (ctx.n)
    same_as: tuple[tuple[int | str, str], ...] = ()  # curve points that equal a main-table model
    needs_sources: bool = False  # built from the source domains' logs (ids shared with the target)
    zero_shot: bool = True  # no training on the target (repeated over training seeds in benchmarks)

    @property
    def needs_run(self) -> bool:
        return self.variant is not None


MODELS: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    if entry.name in MODELS:
        raise ValueError(f"model {entry.name!r} is registered twice")
    MODELS[entry.name] = entry
    return entry


def get_model(name: str) -> ModelEntry:
    if name not in MODELS:
        raise PrerecError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def run_free_names() -> list[str]:
    """Models that need no pre-trained run (``prerec evaluate --baselines``)."""
    return [n for n, e in MODELS.items() if not e.needs_run]


def parse_names(text: str | None, allowed: list[str], what: str = "--baselines") -> list[str]:
    """``"popularity,text"`` -> names, each checked against ``allowed``; empty or None -> []."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    for n in names:
        if n not in allowed:
            raise PrerecError(f"{what}: unknown model {n!r}; known: {', '.join(allowed)}")
    return names


def build_model(name: str, ctx: ModelContext | None = None) -> ModelSpec:
    """The model ``name`` built from ``ctx`` (a clear error when it needs a run and has none)."""
    entry = get_model(name)
    ctx = ctx or ModelContext()
    if entry.needs_run and ctx.run is None:
        raise PrerecError(f"model {name!r} needs a pre-trained run (variant {entry.variant!r})")
    return entry.build(ctx)


def for_target(spec: ModelSpec, target: PreparedDomain) -> Recommender:
    """The recommender of ``spec`` for ``target`` (a factory trains it now)."""
    return spec if isinstance(spec, Recommender) else spec(target)


# ---- the entries -------------------------------------------------------------------------------

def _sasrec(ctx: ModelContext) -> Callable[[PreparedDomain], Recommender]:
    def factory(target: PreparedDomain) -> Recommender:
        train = make_instances(target.split.train)
        return SASRecScratch(ctx.sasrec).fit([], target, instances=None if ctx.n is None else train.first(ctx.n))

    return factory


def _finetuned(ctx: ModelContext) -> Callable[[PreparedDomain], Recommender]:
    def factory(target: PreparedDomain) -> Recommender:
        return finetune(ctx.run, target, ctx.n, ctx.finetune)

    return factory


def _zero_shot(ctx: ModelContext) -> Recommender:
    return PreRecRecommender(ctx.run, "zero-shot")


def _prerec_curve(ctx: ModelContext) -> ModelSpec:
    return _zero_shot(ctx) if ctx.n == 0 else _finetuned(ctx)


def _markov_curve(ctx: ModelContext) -> Callable[[PreparedDomain], Recommender]:
    """Source transitions plus the target's first ``ctx.n`` training instances (None: all)."""

    def factory(target: PreparedDomain) -> Recommender:
        train = make_instances(target.split.train)
        return MarkovBaseline().fit(ctx.sources, target, instances=train if ctx.n is None else train.first(ctx.n))

    return factory


def _markov(ctx: ModelContext) -> Callable[[PreparedDomain], Recommender]:
    """Zero-shot: the sources' transitions only."""
    return _markov_curve(ModelContext(sources=ctx.sources, n=0))


def _sasrec_sources(ctx: ModelContext) -> Callable[[PreparedDomain], Recommender]:
    """Zero-shot: trained once on ``ctx.sources`` (pooled, by shared id) and reused for every
    target built from this context (a fold's targets share one fit)."""
    fitted: dict[tuple[str, ...], SASRecSources] = {}

    def factory(target: PreparedDomain) -> Recommender:
        key = tuple(s.name for s in ctx.sources)
        if key not in fitted:
            fitted[key] = SASRecSources(ctx.sasrec).fit(ctx.sources)
        return fitted[key].match(target)

    return factory


def _monte_carlo(ctx: ModelContext) -> Recommender:
    return PreRecRecommender(ctx.run, "zero-shot-mc", mc_draws=int(ctx.mc.get("draws", 16)),
                             mc_source=str(ctx.mc.get("source", "empirical")))


register(ModelEntry("popularity", lambda ctx: PopularityBaseline(), "the target's L2 popularity factor"))
for _set, _what in POPULARITY_ROWS.items():  # the other popularity factor sets' rows
    register(ModelEntry(f"popularity-{_set}", lambda ctx, s=_set: FactorSetBaseline(s), _what))
register(ModelEntry("popularity-repeat", lambda ctx: PopularityRepeatBaseline(),
                    "popularity with the repeat mixture: the history's own items placed by its own repeat rate"))
register(ModelEntry("text", lambda ctx: TextMeanBaseline(), "cosine(mean history text, item text)"))
register(ModelEntry("text-last", lambda ctx: TextLastBaseline(), "cosine(last history item's text, item text)"))
register(ModelEntry("prerec", _zero_shot, "PreRec zero-shot: do(D) as D = 0, target popularity",
                    variant="prerec", curve=_prerec_curve, same_as=((0, "prerec"), ("all", "prerec-finetuned"))))
register(ModelEntry("prerec-text", _zero_shot, "PreRec without item identity: items known by their text only "
                    "(the paper's model)", variant="prerec-text"))
register(ModelEntry("prerec-mc", _monte_carlo, "PreRec zero-shot, user tower averaged over draws of D",
                    variant="prerec"))
register(ModelEntry("prerec-no-transitions", lambda ctx: PreRecRecommender(ctx.run, "zero-shot", transitions=False),
                    "ablation: PreRec zero-shot without the transition head (identity kept)", variant="prerec"))
register(ModelEntry("prerec-no-domain", _zero_shot, "ablation: pre-trained without D", variant="prerec-no-domain"))
register(ModelEntry("prerec-no-pop", _zero_shot, "ablation: pre-trained without the popularity head",
                    variant="prerec-no-pop"))
register(ModelEntry("zesrec", _zero_shot, "ablation: neither confounder (ZESRec)", variant="zesrec"))
register(ModelEntry("markov", _markov, "source transitions by shared item id, last 5 items weighted 1, 1/2, ...",
                    curve=_markov_curve, same_as=((0, "markov"),), needs_sources=True))
register(ModelEntry("sasrec-sources", _sasrec_sources, "ID-based SASRec trained on the pooled sources by shared "
                    "item id, zero-shot", needs_sources=True))
register(ModelEntry("sasrec-scratch", _sasrec, "ID-based SASRec trained on the target's training users",
                    curve=_sasrec, same_as=(("all", "sasrec-scratch"),), zero_shot=False))
register(ModelEntry("prerec-finetuned", _finetuned, "PreRec fine-tuned on the target's training users",
                    variant="prerec", zero_shot=False))
