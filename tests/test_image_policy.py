"""Camera images travel the whole path: recorded demos -> training batches -> checkpoint -> act()."""
import numpy as np
import pytest

from takeover.policies import PolicyError
from takeover.policies.checkpoint import load_checkpoint
from takeover.policies.evaluate import evaluate
from takeover.policies.train import TrainConfig, train
from takeover.cli.app import run_cli
from takeover.sim import make_env

LOW_DIM = ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object"]


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    data = root / "demos.hdf5"
    assert run_cli(["collect", "--task", "Lift", "-n", "2", "-o", str(data), "--workers", "1",
                    "--obs-camera", "agentview", "--camera-size", "32"]) == 0
    out = root / "run"
    train(TrainConfig(data=str(data), out=str(out), head="gaussian", steps=30, eval_episodes=0, threads=1,
                      obs_keys=LOW_DIM + ["agentview_image"]))
    return out / "checkpoints" / "best.pt"


def test_image_policy_acts_on_camera_images(image_run):
    policy, spec, _ = load_checkpoint(image_run)
    assert policy.shapes.image_keys == ("agentview_image",)
    assert spec.camera_names == ("agentview",)
    env = make_env(spec)
    try:
        obs = env.reset(seed=3)
    finally:
        env.close()
    assert obs["agentview_image"].shape == (32, 32, 3)
    policy.eval()
    policy.reset()
    a = policy.act(obs)
    changed = dict(obs, agentview_image=255 - obs["agentview_image"])
    policy.reset()
    b = policy.act(changed)
    assert a.shape == (7,) and np.all(np.isfinite(a))
    assert not np.allclose(a, b), "act() ignored the camera image"

    missing = {k: v for k, v in obs.items() if k != "agentview_image"}
    policy.reset()
    with pytest.raises(PolicyError, match="agentview_image"):
        policy.act(missing)


def test_image_policy_rolls_out_in_rebuilt_env(image_run, tmp_path):
    """evaluate() rebuilds the camera env from the checkpoint in a worker; its rollout is, frame for frame,
    the one this process gets by driving a make_env(spec) with the loaded policy."""
    import imageio.v2 as imageio

    from takeover.policies.evaluate import PolicyAgent
    from takeover.sim.rollout import run_episode

    report = evaluate(image_run, episodes=1, max_steps=10, video_dir=tmp_path / "eval", videos=1, workers=2)
    assert report.episodes == 1 and report.per_episode[0]["length"] == 10 and len(report.videos) == 1
    policy, spec, _ = load_checkpoint(image_run)
    policy.eval()
    env = make_env(spec)
    try:
        here = run_episode(env, PolicyAgent(policy), report.seeds[0], max_steps=10,
                           video_path=str(tmp_path / "here.mp4"))
    finally:
        env.close()
    videos = []
    for path in (report.videos[0], here.video):
        reader = imageio.get_reader(path)
        videos.append(np.array([f for f in reader], dtype=np.float64))
        reader.close()
    assert videos[0].shape == videos[1].shape and len(videos[0]) >= 10
    assert np.abs(videos[0] - videos[1]).max() <= 1.0  # the same rollout


def test_a_policy_of_camera_images_only_trains_evaluates_and_selects(image_run, tmp_path):
    data = image_run.parent.parent.parent / "demos.hdf5"
    out = tmp_path / "cam_only"
    train(TrainConfig(data=str(data), out=str(out), head="gaussian", steps=20, eval_episodes=1, eval_workers=0, threads=1, obs_keys=["agentview_image"]))  # selection rollouts included
    policy, _, _ = load_checkpoint(out / "checkpoints" / "best.pt")
    assert policy.shapes.obs_keys == () and policy.shapes.image_keys == ("agentview_image",)
    report = evaluate(out / "checkpoints" / "best.pt", episodes=1, max_steps=5, workers=0)
    assert report.episodes == 1 and report.per_episode[0]["length"] == 5


def test_eval_into_a_file_and_dagger_on_data_without_the_policys_camera_are_one_line(image_run, tmp_path, capsys):
    from takeover.sim import EnvSpec
    from takeover.datasets.scripted_collection import collect_scripted

    existing = tmp_path / "existing.hdf5"
    existing.write_text("not a folder")
    low_dim = tmp_path / "low_dim.hdf5"
    collect_scripted(EnvSpec(task="Lift", horizon=3), str(low_dim), 1, workers=1, keep_failed=True)
    before = sorted(p.name for p in tmp_path.iterdir())
    cases = [
        (["eval", str(image_run), "--out", str(existing), "--episodes", "1"], "is a file; give a folder"),
        (["eval", str(image_run), "--out", str(existing / "sub"), "--episodes", "1"], "cannot create the folder"),
        (["dagger", str(low_dim), "--policy", str(image_run), "--out", str(tmp_path / "run")],
         "lacks observation key(s) ['agentview_image']"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert run_cli(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before and existing.read_text() == "not a folder"
