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


def test_the_augment_registry_lists_ccil_and_generate_with_their_configs():
    from takeover.config import Config
    from takeover.correction.ccil_config import CcilConfig
    from takeover.correction.generation_config import GenerateConfig
    from takeover.correction.methods import AUGMENT_METHODS

    assert list(AUGMENT_METHODS) == ["ccil", "generate"]
    assert AUGMENT_METHODS["ccil"].config is CcilConfig and AUGMENT_METHODS["generate"].config is GenerateConfig
    assert all(issubclass(m.config, Config) and callable(m.run) for m in AUGMENT_METHODS.values())
    assert AUGMENT_METHODS["generate"].resumable and not AUGMENT_METHODS["ccil"].resumable


@pytest.mark.parametrize("extra, option, owner", [
    (["--select", "random"], "--select", "generate"), (["-n", "3"], "--episodes", "generate"),
    (["--resume"], "--resume", "generate"), (["--method", "generate", "-n", "3", "--epochs", "2"], "--epochs", "ccil"),
], ids=" ".join)
def test_an_option_of_another_augment_method_is_refused_in_one_line(extra, option, owner, tmp_path, capsys):
    from takeover.cli.app import run_cli

    data = tmp_path / "demos.hdf5"
    data.write_bytes(b"")  # never read: the refusal comes first
    out, report = tmp_path / "out.hdf5", tmp_path / "report.json"
    assert run_cli(["augment", str(data), "-o", str(out), "--report", str(report), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{option} is an option of --method {owner}" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demos.hdf5"]


def test_generate_config_refuses_bad_values_and_needs_an_episode_budget():
    from takeover.correction.errors import CorrectionError
    from takeover.correction.generation_config import GenerateConfig

    with pytest.raises(CorrectionError, match="needs -n"):
        GenerateConfig()
    with pytest.raises(CorrectionError, match="select must be one of nearest, random"):
        GenerateConfig(episodes=2, select="far")
    assert GenerateConfig(episodes=2).first_seed == 4_000_000
