"""``sentence-transformers:<model name or local path>``: any sentence-transformers model, offline.

The model is looked up, in this order, as
1. a local folder (a ``save_pretrained`` / ``huggingface-cli download --local-dir`` copy);
2. a repository in the Hugging Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
   ``~/.cache/huggingface/hub``); a bare name such as ``stsb-xlm-r-multilingual`` is also tried
   as ``sentence-transformers/<name>``.
Nothing is downloaded: the backend sets ``HF_HUB_OFFLINE=1`` before the Hugging Face libraries
are imported and loads with ``local_files_only``. Where no weights are found the error says how
to provide them.

Items are encoded as documents: where the model's config defines a ``document``/``passage``
prompt (e.g. ``"passage: "`` for E5 models) it is prepended, as the model expects.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from prerec.errors import PrerecError
from prerec.text.base import TextEncoder, l2_normalise

BATCH = 64
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".xml")
DOCUMENT_PROMPTS = ("document", "passage", "corpus", "doc")


def force_offline() -> None:
    """No network: the Hugging Face libraries read these when imported (and transformers on use)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache the environment names now (read at call time, not import time)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def _missing_message(name: str, searched: list[str], cache: Path) -> str:
    repo = searched[0] if searched else name
    return (
        f"sentence-transformers model {name!r} is not available offline: no folder {name!r} and no "
        f"{' or '.join(searched) or repr(name)} in the Hugging Face cache {cache}. Provide the weights: on a "
        f"connected machine run `huggingface-cli download {repo} --local-dir DIR` (or "
        f"`SentenceTransformer('{repo}').save_pretrained('DIR')`), copy DIR here and use "
        f"--encoder sentence-transformers:DIR; or copy a Hugging Face cache that holds it and set HF_HOME"
    )


def resolve_model_path(name: str) -> Path:
    """The local folder holding model ``name`` (a path or a repository id); never downloads."""
    if not name:
        raise PrerecError(
            "encoder 'sentence-transformers:' needs a model name or local folder, e.g. "
            "sentence-transformers:sentence-transformers/stsb-xlm-r-multilingual or sentence-transformers:/models/my-model"
        )
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise PrerecError(f"sentence-transformers model {name!r}: {path} is a file, expected a model folder")
        return path
    if name.startswith(("/", "./", "../", "~")) or name.count("/") > 1:
        raise PrerecError(f"sentence-transformers model {name!r}: no such folder {path}")
    repos = [name] if "/" in name else [f"sentence-transformers/{name}", name]
    cache = hub_cache_dir()
    force_offline()
    from huggingface_hub import snapshot_download

    for repo in repos:
        try:
            return Path(snapshot_download(repo, cache_dir=cache, local_files_only=True))
        except Exception:  # LocalEntryNotFoundError, HFValidationError (bad id): not available here
            continue
    raise PrerecError(_missing_message(name, repos, cache))


def model_fingerprint(path: Path) -> str:
    """A short hash of a model folder's content: file names, sizes, small files whole and the first
    and last MiB of large ones (weights), so a different model in the same folder is a new identity."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts):
        size = f.stat().st_size
        h.update(f"{f.relative_to(path).as_posix()}\0{size}\0".encode())
        with f.open("rb") as fh:
            if size <= 2 << 20:
                h.update(fh.read())
            else:
                h.update(fh.read(1 << 20))
                fh.seek(size - (1 << 20))
                h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


class SentenceTransformerEncoder(TextEncoder):
    """A sentence-transformers model loaded from local files only, on CPU by default."""

    def __init__(self, name: str, *, batch_size: int = BATCH, device: str = "cpu") -> None:
        path = resolve_model_path(name.strip())
        weights = [p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES]
        if not weights:
            raise PrerecError(
                f"sentence-transformers model {name!r}: the folder {path} holds no weight files "
                f"({', '.join(WEIGHT_SUFFIXES)}); on a connected machine save the complete model "
                f"(`huggingface-cli download REPO --local-dir DIR` or save_pretrained) and pass DIR"
            )
        force_offline()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a dependency
            raise PrerecError("encoder 'sentence-transformers:...' needs the sentence-transformers package") from exc
        try:
            model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as exc:  # transformers raises OSError/ValueError/... for a broken folder
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise PrerecError(f"sentence-transformers model {name!r} at {path} cannot be loaded: {first}") from exc
        dim_fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self._model = model
        self.batch_size = int(batch_size)
        self.dim = int(dim_fn())
        prompts = dict(getattr(model, "prompts", None) or {})
        self.prompt_name = next((p for p in DOCUMENT_PROMPTS if prompts.get(p)), None)
        prompt = prompts.get(self.prompt_name, "") if self.prompt_name else ""
        label = "/".join(path.parts[-2:]) if path == Path(name).expanduser() else name
        self.identity = (
            f"sentence-transformers:{label}:{model_fingerprint(path)}:prompt={prompt!r}:max_seq={model.max_seq_length}"
        )

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        bar = tqdm(total=len(texts), desc="encode (sentence-transformers)", unit="text", disable=not progress)
        step = self.batch_size * 4  # let the model sort each chunk by length; keep the bar moving
        for a in range(0, len(texts), step):
            chunk = list(texts[a : a + step])
            emb = self._model.encode(
                chunk, prompt_name=self.prompt_name, batch_size=self.batch_size, show_progress_bar=False,
                convert_to_numpy=True, normalize_embeddings=True,
            )
            out[a : a + len(chunk)] = np.asarray(emb, dtype=np.float32).reshape(len(chunk), -1)
            bar.update(len(chunk))
        bar.close()
        return l2_normalise(out)
