"""A train/valid split for the test fixtures' demo files: the correction runs (DAgger, DART, live
take-over) must add their new episodes to `train`, which only a file with a split can show."""
from takeover.datasets.tools import split


def with_split(path, valid_fraction: float = 0.1) -> dict[str, list[str]]:
    """Write a seeded split into demo file `path` (at least one demo on each side); returns it."""
    masks = split(path, valid_fraction=valid_fraction, seed=0)
    assert masks["train"] and masks["valid"] and not set(masks["train"]) & set(masks["valid"])
    return masks
