"""Helpers of the serving tests: a tiny timed domain and a tiny random PreRec model (no training)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from prerec.data.domain import SECONDS_PER_DAY, Domain, build_domain
from prerec.data.prepared import prepare_domain
from prerec.text import HashEncoder

COLOURS = ["red", "blue", "green", "pink", "white", "black"]
THINGS = ["mug", "tea cup", "lunch bag", "candle holder", "doormat", "cake tin", "napkins", "jar", "clock", "lantern"]
DAY0 = 15_000  # a day number (2011-01-26)


def tiny_frames(n_users: int = 40, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """60 items with texts; users with 3-12 interactions over 40 days."""
    rng = np.random.default_rng(seed)
    items = [f"{c}-{t}".replace(" ", "_") for c in COLOURS for t in THINGS]
    texts = pd.DataFrame({"item_id": items, "text": [i.replace("-", " ").replace("_", " ") for i in items]})
    rows = []
    for u in range(n_users):
        day = DAY0 + int(rng.integers(0, 30))
        for _ in range(int(rng.integers(3, 13))):
            day += int(rng.integers(0, 3))
            rows.append((f"u{u}", items[int(rng.zipf(1.5)) % len(items)], day * SECONDS_PER_DAY + int(rng.integers(0, 80000))))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return inter, texts


def tiny_domain(name: str = "tiny", seed: int = 0) -> Domain:
    inter, texts = tiny_frames(seed=seed)
    return build_domain(name, inter, texts, source=f"tiny:{name}")


def tiny_model(seed: int = 0, hidden: int = 32):
    """A randomly initialised PreRec module behind the serving adapter (hash:64 text)."""
    import torch

    from prerec.model import ModelConfig, PreRec
    from prerec.serving.model import ServingModel

    torch.manual_seed(seed)
    cfg = ModelConfig(text_dim=64, hidden_size=hidden, pop_hidden=16, dropout=0.0, init_std=0.3,
                      domain_items=[4])
    module = PreRec(cfg)
    enc = HashEncoder(64)
    return ServingModel.from_module(module, enc.encode, lambda d: prepare_domain(d, enc.encode(d.texts.tolist())))


def counting(model, delay: float = 0.0):
    """Wrap ``model``'s text pipeline: record every batch of texts it encodes (and sleep
    ``delay`` seconds per text, to stand in for a slow neural encoder)."""
    import time

    inner = model._embed
    model.encoded: list[list[str]] = []

    def embed(texts: list[str]):
        model.encoded.append(list(texts))
        if delay:
            time.sleep(delay * len(texts))
        return inner(texts)

    model._embed = embed
    return model


class LiveServer:
    """A uvicorn server for ``app`` in a thread of this process, on 127.0.0.1 (bounded waits)."""

    def __init__(self, app, port: int) -> None:
        import threading

        import uvicorn

        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start within 30 s"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def assert_zero_shot_scores(run, prepared, hist, lengths, days, want, mixture: bool) -> np.ndarray:
    """``PreRecRecommender(run, "zero-shot")`` scores ``want`` (the repeat mixture applied to it
    when ``mixture``), up to a constant per row; returns the scores."""
    import torch

    from prerec.intervention import PreRecRecommender
    from prerec.repeats import apply_repeat_mixture

    if mixture:
        want = apply_repeat_mixture(torch.tensor(want), hist, lengths).numpy()
    run.model.cfg.repeat_mixture = mixture
    got = PreRecRecommender(run, "zero-shot").score(prepared, hist, lengths, days)
    np.testing.assert_allclose(got - got.mean(1, keepdims=True), want - want.mean(1, keepdims=True), atol=2e-4)
    return got
