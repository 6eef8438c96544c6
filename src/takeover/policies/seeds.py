"""The fixed seed lists of evaluation (imported by the CLI for its defaults, so it stays import-light).

Evaluation seeds start at EVAL_SEED_START, far from the collection seeds (0, 1, 2, ...), so a policy
is never scored on the starts it was trained on and every head is compared on the same starts.
Training picks its best checkpoint on SELECTION_SEED_START seeds, disjoint from both.
"""

EVAL_SEED_START = 1_000_000
# Checkpoint selection during training rolls out on yet other seeds, so the reported success rate of
# the chosen checkpoint is not inflated by having been picked on the very episodes it is scored on.
SELECTION_SEED_START = 2_000_000


def eval_seeds(episodes: int, start: int = EVAL_SEED_START) -> list[int]:
    return list(range(start, start + episodes))
