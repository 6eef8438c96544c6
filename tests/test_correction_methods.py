"""Labellers are objects (correction/labellers.py): the config offers exactly the registered ones, and
each gives its own beta, rollout agent and episode attributes."""
import pytest

from takeover.correction.beta import BetaSchedule
from takeover.correction.dagger_config import DaggerConfig
from takeover.correction.labellers import LABELLERS, DaggerAgent, OperatorAgent
from takeover.config import field_of


def test_the_config_offers_the_registered_labellers():
    assert field_of(DaggerConfig, "labeller").metadata["choices"] == tuple(LABELLERS) == ("scripted", "operator", "human")


def test_each_labeller_gives_its_beta_agent_and_attributes():
    cfg = DaggerConfig(data="d", policy="p", out="o", operator_threshold=0.3, seed=2)
    schedule = BetaSchedule.parse("exp:0.5")
    scripted, operator, human = (LABELLERS[n] for n in ("scripted", "operator", "human"))
    assert scripted.beta(schedule, 2) == pytest.approx(0.25) and operator.beta(schedule, 2) == 0.0
    assert scripted.agent("Lift", "ckpt.pt", 0.25, cfg) == DaggerAgent("Lift", "ckpt.pt", 0.25, 2)
    assert operator.agent("Lift", "ckpt.pt", 0.0, cfg) == OperatorAgent("Lift", "ckpt.pt", 0.3, 2)
    assert scripted.attrs(0.25) == {"labeller": "scripted", "beta": 0.25} and operator.attrs(0.0) == {"labeller": "operator"}
    assert scripted.needs_expert and operator.needs_expert and not human.needs_expert and not human.rolls_out
    with pytest.raises(NotImplementedError, match="human"):
        human.agent("Lift", "ckpt.pt", 0.0, cfg)  # a person's episodes come from the window, not from rollouts
