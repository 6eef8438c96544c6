"""The main job on built-in defaults: scripted Lift demos -> train the default head -> evaluate in
parallel -> a markdown report with the plots, the success rate and the video paths."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from takeover.config import Config, config_field, default_of
from takeover.sim.spec import EnvSpec

from .errors import PolicyError
from .train_config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class QuickstartConfig(Config):
    error: ClassVar[type[Exception]] = PolicyError
    out: str = config_field("runs/quickstart", help="Output: the folder for the data, the run and report.md.")
    task: str = config_field("Lift", help="Task of the scripted demonstrations.")
    demos: int = config_field(50, help="Scripted demonstrations to collect.", min=1)
    head: str = config_field(default_of(TrainConfig, "head"), help="Action head.")
    steps: int = config_field(3000, help="Training steps.", min=1)
    eval_episodes: int = config_field(50, help="Evaluation episodes.", min=1)
    workers: int = config_field(2, help="Worker processes for collection and evaluation.", min=0)
    videos: int = config_field(3, help="Episodes recorded as videos: the first N evaluation episodes.", min=0)
    seed: int = config_field(0, help="First collection seed and the training seed.", min=0)


def run_quickstart(cfg: QuickstartConfig, say=log.info) -> dict:
    from takeover.datasets import DemoReader
    from takeover.datasets.scripted_collection import collect_scripted

    from .evaluate import evaluate
    from .train import train

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    data = out / "demos.hdf5"
    t0 = time.time()
    have = 0
    if data.exists():
        with DemoReader(data) as r:
            have = len(r)
    if have < cfg.demos:
        say(f"1/3 collecting {cfg.demos - have} scripted {cfg.task} demonstrations -> {data}")
        collect_scripted(EnvSpec(task=cfg.task), str(data), cfg.demos - have, workers=cfg.workers, append=data.exists(),
                         seed=None if data.exists() else cfg.seed)
    else:
        say(f"1/3 reusing {have} demonstrations in {data}")
    timings["collect_s"] = round(time.time() - t0, 1)

    t0 = time.time()
    run = out / f"train_{cfg.head}"
    say(f"2/3 training a {cfg.head} policy for {cfg.steps} steps -> {run}")
    if run.exists():
        import shutil

        shutil.rmtree(run)
    result = train(TrainConfig(data=str(data), out=str(run), head=cfg.head, steps=cfg.steps,
                               eval_every=max(1, cfg.steps // 2), eval_episodes=10, eval_workers=cfg.workers,
                               seed=cfg.seed))
    timings["train_s"] = round(time.time() - t0, 1)

    t0 = time.time()
    say(f"3/3 evaluating the best checkpoint over {cfg.eval_episodes} episodes with {cfg.workers} workers")
    report = evaluate(run, episodes=cfg.eval_episodes, workers=cfg.workers, video_dir=run / "videos", videos=cfg.videos)
    (run / "eval.json").write_text(report.to_json())
    timings["eval_s"] = round(time.time() - t0, 1)
    summary = {"success_rate": report.success_rate, "ci95": report.ci95, "episodes": report.episodes,
               "best": result.get("best"), "timings": timings, "videos": report.videos}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _write_report(out / "report.md", cfg, run, report, result, timings)
    return summary


def _write_report(path: Path, cfg: QuickstartConfig, run: Path, report, result: dict, timings: dict):
    rel = lambda p: Path(p).resolve().relative_to(path.parent.resolve())  # noqa: E731
    lines = [
        f"# takeover quickstart: {cfg.task}, {cfg.head} head",
        "",
        f"- Demonstrations: {cfg.demos} scripted-expert episodes (seeds from {cfg.seed}) in `demos.hdf5`",
        f"- Training: {result['step']} steps; best checkpoint chosen by rollout success: "
        f"`{rel(run / 'checkpoints' / 'best.pt')}` (step {result.get('best', {}).get('step')})",
        f"- **Success rate: {report.success_rate:.2f}** ({report.successes}/{report.episodes} episodes, "
        f"Wilson 95% CI [{report.ci95[0]:.2f}, {report.ci95[1]:.2f}]), evaluation seeds "
        f"{report.seeds[0]}..{report.seeds[-1]} (disjoint from collection seeds); mean episode length "
        f"{report.mean_length:.1f} steps",
        f"- Wall time: collect {timings['collect_s']} s, train {timings['train_s']} s (with periodic evaluation), "
        f"evaluate {timings['eval_s']} s",
        "",
        "## Training curves",
        "",
    ]
    for name in ("losses.png", "success.png"):
        if (run / "plots" / name).exists():
            lines.append(f"![{name}]({rel(run / 'plots' / name)})")
    lines += ["", "## Videos", ""] + [f"- `{rel(v)}`" for v in report.videos]
    lines += ["", f"Per-episode outcomes: `{rel(run / 'eval.json')}`", ""]
    path.write_text("\n".join(lines))
