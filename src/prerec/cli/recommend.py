"""``prerec recommend``: the top items of a target domain for one history, with their text.

The request day (whose popularity factors apply) is the day after the target's log ends,
i.e. "now" for that log, unless ``--day`` says otherwise. Output is one line per item:
``rank<TAB>item_id<TAB>score<TAB>text``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from prerec.data.readers import load_domain
from prerec.errors import PrerecError
from prerec.evaluation.prepare import prepare_without_run
from prerec.intervention import INFERENCE_MODES, PreRecRecommender
from prerec.registry import build_model, for_target, run_free_names
from prerec.repeats import REPEAT_CHOICES, override
from prerec.run import load_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recommend", help="top-k items of a target domain for a history")
    p.add_argument("--run", help="pre-trained run directory (needed for --model prerec)")
    p.add_argument("--target", required=True, metavar="NAME=FORMAT:PATH", help="the target domain")
    p.add_argument("--history", required=True, help="comma-separated item ids, oldest first")
    p.add_argument("-k", type=int, default=10, help="how many items (default 10)")
    p.add_argument("--mode", choices=INFERENCE_MODES, default="auto",
                   help="PreRec inference mode (default auto: in-domain for a domain the run has learned, "
                        "e.g. a fine-tuned target; zero-shot for a new one)")
    p.add_argument("--model", default="prerec", choices=("prerec", *run_free_names()),
                   help="which model recommends (default prerec)")
    p.add_argument("--day", help="request day: YYYY-MM-DD or a unix day number (default: after the log ends)")
    p.add_argument("--exclude-history", action="store_true", help="never recommend an item of the history")
    p.add_argument("--repeat-mixture", choices=REPEAT_CHOICES, default="run",
                   help="rank by the repeat mixture (docs/method.md): as the run was trained (default), on or off")
    p.add_argument("--encoder", help="text encoder when no --run is given (baselines only)")
    p.add_argument("--json", action="store_true", help="print JSON instead of lines")
    p.set_defaults(handler=run_recommend)


def request_day(text: str | None, log_days: np.ndarray) -> int:
    """The unix day of the request."""
    if text is None:
        return int(log_days.max()) + 1 if len(log_days) else -1
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return int(pd.Timestamp(text).value // 86_400_000_000_000)
    except ValueError as exc:
        raise PrerecError(f"--day {text!r}: expected YYYY-MM-DD or a unix day number") from exc


def run_recommend(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise PrerecError(f"-k {args.k}: expected at least 1")
    ids = [h.strip() for h in args.history.split(",") if h.strip()]
    if not ids:
        raise PrerecError("--history: give at least one item id")
    domain = load_domain(args.target)
    history = domain.encode_items(ids, what="--history item")  # unknown id -> exit 2
    if args.model == "prerec":
        if not args.run:
            raise PrerecError("--model prerec needs --run RUN_DIR (or choose a baseline with --model)")
        run = load_run(args.run)
        override(run, args.repeat_mixture)
        target = run.prepare(domain, progress=True)
        model = PreRecRecommender(run, args.mode)
    else:
        target = (load_run(args.run).prepare(domain, progress=True) if args.run
                  else prepare_without_run([domain], args.encoder)[0])
        model = for_target(build_model(args.model), target)
    day = request_day(args.day, domain.sequences.days) if domain.has_time else -1
    top, scores = model.recommend(target, history[None, :], np.array([len(history)]), np.array([day]),
                                  k=args.k, exclude_seen=args.exclude_history)
    items = [{"item_id": str(domain.item_ids[j]), "score": float(s), "text": str(domain.texts.iloc[j])}
             for j, s in zip(top[0], scores[0])]
    if args.json:
        print(json.dumps({"domain": domain.name, "items": items}, ensure_ascii=False))
    else:
        for rank, it in enumerate(items, 1):
            text = " ".join(it["text"].split())
            print(f"{rank}\t{it['item_id']}\t{it['score']:.4f}\t{text}")
    return 0
