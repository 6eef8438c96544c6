"""Evaluation: rollouts of a checkpoint in the simulator over a fixed seed list.

Evaluation seeds start at EVAL_SEED_START, far from the collection seeds (0, 1, 2, ...), so a policy
is never scored on the starts it was trained on and every head is compared on the same starts.
Training picks its best checkpoint on SELECTION_SEED_START seeds, disjoint from both.
"""
from __future__ import annotations

import json
import logging
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from takeover.sim.rollout import EpisodeResult, RolloutPool
from takeover.sim.spec import EnvSpec
from takeover.sim.stats import wilson_interval

from .checkpoint import load_checkpoint
from .errors import PolicyError
from .seeds import EVAL_SEED_START, SELECTION_SEED_START, eval_seeds  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)


class PolicyAgent:
    """Adapts a Policy to the rollout agent interface (`reset(env)`, `act(obs, env)`)."""

    def __init__(self, policy):
        self.policy = policy

    def reset(self, env):
        self.policy.reset()

    def act(self, obs, env):
        return self.policy.act(obs)


@dataclass(frozen=True)
class CheckpointAgent:
    """Picklable agent factory for rollout workers: loads the checkpoint in the worker."""

    checkpoint: str
    sample: bool = False
    overrides: tuple = ()  # (key, value) pairs of inference-time config overrides (hashable)

    def __call__(self):
        policy, _, _ = load_checkpoint(self.checkpoint, overrides=dict(self.overrides))
        policy.sample_actions = self.sample
        return PolicyAgent(policy)


@dataclass
class EvalReport:
    checkpoint: str
    task: str
    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    mean_length: float
    seeds: list[int]
    per_episode: list[dict] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    step: int | None = None
    overrides: dict = field(default_factory=dict)  # inference-time config changes it ran with
    horizon: int | None = None  # the episode step limit it ran under
    sampled: bool = False  # actions drawn from the head's distribution, not its mode

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_results(cls, checkpoint: str, task: str, results: list[EpisodeResult], step=None) -> "EvalReport":
        n = len(results)
        k = sum(r.success for r in results)
        lo, hi = wilson_interval(k, n)
        return cls(checkpoint=str(checkpoint), task=task, episodes=n, successes=k, success_rate=k / n if n else 0.0,
                   ci95=(round(lo, 4), round(hi, 4)),
                   mean_length=statistics.fmean(r.length for r in results) if results else 0.0,
                   seeds=[r.seed for r in results], per_episode=[r.summary() for r in results],
                   videos=[r.video for r in results if r.video], step=step)


def require_rendering(spec: EnvSpec, where: str):
    """Refuse (one line) to roll out in an environment with cameras (an image policy's, or one built for
    camera data) where nothing can render them."""
    if not spec.camera_names:
        return
    from takeover.sim.env import rendering_problem

    problem = rendering_problem()
    if problem:
        raise PolicyError(f"{where}: rollouts render camera images ({', '.join(spec.camera_names)}) and this machine "
                          f"cannot render them ({problem}); run where EGL (or OSMesa) works")


HORIZON_SLACK = 1.25


def horizon_for(spec: EnvSpec, longest_demo: int) -> int:
    """The evaluation horizon of a policy trained on demos up to `longest_demo` steps long: the task's
    horizon, or 1.25x the longest demo rounded up to 50 steps when that is longer. A policy that learnt
    from slow human demos moves about as slowly (it even learns their pauses); cutting it off before the
    time its own teachers took scores the horizon, not the policy. Training stores the result in the
    checkpoint's EnvSpec, so every evaluation of it uses the same limit (eval.json: `horizon`)."""
    needed = int(math.ceil(HORIZON_SLACK * longest_demo / 50.0) * 50)
    return max(spec.max_steps, needed)


def resolve_checkpoint(path) -> Path:
    """A run folder means its best checkpoint (else its last); a file is itself."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last_policy.pt"):
            if (path / "checkpoints" / name).is_file():
                return path / "checkpoints" / name
        raise PolicyError(f"{path}: run folder has no checkpoints/best.pt")
    if not path.exists():
        raise PolicyError(f"{path}: no such checkpoint or run folder")
    return path


def evaluate(checkpoint, episodes: int = 50, seeds=None, workers: int = 1, video_dir=None, videos: int = 0,
             pool: RolloutPool | None = None, progress=None, spec: EnvSpec | None = None,
             max_steps: int | None = None, overrides: dict | None = None, sample: bool = False) -> EvalReport:
    """Success rate of `checkpoint` over `episodes` fixed seeds, the environment rebuilt from the
    EnvSpec stored in the checkpoint. Pass `pool` to reuse workers across calls. `sample`: draw each
    action from the head's distribution instead of taking its mode (gmm: a random component; gaussian,
    lstm: the mean plus std noise; cvae: a latent from the prior; autoregressive: drawn bins; diffusion
    samples either way)."""
    checkpoint = resolve_checkpoint(checkpoint)
    _, ckpt_spec, info = load_checkpoint(checkpoint, overrides=overrides)  # refuses bad files here, not in a worker
    spec = spec or ckpt_spec
    require_rendering(spec, str(checkpoint))
    seeds = list(seeds) if seeds is not None else eval_seeds(episodes)
    video_seeds = seeds[:videos] if video_dir else ()
    own = pool is None
    pool = pool or RolloutPool(spec, workers if workers > 1 else 0)
    try:
        agent = CheckpointAgent(str(checkpoint.resolve()), sample=sample,
                                overrides=tuple(sorted((overrides or {}).items())))
        results = pool.run(agent, seeds, video_seeds=video_seeds,
                           video_dir=video_dir, progress=progress, max_steps=max_steps)
    finally:
        if own:
            pool.close()
    report = EvalReport.from_results(str(checkpoint), spec.task, results, step=info["step"])
    report.overrides = dict(overrides or {})
    report.horizon = int(max_steps or spec.max_steps)
    report.sampled = bool(sample)
    return report
