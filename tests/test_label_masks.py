"""Label masks and loss weights reach every head through one path (dataset -> Policy.loss ->
compute_loss): a step that is no label is never a target, whatever its action, and a sample of weight
0 counts exactly as if it were not in the batch."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from synthetic import build

import takeover.policies.train as train_module
from takeover.datasets import DemoDataset, DemoWriter, EpisodeRecorder
from takeover.policies.train import TrainConfig, Trainer
from takeover.sim import EnvSpec

torch.set_num_threads(1)

HEADS = ("gaussian", "gmm", "cvae", "autoregressive", "lstm", "diffusion")
SMALL = {
    "gaussian": {"hidden_dims": (64, 64)},
    "gmm": {"hidden_dims": (64, 64), "num_modes": 2},
    "cvae": {"hidden_dims": (64, 64), "latent_dim": 4},
    "autoregressive": {"hidden_dims": (64, 64), "n_bins": 16, "action_horizon": 4, "exec_horizon": 1},
    "lstm": {"rnn_hidden_dim": 32, "rnn_layers": 1, "seq_len": 8},
    # unclipped: min-max statistics of the labels alone would otherwise bound every sample to their range
    "diffusion": {"down_dims": (32, 64), "step_embed_dim": 32, "obs_horizon": 1, "action_horizon": 4,
                  "exec_horizon": 1, "clip_sample": False, "prediction_type": "sample"},
}
STEPS = {"lstm": 500, "diffusion": 400}  # others: 250
REAL, ABSURD = -0.5, 1.0  # every dimension of a 7-D (OSC_POSE) action
ROBOT_STEPS, HUMAN_STEPS = 6, 6  # each take-over episode: the robot drives, then a person


def takeover_episode(rng, robot_action: float) -> "Episode":  # noqa: F821
    """Robot steps first (interventions 0, observation flag +1, action `robot_action`), then the
    person's (interventions 1, flag -1, action REAL). The other two features are noise."""
    rec = EpisodeRecorder()
    T = ROBOT_STEPS + HUMAN_STEPS
    for t in range(T):
        human = t >= ROBOT_STEPS
        obs = {"state": np.array([-1.0 if human else 1.0, *rng.normal(size=2)], np.float32)}
        action = np.full(7, REAL if human else robot_action) + 0.05 * rng.normal(size=7)
        rec.add(obs, action.astype(np.float32), 0.0, obs, t == T - 1, np.zeros(3), interventions=int(human))
    return rec.finish(model_file="", source="dagger", success=True, seed=0)


@pytest.fixture(scope="module")
def takeover_file(tmp_path_factory):
    """40 take-over episodes whose robot steps carry an absurd action, and 10 plain demos (flag -1,
    action REAL, no interventions: every step a label)."""
    path = tmp_path_factory.mktemp("masks") / "takeover.hdf5"
    rng = np.random.default_rng(0)
    with DemoWriter(path, EnvSpec(task="Lift"), fold_every=50) as w:
        for _ in range(40):
            w.save(takeover_episode(rng, ABSURD))
        for _ in range(10):
            rec = EpisodeRecorder()
            for t in range(12):
                obs = {"state": np.array([-1.0, *rng.normal(size=2)], np.float32)}
                rec.add(obs, (REAL + 0.05 * rng.normal(size=7)).astype(np.float32), 0.0, obs, t == 11, np.zeros(3))
            w.save(rec.finish(model_file="", source="expert", success=True, seed=0))
    return path


def test_dataset_labels_only_a_persons_steps_in_take_over_demos(takeover_file):
    ds = DemoDataset(takeover_file, action_horizon=3, labels="interventions")
    assert ds.labels is not None and int(ds.labels.sum()) == 40 * HUMAN_STEPS + 10 * 12
    assert torch.allclose(ds.labelled_actions(), torch.full_like(ds.labelled_actions(), REAL), atol=0.3)
    batch = ds.get_batch([ROBOT_STEPS - 2, ROBOT_STEPS, 40 * 12 + 3])
    assert batch["action_mask"].tolist() == [[False, False, True], [True] * 3, [True] * 3]
    assert batch["obs"][0, 0, 0] == 1.0  # a robot step is still an observation
    assert ds.stats["action_max"].max() < 0  # action statistics come from labels only
    assert DemoDataset(takeover_file).labels is None  # the dataset's own default: every step
    seq = DemoDataset(takeover_file, sequence_length=8, labels="interventions").get_batch([2, 11])
    assert seq["obs"].shape == (2, 8, 3) and seq["actions"].shape == (2, 8, 7)
    assert seq["action_mask"][0].tolist() == [False] * 4 + [True] * 4  # robot steps 2-5 are inputs only
    assert seq["action_mask"][1].tolist() == [True] + [False] * 7  # padding after the episode's end
    assert torch.equal(seq["obs"][0], ds.obs[2:10])


def test_weight_rule_is_served_per_action_step(takeover_file):
    def by_flag(demo, attrs):  # robot steps weigh 3, the rest 1
        return np.where(demo["obs"]["state"][()][:, 0] > 0, 3.0, 1.0)

    ds = DemoDataset(takeover_file, action_horizon=2, weights=by_flag)
    batch = ds.get_batch([ROBOT_STEPS - 1, 40 * 12])
    assert batch["weights"].tolist() == [[3.0, 1.0], [1.0, 1.0]]


def _train(head: str, path, out, steps: int) -> Trainer:
    cfg = TrainConfig(data=str(path), out=str(out), head=head, head_options=SMALL[head], steps=steps,
                      batch_size=64, lr=3e-3, warmup_steps=10, ema_decay=None, eval_episodes=0, threads=1,
                      log_every=10**6, valid_every=10**6, checkpoint_every=10**6)
    trainer = Trainer(cfg)
    trainer.run()
    return trainer


def robot_step_actions(policy, rng) -> np.ndarray:
    """Roll the policy through fresh take-over episodes; its actions at the robot's steps."""
    out = []
    for _ in range(10):
        episode = takeover_episode(rng, ABSURD)
        policy.reset()
        for t in range(ROBOT_STEPS):
            out.append(policy.act({"state": episode.obs["state"][t]}))
    return np.array(out)


@pytest.mark.parametrize("labels", ["interventions", "all"])
@pytest.mark.parametrize("head", HEADS)
def test_masked_steps_are_never_targets(head, labels, takeover_file, tmp_path, monkeypatch):
    """Trained with the robot's steps masked, the policy does at those states what the labels do
    elsewhere (REAL), never the absurd action it was shown there; with the mask off (the control) it
    learns the absurd action, so the check can fail."""
    monkeypatch.setitem(train_module.WEIGHTINGS, "none", (labels, None, False))
    torch.manual_seed(0)
    trainer = _train(head, takeover_file, tmp_path / head, steps=STEPS.get(head, 250))
    policy = trainer.policy.eval()
    actions = robot_step_actions(policy, np.random.default_rng(7))
    mean = float(actions.mean())
    if labels == "interventions":
        assert abs(mean - REAL) < 0.2 and np.abs(actions - ABSURD).min() > 0.8, f"{head}: mean {mean:.2f}"
    else:
        assert abs(mean - ABSURD) < 0.5, f"{head} without the mask: mean {mean:.2f}, expected near {ABSURD}"


@contextlib.contextmanager
def row_noise():
    """torch.randn_like / torch.randint give values that depend only on the position in the tensor,
    so a batch and the same batch with one more sample at the end draw the same noise for shared rows."""
    randn_like, randint = torch.randn_like, torch.randint

    def fake_randn_like(x, **kw):
        return torch.sin(torch.arange(x.numel(), dtype=x.dtype, device=x.device) * 1.7).view_as(x)

    def fake_randint(low, high=None, size=None, **kw):
        if high is None:
            low, high = 0, low
        n = int(np.prod(size))
        return (low + torch.arange(n, device=kw.get("device")) * 7 % (high - low)).view(size)

    torch.randn_like, torch.randint = fake_randn_like, fake_randint
    try:
        yield
    finally:
        torch.randn_like, torch.randint = randn_like, randint


@pytest.mark.parametrize("head", HEADS)
def test_zero_weight_equals_removing_the_sample(head):
    rng = np.random.default_rng(1)
    T = 8 if head == "lstm" else SMALL[head].get("action_horizon", 1)
    To = T if head == "lstm" else SMALL[head].get("obs_horizon", 1)
    B = 6
    obs = rng.normal(size=(B + 1, To, 3)).astype(np.float32)
    actions = rng.normal(size=(B + 1, T, 2)).astype(np.float32)
    mask = np.ones((B + 1, T), bool)
    mask[1, T // 2:] = False
    weights = rng.uniform(0.5, 2.0, size=B + 1).astype(np.float32)
    policy = build(head, obs.reshape(-1, 3), actions.reshape(-1, 2), **SMALL[head])

    def loss(n, w):
        batch = {"obs": torch.as_tensor(obs[:n]), "actions": torch.as_tensor(actions[:n]),
                 "action_mask": torch.as_tensor(mask[:n]), "weights": torch.as_tensor(w[:n])}
        with row_noise():
            return policy.loss(batch)["loss"].item()

    removed = loss(B, weights)
    zeroed = weights.copy()
    zeroed[B] = 0.0
    assert loss(B + 1, zeroed) == pytest.approx(removed, rel=1e-5, abs=1e-6)
    assert loss(B + 1, weights) != pytest.approx(removed, rel=1e-3)  # the extra sample does count when weighted
    # uniform weights change nothing: the loss is a weighted mean
    assert loss(B, np.full(B + 1, 3.0, np.float32)) == pytest.approx(loss(B, np.ones(B + 1, np.float32)), rel=1e-5)


def test_training_builds_no_environment(lift_demos, tmp_path, monkeypatch):
    """The file recorded by collection stores the object layout; training reads it and builds no simulator."""
    from takeover.datasets import DemoReader
    from takeover.sim import env as sim_env

    with DemoReader(lift_demos) as r:
        assert r.object_layout.keys == ("cube_pos", "cube_quat", "gripper_to_cube_pos")

    def no_env(*a, **kw):
        raise AssertionError("training built an environment")

    monkeypatch.setattr(sim_env, "make_env", no_env)
    monkeypatch.setattr(sim_env.Env, "__init__", no_env)
    trainer = Trainer(TrainConfig(data=str(lift_demos), out=str(tmp_path / "r"), head="autoregressive",
                                  head_options={"hidden_dims": (32, 32)}, steps=2, eval_episodes=0, threads=1))
    assert len(trainer.shapes.quat_starts) == 2  # robot0_eef_quat and the cube's quaternion inside object
    assert bool(trainer.policy.bins_fitted)  # prepare() ran


def test_older_files_derive_the_object_layout_from_their_spec(tmp_path, monkeypatch):
    """A file recorded without the attribute derives the layout from the spec (here a stand-in for the
    simulator); a file recorded with an explicit layout stores and returns it."""
    import h5py

    from takeover.datasets import DemoReader
    from takeover.datasets import reader as reader_module
    from takeover.sim import ObsLayout

    layout = ObsLayout(("cube_pos", "cube_quat"), ((3,), (4,)))
    path = tmp_path / "new.hdf5"
    rng = np.random.default_rng(0)
    with DemoWriter(path, EnvSpec(task="Lift"), object_layout=layout) as w:
        rec = EpisodeRecorder()
        rec.add({"object": rng.normal(size=7)}, np.zeros(7), 0.0, {"object": rng.normal(size=7)}, True, np.zeros(3))
        w.save(rec.finish(model_file="", source="expert", success=True, seed=0))
    calls = []
    monkeypatch.setattr(reader_module, "derive_object_layout", lambda spec: calls.append(spec) or layout)
    with DemoReader(path) as r:
        assert r.object_layout == layout and not calls
    with h5py.File(path, "r+") as f:  # as recorded before files stored it
        del f["data"].attrs["takeover_object_layout"]
    with DemoReader(path) as r:
        assert r.object_layout == layout and calls == [EnvSpec(task="Lift")]


def test_sirius_weights_and_iwr_batches(tmp_path):
    """Sirius: the person's steps x2, the 15 robot steps before each take-over x0, other robot steps
    x1. IWR: half of every batch starts on an intervention step, however few there are."""
    from takeover.datasets import DemoDataset, DemoWriter, EpisodeRecorder
    from takeover.datasets.labels import sirius_weights
    from takeover.sim import EnvSpec

    flags = np.array([0] * 20 + [1] * 5 + [0] * 10 + [1] * 3 + [0] * 2, np.uint8)
    w = sirius_weights({"interventions": np.asarray(flags)}, {})
    expected = np.ones(40, np.float32)
    expected[5:20] = 0  # the 15 robot steps before the first take-over
    expected[20:25] = 2
    expected[25:35] = 0  # robot steps within 15 of the second take-over
    expected[35:38] = 2
    np.testing.assert_array_equal(w, expected)
    assert sirius_weights({}, {}) is None

    path = tmp_path / "iwr.hdf5"
    rng = np.random.default_rng(0)
    with DemoWriter(path, EnvSpec(task="Lift")) as writer:
        for i in range(4):
            rec = EpisodeRecorder()
            for t in range(50):
                rec.add({"state": rng.normal(size=3)}, rng.uniform(-1, 1, 7), 0.0, {"state": rng.normal(size=3)},
                        False, np.zeros(5), interventions=int(i == 3 and t < 10))  # 10 of 200 steps
            writer.save(rec.finish(source="dagger", seed=i))
    ds = DemoDataset(path, labels="interventions")
    g = torch.Generator().manual_seed(0)
    idx = ds.sample_indices(2000, g, balance_interventions=True)
    assert abs(ds.interventions[idx].float().mean().item() - 0.5) < 0.01
    uniform = ds.sample_indices(2000, g)
    assert ds.interventions[uniform].float().mean().item() < 0.1
