"""Recurrent head (robomimic BC-RNN): an LSTM over the observation sequence, then a GMM (default) or
a diagonal Gaussian over the current action, both from `distributions` (a Gaussian is one mode).

Training uses aligned sequences (`windows`: sequence_length = `seq_len`): features (B, L, F), actions
(B, L, A) with actions[:, t] taken at observation t, weights (B, L); every window starts from a zero
hidden state and the loss covers every step with weight > 0. A step that is no label (weight 0) still
feeds the LSTM as input, so later steps keep their history.

Rollout carries the hidden state from step to step and clears it at `reset()`. By default it is
also cleared every `seq_len` steps (robomimic's `rnn_horizon`): training never shows the network a
state built from more than `seq_len` observations, nor one that did not start from zero, so the
periodic reset keeps rollouts in the distribution the LSTM was trained on. Set `reset_every = 0`
to carry the state through the whole episode (memory longer than a window, but untrained there).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from takeover.config import config_field, with_default
from takeover.datasets.torch_dataset import Windows

from ..base import Policy
from ..config import HeadConfig
from ..encoders import mlp
from ..errors import PolicyError
from ..registry import register_head
from .distributions import MixtureParams, weighted_mean_nll
from .gmm import GMMConfig


@dataclass
class LSTMConfig(HeadConfig):
    head = "lstm"
    # robomimic's BC-RNN uses no MLP between the LSTM and the output
    hidden_dims: tuple[int, ...] = config_field((), help="Widths of the MLP between the LSTM and the output.")
    rnn_hidden_dim: int = config_field(400, min=1, help="LSTM hidden size.")
    rnn_layers: int = config_field(2, min=1, help="LSTM layers.")
    seq_len: int = config_field(10, min=1, help="Training sequence length.")
    reset_every: int | None = config_field(None, min=0, help="Steps between hidden-state resets at evaluation "
                                                             "(None: every seq_len steps; 0: only at reset()).")
    output: str = config_field("gmm", choices=("gmm", "gaussian"), help="Output distribution.")
    num_modes: int = with_default(GMMConfig, "num_modes", 5)
    min_std: float = with_default(GMMConfig, "min_std", 1e-4)
    tanh_means: bool | None = with_default(GMMConfig, "tanh_means", None)
    low_noise_eval: bool = with_default(GMMConfig, "low_noise_eval", True)
    low_noise_std: float = with_default(GMMConfig, "low_noise_std", 1e-4)

    def validate(self):
        super().validate()
        if self.obs_horizon != 1 or self.action_horizon != 1:
            raise PolicyError("lstm head keeps its own history: obs_horizon and action_horizon must be 1")

    @property
    def windows(self) -> Windows:
        return Windows(sequence_length=self.seq_len)

    @property
    def rollout_reset_every(self) -> int:
        return self.seq_len if self.reset_every is None else self.reset_every


@register_head
class LSTMPolicy(Policy):
    config_class = LSTMConfig

    def __init__(self, config: LSTMConfig, shapes, stats):
        super().__init__(config, shapes, stats)
        self.rnn = nn.LSTM(self.feature_dim, config.rnn_hidden_dim, config.rnn_layers, batch_first=True)
        tanh = config.tanh_means if config.tanh_means is not None else config.action_norm == "minmax"
        modes = config.num_modes if config.output == "gmm" else 1
        self.params = MixtureParams(modes, self.action_dim, config.min_std, tanh)
        self.net = mlp(config.rnn_hidden_dim, config.hidden_dims, self.params.raw_size)
        self._hidden = None
        self._steps = 0

    def _distribution(self, features, hidden=None):
        out, hidden = self.rnn(features, hidden)
        return self.params(self.net(out)), hidden

    def compute_loss(self, features, actions, weights):
        dist, _ = self._distribution(features)  # every step is an input, labels or not
        weights = weights[..., None].expand_as(actions)
        loss = weighted_mean_nll(dist, actions, weights)
        mse = (((dist.mode() - actions) ** 2) * weights).sum() / weights.sum().clamp(min=1)
        return {"loss": loss, "mse": mse.detach(), "std": dist.stds.mean().detach()}

    def _draw(self, dist, sample: bool) -> torch.Tensor:
        if not sample:
            return dist.mode()
        return dist.sample(self.config.low_noise_std if self.config.low_noise_eval else None)

    def predict(self, features, sample=False):
        """(B, To, F): run the LSTM over the given steps from a zero state, act for the last one."""
        dist, _ = self._distribution(features)
        return self._draw(dist, sample)[:, -1:]

    # ----- rollout: the hidden state replaces the observation history ---------------------------
    def reset(self):
        super().reset()
        self._hidden = None
        self._steps = 0

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        """One time step through the LSTM's own weights. nn.LSTM costs milliseconds per call on
        CPU for a single step; the fused cell op on the same parameters costs ~0.1 ms."""
        if self._hidden is None:
            zero = x.new_zeros(x.shape[0], self.config.rnn_hidden_dim)
            self._hidden = [(zero, zero)] * self.config.rnn_layers
        for k in range(self.config.rnn_layers):
            weights = [getattr(self.rnn, f"{name}_l{k}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            self._hidden[k] = torch.lstm_cell(x, self._hidden[k], *weights)
            x = self._hidden[k][0]
        return x

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        every = self.config.rollout_reset_every
        if every and self._steps % every == 0:
            self._hidden = None
        features = self.encode_step(obs)
        dist = self.params(self.net(self._step(features)))
        self._steps += 1
        action = self.normalizer.unaction(self._draw(dist, self.sample_actions))[0]
        return action.clamp(-1.0, 1.0).cpu().numpy()
