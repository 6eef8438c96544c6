"""LeRobot's own loader on a takeover export. Runs inside LeRobot's venv (scripts/lerobot_env.sh), not
ours: `python lerobot_client.py EXPORT_DIR EXPECTED.npz TRAIN_STEPS` prints one JSON report.

EXPECTED.npz (written by tests/test_lerobot.py from the source HDF5 file, in export order): fps,
episode lengths, every frame's action / observation.state / observation.environment_state / reward /
done / intervention and states, and every camera frame (uint8 H x W x 3).
"""
import json
import math
import sys

import numpy as np
import torch

from lerobot.datasets.lerobot_dataset import LeRobotDataset

CAMERA = "observation.images.agentview"


def stack(ds, key):
    return torch.stack([torch.as_tensor(v) for v in ds.hf_dataset[key]]).numpy()


def check_frames(ds, exp):
    """Largest error in levels of every decoded camera frame against the recorded one."""
    errors = []
    for i in range(len(ds)):
        item = ds[i]
        img = item[CAMERA]
        assert tuple(img.shape) == (3,) + exp["images"].shape[1:3], img.shape
        got = (img.permute(1, 2, 0).numpy() * 255.0).round()
        errors.append(np.abs(got - exp["images"][i].astype(np.float64)).max())
        assert item["task"] == str(exp["task"]), item["task"]
    return errors


def main(root, expected_path, train_steps):
    exp = np.load(expected_path)
    fps = int(exp["fps"])
    lengths = exp["lengths"]
    ds = LeRobotDataset("takeover/export", root=root, video_backend="pyav")
    report = {"video_backend": ds.video_backend, "num_episodes": ds.num_episodes, "num_frames": ds.num_frames,
              "fps": ds.fps}
    assert ds.num_episodes == len(lengths), (ds.num_episodes, len(lengths))
    assert ds.num_frames == int(lengths.sum()) == len(ds), (ds.num_frames, lengths.sum())
    assert ds.fps == fps

    # low-dim values, exactly
    for key, name in (("action", "action"), ("observation.state", "state"),
                      ("observation.environment_state", "env_state"), ("takeover.states", "states")):
        got = stack(ds, key)
        # LeRobot's loader hands float64 columns (our MuJoCo states) out as float32 tensors
        want = exp[name].astype(got.dtype)
        np.testing.assert_array_equal(got.reshape(want.shape), want, err_msg=key)
    np.testing.assert_array_equal(stack(ds, "next.reward").reshape(-1), exp["reward"])
    np.testing.assert_array_equal(stack(ds, "next.done").reshape(-1), exp["done"].astype(bool))
    np.testing.assert_array_equal(stack(ds, "intervention").reshape(-1), exp["intervention"].astype(bool))

    # Hugging Face `datasets` on its own (no LeRobot features given) reads the frames and the episodes
    import glob

    import datasets

    plain = datasets.Dataset.from_parquet(sorted(glob.glob(f"{root}/data/*/*.parquet")))
    assert len(plain) == ds.num_frames
    np.testing.assert_array_equal(np.array(plain["action"], np.float32), exp["action"])
    episodes = datasets.Dataset.from_parquet(sorted(glob.glob(f"{root}/meta/episodes/*/*.parquet")))
    np.testing.assert_array_equal(np.array(episodes["length"]), lengths)
    report["plain_datasets_rows"] = len(plain)

    # episode boundaries and frame times
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    eps = ds.meta.episodes
    np.testing.assert_array_equal(np.array(eps["dataset_from_index"]), starts)
    np.testing.assert_array_equal(np.array(eps["dataset_to_index"]), starts + lengths)
    np.testing.assert_array_equal(np.array(eps["length"]), lengths)
    episode_index = stack(ds, "episode_index").reshape(-1)
    frame_index = stack(ds, "frame_index").reshape(-1)
    np.testing.assert_array_equal(episode_index, np.repeat(np.arange(len(lengths)), lengths))
    np.testing.assert_array_equal(frame_index, np.concatenate([np.arange(n) for n in lengths]))
    np.testing.assert_allclose(stack(ds, "timestamp").reshape(-1), frame_index / fps, atol=1e-6)

    # every camera frame through LeRobot's decoders (from_timestamp + timestamp, tolerance 1e-4 s): PyAV
    # (bundles its FFmpeg) always; torchcodec, LeRobot's default, where the host has FFmpeg's libraries
    report["decoders"] = {}
    for backend in ("pyav", "torchcodec"):
        try:
            errors = check_frames(LeRobotDataset("takeover/export", root=root, video_backend=backend), exp)
        except (OSError, RuntimeError) as exc:
            if backend == "pyav":
                raise
            report["decoders"][backend] = f"unavailable: {str(exc).strip().splitlines()[0][:200]}"
            continue
        report["decoders"][backend] = {"max_error": float(max(errors)), "mean_of_max_error": float(np.mean(errors))}
    report["image_max_error"] = max(d["max_error"] for d in report["decoders"].values() if isinstance(d, dict))
    assert report["image_max_error"] <= 8, report

    # windows across episode boundaries: the frame before an episode's start is padding, not the last
    # episode's frame
    windowed = LeRobotDataset("takeover/export", root=root, video_backend="pyav",
                              delta_timestamps={CAMERA: [-1 / fps, 0.0], "action": [0.0, 1 / fps]})
    for ep, start in enumerate(starts):
        item = windowed[int(start)]
        assert item[f"{CAMERA}_is_pad"].tolist() == [True, False], item[f"{CAMERA}_is_pad"]
        first = (item[CAMERA][1].permute(1, 2, 0).numpy() * 255).round()
        assert np.abs(first - exp["images"][start]).max() <= 8
        last = int(start + lengths[ep] - 1)
        item = windowed[last]
        assert item["action_is_pad"].tolist() == [False, True]
        np.testing.assert_array_equal(item["action"][0].numpy(), exp["action"][last])
        np.testing.assert_array_equal(item["action"][1].numpy(), exp["action"][last])  # padding repeats the edge
    report["windows_checked"] = len(starts)

    # LeRobot's statistics of the action feature, recomputed by LeRobot from the frames, match ours
    from lerobot.datasets.compute_stats import aggregate_stats, compute_episode_stats

    per_episode = []
    for ep, start in enumerate(starts):
        chunk = exp["action"][start:start + lengths[ep]]
        per_episode.append(compute_episode_stats({"action": chunk}, {"action": {"dtype": "float32", "shape": (chunk.shape[1],)}}))
    theirs = aggregate_stats(per_episode)["action"]
    ours = ds.meta.stats["action"]
    for stat in ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"):
        np.testing.assert_allclose(np.asarray(ours[stat], np.float64), np.asarray(theirs[stat], np.float64),
                                   rtol=1e-5, atol=1e-6, err_msg=stat)
    report["stats_match"] = True

    if train_steps:
        report.update(train(root, ds, train_steps))
    print(json.dumps(report))


def train(root, ds, steps):
    """LeRobot's diffusion policy, small, a few optimiser steps on the export (LeRobot's own training recipe,
    examples/training/train_policy.py)."""
    from lerobot.configs.types import FeatureType
    from lerobot.datasets.utils import dataset_to_policy_features
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.factory import make_pre_post_processors

    torch.manual_seed(0)
    features = dataset_to_policy_features(ds.meta.features)
    outputs = {k: f for k, f in features.items() if f.type is FeatureType.ACTION}
    inputs = {k: f for k, f in features.items() if k not in outputs}
    cfg = DiffusionConfig(input_features=inputs, output_features=outputs, device="cpu", n_obs_steps=2, horizon=8,
                          n_action_steps=4, down_dims=(32, 64), crop_shape=None, num_train_timesteps=20,
                          diffusion_step_embed_dim=32, spatial_softmax_num_keypoints=8)
    policy = DiffusionPolicy(cfg)
    policy.train()
    pre, post = make_pre_post_processors(cfg, dataset_stats=ds.meta.stats)
    fps = ds.fps
    delta = {k: [i / fps for i in cfg.observation_delta_indices] for k in inputs}
    delta["action"] = [i / fps for i in cfg.action_delta_indices]
    data = LeRobotDataset("takeover/export", root=root, delta_timestamps=delta, video_backend="pyav")
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, drop_last=True, num_workers=0)
    optimiser = torch.optim.Adam(policy.parameters(), lr=1e-3)
    losses = []
    while len(losses) < steps:
        for batch in loader:
            loss, _ = policy.forward(pre(batch))
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
            losses.append(float(loss.item()))
            if len(losses) >= steps:
                break
    assert all(math.isfinite(x) for x in losses), losses
    policy.eval()
    policy.reset()
    frame = data[0]
    obs = {k: frame[k][-1] for k in inputs}  # one frame; the preprocessor adds the batch dimension
    action = post(policy.select_action(pre(obs)))
    assert tuple(action.shape) == (1, outputs["action"].shape[0]), action.shape
    return {"train_steps": len(losses), "loss_first": losses[0], "loss_last_mean": float(np.mean(losses[-5:])),
            "loss_first_mean": float(np.mean(losses[:5])), "action_shape": list(action.shape)}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
