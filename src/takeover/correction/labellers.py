"""Who labels a DAgger round: one object per kind of labeller instead of a string branched on.

    scripted   the scripted expert labels every visited state; the beta-mixture of expert and learner drives
    operator   HG-DAgger: the learner drives, the scripted expert playing a person takes over where it
               strays; only the operator's steps are labels
    human      HG-DAgger live in the window: a person at a device takes over (`live.py`); no rollouts here

A labeller gives the round's beta, the picklable agent factory the rollout workers run, the episode
attributes it stamps and the words the log and the report use. Adding one is a class here and its
entry in LABELLERS. Import-light (the CLI reads LABELLERS at start-up): the agents load on use.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DaggerAgent:
    """Picklable factory for rollout workers: the task's scripted expert and the learner checkpoint,
    mixed by beta (`takeover.sim.agents.BetaMixture`)."""

    task: str
    checkpoint: str
    beta: float
    seed: int = 0

    def __call__(self):
        from takeover.policies.evaluate import CheckpointAgent
        from takeover.sim.agents import BetaMixture
        from takeover.sim.experts import make_expert

        return BetaMixture(make_expert(self.task, seed=self.seed), CheckpointAgent(self.checkpoint)(), self.beta,
                           seed=self.seed)


@dataclass(frozen=True)
class OperatorAgent:
    """Picklable factory: the learner drives, the simulated operator takes over (GatedTakeover)."""

    task: str
    checkpoint: str
    threshold: float
    seed: int = 0

    def __call__(self):
        from takeover.policies.evaluate import CheckpointAgent
        from takeover.sim.agents import GatedTakeover
        from takeover.sim.experts import make_expert

        from .operator import OperatorRule, SimulatedOperator

        operator = SimulatedOperator(make_expert(self.task, seed=self.seed), OperatorRule(threshold=self.threshold))
        return GatedTakeover(operator.teacher, CheckpointAgent(self.checkpoint)(), operator.gate)


class Labeller:
    name = ""
    title = ""  # the report's words for the run ("scripted expert")
    needs_expert = True  # the task must have a scripted expert
    no_expert_hint = ""  # what to do instead, when the task has none
    rolls_out = True  # the run rolls episodes out itself (the live person's episodes come from the window)

    def beta(self, schedule, k: int) -> float:
        """Probability the expert's action runs in round k (0: the learner drives)."""
        return 0.0

    def who(self, beta: float) -> str:
        """The round's log line names the labeller so."""
        return self.title

    def agent(self, task: str, learner: str, beta: float, cfg):
        raise NotImplementedError(f"the {self.name} labeller has no rollout agent")

    def attrs(self, beta: float) -> dict:
        """Attributes every episode of a round carries besides source and round."""
        return {"labeller": self.name}


class ScriptedExpert(Labeller):
    name, title = "scripted", "scripted expert"
    no_expert_hint = "use --expert human (with --input gamepad or keyboard to label live)"

    def beta(self, schedule, k: int) -> float:
        return schedule(k)

    def who(self, beta: float) -> str:
        return f"beta {beta:.3f}"

    def agent(self, task, learner, beta, cfg):
        return DaggerAgent(task, learner, beta, cfg.seed)

    def attrs(self, beta: float) -> dict:
        return {"labeller": self.name, "beta": beta}


class SimulatedOperatorLabeller(Labeller):
    name, title = "operator", "HG-DAgger, simulated operator"
    no_expert_hint = "the scripted operator needs one; take over live with --input gamepad or keyboard"

    def who(self, beta: float) -> str:
        return "simulated operator"

    def agent(self, task, learner, beta, cfg):
        return OperatorAgent(task, learner, cfg.operator_threshold, cfg.seed)


class PersonAtDevice(Labeller):
    name, title = "human", "HG-DAgger, live human take-over"
    needs_expert = False
    rolls_out = False


LABELLERS: dict[str, Labeller] = {labeller.name: labeller for labeller in
                                  (ScriptedExpert(), SimulatedOperatorLabeller(), PersonAtDevice())}
