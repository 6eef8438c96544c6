"""Label-budget streams: a seed's stream of scripted demonstrations, cut where it first holds a given
number of expert labels (steps). What one would collect when stopping as soon as the budget is met;
studies compare correction methods at equal label budgets with it.

    path = demos_with_labels(spec, folder, start=None, budget=2000, workers=2)  # folder/bc_2000.hdf5

The stream grows in folder/pool.hdf5, so a larger budget reuses the demos collected for a smaller one
and every cut is a prefix of the same stream.
"""
from __future__ import annotations

import math
from pathlib import Path

from takeover.sim.spec import EnvSpec

from .reader import DemoReader
from .scripted_collection import collect_scripted
from .tools import merge
from .writer import DemoWriter


def labels_of(path: Path) -> int:
    """Expert labels (steps) a demonstration file holds."""
    with DemoReader(path) as reader:
        return sum(reader.num_samples(d) for d in reader.demos)


def budget_file(folder: Path, budget: int) -> Path:
    """Where demos_with_labels keeps the stream cut at `budget` labels."""
    return Path(folder) / f"bc_{budget}.hdf5"


def demos_with_labels(spec: EnvSpec, folder: Path, start: Path | None, budget: int, workers: int,
                      first_seed: int = 0, **collect_options) -> Path:
    """The first demos of the stream (`start`, then the next scripted demos) holding >= `budget` steps.
    Without `start` the stream begins at `first_seed`; `collect_options` (action_noise, keep_failed)
    go to collect_scripted. `start` is copied, never modified."""
    folder = Path(folder)
    path = budget_file(folder, budget)
    if path.exists() and labels_of(path) >= budget:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    pool = folder / "pool.hdf5"
    if not pool.exists() and start is not None:
        merge([start], pool)
    if not pool.exists():
        collect_scripted(spec, str(pool), 1, seed=first_seed, workers=1, **collect_options)
    while (have := labels_of(pool)) < budget:
        with DemoReader(pool) as reader:
            mean_length = have / len(reader)
        collect_scripted(spec, str(pool), max(1, math.ceil((budget - have) / mean_length)), workers=workers,
                         append=True, **collect_options)  # seeds after the file's largest
    path.unlink(missing_ok=True)
    with DemoReader(pool) as reader, DemoWriter(path, reader.spec, object_layout=reader.object_layout) as writer:
        total = 0
        for name in reader.demos:
            writer.save(reader.episode(name))
            total += reader.num_samples(name)
            if total >= budget:
                break
    return path
