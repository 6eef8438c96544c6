"""CCIL: the Lipschitz-bounded dynamics model, BackTrack / DisturbedAction labels on a linear system with
known dynamics, the trust filters, and `takeover augment` end to end on Lift."""
import hashlib
import json
import shutil

import h5py
import numpy as np
import pytest
import torch

from takeover.cli.app import run_cli
from takeover.correction.ccil import generate_labels, solve_preimage
from takeover.correction.ccil_config import CcilConfig
from takeover.correction.dynamics import fit_dynamics
from takeover.policies.checkpoint import load_checkpoint

D, A_DIM = 4, 2
# s' = s + M s + B a: a double integrator pair (positions follow velocities, actions push velocities)
M = np.array([[0, 0.05, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0.05], [0, 0, 0, 0]])
B = np.array([[0, 0], [0.1, 0], [0, 0], [0, 0.1]])


def true_step(s, a, m=M):
    return s + s @ m.T + a @ B.T


def transitions(n=600, seed=0, m=M):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, D)).astype(np.float32)
    a = rng.uniform(-1, 1, size=(n, A_DIM)).astype(np.float32)
    return s, a, true_step(s, a, m).astype(np.float32)


def small(**kw):
    base = dict(hidden=64, epochs=150, epsilon=10.0, max_model_error=10.0)
    return CcilConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def linear_model():
    torch.set_num_threads(1)
    S, U, S2 = transitions()
    cfg = small()
    model, fit, _ = fit_dynamics(S, U, S2, cfg)
    return model, fit, (S, U, S2), cfg


def test_model_learns_the_linear_system_and_holds_its_lipschitz_bound(linear_model):
    model, fit, _, cfg = linear_model
    assert fit.valid_error_mean < 0.1 * fit.zero_model_error_mean  # far better than predicting no motion
    assert fit.lipschitz_bound <= cfg.lipschitz_k * (1 + 1e-6)
    # measured: no pair of inputs is stretched by more than K (in the network's normalised coordinates)
    z = torch.randn(2000, D + A_DIM)
    z2 = z + 0.3 * torch.randn_like(z)
    with torch.no_grad():
        ratio = torch.linalg.vector_norm(model.g(z2) - model.g(z), dim=-1) / torch.linalg.vector_norm(z2 - z, dim=-1)
    assert float(ratio.max()) <= cfg.lipschitz_k
    assert fit.local_lipschitz_max <= cfg.lipschitz_k * (1 + 1e-6)


def test_a_tight_spectral_bound_is_the_product_of_the_layer_norms():
    S, U, S2 = transitions(200)
    model, fit, _ = fit_dynamics(S, U, S2, small(lipschitz_k=0.5, epochs=30))
    norms = [float(torch.linalg.matrix_norm(m.effective_weight().detach().double(), ord=2))
             for m in model.net if isinstance(m, torch.nn.Linear)]
    assert np.prod(norms) <= 0.5 * (1 + 1e-5) and fit.lipschitz_bound <= 0.5 * (1 + 1e-5)


@pytest.mark.parametrize("solver", ["newton", "fixed-point"])
def test_backtrack_labels_lead_back_to_the_expert_state(linear_model, solver):
    model, _, (S, U, S2), cfg = linear_model
    labels = generate_labels(model, S, U, S2, small(solver=solver, labels="backtrack"))
    assert len(labels) == len(S)
    step = np.linalg.norm(S2 - S, axis=1).mean()
    # by the TRUE dynamics, the label's action from the label's state lands on the expert state
    landed = true_step(labels.obs.astype(np.float64), labels.actions.astype(np.float64))
    miss = np.linalg.norm(landed - S[labels.source_index], axis=1)
    assert miss.mean() < 0.1 * step and miss.max() < 0.3 * step
    # and the labels are not the expert states themselves: about one step back
    assert 0.5 * step < np.linalg.norm(labels.obs - S, axis=1).mean() < 2 * step
    np.testing.assert_array_equal(labels.actions, U)


def test_disturbed_action_labels_lead_to_the_expert_next_state(linear_model):
    model, _, (S, U, S2), _ = linear_model
    labels = generate_labels(model, S, U, S2, small(labels="disturbed", noise_scale=0.3, disturbed_per_step=2))
    assert len(labels) == 2 * len(S) and set(labels.kind) == {"disturbed"}
    src = labels.source_index
    assert np.abs(labels.actions - U[src]).mean() > 0.1  # the actions really were disturbed
    landed = true_step(labels.obs.astype(np.float64), labels.actions.astype(np.float64))
    miss = np.linalg.norm(landed - S2[src], axis=1)
    assert miss.mean() < 0.1 * np.linalg.norm(S2 - S, axis=1).mean()


def test_newton_solves_where_fixed_point_iteration_diverges():
    """s + f(s, a) = s* with |df/ds| > 1: the fixed-point map is no contraction, Newton's method converges."""
    m = np.diag([1.5, 1.5, 1.5, 1.5])
    S, U, S2 = transitions(600, m=m)
    model, _, _ = fit_dynamics(S, U, S2, small())
    target, a = torch.as_tensor(S[:50]), torch.as_tensor(U[:50])
    _, ok_fp, _ = solve_preimage(model, target, a, target, "fixed-point", iters=30)
    s_n, ok_n, _ = solve_preimage(model, target, a, target, "newton", iters=30)
    assert not ok_fp.any() and ok_n.all()
    landed = true_step(s_n.numpy().astype(np.float64), U[:50].astype(np.float64), m)
    assert np.linalg.norm(landed - S[:50], axis=1).mean() < 0.1 * np.linalg.norm(S2 - S, axis=1).mean()


def test_labels_outside_the_trust_region_are_dropped(linear_model):
    model, _, (S, U, S2), _ = linear_model
    S2 = S2.copy()
    broken = np.arange(0, len(S), 10)  # transitions the model cannot explain: it must not label there
    S2[broken] += np.random.default_rng(1).normal(0, 3.0, size=(len(broken), D)).astype(np.float32)
    with torch.no_grad():
        err = model.step_error(*(torch.as_tensor(x) for x in (S, U, S2))).numpy()
    all_labels = generate_labels(model, S, U, S2, small(labels="backtrack"))
    eps = float(np.median(all_labels.distance))
    cfg = small(labels="backtrack", epsilon=eps, max_model_error=0.5)
    labels = generate_labels(model, S, U, S2, cfg)
    c = labels.counts["backtrack"]
    assert c["model_error"] == int((err >= 0.5).sum()) >= len(broken)
    assert not set(labels.source_index) & set(broken)
    assert (labels.distance < eps).all() and (err[labels.source_index] < 0.5).all()
    assert c["too_far"] > 0 and c["kept"] == len(labels) == c["tried"] - c["model_error"] - c["not_converged"] - c["too_far"]


# --- files and the command line ---------------------------------------------------------------------------
def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_bad_augment_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    from takeover.datasets import DemoWriter
    from takeover.datasets.episode import Episode
    from takeover.sim import EnvSpec

    images = tmp_path / "images.hdf5"
    frames = np.zeros((5, 8, 8, 3), np.uint8)
    with DemoWriter(images, EnvSpec(task="Lift")) as w:
        w.save(Episode(actions=np.zeros((5, 7), np.float32), states=np.zeros((5, 3)), obs={"agentview_image": frames},
                       next_obs={"agentview_image": frames}, rewards=np.zeros(5, np.float32), dones=np.zeros(5, np.uint8)))
    before = sha(images)
    out = tmp_path / "aug.hdf5"
    assert run_cli(["augment", str(images), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no low-dim observations" in err and "agentview_image" in err
    assert not out.exists() and sha(images) == before
    out.write_text("taken")
    assert run_cli(["augment", str(images), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "taken"


@pytest.mark.slow
def test_augment_on_lift_trains_and_reads_like_robomimic(lift_demos, tmp_path, capsys):
    data = tmp_path / "demos.hdf5"
    shutil.copy(lift_demos, data)
    assert run_cli(["data", "split", str(data), "--valid", "0.2"]) == 0
    before = sha(data)
    out, report = tmp_path / "aug.hdf5", tmp_path / "report.json"
    base = ["augment", str(data), "--hidden", "128", "--history", "2", "--labels", "backtrack"]
    # options that leave no label: one line naming the filter, nothing written
    assert run_cli(base + ["-o", str(out), "--epsilon", "1e-6", "--epochs", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "'too_far' removed the last ones" in err[-1] and not out.exists()
    assert run_cli(base + ["-o", str(out), "--report", str(report), "--epochs", "40"]) == 0
    assert sha(data) == before and not list(tmp_path.glob("*ccil-partial*"))
    rep = json.loads(report.read_text())
    assert rep["kept"] > 50 and rep["dynamics"]["lipschitz_bound"] <= rep["config"]["lipschitz_k"] * (1 + 1e-6)
    assert rep["dynamics"]["valid_error_mean"] < rep["dynamics"]["zero_model_error_mean"]
    assert rep["obs_keys"] == ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object"]

    with h5py.File(data, "r") as f:
        train_in = [n.decode() for n in f["mask/train"][()]]
        expert_train_steps = sum(int(f["data"][n].attrs["num_samples"]) for n in train_in)
    # robomimic's view: swmr open, env_args, demo_<int> with num_samples, obs / next_obs per key, masks of real demos
    with h5py.File(out, "r", swmr=True, libver="latest") as f:
        data_g = f["data"]
        assert json.loads(data_g.attrs["env_args"])["env_name"] == "Lift"
        names = sorted(data_g.keys(), key=lambda n: int(n.split("_")[1]))
        total = 0
        for n in names:
            g = data_g[n]
            T = int(g.attrs["num_samples"])
            total += T
            assert g["actions"].shape[0] == T and g["states"].shape[0] == T
            for k in rep["obs_keys"]:
                assert g["obs"][k].shape[0] == T and g["next_obs"][k].shape[0] == T
        assert int(data_g.attrs["total"]) == total
        masks = {k: [m.decode() for m in v[()]] for k, v in f["mask"].items()}
        assert set(masks["train"]) | set(masks["valid"]) == set(names) and not set(masks["train"]) & set(masks["valid"])
        ccil = [n for n in names if data_g[n].attrs["source"] == "ccil"]
        assert len(ccil) == rep["kept"] and set(ccil) <= set(masks["train"])
        for n in ccil[:50]:
            g = data_g[n]
            assert int(g.attrs["history_steps"]) == int(g.attrs["num_samples"]) - 1 <= 1

    from takeover.datasets import DemoDataset

    ds = DemoDataset(out, obs_horizon=2, split="train", labels="interventions")
    assert int(ds.labels.sum()) == expert_train_steps + rep["kept"]  # history steps are not targets
    # a two-step label: its history keeps the expert's motion into the generated state
    with h5py.File(out, "r") as f:
        n = next(n for n in ccil if int(f["data"][n].attrs["num_samples"]) == 2)
        src, t = f["data"][n].attrs["from_demo"], int(f["data"][n].attrs["from_step"])
        pos = f["data"][n]["obs/robot0_eef_pos"][()]
    with h5py.File(data, "r") as f:
        expert = f["data"][src]["obs/robot0_eef_pos"][()]
    np.testing.assert_allclose(pos[1] - pos[0], expert[t] - expert[t - 1], atol=1e-5)

    run = tmp_path / "run"
    assert run_cli(["train", str(out), "--head", "gmm", "--steps", "3", "--eval-episodes", "0", "--threads", "1",
                    "--out", str(run)]) == 0
    # it trained on the augmented train split (the expert's train demos and every generated label, its
    # history step included) and validated on the carried-over valid split
    config = json.loads((run / "config.json").read_text())
    with h5py.File(out, "r") as f:
        steps = {k: sum(int(f["data"][n].attrs["num_samples"]) for n in masks[k]) for k in ("train", "valid")}
    assert config["train_windows"] == steps["train"] >= expert_train_steps + rep["kept"]
    assert config["valid_windows"] == steps["valid"] > 0
    policy, _, info = load_checkpoint(run / "checkpoints" / "best.pt")
    assert info["step"] == 3 and policy.config.head == "gmm" and list(policy.shapes.obs_keys) == rep["obs_keys"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["kind"] == "done" and rows[-1]["step"] == 3
