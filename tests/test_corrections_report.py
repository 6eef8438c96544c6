"""The corrections study's seed-level table (benchmarks/corrections.py): what it prints is what the
README quotes, so its degenerate cases must read as what they are."""
import importlib
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _corrections():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("corrections")
    finally:
        sys.path.remove(str(BENCHMARKS))


def _results(rates: dict[tuple[str, int], list[float]]) -> dict:
    entries = {f"{m}/{s}": {"method": m, "seed": s,
                            "points": [{"budget": i, "success_rate": r} for i, r in enumerate(rs)]}
               for (m, s), rs in rates.items()}
    return {"settings": {"budgets": "5,20"}, "entries": entries}


def test_paired_table_says_when_every_seed_gave_the_same_difference():
    table = _corrections().paired_table(_results({
        ("bc", 0): [0.00, 0.16], ("bc", 1): [0.00, 0.10], ("bc", 2): [0.02, 0.10],
        ("ccil", 0): [0.02, 0.12], ("ccil", 1): [0.02, 0.06],  # +0.02 on both seeds, then -0.04 on both
        ("dart-fixed", 0): [0.00, 0.18], ("dart-fixed", 1): [0.02, 0.02], ("dart-fixed", 2): [0.00, 0.00],
        ("dagger", 0): [0.02, 0.08]}))
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert "+0.02, the same on all 2 seeds" in rows["ccil"] and "-0.04, the same on all 2 seeds" in rows["ccil"]
    assert "[" not in rows["ccil"]  # no zero-width interval
    assert "-0.05 [-0.21, +0.11] (3)" in rows["dart-fixed"]  # Square's three seeds at ~20 demos
    assert "+0.02 (1)" in rows["dagger"]


def test_compounding_records_the_labels_of_the_policy_it_rolls_out(tmp_path):
    """A round-based run done again after its work folder was lost takes its own rounds (they depend on
    its own policies): the compounding entry must carry that run's label count, not the evaluated one's,
    and leave out a round the rerun never reached."""
    corrections = _corrections()
    seed_folder = tmp_path / "seed1"
    (seed_folder / "dart-fit").mkdir(parents=True)
    (seed_folder / "dart-fit" / "dart.json").write_text(
        '{"iterations": [{"expert_labels": 369}, {"expert_labels": 588}, {"expert_labels": 818}]}')
    ckpt = seed_folder / "dart-fit" / "iter_2" / "train" / "checkpoints" / "best.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"weights")
    sw = type("SeedWork", (), {"folder": seed_folder})()
    point = {"round": 2, "expert_labels": 819, "checkpoint": str(ckpt)}
    assert corrections.rolled_out_labels(sw, "dart-fit", point) == 818
    assert corrections.rolled_out_labels(sw, "bc", {"expert_labels": 2479, "checkpoint": str(ckpt)}) == 2479
    assert corrections.rolled_out_labels(sw, "dart-fit", {**point, "round": 3}) is None  # beyond the rerun
    gone = {**point, "checkpoint": str(tmp_path / "lost" / "best.pt")}
    assert corrections.rolled_out_labels(sw, "dart-fit", gone) is None
