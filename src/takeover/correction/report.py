"""The Markdown reports of the correction runs (report.md in the run folder), built from a run's
state and config: what a reader of the folder sees, kept apart from the runs that produce it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from takeover.policies.evaluate import EVAL_SEED_START
from takeover.sim.noise import arm_dims_of

from .labellers import LABELLERS
from .run_state import DaggerState, DartState
from .runs import plot_success


def write_dagger_report(out: Path, cfg, state: DaggerState):
    """report.md of a headless DAgger run: one row per round and the success plot (a live run's report
    is live.py's write_live_report)."""
    rounds = state["rounds"]
    kind = LABELLERS[cfg.labeller].title
    lines = [f"# DAgger ({kind}) on {state['task']}", "",
             f"Data: `{cfg.data}` ({state['initial_labels']} expert labels), initial policy "
             f"`{state['checkpoints'][0]}`, beta `{cfg.beta}`, {cfg.episodes_per_round} episodes "
             f"per round, {'retrained from scratch' if cfg.from_scratch else 'warm-started'} each round.",
             f"Success over {cfg.eval_episodes} evaluation episodes (seeds from {EVAL_SEED_START}), "
             "Wilson 95% interval.", "",
             "| round | beta | expert labels | success | 95% CI | mean length |", "|---|---|---|---|---|---|"]
    for r in rounds:
        if not r.get("eval_episodes"):  # eval_episodes=0 (a live run writes its own report: live.py)
            lines.append(f"| {r['round']} | {r['beta']:.3f} | {r['expert_labels']} | not evaluated | | |")
            continue
        lines.append(f"| {r['round']} | {r['beta']:.3f} | {r['expert_labels']} | {r['success_rate']:.2f} | "
                     f"[{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] | {r['mean_length']:.0f} |")
    plot = plot_success(out, [r for r in rounds if r.get("eval_episodes")], "round", f"DAgger, {state['task']}")
    if plot:
        lines += ["", f"![success against expert labels]({plot.relative_to(out)})"]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def write_dart_report(out: Path, cfg, state: DartState):
    """report.md of a DART run: one row per iteration, the noise covariances, the success plot."""
    entries = state["iterations"]
    mode = ("fitted to the learner's error" + (f", scaled to trace {cfg.target_trace}"
                                                if cfg.target_trace else "")) if cfg.fitted \
        else f"fixed ({cfg.noise})"
    lines = [f"# DART on {state['task']}", "",
             f"Data: `{cfg.data}` ({state['initial_labels']} expert labels), initial policy "
             f"`{state['checkpoints'][0]}`, {cfg.episodes} noisy expert episodes per iteration, noise "
             f"{mode}, {'retrained from scratch' if cfg.from_scratch else 'warm-started'} each iteration.",
             f"Success over {cfg.eval_episodes} evaluation episodes (seeds from {EVAL_SEED_START}), "
             "Wilson 95% interval. Noise: the covariance the iteration collected with; learner error: the "
             "trace of the iteration's learner's error covariance on the states it was fitted on.", "",
             "| iteration | expert labels | noise trace | noise std (arm) | noisy expert successes | "
             "learner error trace | success | 95% CI |", "|---|---|---|---|---|---|---|---|"]
    arm = arm_dims_of(state["action_dim"])
    for e in entries:
        std = "-" if e["noise_cov"] is None else ", ".join(f"{s:.3f}" for s in np.sqrt(np.diag(e["noise_cov"]))[:arm])
        trace = "-" if e["noise_trace"] is None else f"{e['noise_trace']:.4f}"
        succ = "-" if e["noisy_expert_successes"] is None else f"{e['noisy_expert_successes']}/{e['episodes']}"
        success = (f"{e['success_rate']:.2f} | [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]" if e["eval_episodes"]
                   else "not evaluated |")
        lines.append(f"| {e['iteration']} | {e['expert_labels']} | {trace} | {std} | {succ} | "
                     f"{e['fit']['error_trace']:.4f} | {success} |")
    lines += ["", "Noise covariance per iteration (arm dimensions):"]
    for e in entries[1:]:
        lines += ["", f"iteration {e['iteration']}:", "```",
                  np.array2string(np.asarray(e["noise_cov"])[:arm, :arm], precision=5, suppress_small=True), "```"]
    plot = plot_success(out, [e for e in entries if e["eval_episodes"]], "iteration", f"DART, {state['task']}")
    if plot:
        lines += ["", f"![success against expert labels]({plot.relative_to(out)})"]
    (out / "report.md").write_text("\n".join(lines) + "\n")
