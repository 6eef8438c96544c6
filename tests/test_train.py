"""Training, checkpoints and evaluation on real scripted Lift data."""
import json
import os
import signal
import subprocess
import re
import sys
import time

import numpy as np
import pytest
import torch

from takeover.cli.app import run_cli
from takeover.datasets import DemoReader
from takeover.policies import PolicyError
from takeover.policies.checkpoint import load_checkpoint
from takeover.policies.evaluate import evaluate
from takeover.policies.train import TrainConfig, train


def cli(*args):
    return run_cli([str(a) for a in args])


@pytest.mark.slow
def test_short_training_run_lifts_the_cube(lift_demos, tmp_path):
    out = tmp_path / "run"
    result = train(TrainConfig(data=str(lift_demos), out=str(out), head="gaussian", steps=1500, eval_every=750,
                               eval_episodes=6, eval_workers=2, threads=1))
    assert result["step"] == 1500
    assert (out / "checkpoints" / "best.pt").exists()
    assert (out / "plots" / "losses.png").exists() and (out / "plots" / "success.png").exists()
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [e["step"] for e in evals] == [750, 1500]
    best = max(evals, key=lambda e: (e["success_rate"], e["step"]))
    assert result["best"]["step"] == best["step"]  # chosen by rollout success
    report = evaluate(out, episodes=10, workers=2)
    assert report.episodes == 10 and report.seeds[0] == 1_000_000
    assert report.success_rate >= 0.8, report.per_episode


@pytest.mark.slow
def test_short_diffusion_run_lifts_the_cube(lift_demos, tmp_path):
    """Diffusion head, 12 demos, ~1.5 min of CPU training, DDIM-10 (the default sampler)."""
    out = tmp_path / "run"
    train(TrainConfig(data=str(lift_demos), out=str(out), head="diffusion", steps=1500, batch_size=128, lr=1e-3,
                      eval_episodes=0, threads=1))
    report = evaluate(out, episodes=10, workers=2)
    assert report.success_rate >= 0.7, report.per_episode


def test_checkpoint_refuses_other_task_and_bad_files(lift_demos, tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(data=str(lift_demos), out=str(out), head="gaussian", steps=20, eval_episodes=0, threads=1))
    ckpt = out / "checkpoints" / "best.pt"
    policy, spec, info = load_checkpoint(ckpt)
    assert spec.task == "Lift" and info["step"] == 20
    assert spec.max_steps == 300  # short scripted demos: the task's horizon (policies.evaluate.horizon_for)
    obs = {k: np.zeros(s) for k, s in zip(policy.shapes.obs_keys, policy.shapes.obs_shapes)}
    assert policy.act(obs).shape == (7,)
    # robot0_eef_quat and object's cube_quat enter as rotation matrices: q and -q act alike
    assert len(policy.shapes.quat_starts) == 2 and policy.obs_features.out_dim == policy.shapes.obs_dim + 10
    rng = np.random.default_rng(0)
    obs = {k: rng.normal(size=s) for k, s in zip(policy.shapes.obs_keys, policy.shapes.obs_shapes)}
    flipped = {k: v.copy() for k, v in obs.items()}
    flipped["robot0_eef_quat"] *= -1
    flipped["object"][3:7] *= -1  # cube_quat
    for o in (obs, flipped):
        policy.reset()
        torch.manual_seed(0)
        o["action"] = policy.act(o)
    np.testing.assert_allclose(obs["action"], flipped["action"], atol=1e-6)

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(ckpt.read_bytes()[:2000])
    with pytest.raises(PolicyError, match="corrupt"):
        load_checkpoint(corrupt)

    class Payload:  # an arbitrary object: weights_only must refuse it
        def __reduce__(self):
            return (os.getcwd, ())

    evil = tmp_path / "evil.pt"
    torch.save({"format": "takeover-policy", "x": Payload()}, evil)
    with pytest.raises(PolicyError, match="refused"):
        load_checkpoint(evil)

    # a checkpoint for another task used as the start of training on Lift data: one line, exit 2
    from takeover.policies.checkpoint import check_compatible
    from takeover.sim import EnvSpec

    with pytest.raises(PolicyError, match="task Lift, not Stack"):
        check_compatible(policy, spec, EnvSpec(task="Stack"), policy.shapes.obs_keys, 7, "x")


def test_eval_command_writes_report_and_video(lift_demos, tmp_path, capsys):
    out = tmp_path / "run"
    train(TrainConfig(data=str(lift_demos), out=str(out), head="gaussian", steps=20, eval_episodes=0, threads=1))
    assert cli("eval", out, "--episodes", 2, "--workers", 1, "--videos", 1, "--horizon", 15) == 0
    report = json.loads((out / "eval.json").read_text())
    assert {"success_rate", "ci95", "episodes", "per_episode"} <= set(report)
    assert report["episodes"] == 2 and [e["seed"] for e in report["per_episode"]] == [1_000_000, 1_000_001]
    assert report["horizon"] == 15  # the limit it ran under is recorded
    videos = list((out / "videos").glob("*.mp4"))
    assert len(videos) == 1
    import cv2

    cap = cv2.VideoCapture(str(videos[0]))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 16  # first frame + 15 steps, decodable H.264
    assert "success rate" in capsys.readouterr().out

    # inference-time overrides are applied, recorded, and a bad one is refused by name
    assert cli("eval", out, "--episodes", 1, "--workers", 1, "--horizon", 5, "--set", "exec_horizon=1",
               "--out", tmp_path / "override") == 0
    assert json.loads((tmp_path / "override" / "eval.json").read_text())["overrides"] == {"exec_horizon": 1}

    # --sample draws actions from the head (the mode is deterministic, samples are not) and says so
    from takeover.policies.evaluate import CheckpointAgent

    ckpt = str(out / "checkpoints" / "best.pt")
    with DemoReader(lift_demos) as reader:
        obs = {k: v[0] for k, v in reader.episode(reader.demos[0]).obs.items()}
    mode, drawn = CheckpointAgent(ckpt)().policy, CheckpointAgent(ckpt, sample=True)().policy
    assert np.array_equal(mode.act(obs), mode.act(obs)) and not np.array_equal(drawn.act(obs), drawn.act(obs))
    assert cli("eval", out, "--episodes", 1, "--workers", 1, "--horizon", 5, "--sample", "--out", tmp_path / "s") == 0
    assert json.loads((tmp_path / "s" / "eval.json").read_text())["sampled"] is True
    capsys.readouterr()
    assert cli("eval", out, "--episodes", 1, "--set", "no_such_option=3") == 2
    err = capsys.readouterr().err.strip()
    assert "no_such_option" in err and len(err.splitlines()) == 1


def test_nan_in_training_data_names_demo_and_step(lift_demos, tmp_path, capsys):
    import shutil

    import h5py

    bad = tmp_path / "nan.hdf5"
    shutil.copyfile(lift_demos, bad)
    with h5py.File(bad, "r+") as f:
        f["data/demo_3/actions"][5, 2] = np.nan
    assert cli("train", bad, "--out", tmp_path / "r", "--steps", 5, "--eval-episodes", 0) == 2
    err = capsys.readouterr().err
    assert "demo_3" in err and "step 5" in err and "Traceback" not in err


def test_bad_training_input_is_one_line(lift_demos, tmp_path, capsys):
    code = cli("train", lift_demos, "--out", tmp_path / "a", "--obs-key", "robot0_eef_poz", "--steps", 5,
               "--eval-episodes", 0)
    err = capsys.readouterr().err
    assert code == 2 and "robot0_eef_poz" in err and "robot0_eef_pos" in err and "Traceback" not in err
    code = cli("train", lift_demos, "--out", tmp_path / "b", "--head", "transformer", "--steps", 5)
    err = capsys.readouterr().err
    assert code == 2 and "unknown head 'transformer'" in err
    code = cli("eval", tmp_path / "nothing_here")
    assert code == 2 and "no such checkpoint" in capsys.readouterr().err


def test_resume_after_kill(lift_demos, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "takeover.cli.main", "train", str(lift_demos), "--out", str(out), "--steps", "4000",
            "--eval-episodes", "0", "--threads", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists(), "no training state was written before the kill"
    saved_step = torch.load(state, weights_only=True)["step"]
    assert 0 < saved_step < 4000
    assert cli("train", lift_demos, "--out", out, "--steps", 4000, "--eval-episodes", 0, "--threads", 1) == 2  # exists
    assert cli("train", lift_demos, "--out", out, "--steps", 4000, "--eval-episodes", 0, "--threads", 1, "--resume") == 0
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["kind"] == "done" and rows[-1]["step"] == 4000
    train_steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert train_steps[-1] == 4000 and min(train_steps) < saved_step  # logged before the kill, continued after


@pytest.mark.slow
def test_ddp_two_processes_stay_in_sync(lift_demos, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    results = {}
    for n in (1, 2):
        out = tmp_path / f"ddp{n}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n), "--master-port",
               str(29500 + n), "-m", "takeover.cli.main", "train", str(lift_demos), "--out", str(out),
               "--steps", "60", "--eval-episodes", "0", "--threads", "1", "--batch-size", "64"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
        results[n] = rows[-1]
        policy, _, _ = load_checkpoint(out / "checkpoints" / "best.pt")
        results[n]["shapes"] = {k: tuple(v.shape) for k, v in policy.state_dict().items()}
    assert results[1]["step"] == results[2]["step"] == 60
    assert results[1]["shapes"] == results[2]["shapes"]
    sums = results[2]["rank_param_checksums"]
    assert len(sums) == 2 and sums[0] == pytest.approx(sums[1], rel=0, abs=1e-9)  # ranks hold identical weights
    assert len(results[1]["rank_param_checksums"]) == 1


def test_init_from_warm_starts_and_refuses_other_heads(lift_demos, tmp_path):
    from takeover.policies.checkpoint import read_checkpoint
    from takeover.policies.train import Trainer

    first = tmp_path / "first"
    train(TrainConfig(data=str(lift_demos), out=str(first), head="gaussian", steps=30, eval_episodes=0, threads=1))
    ckpt = first / "checkpoints" / "best.pt"
    trainer = Trainer(TrainConfig(data=str(lift_demos), out=str(tmp_path / "second"), head="gaussian", steps=10,
                                  eval_episodes=0, threads=1, init_from=str(ckpt)))
    saved = read_checkpoint(ckpt)["state_dict"]
    for name, value in trainer.policy.state_dict().items():
        assert torch.equal(value, saved[name]), name
    assert trainer.step == 0  # fresh schedule
    # on other data (DAgger's aggregate, fine-tuning) the weights come from the checkpoint and the
    # normalisation from the new data: the checkpoint's statistics would put new states far out
    from takeover.sim import EnvSpec
    from takeover.datasets.scripted_collection import collect_scripted

    other = tmp_path / "other.hdf5"
    collect_scripted(EnvSpec(task="Lift"), str(other), 2, seed=500, workers=1)
    fresh = Trainer(TrainConfig(data=str(other), out=str(tmp_path / "fresh"), head="gaussian", steps=10,
                                eval_episodes=0, threads=1))
    warm = Trainer(TrainConfig(data=str(other), out=str(tmp_path / "warm"), head="gaussian", steps=10,
                               eval_episodes=0, threads=1, init_from=str(ckpt)))
    expected = fresh.policy.state_dict()
    for name, value in warm.policy.state_dict().items():
        source = expected if name.startswith("normalizer.") else saved
        assert torch.equal(value, source[name]), name
    assert not torch.equal(expected["normalizer.obs_mean"], saved["normalizer.obs_mean"])
    # a binned head's bins are placed on the normalised actions, so they follow the new data as well
    binned = tmp_path / "binned"
    train(TrainConfig(data=str(lift_demos), out=str(binned), head="autoregressive", steps=5, eval_episodes=0, threads=1))
    small = dict(head="autoregressive", steps=5, eval_episodes=0, threads=1)
    fresh = Trainer(TrainConfig(data=str(other), out=str(tmp_path / "binned_fresh"), **small)).policy.state_dict()
    warm = Trainer(TrainConfig(data=str(other), out=str(tmp_path / "binned_warm"), init_from=str(binned / "checkpoints" / "best.pt"),
                               **small)).policy.state_dict()
    assert torch.equal(warm["bin_centers"], fresh["bin_centers"]) and torch.equal(warm["normalizer.action_std"],
                                                                                  fresh["normalizer.action_std"])
    with pytest.raises(PolicyError, match="gaussian checkpoint"):
        Trainer(TrainConfig(data=str(lift_demos), out=str(tmp_path / "third"), head="gmm", steps=10,
                            eval_episodes=0, threads=1, init_from=str(ckpt)))
    with pytest.raises(PolicyError, match="--quaternions matrix"):
        Trainer(TrainConfig(data=str(lift_demos), out=str(tmp_path / "fourth"), head="gaussian", steps=10,
                            eval_episodes=0, threads=1, init_from=str(ckpt), quaternions="raw"))


def test_init_from_a_checkpoint_of_another_task_names_the_task_and_the_sizes(tmp_path):
    from takeover.policies.train import Trainer
    from takeover.sim import EnvSpec
    from takeover.datasets.scripted_collection import collect_scripted

    files = {}
    for task in ("Lift", "Stack"):
        files[task] = tmp_path / f"{task}.hdf5"
        collect_scripted(EnvSpec(task=task, horizon=3), str(files[task]), 1, workers=1, keep_failed=True)
    train(TrainConfig(data=str(files["Lift"]), out=str(tmp_path / "lift"), head="gaussian", steps=2, eval_episodes=0,
                      threads=1))
    with pytest.raises(PolicyError) as refused:
        Trainer(TrainConfig(data=str(files["Stack"]), out=str(tmp_path / "stack"), head="gaussian", steps=2,
                            eval_episodes=0, threads=1, init_from=str(tmp_path / "lift" / "checkpoints" / "best.pt")))
    message = str(refused.value)
    assert "is a checkpoint of Lift, this data is Stack" in message, message
    assert re.search(r"object: \d+ values there, \d+ here", message), message


def test_a_truncated_checkpoint_is_named_in_whole_words_with_what_to_do(tmp_path, capsys):
    from takeover.sim import EnvSpec
    from takeover.datasets.scripted_collection import collect_scripted

    data = tmp_path / "lift.hdf5"
    collect_scripted(EnvSpec(task="Lift", horizon=3), str(data), 1, workers=1, keep_failed=True)
    train(TrainConfig(data=str(data), out=str(tmp_path / "run"), head="gaussian", steps=2, eval_episodes=0, threads=1))
    whole = (tmp_path / "run" / "checkpoints" / "best.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole[: len(whole) // 2])
    capsys.readouterr()
    assert run_cli(["eval", str(cut), "--episodes", "1", "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert re.fullmatch(r"error: \S+cut\.pt: not a readable checkpoint, truncated or corrupted \([^()]+\); copy it "
                        r"again, or use another checkpoint of its run \(RUN/checkpoints/\)", err), err
    assert not (tmp_path / "eval.json").exists()
