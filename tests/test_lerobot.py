"""LeRobotDataset v3.0 export and import: round trips (scripted Lift demos, take-over episodes with
interventions, generated-like files), frame times of multi-episode videos, what plain parquet readers see,
statistics, a LeRobot dataset from elsewhere, bad inputs, and LeRobot's own loader (marked `lerobot`).

How LeRobot's loader is installed: scripts/lerobot_env.sh builds lerobot 0.4.4 with torch 2.10 and
torchvision 0.25 from PyPI in a venv of its own (~/.cache/takeover/lerobot-venv, ~7 GB, ~6 minutes the
first time; PyPI's torchvision does not load beside our CPU torch). The `lerobot` test runs
tests/lerobot_client.py in that venv and skips with a one-line reason when it is not built; CI builds it
and runs `pytest -m lerobot` as a step of its own, with TAKEOVER_REQUIRE_LEROBOT=1 (a missing venv fails).
"""
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from takeover.cli.app import run_cli
from takeover.datasets import DemoReader, DemoWriter, EpisodeRecorder, split
from takeover.datasets.lerobot_export import export_lerobot
from takeover.datasets.lerobot_import import import_lerobot
from takeover.datasets.video_files import frame_times
from takeover.sim import EnvSpec
from takeover.sim.observations import ObsLayout

CAMERA = "observation.images.agentview"
IMAGE_TOLERANCE = 3  # yuv444p at qp 0: lossless in YUV, off by a level or two in RGB
LIFT_OBJECT = ObsLayout(("cube_pos", "cube_quat", "gripper_to_cube_pos"), ((3,), (4,), (3,)))


def _frame(rng, t, size):
    """A rendered-looking frame: smooth gradients and a square that moves with t."""
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([200 * x + 20, 180 * y + 30, 100 + 50 * np.sin(3 * x + t / 5)], -1)
    k = (2 * t) % (size - 8)
    img[k:k + 8, 4:12] = rng.integers(0, 255, 3)
    return img.astype(np.uint8)


def make_file(path, kind: str, lengths=(6, 9, 5, 7), size=16, seed=0):
    """kind: "takeover" (interventions, policy/executed actions, a camera), "generated" (odd arrays: a
    uint8 low-dim key, a depth map, next_obs that is not obs shifted), "lift" (Lift's real key names, no
    camera, for the foreign-dataset import)."""
    rng = np.random.default_rng(seed)
    camera = kind != "lift"
    spec = EnvSpec(task="Lift", camera_names=("agentview",) if camera else (), camera_height=size, camera_width=size)
    with DemoWriter(path, spec, object_layout=LIFT_OBJECT) as w:
        for i, T in enumerate(lengths):
            rec = EpisodeRecorder()

            def observe(t):
                obs = {"robot0_eef_pos": rng.normal(size=3), "robot0_eef_quat": rng.normal(size=4),
                       "robot0_gripper_qpos": rng.normal(size=2), "object": rng.normal(size=10)}
                if camera:
                    obs["agentview_image"] = _frame(rng, t + 10 * i, size)
                if kind == "generated":
                    obs["contact"] = rng.integers(0, 2, 2).astype(np.uint8)
                    obs["agentview_depth"] = rng.random((size, size, 1)).astype(np.float32)
                return obs

            obs = observe(0)
            for t in range(T):
                nxt = observe(t + 1)
                extras = {}
                if kind == "takeover" and i != 1:  # demo_1: a policy-only episode, no take-over arrays
                    extras = {"interventions": int(2 <= t < 5), "policy_actions": rng.normal(size=7),
                              "executed_actions": rng.normal(size=7), "expert_executed": int(t % 3 == 0)}
                rec.add(obs, rng.uniform(-1, 1, 7), float(t == T - 1), nxt, t == T - 1, rng.normal(size=32), **extras)
                obs = nxt if kind != "generated" else observe(t + 1)  # generated: next_obs[t] != obs[t + 1]
            attrs = {"source": {"takeover": "dagger", "generated": "generated", "lift": "expert"}[kind],
                     "success": i % 2 == 0, "seed": 100 + i}
            if kind == "takeover":
                attrs.update(round=2, beta=0.49, labeller="human", device="keyboard")
            if kind == "generated":
                attrs.update(generated_from=f"demo_{i % 2}", subtask_bounds=np.array([0, 3, T], np.int64),
                             notes={"noise": 0.05})
            w.save(rec.finish(model_file=f"<mujoco model='m{i}'/>", **attrs))
    return path


def compare_files(a, b, image_tolerance=IMAGE_TOLERANCE):
    """Every group, dataset and attribute of HDF5 file `a` is in `b` with the same type and value (camera
    frames within `image_tolerance` levels); returns the largest image error."""
    def walk(f):
        out = {"/": f}
        f.visititems(lambda k, o: out.__setitem__(k, o))
        return out

    worst = 0
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        A, B = walk(fa), walk(fb)
        assert sorted(A) == sorted(B), sorted(set(A) ^ set(B))
        for key, oa in A.items():
            ob = B[key]
            assert sorted(oa.attrs) == sorted(ob.attrs), (key, sorted(set(oa.attrs) ^ set(ob.attrs)))
            for name in oa.attrs:
                va, vb = oa.attrs[name], ob.attrs[name]
                assert type(va) is type(vb), (key, name, type(va), type(vb))
                assert np.asarray(va).dtype == np.asarray(vb).dtype, (key, name)
                assert np.array_equal(np.asarray(va), np.asarray(vb)), (key, name)
            if isinstance(oa, h5py.Dataset):
                x, y = oa[()], ob[()]
                assert x.dtype == y.dtype and x.shape == y.shape, (key, x.dtype, y.dtype, x.shape, y.shape)
                if key.endswith("_image"):
                    err = int(np.abs(x.astype(int) - y.astype(int)).max())
                    assert err <= image_tolerance, (key, err)
                    worst = max(worst, err)
                else:
                    np.testing.assert_array_equal(x, y, err_msg=key)
    return worst


def cli(capsys, *args):
    code = run_cli([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip()


def tree_hash(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(path).rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


# --- round trips -----------------------------------------------------------------------------------
def test_round_trip_scripted_lift_with_split(lift_demos, tmp_path, capsys):
    data = tmp_path / "lift.hdf5"
    shutil.copy(lift_demos, data)
    split(data, valid_fraction=0.25, seed=1)
    code, out, err = cli(capsys, "data", "export", data, "--format", "lerobot", "-o", tmp_path / "lr")
    assert code == 0, err
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20 and info["total_episodes"] == 12
    assert info["splits"] == {"train": "0:9", "valid": "9:12"}
    assert info["features"]["observation.environment_state"]["names"][:3] == ["cube_pos.x", "cube_pos.y", "cube_pos.z"]
    assert "robot0_eef_quat.w" in info["features"]["observation.state"]["names"]
    assert info["features"]["takeover.states"]["dtype"] == "float64"
    # exported in split order: train demos first, then valid ones
    demos = pq.read_table(tmp_path / "lr/meta/takeover/episodes.parquet").column("demo").to_pylist()
    with DemoReader(data) as r:
        assert demos == r.splits["train"] + r.splits["valid"]
    code, out, err = cli(capsys, "data", "import-lerobot", tmp_path / "lr", "-o", tmp_path / "back.hdf5")
    assert code == 0 and "exact" in out, err
    compare_files(data, tmp_path / "back.hdf5")
    with DemoReader(tmp_path / "back.hdf5") as r:  # and the reader sees the same file
        assert r.spec.task == "Lift" and r.object_layout is not None and len(r.splits["valid"]) == 3


@pytest.mark.parametrize("kind", ["takeover", "generated"])
def test_round_trip_is_exact_except_camera_frames(tmp_path, kind):
    data = make_file(tmp_path / "d.hdf5", kind)
    result = export_lerobot(data, tmp_path / "lr")
    assert result["episodes"] == 4 and result["frames"] == 27
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    if kind == "takeover":
        assert result["interventions"] and info["features"]["intervention"] == {"dtype": "bool", "shape": [1], "names": None}
        flags = pq.read_table(tmp_path / "lr/data/chunk-000/file-000.parquet").column("intervention").to_pylist()
        assert sum(flags) == 9  # steps 2-4 of the three take-over episodes
        assert {"takeover.policy_actions", "takeover.executed_actions", "takeover.expert_executed"} <= set(info["features"])
    else:
        assert info["features"]["takeover.obs.agentview_depth"]["shape"] == [16 * 16]
        assert info["features"]["takeover.obs.contact"]["dtype"] == "uint8"
    import_lerobot(tmp_path / "lr", tmp_path / "back.hdf5")
    worst = compare_files(data, tmp_path / "back.hdf5")
    assert 0 < worst <= IMAGE_TOLERANCE  # the frames did go through the codec
    if kind == "takeover":
        with DemoReader(tmp_path / "back.hdf5") as r:  # the policy-only episode stays without take-over arrays
            assert "interventions" in r.episode("demo_0").extras and "interventions" not in r.episode("demo_1").extras


def test_video_frame_times_match_frame_index_over_fps_in_every_episode(tmp_path):
    lengths = (12, 7, 15, 9, 11, 8)
    data = make_file(tmp_path / "d.hdf5", "takeover", lengths=lengths, size=32)
    fps = 15
    export_lerobot(data, tmp_path / "lr", fps=fps, video_file_mb=0.02, data_file_mb=0.002)  # several files of each
    root = tmp_path / "lr"
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    videos = sorted(root.glob(f"videos/{CAMERA}/chunk-*/file-*.mp4"))
    assert len(videos) >= 2 and len(list(root.glob("data/chunk-*/file-*.parquet"))) >= 2
    times = {p: frame_times(p) for p in videos}
    data_rows = pads.dataset(root / "data", format="parquet").to_table().to_pydict()
    checked = 0
    for ep in episodes:
        T = ep["length"]
        path = root / f"videos/{CAMERA}/chunk-{ep[f'videos/{CAMERA}/chunk_index']:03d}/file-{ep[f'videos/{CAMERA}/file_index']:03d}.mp4"
        start = ep[f"videos/{CAMERA}/from_timestamp"]
        assert ep[f"videos/{CAMERA}/to_timestamp"] == pytest.approx(start + T / fps, abs=1e-9)
        first = int(round(start * fps))
        assert first == pytest.approx(start * fps, abs=1e-9)  # episodes start on a frame
        np.testing.assert_allclose(times[path][first:first + T], start + np.arange(T) / fps, atol=1e-6)
        rows = [i for i, e in enumerate(data_rows["episode_index"]) if e == ep["episode_index"]]
        stamps = np.array([data_rows["timestamp"][i] for i in rows])
        frames = np.array([data_rows["frame_index"][i] for i in rows])
        np.testing.assert_array_equal(frames, np.arange(T))
        np.testing.assert_allclose(stamps, frames / fps, atol=1e-6)
        checked += 1
    assert checked == len(lengths)
    # every video frame is accounted for by exactly one episode
    assert sum(len(t) for t in times.values()) == sum(lengths)
    import_lerobot(root, tmp_path / "back.hdf5")
    compare_files(data, tmp_path / "back.hdf5")


# --- what other readers see ------------------------------------------------------------------------
def test_plain_pyarrow_reads_frames_episodes_tasks_and_stats(tmp_path):
    data = make_file(tmp_path / "d.hdf5", "takeover")
    export_lerobot(data, tmp_path / "lr", task_text="Lift the cube, with help.")
    root = tmp_path / "lr"
    frames = pads.dataset(root / "data", format="parquet").to_table()
    with DemoReader(data) as r:
        actions = np.concatenate([r.episode(n).actions for n in r.demos])
        states = np.concatenate([r.episode(n).states for n in r.demos])
        eef = np.concatenate([r.episode(n).obs["robot0_eef_pos"] for n in r.demos])
    np.testing.assert_array_equal(np.array(frames.column("action").to_pylist(), np.float32), actions)
    np.testing.assert_array_equal(np.array(frames.column("takeover.states").to_pylist()), states)
    np.testing.assert_array_equal(np.array(frames.column("observation.state").to_pylist(), np.float32)[:, :3], eef)
    assert frames.column("index").to_pylist() == list(range(len(actions)))
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert tasks.column("__index_level_0__").to_pylist() == ["Lift the cube, with help."]
    assert tasks.column("task_index").to_pylist() == [0]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]  # pandas' index
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert episodes["length"] == [6, 9, 5, 7] and episodes["tasks"][0] == ["Lift the cube, with help."]
    assert episodes["dataset_to_index"] == list(np.cumsum([6, 9, 5, 7]))

    stats = json.loads((root / "meta/stats.json").read_text())
    info = json.loads((root / "meta/info.json").read_text())
    assert set(stats) == set(info["features"])
    a = stats["action"]
    np.testing.assert_allclose(a["min"], actions.min(0), rtol=1e-6)
    np.testing.assert_allclose(a["max"], actions.max(0), rtol=1e-6)
    np.testing.assert_allclose(a["mean"], actions.mean(0), rtol=1e-5)
    np.testing.assert_allclose(a["std"], actions.std(0), rtol=1e-4)
    assert a["count"] == [len(actions)]
    assert all(np.all(np.array(a[q]) >= actions.min(0) - 1e-9) for q in ("q01", "q10", "q50", "q90", "q99"))
    assert np.all(np.diff([a[q] for q in ("q01", "q10", "q50", "q90", "q99")], axis=0) >= 0)
    img = stats[CAMERA]
    assert np.array(img["mean"]).shape == (3, 1, 1) and 0 <= np.min(img["min"]) <= np.max(img["max"]) <= 1
    assert img["count"] == [27]  # LeRobot samples every frame of episodes this short


def test_pixel_statistics_from_value_counts_equal_the_general_computation():
    from takeover.datasets import lerobot_layout as L

    pixels = np.random.default_rng(0).integers(3, 250, (50_000, 3)).astype(np.uint8)
    pixels[:700, 1] = 255
    fast, general = L.vector_stats(pixels), L.vector_stats(pixels.astype(np.float64))
    assert set(fast) == set(general)
    for key in fast:
        np.testing.assert_allclose(fast[key], general[key], rtol=1e-12, atol=1e-9, err_msg=key)


# --- a LeRobot dataset from elsewhere ---------------------------------------------------------------
def strip_takeover(root: Path, rename_state=None):
    """What another LeRobot tool would have written: no meta/takeover, no takeover.* columns."""
    shutil.rmtree(root / "meta/takeover")
    info = json.loads((root / "meta/info.json").read_text())
    info["features"] = {k: v for k, v in info["features"].items() if not k.startswith("takeover.")}
    if rename_state:
        info["features"]["observation.state"]["names"] = rename_state(info["features"]["observation.state"]["names"])
    (root / "meta/info.json").write_text(json.dumps(info))
    for path in root.glob("data/chunk-*/file-*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.select([c for c in table.column_names if not c.startswith("takeover.")]), path)


def test_foreign_dataset_imports_as_observations_and_actions_with_a_warning(tmp_path, capsys, caplog):
    data = make_file(tmp_path / "d.hdf5", "lift")
    export_lerobot(data, tmp_path / "lr")
    strip_takeover(tmp_path / "lr")
    before = tree_hash(tmp_path / "lr")
    code, out, err = cli(capsys, "data", "import-lerobot", tmp_path / "lr", "-o", tmp_path / "x.hdf5")
    assert code == 2 and "--task" in err and len(err.splitlines()) == 1 and not (tmp_path / "x.hdf5").exists()
    code, out, err = cli(capsys, "data", "import-lerobot", tmp_path / "lr", "-o", tmp_path / "x.hdf5", "--task", "Lift")
    assert code == 0, err
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "no simulator states" in warnings[0] and "replay" in warnings[0]
    assert "\n" not in warnings[0]
    assert tree_hash(tmp_path / "lr") == before
    with DemoReader(data) as src, DemoReader(tmp_path / "x.hdf5") as got:
        assert got.spec.task == "Lift" and got.demos == src.demos
        assert got.obs_keys == ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object"]
        for name in src.demos:
            a, b = src.episode(name), got.episode(name)
            np.testing.assert_array_equal(a.actions, b.actions)
            for key in got.obs_keys:
                np.testing.assert_array_equal(a.obs[key], b.obs[key])
            assert b.states.shape == (len(a), 0) and got.attrs(name)["source"] == "lerobot"
        assert got.splits == {"train": src.demos}
    from takeover.datasets import DemoDataset

    windows = DemoDataset(tmp_path / "x.hdf5", obs_horizon=2, action_horizon=4, split="train")  # trains as is
    assert len(windows) == 27 and windows.obs_dim == 3 + 4 + 2 + 10


@pytest.mark.parametrize("case", ["unknown key", "no names"])
def test_foreign_dataset_that_does_not_map_onto_the_task_is_refused(tmp_path, capsys, case):
    data = make_file(tmp_path / "d.hdf5", "lift")
    export_lerobot(data, tmp_path / "lr")
    rename = (lambda names: [n.replace("robot0_eef_quat", "left_wrist_quat") for n in names]) if case == "unknown key" \
        else (lambda names: None)
    strip_takeover(tmp_path / "lr", rename)
    code, out, err = cli(capsys, "data", "import-lerobot", tmp_path / "lr", "-o", tmp_path / "x.hdf5", "--task", "Lift")
    assert code == 2 and len(err.splitlines()) == 1 and not (tmp_path / "x.hdf5").exists()
    assert ("'left_wrist_quat' is not a Lift observation" in err) if case == "unknown key" else ("no per-entry names" in err)


# --- bad input: one line, exit 2, nothing created or changed ------------------------------------------
@pytest.mark.parametrize("case", ["no demos", "image frames missing", "export folder exists", "import file exists",
                                  "other codebase version", "missing episodes metadata", "missing info.json"])
def test_bad_input_is_one_line_exit_2_and_nothing_changes(tmp_path, capsys, case):
    data = tmp_path / "d.hdf5"
    out = tmp_path / "out"
    if case == "no demos":
        DemoWriter(data, EnvSpec(task="Lift")).close()
    else:
        make_file(data, "takeover", lengths=(4, 5))
    if case == "image frames missing":
        with h5py.File(data, "r+") as f:
            del f["data/demo_1/obs/agentview_image"]
    lr = tmp_path / "lr"
    if case in ("import file exists", "other codebase version", "missing episodes metadata", "missing info.json"):
        export_lerobot(data, lr)
    if case == "export folder exists":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    if case == "import file exists":
        out.write_bytes(b"mine")
    if case == "other codebase version":
        info = json.loads((lr / "meta/info.json").read_text())
        info["codebase_version"] = "v2.1"
        (lr / "meta/info.json").write_text(json.dumps(info))
    if case == "missing episodes metadata":
        shutil.rmtree(lr / "meta/episodes")
    if case == "missing info.json":
        (lr / "meta/info.json").unlink()
    before = {p: tree_hash(p) if p.is_dir() else p.read_bytes() for p in (data, lr, out) if p.exists()}
    listing = sorted(os.listdir(tmp_path))
    if lr.exists():
        code, _, err = cli(capsys, "data", "import-lerobot", lr, "-o", out)
    else:
        code, _, err = cli(capsys, "data", "export", data, "--format", "lerobot", "-o", out)
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    expected = {"no demos": "has no demos", "image frames missing": "image key agentview_image is missing",
                "export folder exists": "already exists", "import file exists": "already exists",
                "other codebase version": "'v2.1'", "missing episodes metadata": "meta/episodes",
                "missing info.json": "meta/info.json"}[case]
    assert expected in err, err
    assert sorted(os.listdir(tmp_path)) == listing
    assert {p: tree_hash(p) if p.is_dir() else p.read_bytes() for p in before} == before


# --- LeRobot's own loader --------------------------------------------------------------------------
def lerobot_python() -> Path | None:
    venv = Path(os.environ.get("TAKEOVER_LEROBOT_VENV", Path.home() / ".cache/takeover/lerobot-venv"))
    python = venv / "bin/python"
    return python if (venv / ".takeover-lerobot-installed").is_file() and python.exists() else None


@pytest.mark.lerobot
@pytest.mark.skipif(lerobot_python() is None and not os.environ.get("TAKEOVER_REQUIRE_LEROBOT"),
                    reason="LeRobot's venv is not built (bash scripts/lerobot_env.sh builds it, ~6 min)")
def test_lerobot_dataset_loads_the_export_and_a_diffusion_policy_trains_on_it(tmp_path):
    assert lerobot_python() is not None, "TAKEOVER_REQUIRE_LEROBOT is set but scripts/lerobot_env.sh has not built the venv"
    lengths = (14, 9, 12, 10, 11)
    data = make_file(tmp_path / "d.hdf5", "takeover", lengths=lengths, size=32)
    split(data, valid_fraction=0.4, seed=0)
    export_lerobot(data, tmp_path / "lr", video_file_mb=0.02)  # several video files: LeRobot must pick the right one
    assert len(list((tmp_path / "lr").glob(f"videos/{CAMERA}/chunk-*/file-*.mp4"))) >= 2
    order = pq.read_table(tmp_path / "lr/meta/takeover/episodes.parquet").column("demo").to_pylist()
    with DemoReader(data) as r:
        eps = [r.episode(n) for n in order]
    cat = lambda f: np.concatenate([f(e) for e in eps])  # noqa: E731
    np.savez(tmp_path / "expected.npz", fps=20, lengths=np.array([len(e) for e in eps]), task="Lift the cube.",
             action=cat(lambda e: e.actions), states=cat(lambda e: e.states),
             state=cat(lambda e: np.concatenate([e.obs[k].astype(np.float32) for k in
                                                 ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")], 1)),
             env_state=cat(lambda e: e.obs["object"]), reward=cat(lambda e: e.rewards), done=cat(lambda e: e.dones),
             intervention=cat(lambda e: e.extras.get("interventions", np.zeros(len(e), np.uint8))),
             images=cat(lambda e: e.obs["agentview_image"]))
    proc = subprocess.run([str(lerobot_python()), str(Path(__file__).with_name("lerobot_client.py")), str(tmp_path / "lr"),
                           str(tmp_path / "expected.npz"), "30"], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": "",
                               "HF_HOME": str(tmp_path / "hf"), "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(report)
    assert report["num_episodes"] == 5 and report["num_frames"] == sum(lengths) and report["fps"] == 20
    assert report["image_max_error"] <= IMAGE_TOLERANCE + 2 and report["stats_match"]
    assert report["plain_datasets_rows"] == sum(lengths)
    assert report["train_steps"] == 30 and report["action_shape"] == [1, 7]
    assert report["loss_last_mean"] < report["loss_first_mean"]
