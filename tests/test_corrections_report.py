"""The corrections study's seed-level table (benchmarks/corrections.py): what it prints is what the
results page (docs/results/corrections.md) shows, so its degenerate cases must read as what they are."""
import importlib
import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _corrections(part: str):
    """A module of the corrections study (benchmarks/corrections_<part>.py)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(f"corrections_{part}")
    finally:
        sys.path.remove(str(BENCHMARKS))


def _results(rates: dict[tuple[str, int], list[float]]) -> dict:
    entries = {f"{m}/{s}": {"method": m, "seed": s,
                            "points": [{"budget": i, "success_rate": r} for i, r in enumerate(rs)]}
               for (m, s), rs in rates.items()}
    return {"settings": {"budgets": "5,20"}, "entries": entries}


def test_paired_table_says_when_every_seed_gave_the_same_difference():
    table = _corrections("stats").paired_table(_results({
        ("bc", 0): [0.00, 0.16], ("bc", 1): [0.00, 0.10], ("bc", 2): [0.02, 0.10],
        ("ccil", 0): [0.02, 0.12], ("ccil", 1): [0.02, 0.06],  # +0.02 on both seeds, then -0.04 on both
        ("dart-fixed", 0): [0.00, 0.18], ("dart-fixed", 1): [0.02, 0.02], ("dart-fixed", 2): [0.00, 0.00],
        ("dagger", 0): [0.02, 0.08]}))
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert "+0.02, the same on all 2 seeds" in rows["ccil"] and "-0.04, the same on all 2 seeds" in rows["ccil"]
    assert "[" not in rows["ccil"]  # no zero-width interval
    assert "-0.05 [-0.21, +0.11] (3)" in rows["dart-fixed"]  # Square's three seeds at ~20 demos
    assert "+0.02 (1)" in rows["dagger"]


def test_compounding_rolls_out_the_policy_the_work_folder_holds_at_the_budget(tmp_path, monkeypatch):
    """A round-based run done again after its work folder was lost takes its own rounds (they depend on
    its own policies): the compounding measurement must roll out that run's first round past the budget
    and carry its label count, not the evaluated run's; a method with no policy there is left out."""
    corrections = _corrections("compounding")
    seed_folder = tmp_path / "seed1"
    ckpts = {}
    for k in (1, 2, 3):
        ckpts[k] = seed_folder / "dagger" / f"round_{k}" / "train" / "checkpoints" / "best.pt"
        ckpts[k].parent.mkdir(parents=True)
        ckpts[k].write_bytes(b"weights")
    rounds = [{"expert_labels": n, "checkpoint": str(ckpts.get(k, ""))} for k, n in enumerate((369, 1800, 2407, 2600))]
    (seed_folder / "dagger" / "dagger.json").write_text(json.dumps({"rounds": rounds}))
    sw = type("SeedWork", (), {"folder": seed_folder})()
    evaluated = {"round": 3, "expert_labels": 2566, "checkpoint": str(ckpts[3])}  # the lost run's round 3
    assert corrections.policy_at_budget(sw, "dagger", evaluated, 2376) == (ckpts[2], 2407)
    assert corrections.policy_at_budget(sw, "dagger", evaluated, 2700) is None  # the rerun stopped short
    assert corrections.policy_at_budget(sw, "hg-dagger", evaluated, 2376) is None  # no run at all
    bc = {"expert_labels": 2479, "checkpoint": str(ckpts[1])}
    assert corrections.policy_at_budget(sw, "bc", bc, 2376) == (ckpts[1], 2479)  # no stream file: the point's
    stream = seed_folder / "bc" / "bc_2376.hdf5"
    stream.parent.mkdir()
    stream.write_bytes(b"demos")
    counted = []
    monkeypatch.setattr(corrections, "labels_of", lambda path: counted.append(path) or 2478)
    assert corrections.policy_at_budget(sw, "ccil", bc, 2376) == (ckpts[1], 2478)  # recounted from the stream
    assert counted == [stream]
    assert corrections.policy_at_budget(sw, "bc", {**bc, "checkpoint": str(tmp_path / "lost.pt")}, 2376) is None
