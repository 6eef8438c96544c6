"""`takeover augment DATA --method ccil -o AUG.hdf5`: a new file with the input's demos plus CCIL's
corrective labels. Options, defaults and help come from `CcilConfig`. `--method generate -n N` makes N
new demos from the input's (object-centric generation; cli/generate.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from takeover.correction.ccil_config import CcilConfig

from .app import app, fail
from .options import config_options, limits
from .vocabulary import help_text, out_option


@app.command()
@config_options(CcilConfig, decls={"lipschitz_k": ("--lipschitz-k", "-k"), "obs_keys": ("--obs-key",)},
                replace={"obs_keys": {"help": "Low-dim observation key to model (repeat); default: the training "
                                              "default keys present in the file."}})
def augment(
    settings: dict,
    data: Path = typer.Argument(..., help="Demonstration HDF5 file (never modified)."),
    out: Path = out_option("the new HDF5 file: the input's demos and the label demos."),
    method: str = typer.Option("ccil", help="Augmentation: ccil (learned dynamics, corrective labels) or generate "
                               "(object-centric demo generation, MimicGen-style: new successful demos from the "
                               "successful ones). Noise-injected collection (DART) is `takeover collect --noise`."),
    report: Optional[Path] = typer.Option(None, help="Also write the report (model errors, Lipschitz estimates, "
                                          "label counts per filter) to this JSON file."),
    # --method generate (cli/generate.py)
    n: Optional[int] = typer.Option(None, "-n", "--episodes",
                                    help=help_text("--episodes", "generate: successful demos to write.")),
    select: str = typer.Option("nearest", help="generate: source segment per subtask, 'nearest' (reference-object "
                               "pose) or 'random'."),
    action_noise: float = typer.Option(0.05, help="generate: std of Gaussian noise on executed arm actions.",
                                       callback=limits(min=0)),
    workers: int = typer.Option(1, help="generate: worker processes (0 or 1: this process).",
                                callback=limits(min=0)),
    bridge_steps: int = typer.Option(5, help="generate: minimum interpolation steps into each segment.",
                                     callback=limits(min=1)),
    first_seed: Optional[int] = typer.Option(None, help="generate: seed of the first new episode (default "
                                             "4000000, apart from evaluation and DAgger seeds).",
                                             callback=limits(min=0)),
    resume: bool = typer.Option(False, "--resume", help="generate: continue a killed generation into OUT."),
    subtask_override: Optional[Path] = typer.Option(None, help='generate: JSON {"demo_3": [end step per subtask]} '
                                                    "correcting the found subtask boundaries."),
):
    """Learn the dynamics from the demos, generate corrective labels where the model is trustworthy,
    and write them with the demos to a new file (`source=ccil`)."""
    if method == "generate":
        from .generate import run_generate

        return run_generate(data, out, episodes=n, select=select, noise=action_noise, workers=workers,
                            bridge_steps=bridge_steps, first_seed=first_seed, resume=resume,
                            subtask_override=subtask_override, report=report)
    from takeover.correction.ccil_augment import augment_ccil

    if method != "ccil":
        fail(f"--method {method!r}: augmentations are 'ccil' and 'generate' (DART noise: takeover collect --noise)")
    if report is not None and report.exists():
        fail(f"--report {report}: already exists; choose a new file")
    cfg = CcilConfig(**{**settings, "obs_keys": settings["obs_keys"] or None})
    result = augment_ccil(data, out, cfg, progress=lambda line: typer.echo(line, err=True))
    fit = result["dynamics"]
    valid = "-" if fit["valid_error_mean"] is None else f"{fit['valid_error_mean']:.3f}"
    typer.echo(f"dynamics: one-step error train {fit['train_error_mean']:.3f}, valid {valid} (no model: "
               f"{fit['zero_model_error_mean']:.3f}); Lipschitz bound {fit['lipschitz_bound']:.2f}, local mean "
               f"{fit['local_lipschitz_mean']:.2f} max {fit['local_lipschitz_max']:.2f}")
    for kind, c in result["counts"].items():
        typer.echo(f"{kind}: kept {c['kept']} of {c['tried']} (dropped: model error {c['model_error']}, "
                   f"not converged {c['not_converged']}, too far {c['too_far']})")
    typer.echo(f"wrote {out}: {result['output_demos']} demos ({result['kept']} ccil labels)")
    if report is not None:
        report.write_text(json.dumps(result, indent=2))
