"""takeover.correction: making the data better where behaviour cloning drifts.

- `dagger.py`: DAgger rounds with the scripted expert labelling what the beta-mixture visits
  (`takeover dagger DATA --policy RUN --expert scripted`).
- `beta.py`: the beta schedules.
- `operator.py`: the simulated operator (headless HG-DAgger).
- `live.py`: live take-over in the window (`--expert human --device gamepad|keyboard`), through the
  same `DaggerRun`; `retrain.py`: its background retraining process.
"""
from .beta import BetaSchedule
from .errors import CorrectionError

__all__ = ["BetaSchedule", "CorrectionError"]
