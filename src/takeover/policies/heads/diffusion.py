"""Diffusion Policy head (Chi et al. 2023): a conditional 1-D U-Net denoises an action chunk.

Training adds DDPM noise to the normalised chunk at a random step and regresses the noise (masked
MSE: padded steps at an episode's end carry no loss). Inference starts from Gaussian noise and runs a
separately configured diffusers scheduler (DDIM with 10 steps by default; DDPM or DPM-Solver++) that
shares the training schedule's betas. Sampling draws from torch's global RNG, or after
`policy.seed(n)` from the policy's own torch.Generator, so rollouts are reproducible either way. EMA of
the weights is the trainer's job (policies/ema.py).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from takeover.config import config_field, with_default

from ..base import Policy
from ..config import HeadConfig
from ..errors import PolicyError
from ..registry import register_head
from .unet1d import STEP_EMBED_DIMS, UNET_SIZES, ConditionalUnet1D

INFERENCE_SCHEDULERS = ("ddim", "ddpm", "dpm")
# Denoising a few chunks is a chain of tiny ops; a second intra-op thread only adds wake-ups: DDIM-10 chunk
# at batch 1, 1 vs 2 threads, 11.8 vs 21.0 ms (2026-11-22 host), 29 vs 47 ms (2026-11-30 host).
SINGLE_THREAD_MAX_BATCH = 4
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")
BETA_SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear")


@contextlib.contextmanager
def one_cpu_thread(active: bool):
    """Run the block with one torch thread (process-wide while it runs), then restore the count."""
    threads = torch.get_num_threads()
    if not active or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class DiffusionConfig(HeadConfig):
    head = "diffusion"
    obs_horizon: int = with_default(HeadConfig, "obs_horizon", 2)
    action_horizon: int = with_default(HeadConfig, "action_horizon", 16)
    exec_horizon: int = with_default(HeadConfig, "exec_horizon", 8)
    action_norm: str = with_default(HeadConfig, "action_norm", "minmax")
    # denoiser: a size preset of the U-Net, or explicit widths (down_dims / step_embed_dim override it)
    unet_size: str = config_field("small", help=f"Size preset of the U-Net denoiser: {', '.join(UNET_SIZES)}.")
    down_dims: tuple[int, ...] | None = config_field(None, help="U-Net level widths (replace unet_size's).")
    step_embed_dim: int | None = config_field(None, min=4,
                                              help="Diffusion-step embedding size (default: unet_size's).")
    kernel_size: int = config_field(5, min=1, help="Convolution kernel size (odd).")
    n_groups: int = config_field(8, min=1, help="GroupNorm groups.")
    # training (forward) process: diffusers DDPMScheduler
    num_train_timesteps: int = config_field(100, min=1, help="Diffusion steps of the training process.")
    beta_schedule: str = config_field("squaredcos_cap_v2", choices=BETA_SCHEDULES, help="Noise schedule.")
    prediction_type: str = config_field("epsilon", choices=PREDICTION_TYPES, help="What the denoiser predicts.")
    clip_sample: bool = config_field(True, help="Clip predicted clean chunks to [-1, 1] (min-max normalised "
                                                "actions).")
    # inference (reverse) process: its own scheduler and step count, same betas as training
    inference_scheduler: str = config_field("ddim", choices=INFERENCE_SCHEDULERS, help="Sampler at inference.")
    inference_steps: int = config_field(10, min=1, help="Denoising steps at inference (at most "
                                                        "num_train_timesteps).")
    # "leading" (t = 90, 80, ..., 0 for 10 of 100 steps) is how Diffusion Policy samples. "trailing"
    # (99, ..., 9) starts where the capped cosine schedule leaves sqrt(alpha_bar) = 5e-4, so its first
    # clean-chunk estimate is the denoiser's error x2000, clipped. DDIM shrugs it off (50 episodes,
    # same weights: Lift 0.92 / 0.92, Can 0.96 / 0.96) but DPM-Solver++, which extrapolates from
    # earlier estimates, does not (Lift 0.94 leading, 0.10 trailing); see diffusion_samplers.json.
    inference_timestep_spacing: str = config_field("leading", choices=("leading", "trailing", "linspace"),
                                                   help="Which timesteps inference visits.")
    ddim_eta: float = config_field(0.0, min=0, help="DDIM stochasticity (0: deterministic).")

    def validate(self):
        super().validate()
        if self.down_dims is not None:
            self.down_dims = tuple(int(d) for d in self.down_dims)
        elif self.unet_size not in UNET_SIZES:
            raise PolicyError(f"unet_size must be one of {sorted(UNET_SIZES)}, not {self.unet_size!r}")
        if self.inference_steps > self.num_train_timesteps:
            raise PolicyError(f"inference_steps {self.inference_steps} must lie in [1, num_train_timesteps={self.num_train_timesteps}]")

    @property
    def unet_down_dims(self) -> tuple[int, ...]:
        return self.down_dims if self.down_dims is not None else UNET_SIZES[self.unet_size]

    @property
    def unet_step_embed_dim(self) -> int:
        return self.step_embed_dim if self.step_embed_dim is not None else STEP_EMBED_DIMS.get(self.unet_size, 128)


def make_train_scheduler(c: DiffusionConfig) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=c.num_train_timesteps, beta_schedule=c.beta_schedule,
                         prediction_type=c.prediction_type, clip_sample=c.clip_sample, clip_sample_range=1.0,
                         variance_type="fixed_small")


def make_inference_scheduler(c: DiffusionConfig, train: DDPMScheduler):
    common = dict(num_train_timesteps=c.num_train_timesteps, trained_betas=train.betas.numpy(),
                  prediction_type=c.prediction_type)
    if c.inference_scheduler == "ddpm":
        sched = DDPMScheduler(**common, clip_sample=c.clip_sample, clip_sample_range=1.0, variance_type="fixed_small",
                              timestep_spacing=c.inference_timestep_spacing if c.inference_steps < c.num_train_timesteps else "leading")
    elif c.inference_scheduler == "ddim":
        sched = DDIMScheduler(**common, clip_sample=c.clip_sample, clip_sample_range=1.0, set_alpha_to_one=True,
                              steps_offset=0, timestep_spacing=c.inference_timestep_spacing)
    else:  # DPM-Solver++ (2nd order multistep); clip the final sample instead of each x0 estimate
        sched = DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2,
                                            timestep_spacing=c.inference_timestep_spacing)
    sched.set_timesteps(c.inference_steps)
    return sched


@register_head
class DiffusionPolicy(Policy):
    config_class = DiffusionConfig

    def __init__(self, config: DiffusionConfig, shapes, stats):
        super().__init__(config, shapes, stats)
        c = config
        self.denoiser = ConditionalUnet1D(self.action_dim, self.feature_dim * c.obs_horizon, c.unet_down_dims,
                                          c.unet_step_embed_dim, c.kernel_size, c.n_groups)
        self.noise_scheduler = make_train_scheduler(c)
        self.inference_scheduler = make_inference_scheduler(c, self.noise_scheduler)
        self._timesteps = self.inference_scheduler.timesteps.clone()  # fixed per config: computed once
        self._timestep_ints = [int(t) for t in self._timesteps]  # python ints: cheaper scheduler steps
        self.register_buffer("_alphas_cumprod", self.noise_scheduler.alphas_cumprod.clone(), persistent=False)
        self.sample_actions = True  # diffusion has no deterministic mode: act() always samples
        self._seed: int | None = None  # None: sample from torch's global RNG (follows torch.manual_seed)
        self._generator: torch.Generator | None = None

    # ----- randomness --------------------------------------------------------------------------
    def seed(self, seed: int | None) -> DiffusionPolicy:
        """Give sampling its own torch.Generator seeded with `seed` (None: back to the global RNG).
        Equal weights and seeds give equal action chunks, whatever else draws random numbers."""
        self._seed = None if seed is None else int(seed)
        self._generator = None
        return self

    def _generator_for(self, device: torch.device) -> torch.Generator | None:
        if self._seed is None:
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self._seed)
        return self._generator

    # ----- training ----------------------------------------------------------------------------
    def compute_loss(self, features, actions, weights):
        B = actions.shape[0]
        noise = torch.randn_like(actions)
        t = torch.randint(0, self.config.num_train_timesteps, (B,), device=actions.device)
        a = self._alphas_cumprod[t].view(B, 1, 1)  # same as noise_scheduler.add_noise, without its device copy
        noisy = a.sqrt() * actions + (1 - a).sqrt() * noise
        pred = self.denoiser(noisy, t, features.flatten(1))
        if self.config.prediction_type == "epsilon":
            target = noise
        elif self.config.prediction_type == "sample":
            target = actions
        else:
            target = a.sqrt() * noise - (1 - a).sqrt() * actions
        # (B, Ta, 1): padding and non-label steps carry no loss; their actions stay in the noised chunk
        w = weights.to(pred.dtype)[..., None]
        err = ((pred - target) ** 2 * w).sum() / (w.sum() * actions.shape[-1]).clamp(min=1)
        return {"loss": err, "mse": err.detach()}

    # ----- sampling ----------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, features, sample=True, generator: torch.Generator | None = None):
        """Always samples (DDIM/DDPM/DPM from Gaussian noise); `sample` is accepted for the interface."""
        with one_cpu_thread(features.device.type == "cpu" and features.shape[0] <= SINGLE_THREAD_MAX_BATCH):
            return self._sample(features, generator)

    def _sample(self, features, generator):
        B = features.shape[0]
        c = self.config
        gen = generator if generator is not None else self._generator_for(features.device)
        x = torch.randn((B, c.action_horizon, self.action_dim), generator=gen, device=features.device, dtype=features.dtype)
        sched = self.inference_scheduler
        if isinstance(sched, DPMSolverMultistepScheduler):  # multistep state from the previous chunk
            sched.model_outputs = [None] * sched.config.solver_order
            sched.lower_order_nums = 0
            sched._step_index = None
        cond = features.flatten(1)
        timesteps = self._timesteps
        conditioned = getattr(self.denoiser, "conditioned", None)
        if conditioned is not None:
            eps = conditioned(cond, timesteps)
        else:  # any module with forward(sample, timestep, cond), e.g. a test oracle
            eps = lambda s, i: self.denoiser(s, timesteps[i].expand(B).to(s.device), cond)  # noqa: E731
        kwargs = {"eta": c.ddim_eta} if isinstance(sched, DDIMScheduler) else {}
        for i, t in enumerate(self._timestep_ints):
            x = sched.step(eps(x, i), t, x, generator=gen, return_dict=False, **kwargs)[0]
        if c.clip_sample:
            x = x.clamp(-1.0, 1.0)
        return x
