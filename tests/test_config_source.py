"""One source for configuration: the CLI's defaults, help and limits come from the config dataclasses,
the head list from the registry, and the registry finds head modules by scanning the package."""
import subprocess
import sys
import textwrap

import h5py
import pytest
import typer

from takeover.cli import commands  # noqa: F401  (registers every command on the app)
from takeover.cli.app import app, run_cli
from takeover.config import default_of
from takeover.policies.errors import HeadImportError, PolicyError
from takeover.policies.train import TrainConfig


def _command(name):
    return typer.main.get_command(app).commands[name]


def test_train_options_take_default_and_help_from_train_config():
    fields = {"head": "head", "steps": "steps", "batch_size": "batch_size", "lr": "lr", "ema_decay": "ema_decay",
              "eval_every": "eval_every", "eval_episodes": "eval_episodes", "eval_workers": "eval_workers",
              "seed": "seed", "device": "device", "threads": "threads", "quaternions": "quaternions",
              "max_minutes": "max_minutes"}
    params = {p.name: p for p in _command("train").params}
    for option, field in fields.items():
        assert params[option].default == default_of(TrainConfig, field), option
    for param in params.values():
        assert param.help, f"--{param.name} has no help text"


def test_train_help_lists_the_registered_heads(capsys):
    from takeover.policies.registry import head_names

    assert run_cli(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert all(name in out for name in head_names()) and len(head_names()) == 6


def test_train_config_refuses_zero_budgets():
    with pytest.raises(PolicyError, match="steps must be at least 1, got 0"):
        TrainConfig(data="d.hdf5", out="r", steps=0)
    with pytest.raises(PolicyError, match="batch_size"):
        TrainConfig(data="d.hdf5", out="r", batch_size=-1)
    assert TrainConfig(data="d.hdf5", out="r", eval_episodes=0, ema_decay=None).steps == 5000  # defaults unchanged


@pytest.mark.parametrize("argv, option", [
    (["train", "d.hdf5", "--out", "r", "--steps", "0"], "--steps"),
    (["train", "d.hdf5", "--out", "r", "--steps", "-3"], "--steps"),
    (["train", "d.hdf5", "--out", "r", "--batch-size", "0"], "--batch-size"),
    (["train", "d.hdf5", "--out", "r", "--max-minutes", "0"], "--max-minutes"),
    (["train", "d.hdf5", "--out", "r", "--eval-every", "0"], "--eval-every"),
    (["train", "d.hdf5", "--out", "r", "--eval-episodes", "-1"], "--eval-episodes"),
    (["train", "d.hdf5", "--out", "r", "--threads", "0"], "--threads"),
    (["eval", "run", "--episodes", "0"], "--episodes"),
    (["eval", "run", "--workers", "-1"], "--workers"),
    (["collect", "-o", "x.hdf5", "-n", "0"], "--episodes"),
    (["quickstart", "--num-demos", "0"], "--num-demos"),
    (["quickstart", "--eval-episodes", "0"], "--eval-episodes"),
    (["data", "replay", "x.hdf5", "--demo", "0", "--video", "v.mp4", "--fps", "0"], "--fps"),
], ids=" ".join)
def test_zero_or_negative_budgets_are_refused(argv, option, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_eval_names_a_demonstration_file(tmp_path, capsys):
    demo = tmp_path / "demos.hdf5"
    with h5py.File(demo, "w") as f:
        f.create_group("data")
    assert run_cli(["eval", str(demo), "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "demonstration file" in err and "checkpoint" in err and len(err.splitlines()) == 1
    other = tmp_path / "notes.txt"
    other.write_text("not a checkpoint")
    assert run_cli(["eval", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a policy checkpoint" in err and len(err.splitlines()) == 1


def test_registry_scans_heads_and_tells_helpers_apart():
    from takeover.policies.registry import HEADS_PACKAGE, import_head_modules

    modules = import_head_modules()
    heads = sorted(h for names in modules.values() for h in names)
    assert heads == ["autoregressive", "cvae", "diffusion", "gaussian", "gmm", "lstm"]
    assert modules[f"{HEADS_PACKAGE}.distributions"] == [] and modules[f"{HEADS_PACKAGE}.unet1d"] == []


def test_a_broken_head_module_is_an_error_not_a_missing_head(tmp_path, monkeypatch):
    from takeover.policies import registry

    package = tmp_path / "fake_heads"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("VALUE = 1\n")
    (package / "renamed_head.py").write_text(textwrap.dedent("""
        from takeover.policies.heads.no_such_module import Thing  # a stale import after a rename
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "HEADS", {})
    with pytest.raises(HeadImportError, match="fake_heads.renamed_head failed to import"):
        registry.import_head_modules("fake_heads")
    (package / "renamed_head.py").unlink()
    assert registry.import_head_modules("fake_heads") == {"fake_heads.helper": []}  # a helper: no head
    for name in [m for m in sys.modules if m == "fake_heads" or m.startswith("fake_heads.")]:
        monkeypatch.delitem(sys.modules, name)


def test_cli_start_does_not_import_torch():
    code = "import sys, takeover.cli.commands; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
