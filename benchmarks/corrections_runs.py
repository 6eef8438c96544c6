"""The corrections study's runner: a training seed's demo stream and budgets, and one function per
method that trains and evaluates it at every label budget (see corrections.py for the study)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import evaluate_cached, point, train_bc  # noqa: E402

from takeover.correction.ccil_augment import augment_ccil  # noqa: E402
from takeover.correction.ccil_config import CcilConfig  # noqa: E402
from takeover.correction.dagger import DaggerConfig, run_dagger  # noqa: E402
from takeover.correction.dart import DartConfig, run_dart  # noqa: E402
from takeover.datasets import DemoReader  # noqa: E402
from takeover.datasets.label_budget import demos_with_labels, labels_of  # noqa: E402
from takeover.datasets.scripted_collection import collect_scripted  # noqa: E402
from takeover.sim import EnvSpec  # noqa: E402
from takeover.sim.noise import ActionNoise  # noqa: E402


METHODS = ("bc", "dart-fixed", "dart-fit", "dagger", "hg-dagger", "ccil")
DAGGER_LABELLER = {"dagger": "scripted", "hg-dagger": "operator"}
ROUND_STATE = {"dart-fit": ("iterations", "dart.json"), "dagger": ("rounds", "dagger.json"),
               "hg-dagger": ("rounds", "dagger.json")}  # where a round-based run keeps its rounds
STREAM_FOLDER = {"bc": "bc", "ccil": "bc", "dart-fixed": "dart-fixed"}  # where each stream method's demos grow
MAX_ROUNDS = 60  # a round-based method that stops gaining labels (an operator who never takes over) ends here


# ----- the seed's stream and budgets -----------------------------------------------------------------
class SeedWork:
    """A training seed's files: its clean demo stream, the budgets in labels, the initial BC policy."""

    def __init__(self, spec: EnvSpec, work: Path, args, seed: int):
        self.spec, self.args, self.seed = spec, args, seed
        self.folder = work / f"seed{seed}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.first_seed = seed * DEMO_SEED_STRIDE
        five = self.clean_demos(5)
        with DemoReader(five) as reader:
            self.demo_length = labels_of(five) / len(reader)
        self.budgets = [int(round(b * self.demo_length)) for b in args.budget_demos]

    def clean_demos(self, n: int) -> Path:
        """The first n clean demos of the stream (the stream's pool grows as budgets need it)."""
        path = self.folder / f"demos_{n}.hdf5"
        if not path.exists() or labels_of(path) == 0:
            path.unlink(missing_ok=True)
            collect_scripted(self.spec, str(path), n, seed=self.first_seed, workers=self.args.workers)
        return path

    def bc_data(self, budget: int) -> Path:
        return demos_with_labels(self.spec, self.folder / STREAM_FOLDER["bc"], self.clean_demos(5), budget,
                                 self.args.workers)

    def initial_policy(self) -> tuple[Path, Path]:
        demos = self.clean_demos(self.args.initial_demos)
        return demos, train_bc(demos, self.folder / "bc_initial", self.args, self.seed)


def evaluated_point(ckpt: Path, data_labels: int, args, t0: float, **extra) -> dict:
    report = evaluate_cached(ckpt, args)
    return point(report, data_labels, time.time() - t0, checkpoint=str(ckpt), **extra)


# ----- methods ----------------------------------------------------------------------------------------
def run_bc(sw: SeedWork, args) -> list[dict]:
    points = []
    for budget in sw.budgets:
        t0 = time.time()
        data = sw.bc_data(budget)
        ckpt = train_bc(data, sw.folder / "bc" / f"run_{budget}", args, sw.seed)
        points.append(evaluated_point(ckpt, labels_of(data), args, t0, budget=budget))
    return points


def run_dart_fixed(sw: SeedWork, args) -> list[dict]:
    noise = ActionNoise.from_option(str(args.dart_std), action_dim=7, seed=sw.seed)
    folder = sw.folder / STREAM_FOLDER["dart-fixed"]
    points = []
    for budget in sw.budgets:
        t0 = time.time()
        data = demos_with_labels(sw.spec, folder, None, budget, args.workers, first_seed=sw.first_seed,
                                 action_noise=noise, keep_failed=True)
        ckpt = train_bc(data, folder / f"run_{budget}", args, sw.seed)
        with DemoReader(data) as reader:
            ok = sum(bool(reader.attrs(d).get("success")) for d in reader.demos)
            n = len(reader)
        points.append(evaluated_point(ckpt, labels_of(data), args, t0, budget=budget, episodes_collected=n,
                                      noisy_expert_success=round(ok / n, 3)))
    return points


def train_overrides(args) -> dict:
    return {"steps": args.steps, "eval_episodes": args.selection_episodes, "eval_every": max(1, args.steps // 2),
            "eval_workers": args.workers, "threads": args.threads}


def run_round_based(method: str, sw: SeedWork, args) -> list[dict]:
    """Rounds (DAgger) or iterations (DART) of --episodes-per-round episodes until the labels pass each
    budget; the first round past a budget is evaluated. The runs' own per-round evaluation is off."""
    demos, initial = sw.initial_policy()
    out = sw.folder / method
    common = dict(data=str(demos), policy=str(initial.parent.parent), out=str(out), workers=args.workers,
                  eval_episodes=0, seed=sw.seed, train_overrides=train_overrides(args))
    rounds_key, state_file = ROUND_STATE[method]
    if method == "dart-fit":
        cfg = DartConfig(iterations=1, episodes=args.episodes_per_round, noise="fit", **common)
        run = run_dart
    else:
        cfg = DaggerConfig(rounds=1, episodes_per_round=args.episodes_per_round, labeller=DAGGER_LABELLER[method],
                           operator_threshold=args.operator_threshold, beta=args.beta, **common)
        run = run_dagger
    t0 = time.time()
    points = [evaluated_point(initial, labels_of(demos), args, t0, round=0)]
    pending = list(sw.budgets)
    for k in range(1, MAX_ROUNDS + 1):
        setattr(cfg, rounds_key, k)
        # the k-th entry, not the last: a resumed state may already hold rounds past k (a killed run's)
        last = run(cfg, resume=(out / state_file).is_file())[rounds_key][k]
        while pending and last["expert_labels"] >= pending[0]:
            extra = {"noise_trace": last["noise_trace"]} if method == "dart-fit" else {}
            points.append(evaluated_point(Path(last["checkpoint"]), last["expert_labels"], args, t0,
                                          budget=pending.pop(0), round=k, **extra))
        if not pending:
            break
    if pending:
        print(f"  {method} seed {sw.seed}: budgets {pending} not reached in {MAX_ROUNDS} rounds", flush=True)
    return points


def run_ccil(sw: SeedWork, args) -> list[dict]:
    """The bc demos of each budget plus CCIL labels (CcilConfig defaults, seeded by the training seed);
    the labels cost no expert query, so the point's label count is the demos'."""
    points = []
    for budget in sw.budgets:
        t0 = time.time()
        data = sw.bc_data(budget)
        aug = sw.folder / "ccil" / f"aug_{budget}.hdf5"
        if not aug.exists():
            aug.parent.mkdir(parents=True, exist_ok=True)
            report = augment_ccil(data, aug, CcilConfig(seed=sw.seed))
            (aug.parent / f"report_{budget}.json").write_text(json.dumps(report, indent=2, default=str))
        report = json.loads((aug.parent / f"report_{budget}.json").read_text())
        ckpt = train_bc(aug, sw.folder / "ccil" / f"run_{budget}", args, sw.seed)
        points.append(evaluated_point(ckpt, labels_of(data), args, t0, budget=budget,
                                      ccil_labels=report["kept"], ccil_counts=report["counts"]))
    return points


RUNNERS = {"bc": run_bc, "dart-fixed": run_dart_fixed, "ccil": run_ccil,
           **{m: (lambda sw, args, m=m: run_round_based(m, sw, args)) for m in ("dart-fit", "dagger", "hg-dagger")}}
