"""Atomic files and checkpoints: safetensors + JSON only, never pickle.

A checkpoint is one safetensors file holding the model's tensors (``model.*``), Adam's state
(``optim.<i>.<key>``) and torch's RNG state (``rng.torch``) as tensors, with the trainer's
state and the optimiser's hyper-parameters as JSON in the file's metadata. Every file is
written to a temporary name in the same directory and moved into place with ``os.replace``,
so a reader (or a resumed run) never sees a half-written file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    tmp = _tmp(path)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: str | Path, obj: object) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_tensors_atomic(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, object]) -> None:
    """safetensors file with JSON-encoded metadata values, atomically."""
    path = Path(path)
    tmp = _tmp(path)
    clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(clean, str(tmp), metadata={k: json.dumps(v) for k, v in metadata.items()})
    os.chmod(tmp, 0o666 & ~_umask())  # safetensors creates 0600; make it like any other file
    os.replace(tmp, path)


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    out: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
        for key in fh.keys():  # noqa: SIM118 (safe_open is not a mapping)
            out[key] = fh.get_tensor(key)
    return out, {k: json.loads(v) for k, v in meta.items()}


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"model.{k}": v for k, v in model.state_dict().items()}


def load_model_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(state)


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Adam's per-parameter state as tensors, its param groups (minus params) as JSON."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            tensors[f"optim.{idx}.{key}"] = val if torch.is_tensor(val) else torch.tensor(val)
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, val in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = val
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(path: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict) -> None:
    tensors = model_tensors(model)
    opt_tensors, opt_meta = optimizer_tensors(opt)
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    save_tensors_atomic(path, tensors, {"state": state, "optimizer": opt_meta, "format": "prerec-checkpoint/1"})


def load_checkpoint(path: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict:
    tensors, meta = load_tensors(path)
    load_model_tensors(model, tensors)
    load_optimizer(opt, tensors, meta["optimizer"])
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    return dict(meta["state"])
