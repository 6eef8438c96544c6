"""`takeover augment DATA --method ccil -o AUG.hdf5`: a new file with the input's demos plus CCIL's
corrective labels. Options, defaults and help come from `CcilConfig`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from takeover.correction.ccil_config import CcilConfig

from .app import app, fail
from .options import config_options
from .vocabulary import out_option


@app.command()
@config_options(CcilConfig, decls={"lipschitz_k": ("--lipschitz-k", "-k"), "obs_keys": ("--obs-key",)},
                replace={"obs_keys": {"help": "Low-dim observation key to model (repeat); default: the training "
                                              "default keys present in the file."}})
def augment(
    settings: dict,
    data: Path = typer.Argument(..., help="Demonstration HDF5 file (never modified)."),
    out: Path = out_option("the new HDF5 file: the input's demos and the label demos."),
    method: str = typer.Option("ccil", help="Augmentation: ccil (learned dynamics, corrective labels). "
                               "Noise-injected collection (DART) is `takeover collect --noise`."),
    report: Optional[Path] = typer.Option(None, help="Also write the report (model errors, Lipschitz estimates, "
                                          "label counts per filter) to this JSON file."),
):
    """Learn the dynamics from the demos, generate corrective labels where the model is trustworthy,
    and write them with the demos to a new file (`source=ccil`)."""
    from takeover.correction.ccil_augment import augment_ccil

    if method != "ccil":
        fail(f"--method {method!r}: the only augmentation is 'ccil' (DART noise: takeover collect --noise)")
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
