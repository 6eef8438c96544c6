"""Augmentation methods (`takeover augment DATA --method NAME -o OUT`): each writes a new file of
demonstrations from DATA (never modifying it).

    ccil       learned dynamics, corrective labels (ccil_augment.py; CcilConfig)
    generate   object-centric demo generation, MimicGen-style (generation.py; GenerateConfig)

A method names its config class (a `Config`: the command's options are built from its fields), a run
function `run(data, out, cfg, *, resume, progress) -> report dict` that checks its inputs before
creating OUT, and `summary(report, out)`, the lines the command prints. Adding one is a module with those
and its entry in AUGMENT_METHODS. Import-light (the CLI reads the registry at start-up): the work
loads on use. `progress(text, done=None, total=None)`: a line, or a count towards a total.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from takeover.config import Config

from .ccil_config import CcilConfig
from .errors import CorrectionError
from .generation_config import GenerateConfig


@dataclass(frozen=True)
class AugmentMethod:
    name: str
    config: type[Config]
    run: Callable[..., dict]
    summary: Callable[[dict, Path], list[str]]  # (report, OUT) -> the lines printed
    help: str
    resumable: bool = False  # a killed run continues into its OUT with --resume


def run_ccil(data, out, cfg: CcilConfig, *, resume: bool = False, progress=None) -> dict:
    from .ccil_augment import augment_ccil

    return augment_ccil(data, out, cfg, progress=progress)


def ccil_summary(result: dict, out) -> list[str]:
    fit = result["dynamics"]
    valid = "-" if fit["valid_error_mean"] is None else f"{fit['valid_error_mean']:.3f}"
    lines = [f"dynamics: one-step error train {fit['train_error_mean']:.3f}, valid {valid} (no model: "
             f"{fit['zero_model_error_mean']:.3f}); Lipschitz bound {fit['lipschitz_bound']:.2f}, local mean "
             f"{fit['local_lipschitz_mean']:.2f} max {fit['local_lipschitz_max']:.2f}"]
    lines += [f"{kind}: kept {c['kept']} of {c['tried']} (dropped: model error {c['model_error']}, not converged "
              f"{c['not_converged']}, too far {c['too_far']})" for kind, c in result["counts"].items()]
    return lines + [f"wrote {out}: {result['output_demos']} demos ({result['kept']} ccil labels)"]


def run_generate(data, out, cfg: GenerateConfig, *, resume: bool = False, progress=None) -> dict:
    from .generation import check_output, generate
    from .segments import load_library

    data, out = Path(data), Path(out)
    if not data.exists():
        raise CorrectionError(f"{data}: no such file")
    check_output(out, resume)
    overrides = Path(cfg.subtask_override) if cfg.subtask_override else None
    library = load_library(data, overrides)  # every input problem is found before OUT is created
    count = progress and (lambda kept, tried: progress(f"generate {library.task}, tried {tried}", kept, cfg.episodes))
    result = generate(data, out, cfg, overrides=overrides, resume=resume, library=library, progress=count)
    return result


def generate_summary(result: dict, out) -> list[str]:
    failures = ", ".join(f"{k} {v}" for k, v in result["failures_by_subtask"].items())
    surplus = f", {result['surplus']} more successes than wanted dropped" if result["surplus"] else ""
    left_out = f", left out: {', '.join(result['left_out'])}" if result["left_out"] else ""
    return [f"{result['kept']} kept of {result['attempts']} attempts ({100 * result['success_rate']:.0f}% succeeded"
            f"{surplus}; failed at: {failures}); {result['demos_per_minute']:.1f} demos/min over "
            f"{result['seconds']:.0f} s",
            f"sources: {len(result['source_demos'])} demos{left_out}",
            f"wrote {out}: {result['total_in_file']} generated demos"]


AUGMENT_METHODS: dict[str, AugmentMethod] = {m.name: m for m in (
    AugmentMethod("ccil", CcilConfig, run_ccil, ccil_summary,
                  "learned dynamics, corrective labels where the model is trustworthy (source=ccil)"),
    AugmentMethod("generate", GenerateConfig, run_generate, generate_summary,
                  "object-centric demo generation, MimicGen-style: new successful demos from the successful ones",
                  resumable=True),
)}
