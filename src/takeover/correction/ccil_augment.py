"""`augment_ccil(in_path, out_path, config) -> report`: a new demonstration file holding the input's
demos and CCIL's corrective labels (ccil.py) as demos with `source="ccil"`; the input is never touched.

What a label demo holds (docs/reference/formats.md layout, so every head and robomimic's reader take it):
- observations: only the low-dim keys the dynamics model predicts (`config.obs_keys`, default the
  training default); the copied demos keep the same keys, so the file trains on its own. Other keys
  (joint readings, camera images) are left out of the output: CCIL cannot generate them.
- one label = one demo of up to `history` steps: the label (s_G, a) last; before it the expert's
  previous observations shifted by the label's offset s_G - s*_t, so a head with obs_horizon > 1 sees
  the expert's motion (its velocity) arriving at s_G, and the demo attribute `history_steps` says
  those leading steps are observation history, never training targets (datasets/labels.py). A label at
  an episode's first step has no history; the dataset repeats it, as for any first step.
- next_obs: the shifted expert observations, and for the label the expert state its action leads
  to (the model's claim). actions before the label: the expert's (not targets).
- states: CCIL makes observations, not simulator states. `states` holds the expert's MuJoCo state at
  the steps the label was derived from (so replaying a ccil demo shows the expert's scene, not s_G);
  attributes `ccil_label` (backtrack | disturbed), `from_demo` (its name in the output), `from_step`, `success=False`, and an
  empty `model_file` (the source demo has it).
- masks: when the input has a `train` split, only its demos feed the model and the labels, the
  input's masks are carried over, and every label demo joins `train`.

The file is written through DemoWriter under a temporary name and renamed when complete, so a crash
leaves no half-written output; the report is also stored as the data attribute `ccil_report`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np

from takeover.datasets import DemoReader, DemoWriter
from takeover.datasets.episode import Episode
from takeover.datasets.errors import DatasetError
from takeover.datasets.labels import intervention_steps
from takeover.datasets.schema import is_image_key, sort_demos
from takeover.datasets.storage import journal_dir
from takeover.policies.train import DEFAULT_OBS_KEYS

from .ccil import FILTERS, emptying_filter, generate_labels
from .ccil_config import CcilConfig
from .dynamics import fit_dynamics
from .errors import CorrectionError

log = logging.getLogger(__name__)



@dataclasses.dataclass
class _Demos:
    """The source demos flattened: per-transition arrays and where each came from."""
    names: list
    obs: list  # per demo (T, D) flat
    next_obs: list
    actions: list  # labels
    executed: list  # what ran (executed_actions where stored)
    states: list
    label_steps: list  # per demo (T,) bool: steps whose action is a label

    def stacked(self, what: str) -> np.ndarray:
        return np.concatenate(getattr(self, what))

    def where(self) -> tuple[np.ndarray, np.ndarray]:
        """(demo index, step) of every transition in stacked order."""
        lengths = [len(a) for a in self.actions]
        return (np.repeat(np.arange(len(lengths)), lengths), np.concatenate([np.arange(n) for n in lengths]))


def _pick_keys(reader: DemoReader, cfg: CcilConfig) -> list[str]:
    first = reader.group(reader.demos[0])
    available = sorted(first["obs"].keys()) if "obs" in first else []
    low_dim = [k for k in available if not is_image_key(k) and first["obs"][k].dtype != np.uint8]
    if not low_dim:
        raise CorrectionError(f"{reader.path}: no low-dim observations ({', '.join(available) or 'no obs at all'}); "
                              f"CCIL learns dynamics on low-dim observation vectors (record without --camera only, "
                              f"or with the low-dim keys too)")
    if cfg.obs_keys:
        bad = [k for k in cfg.obs_keys if k not in low_dim]
        if bad:
            raise CorrectionError(f"{reader.path}: observation key(s) {bad} are not low-dim keys of the file; "
                                  f"it has {', '.join(low_dim)}")
        return list(cfg.obs_keys)
    keys = [k for k in DEFAULT_OBS_KEYS if k in low_dim]
    return keys or low_dim


def _flat(obs: dict, keys) -> np.ndarray:
    return np.concatenate([np.asarray(obs[k], np.float32).reshape(len(obs[k]), -1) for k in keys], axis=1)


def _load(reader: DemoReader, names, keys) -> _Demos:
    out = _Demos([], [], [], [], [], [], [])
    for name in names:
        ep = reader.episode(name)
        if len(ep) < 1:
            continue
        if set(keys) - set(ep.next_obs):
            raise CorrectionError(f"{reader.path}, {name}: no next_obs for {sorted(set(keys) - set(ep.next_obs))}; "
                                  f"CCIL needs each step's next observation")
        group = reader.group(name)
        labels = intervention_steps(group, reader.attrs(name))
        out.names.append(name)
        out.obs.append(_flat(ep.obs, keys))
        out.next_obs.append(_flat(ep.next_obs, keys))
        out.actions.append(ep.actions.astype(np.float32))
        out.executed.append(np.asarray(ep.extras.get("executed_actions", ep.actions), np.float32))
        out.states.append(ep.states)
        out.label_steps.append(np.ones(len(ep), bool) if labels is None else np.asarray(labels, bool))
    return out


def _unflatten(flat: np.ndarray, keys, shapes) -> dict:
    out, col = {}, 0
    for k in keys:
        size = int(np.prod(shapes[k]))
        out[k] = flat[:, col:col + size].reshape((len(flat),) + tuple(shapes[k])).astype(np.float32)
        col += size
    return out


def _label_episode(demos: _Demos, d: int, t: int, s_g, action, target, kind: str, history: int, keys, shapes,
                   source_name: str) -> Episode:
    h = min(history, t + 1)
    steps = np.arange(t - h + 1, t + 1)
    offset = s_g - demos.obs[d][t]
    obs = demos.obs[d][steps] + offset
    obs[-1] = s_g
    next_obs = np.concatenate([demos.obs[d][steps[1:]] + offset, target[None]]) if h > 1 else target[None]
    actions = demos.actions[d][steps].copy()
    actions[-1] = action
    return Episode(actions=actions, states=demos.states[d][steps], obs=_unflatten(obs, keys, shapes),
                   next_obs=_unflatten(next_obs, keys, shapes), rewards=np.zeros(h, np.float32),
                   dones=np.zeros(h, np.uint8), model_file="",
                   attrs={"source": "ccil", "ccil_label": kind, "from_demo": source_name, "from_step": int(t),
                          "history_steps": int(h - 1), "success": False})


def _remove_partial(path: Path):
    if path.exists():
        path.unlink()
    jdir = journal_dir(path)
    if jdir.exists():
        shutil.rmtree(jdir)


def augment_ccil(in_path, out_path, config: CcilConfig | None = None, progress=None) -> dict:
    """Fit the dynamics, generate and filter the labels, write `out_path` (input demos + label demos).
    Raises CorrectionError (nothing written) on unusable input or when no label survives the filters."""
    cfg = config or CcilConfig()
    in_path, out_path = Path(in_path), Path(out_path)
    if out_path.exists():
        raise CorrectionError(f"{out_path}: already exists; choose a new output file (the input is never changed)")
    if out_path.resolve() == in_path.resolve():
        raise CorrectionError(f"{out_path}: the output must be a new file, not the input")
    started = time.time()
    try:
        reader = DemoReader(in_path)
    except DatasetError as exc:
        raise CorrectionError(str(exc)) from None
    with reader:
        if not reader.demos:
            raise CorrectionError(f"{in_path}: has no demos")
        if reader.spec is None:
            raise CorrectionError(f"{in_path}: no environment spec (takeover_spec / env_args); import it first "
                                  f"(takeover data import-robosuite)")
        keys = _pick_keys(reader, cfg)
        first = reader.group(reader.demos[0])["obs"]
        shapes = {k: tuple(first[k].shape[1:]) for k in keys}
        source_names = reader.splits.get("train") or list(reader.demos)
        demos = _load(reader, source_names, keys)
        S, A, S2 = demos.stacked("obs"), demos.stacked("actions"), demos.stacked("next_obs")
        X = demos.stacked("executed")
        if len(S) < 4:
            raise CorrectionError(f"{in_path}: {len(S)} transitions are too few to fit a dynamics model")
        if progress:
            progress(f"fitting the dynamics model on {len(S)} transitions ({S.shape[1]}-D "
                     f"observations: {', '.join(keys)})")
        model, fit, _ = fit_dynamics(S, X, S2, cfg)
        is_label = demos.stacked("label_steps")
        idx = np.flatnonzero(is_label)
        labels = generate_labels(model, S[idx], A[idx], S2[idx], cfg, executed=X[idx])
        labels.source_index = idx[labels.source_index]
        if len(labels) == 0:
            name, totals = emptying_filter(labels.counts)
            tried = sum(c["tried"] for c in labels.counts.values())
            removed = ", ".join(f"{f.replace('_', ' ')} {n}" for f, n in totals.items())
            hint = {"model_error": f"the model's one-step error is above --max-model-error {cfg.max_model_error} at "
                                   f"every expert step (dynamics valid error {fit.valid_error_mean or 0:.3f}); raise it or "
                                   f"train longer (--epochs)",
                    "not_converged": "the solver did not converge; use --solver newton or more --solver-iters",
                    "too_far": f"every label is farther than --epsilon {cfg.epsilon} from its expert state; "
                               f"raise --epsilon"}[name]
            raise CorrectionError(f"no CCIL label survived the filters ({tried} tried; removed by {removed}): "
                                  f"'{name}' removed the last ones: {hint}")
        demo_of, step_of = demos.where()
        out_spec = reader.spec
        if not any(is_image_key(k) for k in keys) and out_spec.camera_names:
            out_spec = dataclasses.replace(out_spec, camera_names=())
        layout = reader.object_layout if "object" in keys else None
        dropped_keys = sorted(set(reader.obs_keys) - set(keys))
        if dropped_keys:
            log.warning("%s: the output holds the dynamics keys only (%s); left out: %s", out_path, ", ".join(keys),
                        ", ".join(dropped_keys))
        report = {
            "input": str(in_path), "output": str(out_path), "config": cfg.to_dict(), "obs_keys": keys,
            "obs_dim": int(S.shape[1]), "source_demos": len(demos.names), "transitions": int(len(S)),
            "label_transitions": int(len(idx)), "dynamics": fit.to_dict(), "filters": list(FILTERS),
            "counts": labels.counts, "kept": int(len(labels)),
            "kept_by_kind": {k: int((labels.kind == k).sum()) for k in labels.counts},
            "label_distance_mean": float(labels.distance.mean()), "label_distance_max": float(labels.distance.max()),
            "keys_left_out": dropped_keys,
        }
        tmp = out_path.with_name(out_path.name + ".ccil-partial")
        _remove_partial(tmp)
        try:
            renamed = _write(reader, tmp, out_spec, layout, keys, shapes, demos, labels, demo_of, step_of, cfg, progress)
            report["output_demos"] = len(renamed) + len(labels)
            report["seconds"] = round(time.time() - started, 1)
            _finish(tmp, reader.splits, renamed, report)
            os.replace(tmp, out_path)
        except BaseException:
            _remove_partial(tmp)
            raise
    return report


def _write(reader, tmp, spec, layout, keys, shapes, demos, labels, demo_of, step_of, cfg, progress) -> dict:
    """Copy the input's demos, then the label demos. Returns {input name: output name}."""
    renamed = {}
    with DemoWriter(tmp, spec, object_layout=layout, journal_limit=512) as writer:
        for name in reader.demos:
            ep = reader.episode(name)
            ep.obs = {k: ep.obs[k] for k in keys}
            ep.next_obs = {k: ep.next_obs[k] for k in keys if k in ep.next_obs}
            renamed[name] = writer.save(ep)
        if progress:
            progress(f"writing {len(labels)} label demos")
        for i in range(len(labels)):
            j = int(labels.source_index[i])
            writer.save(_label_episode(demos, int(demo_of[j]), int(step_of[j]), labels.obs[i], labels.actions[i],
                                       labels.next_obs[i], str(labels.kind[i]), cfg.history, keys, shapes,
                                       renamed[demos.names[int(demo_of[j])]]))
    return renamed


def _finish(tmp: Path, splits: dict, renamed: dict, report: dict):
    """Masks (the input's, renamed; label demos join `train`) and the report attribute."""
    with h5py.File(tmp, "a") as f:
        data = f["data"]
        data.attrs["ccil_report"] = json.dumps(report)
        if not splits:
            return
        new = set(data.keys()) - set(renamed.values())
        mask = f.require_group("mask")
        for split, names in splits.items():
            members = [renamed[n] for n in names if n in renamed] + (sort_demos(new) if split == "train" else [])
            mask.create_dataset(split, data=np.array([m.encode() for m in members], dtype="S"))
