"""Exponential moving average of a model's weights, with the warm-up decay of Diffusion Policy.

    decay(step) = clamp(1 - (1 + step / inv_gamma) ** -power, min_decay, max_decay)

so early averages follow the weights closely and the horizon grows as training goes on
(power 3/4, the default, reaches 0.999 at ~10k steps and 0.9999 at ~215k; power 2/3 suits runs of a
million steps: 0.999 at ~32k, 0.9999 at 1M). Floating
point parameters are averaged; buffers (normalisation statistics, counters) and frozen parameters
are copied. The averaged weights form a plain state_dict, so they can be saved as a checkpoint
(`save_checkpoint(..., state_dict=ema.state_dict_for_model())`) or copied into a model.

    ema = EMA(policy)
    for batch in data:
        ...; optimizer.step(); ema.update(policy)
    with ema.applied_to(policy):   # evaluate the averaged weights, then restore the live ones
        evaluate(policy)
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, power: float = 0.75, inv_gamma: float = 1.0, min_decay: float = 0.0,
                 max_decay: float = 0.9999, update_after_step: int = 0):
        self.power, self.inv_gamma = float(power), float(inv_gamma)
        self.min_decay, self.max_decay = float(min_decay), float(max_decay)
        self.update_after_step = int(update_after_step)
        self.step = 0  # update() calls so far
        self.decay = 0.0  # decay used by the last update
        self.shadow: dict[str, torch.Tensor] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._averaged = [name for name, p in model.named_parameters() if p.requires_grad and p.is_floating_point()]

    def get_decay(self, step: int) -> float:
        step = step - self.update_after_step - 1
        if step <= 0:
            return 0.0
        value = 1 - (1 + step / self.inv_gamma) ** -self.power
        return max(self.min_decay, min(value, self.max_decay))

    @torch.no_grad()
    def update(self, model: nn.Module):
        self.step += 1
        self.decay = self.get_decay(self.step)
        current = model.state_dict()
        averaged = set(self._averaged)
        ema_params = [self.shadow[k] for k in self._averaged]
        params = [current[k].detach() for k in self._averaged]
        if ema_params:  # ema += (1 - decay) * (param - ema), all tensors in one fused call
            torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        for k, v in current.items():
            if k not in averaged:
                self.shadow[k].copy_(v)

    def state_dict_for_model(self) -> dict[str, torch.Tensor]:
        """The averaged weights, keyed like model.state_dict()."""
        return {k: v.clone() for k, v in self.shadow.items()}

    @torch.no_grad()
    def copy_to(self, model: nn.Module):
        model.load_state_dict(self.shadow)

    @contextmanager
    def applied_to(self, model: nn.Module):
        """Temporarily load the averaged weights into `model` (e.g. for evaluation), then restore."""
        live = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.copy_to(model)
        try:
            yield model
        finally:
            model.load_state_dict(live)

    # ----- resuming (plain tensors and numbers: safe for torch.load(weights_only=True)) ----------
    def state_dict(self) -> dict:
        return {"step": self.step, "decay": self.decay, "power": self.power, "inv_gamma": self.inv_gamma,
                "min_decay": self.min_decay, "max_decay": self.max_decay,
                "update_after_step": self.update_after_step, "shadow": self.state_dict_for_model()}

    def load_state_dict(self, state: dict):
        for key in ("power", "inv_gamma", "min_decay", "max_decay"):
            setattr(self, key, float(state[key]))
        self.update_after_step = int(state["update_after_step"])
        self.step, self.decay = int(state["step"]), float(state["decay"])
        missing = set(self.shadow) - set(state["shadow"])
        if missing:
            raise KeyError(f"EMA state lacks weights {sorted(missing)[:5]}")
        for k, v in state["shadow"].items():
            if k in self.shadow:
                self.shadow[k].copy_(v)

    def to(self, device) -> EMA:
        self.shadow = {k: v.to(device) for k, v in self.shadow.items()}
        return self
