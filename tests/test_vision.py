"""Policies from pixels: keypoint encoders, crops, the frame cache, acting from rendered cameras, bad input."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from takeover.cli.app import run_cli
from takeover.datasets import DemoDataset
from takeover.datasets.frame_cache import cache_path
from takeover.policies import PolicyError, PolicyShapes, make_config, make_policy
from takeover.policies.checkpoint import load_checkpoint
from takeover.config import default_of
from takeover.policies.train_config import TrainConfig
from takeover.policies.vision import IMAGE_TRAIN_DEFAULTS, CameraEncoder, EncoderConfig, ResNet18Trunk, SpatialSoftmax, crop_images
from takeover.sim import make_env

CAMERAS = ["agentview_image", "robot0_eye_in_hand_image"]
PROPRIO = ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"]
SIZE = 48


def test_spatial_softmax_finds_one_bright_spot():
    head = SpatialSoftmax(1, 9, 11, num_keypoints=None)
    maps = torch.zeros(1, 1, 9, 11)
    maps[0, 0, 2, 8] = 50.0  # row 2 of 9, column 8 of 11
    x, y = head(maps)[0].tolist()
    assert x == pytest.approx(-1 + 2 * 8 / 10, abs=1e-3)
    assert y == pytest.approx(-1 + 2 * 2 / 8, abs=1e-3)


def test_random_and_centre_crop_give_the_same_feature_shape():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (5, 2, 40, 40, 3), dtype=torch.uint8)
    encoder = CameraEncoder((40, 40, 3), "small", EncoderConfig(crop=0.9, feature_dim=24))
    assert encoder.crop == (36, 36)
    encoder.train()
    a, b = encoder(images), encoder(images)
    encoder.eval()
    c, d = encoder(images), encoder(images)
    assert a.shape == c.shape == (5, 2, 24)
    assert not torch.allclose(a, b), "training crops are not random"
    assert torch.equal(c, d), "the evaluation crop is not fixed"
    flat = images.reshape(-1, 40, 40, 3)
    assert torch.equal(crop_images(flat, (36, 36), random=False), flat[:, 2:38, 2:38])
    window = crop_images(flat, (36, 36), random=True)
    assert window.shape == (10, 36, 36, 3)


def test_pretrained_resnet_weights_load_by_torchvision_names(tmp_path):
    source = ResNet18Trunk().state_dict()
    state = {k: torch.randn_like(v) for k, v in source.items()}
    state["bn1.running_mean"] = torch.zeros(64)  # BatchNorm statistics and the classifier are dropped
    state["fc.weight"] = torch.zeros(1000, 512)
    torch.save(state, tmp_path / "resnet18.pth")
    encoder = CameraEncoder((84, 84, 3), "resnet18", EncoderConfig(trunk="resnet18"))
    assert encoder.load_pretrained(tmp_path / "resnet18.pth") == len(source)
    assert torch.equal(encoder.trunk.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(PolicyError, match="no ResNet-18 weights"):
        encoder.load_pretrained(tmp_path / "other.pth")


def test_checkpoints_from_before_the_keypoint_encoder_still_load():
    """Shapes without a stored encoder (older checkpoints) rebuild the pooled encoder under its old names."""
    old = {"obs_keys": ["state"], "obs_shapes": [[3]], "action_dim": 2, "image_keys": ["agentview_image"]}
    shapes = PolicyShapes.from_dict(old)
    assert shapes.image_encoder is None
    stats = {f"{k}_{s}": np.zeros(3 if k == "obs" else 2, np.float32) + (s == "std")
             for k in ("obs", "action") for s in ("mean", "std", "min", "max")}
    policy = make_policy(make_config("gaussian"), shapes, stats)
    assert "encoder.images.agentview_image.net.0.weight" in policy.state_dict()
    policy.eval()
    action = policy.act({"state": np.zeros(3), "agentview_image": np.zeros((20, 20, 3), np.uint8)})
    assert action.shape == (2,) and np.all(np.isfinite(action))


@pytest.fixture(scope="module")
def pixels(tmp_path_factory):
    """Two Lift demos with both cameras at 48x48, and an image policy (both cameras + proprioception,
    two observations of history) trained a few steps through the command line."""
    root = tmp_path_factory.mktemp("pixels")
    data = root / "demos.hdf5"
    assert run_cli(["collect", "--task", "Lift", "-n", "2", "-o", str(data), "--workers", "1",
                    "--obs-camera", "agentview", "--obs-camera", "robot0_eye_in_hand", "--camera-size", str(SIZE)]) == 0
    run = root / "run"
    args = ["train", str(data), "-o", str(run), "--head", "gaussian", "--steps", "6", "--eval-episodes", "0",
            "--threads", "1", "--set", "obs_horizon=2"]
    for key in PROPRIO + CAMERAS:
        args += ["--obs-key", key]
    assert run_cli(args) == 0
    return {"root": root, "data": data, "run": run, "ckpt": run / "checkpoints" / "best.pt"}


def test_camera_keys_get_the_cpu_image_defaults(pixels):
    config = json.loads((pixels["run"] / "config.json").read_text())["train"]
    for name in ("batch_size", "eval_every"):  # unset options: the CPU image defaults
        assert config[name] == IMAGE_TRAIN_DEFAULTS[name] != default_of(TrainConfig, name)
    assert config["steps"] == 6 and config["eval_episodes"] == 0  # given options stay the user's


def test_image_policy_acts_from_rendered_cameras(pixels):
    policy, spec, _ = load_checkpoint(pixels["ckpt"])
    assert policy.shapes.image_keys == tuple(CAMERAS)
    assert policy.shapes.image_shapes == ((SIZE, SIZE, 3),) * 2
    assert spec.camera_names == ("agentview", "robot0_eye_in_hand") and spec.camera_height == SIZE
    env = make_env(spec)
    try:
        obs = env.reset(seed=5)
        policy.reset()
        for _ in range(4):  # the history fills with rendered frames
            action = policy.act(obs)
            assert action.shape == (7,) and np.all(np.isfinite(action))
            obs, *_ = env.step(action)
    finally:
        env.close()
    outputs = []
    for image in (obs["agentview_image"], 255 - obs["agentview_image"]):
        policy.reset()
        outputs.append(policy.act(dict(obs, agentview_image=image)))
    assert not np.allclose(outputs[0], outputs[1]), "the policy's action does not depend on the camera image"

    policy.reset()
    small = dict(obs, agentview_image=obs["agentview_image"][:32, :32])
    with pytest.raises(PolicyError, match=r"agentview_image is 32x32x3; this policy was trained on 48x48x3"):
        policy.act(small)


def test_frame_cache_returns_the_stored_frames(pixels, tmp_path):
    cache = tmp_path / "frames"
    ds = DemoDataset(pixels["data"], obs_keys=PROPRIO + CAMERAS, frame_cache=cache)
    with h5py.File(pixels["data"], "r") as f:
        for key in CAMERAS:
            stored = np.concatenate([f["data"][d]["obs"][key][()] for d in ds.demos])
            assert stored.dtype == np.uint8 and stored.shape[1:] == (SIZE, SIZE, 3)
            assert np.array_equal(ds.images[key].numpy(), stored)
    entries = sorted(cache.glob("*.u8"))
    assert len(entries) == 2
    built = [p.stat().st_mtime_ns for p in entries]
    again = DemoDataset(pixels["data"], obs_keys=CAMERAS[:1] + PROPRIO, frame_cache=cache)  # reuses, no rebuild
    assert [p.stat().st_mtime_ns for p in entries] == built
    assert np.array_equal(again.images[CAMERAS[0]].numpy(), ds.images[CAMERAS[0]].numpy())
    assert cache_path(pixels["data"], CAMERAS[0], ds.demos, (SIZE, SIZE, 3), cache) in entries
    batch = ds.get_batch(torch.tensor([0, 3]))
    assert batch["images"][CAMERAS[1]].shape == (2, 1, SIZE, SIZE, 3)


def _cli(args, **env):
    proc = subprocess.run([sys.executable, "-m", "takeover.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return proc.returncode, lines


def test_image_key_the_file_lacks(pixels, tmp_path):
    out = tmp_path / "run"
    code, lines = _cli(["train", str(pixels["data"]), "-o", str(out), "--obs-key", "robot0_eef_pos",
                        "--obs-key", "frontview_image", "--eval-episodes", "0"])
    assert code == 2 and len(lines) == 1, lines
    assert "frontview_image" in lines[0] and "agentview_image" in lines[0]  # names the key and what the file has
    assert not out.exists()


def test_images_of_another_size_than_the_checkpoint(pixels, tmp_path):
    other = tmp_path / "small.hdf5"
    assert run_cli(["collect", "--task", "Lift", "-n", "1", "-o", str(other), "--workers", "0",
                    "--obs-camera", "agentview", "--obs-camera", "robot0_eye_in_hand", "--camera-size", "32"]) == 0
    args = ["train", str(other), "-o", str(tmp_path / "run"), "--init-from", str(pixels["ckpt"]), "--steps", "2",
            "--eval-episodes", "0", "--set", "obs_horizon=2"]
    for key in PROPRIO + CAMERAS:
        args += ["--obs-key", key]
    code, lines = _cli(args)
    assert code == 2 and len(lines) == 1, lines
    assert "[48, 48, 3]" in lines[0] and "[32, 32, 3]" in lines[0]
    assert not (tmp_path / "run").exists()


def test_image_policy_evaluated_without_rendering(pixels, tmp_path):
    out = tmp_path / "eval"
    code, lines = _cli(["eval", str(pixels["ckpt"]), "--episodes", "1", "--out", str(out)],
                       MUJOCO_GL="egl", __EGL_VENDOR_LIBRARY_FILENAMES=str(tmp_path / "no-egl-vendor.json"))
    assert code == 2 and len(lines) == 1, lines
    assert "cannot render" in lines[0] and "agentview" in lines[0]
    assert not out.exists()
