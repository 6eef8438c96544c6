"""ScriptedDevice: a scripted operator that produces DeviceStates from the task's scripted expert
(privileged simulator state), so the whole recording path runs without a person.

It presses start at the beginning of each episode, holds the gripper control while the expert wants
the gripper closed (use gripper mode "hold"), presses save once success has held for
`save_after_success` steps, and reset (next seed) when the horizon is reached without success.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .action import ActionGains
from .errors import TeleopError
from .state import DeviceState

SCRIPTED_GAINS = ActionGains(translation=1.0, rotation=1.0, gripper_mode="hold")


class ScriptedDevice:
    name = "scripted"
    source = "expert"
    gripper_mode = "hold"

    @classmethod
    def open(cls, options):
        if options.env is None:
            raise TeleopError("the scripted device needs the environment its expert reads")
        return cls(options.env, seed=options.seed, save_after_success=options.save_after_success)

    def __init__(self, env, expert=None, seed: int | None = 0, gains: ActionGains = SCRIPTED_GAINS,
                 save_after_success: int | None = 10):
        if expert is None:
            try:
                from takeover.sim.experts import make_expert
            except ImportError:
                raise TeleopError("no scripted experts are installed (takeover.sim.experts)") from None
            expert = make_expert(env.spec.task, seed=seed)
        self.env = env
        self.expert = expert
        self.gains = gains
        self.save_after_success = save_after_success
        self._need_start = True
        self._success_run = 0
        self._sent_end = False

    def reset(self, env) -> None:
        """Called by the session after every env reset."""
        self.env = env
        self.expert.reset(env)
        self._need_start = True
        self._success_run = 0
        self._sent_end = False

    def poll(self, events: Iterable = ()) -> DeviceState:
        names = set()
        if self._need_start:
            self._need_start = False
            self.expert.reset(self.env)
            names.add("start")
        if self.env.check_success():
            self._success_run += 1
        else:
            self._success_run = 0
        if not self._sent_end:
            if self.save_after_success is not None and self._success_run >= self.save_after_success:
                names.add("save")
                self._sent_end = True
            elif self.env.t >= self.env.max_steps:
                names.add("reset")  # give up on this start and move to the next seed
                self._sent_end = True
        if self._sent_end:
            return DeviceState(events=frozenset(names), status="scripted")
        a = np.asarray(self.expert.act({}, self.env), dtype=np.float64)
        t = np.clip(a[0:3] / self.gains.translation, -1, 1)
        r = np.clip(a[3:6] / self.gains.rotation, -1, 1)
        return DeviceState(tuple(map(float, t)), tuple(map(float, r)), 1.0 if a[6] > 0 else 0.0, False,
                           frozenset(names), status=f"scripted ({type(self.expert).__name__})")

    def help_lines(self) -> list[str]:
        return ["scripted operator: the task's scripted expert drives"]

    def close(self) -> None:
        pass
