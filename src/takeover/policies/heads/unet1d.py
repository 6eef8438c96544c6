"""1-D temporal convolutional U-Net denoiser (the design of Chi et al. 2023, Diffusion Policy).

The action chunk (B, Ta, A) is treated as A channels over Ta time steps. Every residual block is
Conv1d-GroupNorm-Mish twice, with a FiLM scale and bias (predicted from the diffusion-step embedding
concatenated with the flattened observation history) applied after the first conv. Two blocks per
level, stride-2 down-sampling between levels, a mirrored up path with skip connections.

Inference runs the same conditioning for every denoising step of one chunk; `conditioned()`
precomputes the step embeddings and all FiLM parameters for a fixed list of timesteps in one batched
pass, so each denoising step only runs the convolutional trunk. On the CPU, up to NATIVE_MAX_BATCH
float32 chunks, that trunk is compiled code (unet1d_native.py, one foreign call a step); otherwise,
and wherever no C compiler is found, it is the modules below.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PolicyError
from .unet1d_native import NativeTrunk, native_library

# CPU inference paths: the compiled trunk where it can run (see conditioned()), or the nn modules.
CPU_INFERENCE = ("native", "modules")
# The compiled trunk runs the batch one chunk after another on one core; past a few chunks PyTorch's
# batched GEMMs on every core win.
NATIVE_MAX_BATCH = 8

# Down-sampling channel widths per level, and the diffusion-step embedding size. "small" is the CPU
# default: it trains on a CPU in hours ((64, 128, 256) trains ~2.4x slower) and its DDIM-10 chunk
# takes ~7 ms on one core through the compiled trunk; see benchmarks/results/diffusion_latency*.json.
# "paper" is Chi et al.'s low-dim configuration.
UNET_SIZES: dict[str, tuple[int, ...]] = {
    "small": (32, 64, 128),
    "medium": (64, 128, 256),
    "paper": (256, 512, 1024),
}
STEP_EMBED_DIMS: dict[str, int] = {"small": 64, "medium": 128, "paper": 256}


_registrations = 0  # parameters registered (assigned) on any module so far: a cached parameter list is stale


def _count_registration(module, name, param):
    global _registrations
    _registrations += 1


torch.nn.modules.module.register_module_parameter_registration_hook(_count_registration)


class SinusoidalStepEmbedding(nn.Module):
    """Integer diffusion step (B,) -> (B, dim) sin/cos features (Transformer position encoding)."""

    def __init__(self, dim: int):
        super().__init__()
        if dim % 2 or dim < 4:
            raise PolicyError(f"step embedding size must be even and >= 4, not {dim}")
        half = dim // 2
        freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000.0) / (half - 1)))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        arg = t.float()[:, None] * self.freqs[None]
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


class Conv1dBlock(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, groups: int):
        super().__init__(nn.Conv1d(in_ch, out_ch, kernel, padding=kernel // 2), nn.GroupNorm(groups, out_ch), nn.Mish())


class FiLMResidualBlock1d(nn.Module):
    """x -> block1 -> scale * h + bias (FiLM from cond) -> block2 -> + residual(x)."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, kernel: int, groups: int):
        super().__init__()
        self.out_ch = out_ch
        self.block1 = Conv1dBlock(in_ch, out_ch, kernel, groups)
        self.block2 = Conv1dBlock(out_ch, out_ch, kernel, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * out_ch))
        self.residual = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """film: (B, 2*out_ch, 1) = [scale, bias] from `self.film(cond)[..., None]`."""
        scale, bias = film.chunk(2, dim=1)
        h = self.block1(x)
        h = torch.addcmul(bias, h, scale)
        return self.block2(h) + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """forward(sample (B, T, A), timestep (B,) or scalar, global_cond (B, C)) -> (B, T, A)."""

    def __init__(self, action_dim: int, cond_dim: int, down_dims: tuple[int, ...] = UNET_SIZES["small"],
                 step_embed_dim: int = 128, kernel_size: int = 5, n_groups: int = 8):
        super().__init__()
        down_dims = tuple(int(d) for d in down_dims)
        if not down_dims:
            raise PolicyError("down_dims must name at least one level")
        bad = [d for d in down_dims if d % n_groups]
        if bad:
            raise PolicyError(f"U-Net widths {bad} are not divisible by n_groups={n_groups} (GroupNorm)")
        if kernel_size % 2 == 0:
            raise PolicyError(f"kernel_size must be odd (same-length convolutions), not {kernel_size}")
        self.action_dim = action_dim
        self.down_factor = 2 ** (len(down_dims) - 1)
        self.step_embedding = nn.Sequential(
            SinusoidalStepEmbedding(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim), nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )
        cond = step_embed_dim + cond_dim
        block = lambda i, o: FiLMResidualBlock1d(i, o, cond, kernel_size, n_groups)  # noqa: E731
        dims = (action_dim,) + down_dims
        pairs = list(zip(dims[:-1], dims[1:]))
        self.down = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.down.append(nn.ModuleList([block(d_in, d_out), block(d_out, d_out),
                                            nn.Conv1d(d_out, d_out, 3, stride=2, padding=1) if not last else nn.Identity()]))
        self.mid = nn.ModuleList([block(down_dims[-1], down_dims[-1]), block(down_dims[-1], down_dims[-1])])
        self.up = nn.ModuleList()
        for d_in, d_out in reversed(pairs[1:]):
            self.up.append(nn.ModuleList([block(2 * d_out, d_in), block(d_in, d_in),
                                          nn.ConvTranspose1d(d_in, d_in, 4, stride=2, padding=1)]))
        self.final = nn.Sequential(Conv1dBlock(down_dims[0], down_dims[0], kernel_size, n_groups),
                                   nn.Conv1d(down_dims[0], action_dim, 1))
        self._film_blocks = [m for m in self.modules() if isinstance(m, FiLMResidualBlock1d)]
        self.cpu_inference = "native"  # one of CPU_INFERENCE; "modules" is the baseline of benchmarks and tests
        self._params: tuple[int, list] | None = None  # (registration count, parameters): a tree walk costs ~0.6 ms
        self._native: tuple[int, NativeTrunk] | None = None  # (weights' checksum, the trunk built from them)

    # ----- conditioning ------------------------------------------------------------------------
    def film_params(self, timestep: torch.Tensor, global_cond: torch.Tensor) -> list[torch.Tensor]:
        """(N,) steps and (N, C) conditions -> one (N, 2*ch, 1) FiLM tensor per residual block."""
        cond = torch.cat([self.step_embedding(timestep), global_cond], dim=-1)
        return [b.film(cond)[..., None] for b in self._film_blocks]

    def conditioned(self, global_cond: torch.Tensor, timesteps: torch.Tensor) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """Precompute everything that is fixed during the denoising of one batch of chunks.

        For the steps `timesteps` (S,) and conditions (B, C): the step embeddings and every block's
        FiLM scale and bias in one batched pass. Returns eps(sample, i), equal to
        forward(sample, timesteps[i], global_cond). Inference only. On the CPU, for up to
        NATIVE_MAX_BATCH float32 chunks, each step is one call of the compiled trunk (unet1d_native.py)
        where it could be built; otherwise the modules run.
        """
        S, B = timesteps.shape[0], global_cond.shape[0]
        if self.cpu_inference not in CPU_INFERENCE:
            raise PolicyError(f"cpu_inference must be one of {CPU_INFERENCE}, not {self.cpu_inference!r}")
        if (self.cpu_inference == "native" and global_cond.device.type == "cpu" and global_cond.dtype == torch.float32
                and B <= NATIVE_MAX_BATCH and native_library() is not None):
            trunk = self.native_trunk()
            film = trunk.film(timesteps, global_cond)  # (S*B, all blocks' 2C, 1)
            return lambda sample, i: trunk(sample, film[i * B:(i + 1) * B])
        t = timesteps.to(global_cond.device).repeat_interleave(B)  # (S*B,)
        film = self.film_params(t, global_cond.repeat(S, 1))  # per block (S*B, 2C, 1)
        return lambda sample, i: self.trunk(sample, [f[i * B:(i + 1) * B] for f in film])

    def native_trunk(self) -> NativeTrunk:
        """The compiled trunk's copy of the weights, rebuilt whenever a checksum of the parameters changes:
        an optimiser or EMA step, load_state_dict, .to(), or any in-place edit, with or without grad."""
        library = native_library()
        if self._params is None or self._params[0] != _registrations:
            self._params = (_registrations, list(self.parameters()))
        key = library.checksum(self._params[1])
        if self._native is None or self._native[0] != key:
            with torch.no_grad():
                self._native = (key, NativeTrunk(self, library))
        return self._native[1]

    # ----- network -----------------------------------------------------------------------------
    def forward(self, sample: torch.Tensor, timestep, global_cond: torch.Tensor) -> torch.Tensor:
        B = sample.shape[0]
        if not torch.is_tensor(timestep):
            timestep = torch.tensor([timestep], device=sample.device)
        timestep = timestep.to(sample.device).reshape(-1).expand(B)
        return self.trunk(sample, self.film_params(timestep, global_cond))

    def trunk(self, sample: torch.Tensor, film: list[torch.Tensor]) -> torch.Tensor:
        T = sample.shape[1]
        x = sample.transpose(1, 2)  # (B, A, T)
        pad = -T % self.down_factor
        if pad:  # odd chunk lengths: pad to a multiple of the down-sampling factor, crop at the end
            x = F.pad(x, (0, pad))
        films = iter(film)
        skips = []
        for b1, b2, down in self.down:
            x = b2(b1(x, next(films)), next(films))
            skips.append(x)
            x = down(x)
        for b in self.mid:
            x = b(x, next(films))
        for b1, b2, up in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = up(b2(b1(x, next(films)), next(films)))
        x = self.final(x)
        if pad:
            x = x[..., :T]
        return x.transpose(1, 2)
