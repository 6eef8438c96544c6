"""Format round trip, writer rules, bad inputs through the CLI (one line, exit 2, file unchanged),
DemoDataset windows and padding, split/merge/info."""
import hashlib
import json

import h5py
import numpy as np
import pytest
import torch

from takeover.cli.app import run_cli
from takeover.datasets import (DatasetError, DemoDataset, DemoReader, DemoWriter, Episode, EpisodeRecorder, info,
                               merge, recover, split)
from takeover.sim import EnvSpec

SPEC = EnvSpec(task="Lift")


def episode(T, seed, base=0.0, action_dim=7, source="expert", nan_at=None):
    """Actions count steps (base + t) so windows are easy to read; obs 'a' = 10*t, 'b' a 2-vector."""
    rec = EpisodeRecorder()
    for t in range(T):
        obs = {"a": np.array([base + 10.0 * t]), "b": np.array([t, -t], float)}
        nxt = {"a": np.array([base + 10.0 * (t + 1)]), "b": np.array([t + 1, -t - 1], float)}
        action = np.full(action_dim, base + t, np.float32)
        if nan_at == t:
            action[2] = np.nan
        rec.add(obs, action, float(t), nxt, t == T - 1, np.arange(5.0) + t, interventions=t % 2,
                teleop_log=np.array([t, t * t], np.int32))
    return rec.finish(model_file="<mujoco/>", source=source, success=seed % 2 == 0, seed=seed, round=1,
                      notes={"operator": "x"})


def make_file(path, lengths=(3, 5), base=0.0, spec=SPEC):
    with DemoWriter(path, spec) as w:
        for i, T in enumerate(lengths):
            w.save(episode(T, i, base=base + 100 * i))
    return path


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- round trip / writer ---------------------------------------------------------------------------
def test_round_trip_keeps_everything(tmp_path):
    path = tmp_path / "d.hdf5"
    written = episode(6, 4)
    with DemoWriter(path, SPEC) as w:
        assert w.next_seed == 0
        assert w.save(written) == "demo_0"
        assert w.next_seed == 5
    with DemoReader(path) as r:
        assert r.spec == SPEC and r.demos == ["demo_0"] and len(r) == 1 and r.obs_keys == ["a", "b"]
        ep = r.episode("demo_0")
        for key, value in written.step_arrays().items():
            np.testing.assert_array_equal(ep.step_arrays()[key], np.asarray(value).astype(ep.step_arrays()[key].dtype))
        assert ep.actions.dtype == np.float32 and ep.states.dtype == np.float64 and ep.dones.dtype == np.uint8
        assert ep.extras["interventions"].dtype == np.uint8 and ep.extras["teleop_log"].dtype == np.int32
        assert ep.model_file == "<mujoco/>"
        attrs = r.attrs("demo_0")
        assert attrs["source"] == "expert" and attrs["success"] is True and attrs["seed"] == 4 and attrs["round"] == 1
        assert json.loads(attrs["notes"]) == {"operator": "x"} and attrs["num_samples"] == 6
    with h5py.File(path, "r", swmr=True, libver="latest") as f:  # robomimic's view
        data = f["data"]
        env_args = json.loads(data.attrs["env_args"])
        assert env_args["env_name"] == "Lift" and env_args["type"] == 1
        assert data.attrs["total"] == 6 and data.attrs["format_version"] == 1
        assert EnvSpec.from_json(data.attrs["takeover_spec"]) == SPEC
        assert data["demo_0"].attrs["num_samples"] == 6 and "next_obs" in data["demo_0"]
    assert not (tmp_path / "d.hdf5.journal").exists()


def test_camera_frames_are_compressed_one_frame_per_chunk(tmp_path):
    """Image observations: gzip (every HDF5 reader has it), one frame per chunk; low-dim arrays stay plain;
    the values come back exactly, also through a merge."""
    rng = np.random.default_rng(0)
    frames = np.zeros((6, 16, 16, 3), np.uint8)
    frames[:, 4:9, 4:9] = rng.integers(0, 255, (6, 5, 5, 3), dtype=np.uint8)
    obs = {"robot0_eef_pos": rng.normal(size=(6, 3)), "agentview_image": frames}
    written = Episode(actions=np.zeros((6, 7), np.float32), states=np.zeros((6, 4)), obs=obs,
                      next_obs={k: v[::-1].copy() for k, v in obs.items()}, rewards=np.zeros(6, np.float32),
                      dones=np.eye(1, 6, 5, dtype=np.uint8)[0], attrs={"seed": 0})
    from takeover.datasets.journal import pending_files

    path = tmp_path / "cam.hdf5"
    with DemoWriter(path, SPEC) as w:
        w.save(written)
        with h5py.File(pending_files(path)[0], "r") as f:
            assert f["demo/obs/agentview_image"].compression is None  # the save stores frames raw
        w._worker.wait()
        with h5py.File(pending_files(path)[0], "r") as f:
            assert f["demo/obs/agentview_image"].compression == "gzip"  # then the journal file is rewritten
    merge([path], tmp_path / "merged.hdf5")
    killed = tmp_path / "killed.hdf5"  # a writer killed before compressing: recovery compresses as it folds
    w = DemoWriter(killed, SPEC, fold_every=100)
    w.save(written)
    w._lock.release(remove_journal_if_empty=False)
    assert recover(killed) == ["demo_0"]
    for p in (path, tmp_path / "merged.hdf5", killed):
        with h5py.File(p, "r", swmr=True, libver="latest") as f:
            for prefix in ("obs", "next_obs"):
                image = f[f"data/demo_0/{prefix}/agentview_image"]
                assert image.compression == "gzip" and image.chunks == (1, 16, 16, 3)
                assert f[f"data/demo_0/{prefix}/robot0_eef_pos"].compression is None
            np.testing.assert_array_equal(f["data/demo_0/obs/agentview_image"][()], frames)
            np.testing.assert_array_equal(f["data/demo_0/next_obs/agentview_image"][2], frames[3])


def test_append_continues_and_refuses_other_data(tmp_path):
    path = make_file(tmp_path / "d.hdf5")
    with pytest.raises(DatasetError, match="already exists"):
        DemoWriter(path, SPEC)
    digest = sha(path)
    with pytest.raises(DatasetError, match="task"):
        DemoWriter(path, EnvSpec(task="Stack"), append=True)
    with DemoWriter(path, SPEC, append=True, fold_every=3) as w:
        assert w.next_seed == 2 and len(w) == 2
        with pytest.raises(DatasetError, match="action"):
            w.save(episode(3, 7, action_dim=6))
        bad = episode(3, 7)
        bad.obs["c"] = bad.obs["a"]
        bad.next_obs["c"] = bad.next_obs["a"]
        with pytest.raises(DatasetError, match="observation keys"):
            w.save(bad)
        with pytest.raises(DatasetError, match="NaN or inf at step 1"):
            w.save(episode(3, 7, nan_at=1))
        assert sha(path) == digest  # nothing written by refused saves
        assert w.save(episode(2, 9)) == "demo_2"
    with DemoReader(path) as r:
        assert r.demos == ["demo_0", "demo_1", "demo_2"]


def test_recorder_and_episode_checks():
    rec = EpisodeRecorder()
    with pytest.raises(DatasetError):
        rec.finish()
    rec.add({"a": [1.0]}, [0.0] * 7, 0, {"a": [2.0]}, False, [0.0])
    assert len(rec) == 1
    with pytest.raises(DatasetError, match="observation keys"):
        rec.add({"z": [1.0]}, [0.0] * 7, 0, {"z": [2.0]}, False, [0.0])
    ep = rec.finish(seed=1)
    assert isinstance(ep, Episode) and len(ep) == 1 and len(rec) == 0


def test_reader_includes_journal_episodes_read_only(tmp_path):
    path = tmp_path / "d.hdf5"
    w = DemoWriter(path, SPEC, fold_every=100)
    w.save(episode(3, 0))
    w.save(episode(4, 1))
    digest = sha(path)
    # the writer is still open (as if killed now): the reader sees both, modifies nothing
    with DemoReader(path) as r:
        assert r.demos == ["demo_0", "demo_1"] and r.pending == 2
        assert len(r.episode("demo_1")) == 4
    assert sha(path) == digest
    w.close()
    with DemoReader(path) as r:
        assert r.pending == 0 and len(r) == 2


# --- bad inputs through the CLI --------------------------------------------------------------------
def _bad_files(tmp_path):
    good = make_file(tmp_path / "good.hdf5")
    out = {}
    (tmp_path / "text.hdf5").write_text("this is not an HDF5 file\n" * 10)
    out["not HDF5"] = (tmp_path / "text.hdf5", "not an HDF5 file")
    data = good.read_bytes()
    (tmp_path / "trunc.hdf5").write_bytes(data[: len(data) // 2])
    out["truncated"] = (tmp_path / "trunc.hdf5", "truncated")
    with h5py.File(tmp_path / "nodata.hdf5", "w") as f:
        f.create_group("other")
    out["no data"] = (tmp_path / "nodata.hdf5", "no 'data' group")

    def edited(name, edit):
        p = tmp_path / name
        p.write_bytes(data)
        with h5py.File(p, "r+") as f:
            edit(f)
        return p

    def short_obs(f):
        v = f["data/demo_1/obs/b"][()]
        del f["data/demo_1/obs/b"]
        f["data/demo_1/obs/b"] = v[:-1]
    out["length"] = (edited("len.hdf5", short_obs), "demo_1, key obs/b: has 4 steps, expected 5")

    def wide_actions(f):
        a = f["data/demo_1/actions"][()]
        del f["data/demo_1/actions"]
        f["data/demo_1/actions"] = np.concatenate([a, a[:, :1]], axis=1)
    out["action size"] = (edited("act.hdf5", wide_actions), "demo_1, key actions: shape (5, 8), expected (T, 7)")

    def nan_obs(f):
        f["data/demo_1/obs/a"][3] = np.nan
    out["NaN"] = (edited("nan.hdf5", nan_obs), "demo_1, key obs/a: NaN or inf at step 3")
    return out


def _cli(args, capsys):
    code = run_cli(args)
    captured = capsys.readouterr()
    return code, captured.err.strip()


@pytest.mark.parametrize("case", ["missing", "not HDF5", "truncated", "no data", "length", "action size", "NaN"])
def test_bad_input_is_one_line_exit_2_and_unchanged(tmp_path, capsys, case):
    if case == "missing":
        path, expected = tmp_path / "nope.hdf5", "no such file"
    else:
        path, expected = _bad_files(tmp_path)[case]
    digest = sha(path) if path.exists() else None
    for args in (["data", "info", str(path)], ["data", "split", str(path)],
                 ["data", "merge", str(path), "-o", str(tmp_path / "m.hdf5")]):
        code, err = _cli(args, capsys)
        assert code == 2, (args, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert expected in err and path.name in err, err
    if digest is not None:
        assert sha(path) == digest
    assert not (tmp_path / "m.hdf5").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(DatasetError, match=expected.split(":")[0]):
        DemoDataset(path)


def test_cli_info_split_merge_recover(tmp_path, capsys):
    a = make_file(tmp_path / "a.hdf5", lengths=(3, 5, 4, 6))
    b = make_file(tmp_path / "b.hdf5", lengths=(2,))
    code, _ = _cli(["data", "split", str(a), "--valid", "0.25", "--seed", "1"], capsys)
    assert code == 0
    with DemoReader(a) as r:
        assert len(r.splits["train"]) == 3 and len(r.splits["valid"]) == 1
        assert sorted(r.splits["train"] + r.splits["valid"]) == sorted(r.demos)
    with h5py.File(a, "r") as f:
        assert f["mask/valid"].dtype.kind == "S"
    assert run_cli(["data", "merge", str(a), str(b), "-o", str(tmp_path / "m.hdf5")]) == 0
    summary = info(tmp_path / "m.hdf5")
    assert summary["demos"] == 5 and summary["total_steps"] == 20 and summary["splits"] == {"train": 3, "valid": 1}
    assert summary["length_min"] == 2 and summary["length_max"] == 6 and summary["sources"] == {"expert": 5}
    assert summary["obs_keys"] == {"a": [1], "b": [2]} and len(summary["action_max"]) == 7
    with DemoReader(tmp_path / "m.hdf5") as r:
        assert r.attrs("demo_4")["merged_from"] == "b.hdf5:demo_0"
        np.testing.assert_array_equal(r.episode("demo_4").actions, DemoReader(b).episode("demo_0").actions)
    code, err = _cli(["data", "merge", str(a), str(b), "-o", str(tmp_path / "m.hdf5")], capsys)
    assert code == 2 and "already exists" in err
    other = make_file(tmp_path / "s.hdf5", spec=EnvSpec(task="Stack"))
    code, err = _cli(["data", "merge", str(a), str(other), "-o", str(tmp_path / "m2.hdf5")], capsys)
    assert code == 2 and "task" in err and not (tmp_path / "m2.hdf5").exists()
    code, out = run_cli(["data", "info", str(a)]), capsys.readouterr().out
    assert code == 0 and "Lift" in out
    w = DemoWriter(b, SPEC, append=True, fold_every=10)
    w.save(episode(3, 5))
    w._lock.release(remove_journal_if_empty=False)  # as if killed
    assert info(b)["pending_in_journal"] == 1
    assert run_cli(["data", "recover", str(b)]) == 0
    assert info(b)["pending_in_journal"] == 0 and info(b)["demos"] == 2


def test_merge_skips_demos_an_earlier_file_already_holds(tmp_path, capsys, caplog):
    first = make_file(tmp_path / "first.hdf5", lengths=(3, 5))
    second = make_file(tmp_path / "second.hdf5", lengths=(3, 5, 4))  # its demo_0 and demo_1 are first's
    assert run_cli(["data", "merge", str(first), str(second), "-o", str(tmp_path / "m.hdf5")]) == 0
    assert "3 demos from 2 files (2 duplicate(s) of earlier demos skipped)" in capsys.readouterr().out
    assert "second.hdf5:demo_0 = first.hdf5:demo_0" in caplog.text
    with DemoReader(tmp_path / "m.hdf5") as r:
        assert [r.attrs(d)["merged_from"] for d in r.demos] == ["first.hdf5:demo_0", "first.hdf5:demo_1",
                                                                "second.hdf5:demo_2"]
    # the same seed recorded again (other states) is a new demonstration, not a copy
    again = tmp_path / "again.hdf5"
    with DemoWriter(again, SPEC) as w:
        w.save(episode(3, 0, base=7.0))
    assert merge([first, again], tmp_path / "m2.hdf5")["demos"] == 3


# --- DemoDataset -----------------------------------------------------------------------------------
def test_dataset_windows_and_padding(tmp_path):
    path = make_file(tmp_path / "d.hdf5", lengths=(3, 5))  # demo_1's actions start at 100
    ds = DemoDataset(path, obs_horizon=2, action_horizon=3)
    assert len(ds) == 8 and ds.obs_dim == 3 and ds.action_dim == 7 and ds.obs_keys == ["a", "b"]
    batch = ds.get_batch(torch.tensor([0, 2, 3, 7]))
    assert batch["obs"].shape == (4, 2, 3) and batch["obs"].dtype == torch.float32
    assert batch["actions"].shape == (4, 3, 7) and batch["action_mask"].dtype == torch.bool
    # obs history: first step repeated at an episode start; 'a' = base + 10 t
    assert batch["obs"][:, :, 0].tolist() == [[0, 0], [10, 20], [100, 100], [130, 140]]
    # action chunk: last action repeated at an episode end, masked
    assert batch["actions"][:, :, 0].tolist() == [[0, 1, 2], [2, 2, 2], [100, 101, 102], [104, 104, 104]]
    assert batch["action_mask"].tolist() == [[True] * 3, [True, False, False], [True] * 3, [True, False, False]]
    item = ds[2]
    assert torch.equal(item["obs"], batch["obs"][1]) and torch.equal(item["actions"], batch["actions"][1])
    s = ds.stats
    assert set(s) == {"obs_mean", "obs_std", "obs_min", "obs_max", "action_mean", "action_std", "action_min", "action_max"}
    assert all(v.dtype == np.float32 for v in s.values()) and s["action_min"][0] == 0 and s["action_max"][0] == 104
    # keys in the order asked for, and a key subset
    assert DemoDataset(path, obs_keys=["b"]).obs_dim == 2
    with pytest.raises(DatasetError, match=r"no observation key\(s\) \['zz'\]; available: \['a', 'b'\]"):
        DemoDataset(path, obs_keys=["zz"])


def test_dataset_splits_and_images(tmp_path):
    path = tmp_path / "img.hdf5"
    with DemoWriter(path, SPEC) as w:
        for i in range(3):
            ep = episode(4, i, base=100 * i)
            ep.obs["agentview_image"] = np.full((4, 6, 6, 3), i, np.uint8)
            ep.next_obs["agentview_image"] = ep.obs["agentview_image"]
            w.save(ep)
    with pytest.raises(DatasetError, match="split 'train' does not exist; splits: none"):
        DemoDataset(path, split="train")
    split(path, valid_fraction=0.34, seed=0)
    with h5py.File(path, "r+") as f:
        del f["mask/valid"]
        f["mask/valid"] = np.array([], dtype="S8")
    with pytest.raises(DatasetError, match=r"split 'valid' is empty; splits: train \(2\), valid \(0\)"):
        DemoDataset(path, split="valid")
    ds = DemoDataset(path, obs_keys=["a", "agentview_image"], split="train", obs_horizon=2)
    assert ds.obs_dim == 1 and len(ds) == 8
    batch = ds.get_batch([0, 5])
    assert batch["images"]["agentview_image"].shape == (2, 2, 6, 6, 3)
    assert batch["images"]["agentview_image"].dtype == torch.uint8
    ds = DemoDataset(path, demos=["demo_2"])
    assert len(ds) == 4 and ds.actions[0, 0] == 200


def test_reads_a_robomimic_file(tmp_path):
    """robomimic's layout (no takeover attributes): env_args, demo_<i> with num_samples, obs, next_obs, masks."""
    path = tmp_path / "low_dim.hdf5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {"robots": ["Panda"]}})
        data.attrs["total"] = 9
        for i, T in enumerate((4, 5)):
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = T
            g["actions"] = rng.uniform(-1, 1, (T, 7))
            g["states"] = rng.normal(size=(T, 10))
            g["rewards"] = np.zeros(T)
            g["dones"] = np.zeros(T, np.int64)
            for prefix in ("obs", "next_obs"):
                g[f"{prefix}/robot0_eef_pos"] = rng.normal(size=(T, 3))
                g[f"{prefix}/object"] = rng.normal(size=(T, 10))
        f["mask/train"] = np.array([b"demo_0"])
        f["mask/valid"] = np.array([b"demo_1"])
    digest = sha(path)
    with DemoReader(path) as r:
        assert r.spec.task == "Lift" and r.demos == ["demo_0", "demo_1"] and r.action_dim == 7
        assert r.obs_keys == ["object", "robot0_eef_pos"] and r.splits == {"train": ["demo_0"], "valid": ["demo_1"]}
        assert len(r.episode("demo_1")) == 5
    ds = DemoDataset(path, split="valid", obs_horizon=2)
    assert len(ds) == 5 and ds.obs_dim == 13
    assert info(path)["demos"] == 2
    assert sha(path) == digest
