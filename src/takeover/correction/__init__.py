"""takeover.correction: making the data better where behaviour cloning drifts.

- `dagger.py`: DAgger rounds with the scripted expert labelling what the beta-mixture visits
  (`takeover dagger DATA --policy RUN --expert scripted`).
- `dart.py`: DART, the scripted expert collecting with noise fitted to the learner's error
  (`takeover dart DATA --policy RUN`); `fit_noise_for_recording` for `takeover record --noise fit:CKPT`.
- `runs.py`: what the correction runs share (input checks, state file, retraining, evaluation).
- `beta.py`: the beta schedules.
- `operator.py`: the simulated operator (headless HG-DAgger).
- `live.py`: live take-over in the window (`--expert human --input gamepad|keyboard`), through the
  same `DaggerRun`; `retrain.py`: its background retraining process.
"""
from .beta import BetaSchedule
from .errors import CorrectionError

__all__ = ["BetaSchedule", "CorrectionError"]
