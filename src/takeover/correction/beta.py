"""DAgger's beta schedules: the probability that the expert's action is executed in round k (k >= 1;
round 0 is the initial demonstrations, all expert).

    linear:R   beta_k = max(0, 1 - k / R)      (imitation's default, R = 15)
    exp:P      beta_k = P ** k                  (imitation's tuned MuJoCo configs: P = 0.7)
    const:B    beta_k = B
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import CorrectionError

KINDS = ("linear", "exp", "const")


@dataclass(frozen=True)
class BetaSchedule:
    kind: str
    value: float

    @classmethod
    def parse(cls, text: str) -> BetaSchedule:
        kind, sep, number = str(text).partition(":")
        try:
            value = float(number)
        except ValueError:
            value = None
        if not sep or kind not in KINDS or value is None:
            raise CorrectionError(f"beta schedule {text!r}: expected linear:R, exp:P or const:B (e.g. exp:0.7)")
        if kind == "linear" and value < 1:
            raise CorrectionError(f"beta schedule {text!r}: linear needs R >= 1 rounds")
        if kind != "linear" and not 0.0 <= value <= 1.0:
            raise CorrectionError(f"beta schedule {text!r}: {kind} needs a value in [0, 1]")
        return cls(kind, value)

    def __call__(self, round_index: int) -> float:
        if self.kind == "linear":
            return max(0.0, 1.0 - round_index / self.value)
        if self.kind == "exp":
            return self.value ** round_index
        return self.value

    def __str__(self) -> str:
        return f"{self.kind}:{self.value:g}"
