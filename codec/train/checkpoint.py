"""Resumable checkpoints without pickle: model, EMA and AdamW state in one safetensors file."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def save(path: str | Path, model: torch.nn.Module, ema: torch.nn.Module | None, opt: torch.optim.Optimizer,
         step: int, extra: dict | None = None) -> None:
    """Atomically write ``path`` (model.*, ema.* unless None, opt.<param index>.<state>) + JSON metadata."""
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().contiguous() for k, v in ema.state_dict().items()})
    for i, state in opt.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"opt.{i}.{name}"] = torch.as_tensor(value).detach().clone().contiguous()
    meta = {"step": str(step), "extra": json.dumps(extra or {})}
    tmp = Path(str(path) + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def load(path: str | Path, model: torch.nn.Module, ema: torch.nn.Module | None, opt: torch.optim.Optimizer) -> int:
    """Restore everything :func:`save` wrote; returns the step to continue from."""
    from safetensors import safe_open

    tensors = load_file(str(path))
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(weights)
    if ema is not None:  # a transit copy (codec.train.burst) has none: the EMA restarts from the weights
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")} or weights)
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, i, name = key.split(".", 2)
            state.setdefault(int(i), {})[name] = value
    sd["state"] = state
    opt.load_state_dict(sd)  # moments are cast to each parameter's dtype and device (a bf16 transit copy too)
    with safe_open(str(path), "pt") as f:
        return int(f.metadata()["step"])
