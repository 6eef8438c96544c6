"""Demo-seeded RL fine-tuning against its baselines, at equal environment-step budgets.

From a weak BC policy (a gaussian head trained on --demos scripted demonstrations for --bc-steps):
  rlpd      RLPD-style SAC, half-demo batches (rl_finetune/rlpd.py)
  dapg      DAPG-style PPO with the decaying demo term (rl_finetune/dapg.py)
  residual  SAC on a residual added to a frozen BC policy of --base-head (rl_finetune/residual.py)
  scratch   the same SAC from a freshly initialised actor (same normaliser) and no demonstrations
  bc-more   no RL: BC with --more-demos demonstrations and the same --bc-steps
  utd       env steps per second of RLPD at several update-to-data ratios (a short run each)
Every policy is evaluated on the same fixed evaluation seeds: success with its Wilson 95% interval and
mean return; the curves are success and return against env steps, and "steps_to_90" is the first
evaluation at or above 90%.

    python benchmarks/finetune.py                                  # Lift, the full comparison
    python benchmarks/finetune.py --methods rlpd --env-steps 20000 --max-minutes 30 --eval-episodes 20

Results: benchmarks/results/finetune_<task>.json and .png; runs under benchmarks/results/work/finetune_<task>/
(not committed). A finished method is skipped when the script runs again with the same settings.
Runs of other training seeds (or methods run into separate files) go side by side in one JSON and plot with
    python benchmarks/finetune.py --merge A.json,B.json --out C.json
which refuses files whose settings differ in anything but the seed, and names each method <method>_seed<N>.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, dump_json, key_values, machine  # noqa: E402

from takeover.policies.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from takeover.policies.evaluate import evaluate, eval_seeds  # noqa: E402
from takeover.policies.registry import make_policy  # noqa: E402
from takeover.policies.train import TrainConfig, Trainer  # noqa: E402
from takeover.rl_finetune.config import FinetuneConfig  # noqa: E402
from takeover.rl_finetune.run import Finetuner  # noqa: E402
from takeover.sim import EnvSpec  # noqa: E402
from takeover.datasets.scripted_collection import collect_scripted  # noqa: E402

METHODS = ("rlpd", "dapg", "residual", "scratch", "bc-more", "utd")
COLOURS = {"rlpd": "tab:blue", "dapg": "tab:orange", "residual": "tab:cyan", "scratch": "tab:red", "bc-more": "tab:green",
           "rlpd_bc0_partial": "tab:purple", "dapg_fixed_lr": "tab:brown"}


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="Lift")
    p.add_argument("--horizon", type=int, default=150)
    p.add_argument("--demos", type=int, default=4)
    p.add_argument("--more-demos", type=int, default=20)
    p.add_argument("--bc-steps", type=int, default=300)
    p.add_argument("--env-steps", type=int, default=30_000)
    p.add_argument("--max-minutes", type=float, default=60.0, help="wall-clock cap per RL method")
    p.add_argument("--eval-every", type=int, default=3000)
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--eval-sample", action="store_true", help="evaluate the RL policies with sampled actions too")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the learner (the rollout workers wait "
                                                         "while it updates)")
    p.add_argument("--reward", default="sparse", choices=("sparse", "shaped"))
    p.add_argument("--rlpd", default="utd=1,batch_size=256,critic_warmup_updates=1000,bc_weight=0.0",
                   help="RLPD options key=value,...")
    p.add_argument("--dapg", default="steps_per_iter=2000", help="DAPG options key=value,...")
    p.add_argument("--residual", default="utd=1,batch_size=256,critic_warmup_updates=1000,scale=0.2,ramp_steps=2000",
                   help="residual RL options key=value,...")
    p.add_argument("--base-head", default="gaussian", help="head of the frozen BC policy the residual corrects")
    p.add_argument("--utd-sweep", default="1,2,4")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--merge", default=None, help="comma-separated result JSONs to put side by side in --out")
    return p.parse_args()


def bc(work: Path, spec: EnvSpec, n_demos: int, steps: int, seed: int, head: str = "gaussian") -> tuple[Path, Path]:
    demos = work / f"demos_{n_demos}.hdf5"
    if not demos.exists():
        collect_scripted(spec, str(demos), n_demos, workers=2)
    run = work / (f"bc_{n_demos}_{steps}" if head == "gaussian" else f"bc_{head}_{n_demos}_{steps}")
    if not (run / "checkpoints" / "best.pt").exists():
        Trainer(TrainConfig(data=str(demos), out=str(run), head=head, steps=steps, eval_episodes=0, threads=1,
                            seed=seed)).run()
    return demos, run / "checkpoints" / "best.pt"


def fresh_actor(start: Path, out: Path) -> Path:
    """A randomly initialised gaussian policy with the BC policy's normaliser (RL from scratch)."""
    policy, spec, _ = load_checkpoint(start)
    stats = {k.split(".", 1)[1]: v.numpy() for k, v in policy.state_dict().items()
             if k.startswith("normalizer.") and not k.endswith(("half_range", "center"))}
    save_checkpoint(out, make_policy(policy.config, policy.shapes, stats), spec)
    return out


def eval_point(path: Path, args) -> dict:
    report = evaluate(path, seeds=eval_seeds(args.eval_episodes), workers=args.workers, max_steps=args.horizon)
    return {"success_rate": report.success_rate, "ci95": list(report.ci95), "episodes": report.episodes,
            "mean_return": sum(e["total_reward"] for e in report.per_episode) / report.episodes}


def run_rl(name: str, work: Path, start: Path, demos: list, algo: str, opts: dict, args, env_steps=None,
           eval_episodes=None, max_minutes=None) -> dict:
    out = work / name
    cfg = FinetuneConfig(checkpoint=str(start), demos=[str(d) for d in demos], out=str(out), algo=algo,
                         env_steps=env_steps or args.env_steps, reward=args.reward, horizon=args.horizon,
                         workers=args.workers, eval_every=args.eval_every,
                         eval_episodes=args.eval_episodes if eval_episodes is None else eval_episodes,
                         eval_sample=args.eval_sample, max_minutes=max_minutes or args.max_minutes, seed=args.seed, threads=args.threads,
                         algo_options=opts)
    t0 = time.time()
    runner = Finetuner(cfg, resume=(out / "checkpoints" / "last.pt").exists())
    result = runner.run()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    collects = [r for r in rows if r["kind"] == "collect"]
    to90 = next((r["env_steps"] for r in evals if r["success_rate"] >= 0.9), None)
    return {"algo": algo, "options": opts, "max_minutes": cfg.max_minutes, "env_steps": result["env_steps"], "wall_s": round(time.time() - t0, 1),
            "curve": [{k: r[k] for k in ("env_steps", "success_rate", "ci95", "mean_return", "episodes", "sampled")
                       if k in r} for r in evals],
            "steps_to_90": to90,
            "steps_to_90_sampled": next((r["env_steps"] for r in evals if r.get("sampled", {}).get("success_rate", 0) >= 0.9), None), "best": result["best"],
            "env_steps_per_s": round(sum(c["env_steps"] - p for c, p in zip(collects, [0] + [c["env_steps"] for c in collects]))
                                     / max(1e-9, sum(c["collect_s"] + c["update_s"] for c in collects)), 2),
            "run": str(out)}


def plot(path: Path, data: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for name, res in data["methods"].items():
        if "curve" not in res:
            continue
        xs = [r["env_steps"] for r in res["curve"]]
        ys = [r["success_rate"] for r in res["curve"]]
        err = [[y - r["ci95"][0] for y, r in zip(ys, res["curve"])], [r["ci95"][1] - y for y, r in zip(ys, res["curve"])]]
        colour = COLOURS.get(name.split("_seed")[0])
        fmt = "o-" if "_seed" not in name else "os^dv"[int(name.rsplit("_seed", 1)[1]) % 5] + "-"
        a.errorbar(xs, ys, yerr=err, fmt=fmt, capsize=3, label=name, color=colour)
        b.plot(xs, [r["mean_return"] for r in res["curve"]], fmt, label=name, color=colour)
        drawn = [(r["env_steps"], r["sampled"]["success_rate"]) for r in res["curve"] if "sampled" in r]
        if drawn:
            a.plot(*zip(*drawn), "s--", label=f"{name}, sampled actions", color=colour)
    more = next((r for n, r in data["methods"].items() if n.split("_seed")[0] == "bc-more"), None)
    if more and "success_rate" in more:
        a.axhline(more["success_rate"], ls="--", color=COLOURS["bc-more"], label=f"BC, {more['demos']} demos")
    a.axhline(0.9, ls=":", color="grey")
    a.set_ylim(-0.02, 1.02), a.set_xlabel("env steps"), a.set_ylabel("success (Wilson 95%)"), a.grid(alpha=0.3)
    if a.get_legend_handles_labels()[0]:  # nothing labelled yet before the first method finishes
        a.legend(fontsize=8)
    b.set_xlabel("env steps"), b.set_ylabel("mean evaluation return"), b.grid(alpha=0.3)
    fig.suptitle(f"{data['settings']['task']}: fine-tuning from BC on {data['settings']['demos']} demos")
    fig.tight_layout()
    fig.savefig(path.with_suffix(".png"), dpi=100)
    plt.close(fig)


NOT_SETTINGS = ("methods", "out", "max_minutes", "merge")  # options that do not change a method's result


def merge(files: list[str], out: Path):
    merged = {"settings": None, "merged_from": files, "methods": {}, "bc_start": {}}
    for f in files:
        data = json.loads(Path(f).read_text())
        settings = {k: v for k, v in data["settings"].items() if k not in NOT_SETTINGS + ("seed",)}
        if merged["settings"] not in (None, settings):
            differ = sorted(k for k in set(settings) | set(merged["settings"]) if settings.get(k) != merged["settings"].get(k))
            raise SystemExit(f"{f}: settings differ from {files[0]}'s in {differ}, not only the seed; not merged")
        merged["settings"] = settings
        seed = data["settings"]["seed"]
        merged["bc_start"][f"seed{seed}"] = data["bc_start"]
        for name, res in data["methods"].items():
            merged["methods"][f"{name}_seed{seed}"] = res
    dump_json(out, merged)
    plot(out, merged)
    print(f"wrote {out}")


def main():
    args = parse()
    if args.merge:
        if not args.out:
            raise SystemExit("--merge needs --out")
        return merge(args.merge.split(","), Path(args.out))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(1)
    path = Path(args.out) if args.out else RESULTS / f"finetune_{args.task}.json"
    work = RESULTS / "work" / path.stem
    work.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS}
    data = json.loads(path.read_text()) if path.exists() else {}
    if data.get("settings") != settings:
        data = {"settings": settings, "methods": {}}
    spec = EnvSpec(task=args.task, horizon=args.horizon)
    demos, start = bc(work, spec, args.demos, args.bc_steps, args.seed)
    if "bc_start" not in data:
        data["bc_start"] = eval_point(start, args)

    def save():
        """Under a lock, merged with the file on disk: two runs of other --methods on the same file (the
        Can baselines beside RLPD) each keep the other's entries; before this the last writer won."""
        import fcntl

        data["machine"] = machine()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if path.is_file():
                disk = json.loads(path.read_text())
                if disk.get("settings") == data["settings"]:
                    data["methods"] = {**disk.get("methods", {}), **data["methods"]}
            dump_json(path, data)
        plot(path, data)

    save()
    for name in args.methods.split(","):
        if name in data["methods"]:
            continue
        if name == "rlpd":
            data["methods"][name] = run_rl(name, work, start, [demos], "rlpd", key_values(args.rlpd), args)
        elif name == "dapg":
            data["methods"][name] = run_rl(name, work, start, [demos], "dapg", key_values(args.dapg), args)
        elif name == "residual":
            _, base = bc(work, spec, args.demos, args.bc_steps, args.seed, head=args.base_head)
            data["methods"][name] = {"base_head": args.base_head, "base": eval_point(base, args),
                                     **run_rl(name, work, base, [demos], "residual", key_values(args.residual), args)}
        elif name == "scratch":
            fresh = fresh_actor(start, work / "scratch_start.pt")
            data["methods"][name] = run_rl(name, work, fresh, [], "rlpd", {**key_values(args.rlpd), "demo_fraction": 0.0,
                                                                           "critic_warmup_updates": 0}, args)
        elif name == "bc-more":
            _, more = bc(work, spec, args.more_demos, args.bc_steps, args.seed)
            data["methods"][name] = {"demos": args.more_demos, "bc_steps": args.bc_steps, **eval_point(more, args)}
        elif name == "utd":
            sweep = {}
            for utd in [int(u) for u in args.utd_sweep.split(",")]:
                res = run_rl(f"utd_{utd}", work, start, [demos], "rlpd", {**key_values(args.rlpd), "utd": utd,
                                                                          "critic_warmup_updates": 0}, args,
                             env_steps=2 * args.horizon, eval_episodes=0, max_minutes=10)
                sweep[str(utd)] = {"env_steps": res["env_steps"], "env_steps_per_s": res["env_steps_per_s"]}
            data["methods"][name] = {"rlpd_env_steps_per_s_by_utd": sweep}
        else:
            raise SystemExit(f"unknown method {name!r}; methods: {', '.join(METHODS)}")
        save()
        print(json.dumps({name: {k: v for k, v in data["methods"][name].items() if k != "curve"}}), flush=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
