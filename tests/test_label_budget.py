"""Label-budget streams (datasets/label_budget.py): each cut is the shortest prefix of one seed's stream
holding the budget, later budgets reuse the demos collected for earlier ones, the start file stays as it is."""
import hashlib

from takeover.datasets import DemoReader
from takeover.datasets.label_budget import budget_file, demos_with_labels, labels_of
from takeover.datasets.scripted_collection import collect_scripted
from takeover.sim import EnvSpec


def _demo_lengths(path):
    with DemoReader(path) as reader:
        return [(reader.episode(name).attrs.get("seed"), reader.num_samples(name)) for name in reader.demos]


def test_cuts_are_the_shortest_prefixes_of_one_stream(tmp_path):
    spec = EnvSpec(task="Lift", horizon=12)
    start = tmp_path / "start.hdf5"
    collect_scripted(spec, str(start), 2, seed=0, workers=1, keep_failed=True)
    before = hashlib.sha256(start.read_bytes()).hexdigest()
    folder = tmp_path / "stream"
    small = demos_with_labels(spec, folder, start, 30, workers=1, keep_failed=True)
    assert small == budget_file(folder, 30)
    small_demos = _demo_lengths(small)
    assert labels_of(small) >= 30 and sum(n for _, n in small_demos[:-1]) < 30  # the last demo was needed
    large = demos_with_labels(spec, folder, start, 70, workers=1, keep_failed=True)
    large_demos = _demo_lengths(large)
    assert labels_of(large) >= 70 and sum(n for _, n in large_demos[:-1]) < 70
    assert large_demos[:len(small_demos)] == small_demos  # one stream: the smaller cut is a prefix
    assert large_demos[:2] == _demo_lengths(start)  # the stream starts with the start file's demos
    assert len({seed for seed, _ in large_demos}) == len(large_demos)  # no demo collected twice
    assert hashlib.sha256(start.read_bytes()).hexdigest() == before
    again = demos_with_labels(spec, folder, start, 30, workers=1, keep_failed=True)
    assert _demo_lengths(again) == small_demos  # an existing cut is reused as it is
