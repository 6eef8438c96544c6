"""The one configuration base (takeover/config.py): limits, JSON round trips and unknown keys are handled
once for every config, and each config raises its own package's error."""
import json

import pytest

from takeover.config import ConfigError, parse_assignments
from takeover.correction.ccil_config import CcilConfig
from takeover.correction.dagger_config import DaggerConfig
from takeover.correction.dart_config import DartConfig
from takeover.correction.errors import CorrectionError
from takeover.policies.errors import PolicyError
from takeover.policies.train_config import TrainConfig
from takeover.rl_finetune.config import FinetuneConfig
from takeover.rl_finetune.errors import FinetuneError


def test_every_config_round_trips_through_json_and_names_unknown_keys():
    from takeover.policies.registry import head_names, make_config
    from takeover.rl_finetune.dapg import DAPGConfig
    from takeover.rl_finetune.rlpd import RLPDConfig

    configs = [make_config(h) for h in head_names()] + [RLPDConfig(), DAPGConfig(), CcilConfig(),
                                                        TrainConfig(data="d", out="o"), FinetuneConfig(checkpoint="c")]
    for config in configs:
        again = type(config).from_dict(json.loads(json.dumps(config.to_dict())))
        assert again == config, type(config).__name__  # tuples come back as tuples
        with pytest.raises(config.error, match=r"no option\(s\) \['nope'\]"):
            type(config).from_dict({**config.to_dict(), "nope": 1})


@pytest.mark.parametrize("make, error, message", [
    (lambda: TrainConfig(data="d", out="o", weighting="most"), PolicyError, "weighting must be one of none, iwr, sirius"),
    (lambda: __import__("takeover.policies.registry", fromlist=["x"]).make_config("gmm", num_modes=0), PolicyError,
     "GMMConfig.num_modes must be at least 1, got 0"),
    (lambda: __import__("takeover.policies.registry", fromlist=["x"]).make_config("gaussian", exec_horizon=2),
     PolicyError, "exec_horizon 2 must lie in [1, action_horizon=1]"),
    (lambda: __import__("takeover.rl_finetune.rlpd", fromlist=["x"]).RLPDConfig(demo_fraction=1.5), FinetuneError,
     "RLPDConfig.demo_fraction must be at most 1, got 1.5"),
    (lambda: __import__("takeover.rl_finetune.dapg", fromlist=["x"]).DAPGConfig(lambda1=0), FinetuneError,
     "lambda1 must be above 0"),
    (lambda: CcilConfig(layers=9), CorrectionError, "CcilConfig.layers must be at most 8, got 9"),
], ids=["choices", "head limit", "head rule", "rlpd limit", "dapg limit", "ccil limit"])
def test_limits_and_rules_raise_the_packages_error_naming_the_field(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert message in str(info.value)


def test_retrain_overrides_are_checked_once_for_every_correction_run():
    for cls, extra in ((DaggerConfig, {}), (DartConfig, {})):
        with pytest.raises(CorrectionError, match=r"retraining has no option\(s\) \['stepz'\]"):
            cls(data="d", policy="p", out="o", train_overrides={"stepz": 5}, **extra)
        with pytest.raises(CorrectionError, match=r"no option\(s\) \['data'\]"):  # the run sets the data itself
            cls(data="d", policy="p", out="o", train_overrides={"data": "other.hdf5"}, **extra)
        assert cls(data="d", policy="p", out="o", train_overrides={"steps": 5}).train_overrides == {"steps": 5}


def test_set_assignments_parse_json_values_and_refuse_a_missing_equals():
    assert parse_assignments(["a=1", "b=[1, 2]", "c=true", "d=gmm", "e=x=y"]) == \
        {"a": 1, "b": [1, 2], "c": True, "d": "gmm", "e": "x=y"}
    with pytest.raises(ConfigError, match="--set expects key=value, got 'steps'"):
        parse_assignments(["steps"])
