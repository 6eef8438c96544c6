"""`takeover collect`: scripted demonstrations to HDF5."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from takeover.config import default_of
from takeover.sim.spec import EnvSpec
from takeover.sim.tasks import TASKS

from .app import app, fail
from .vocabulary import limits, help_text, horizon_option, out_option


@app.command()
def collect(
    task: str = typer.Option(default_of(EnvSpec, "task"), help=f"Task: {', '.join(TASKS)}."),
    expert: str = typer.Option("scripted", help="Who acts: 'scripted' (the task's scripted expert)."),
    n: int = typer.Option(50, "-n", "--episodes", help=help_text("--episodes", "demonstrations to save."),
                          callback=limits(min=1)),
    out: Path = out_option("the HDF5 file to write."),
    seed: Optional[int] = typer.Option(None, callback=limits(min=0),
                                       help="First episode seed (default 0; with --append, continues the file's seeds)."),
    workers: int = typer.Option(2, help="Worker processes (0: in this process).", callback=limits(min=0)),
    keep_failed: bool = typer.Option(False, "--keep-failed", help="Also save failed episodes (success=False)."),
    append: bool = typer.Option(False, "--append", help="Add to an existing file of the same task."),
    noise: Optional[str] = typer.Option(None, help="DART noise on executed actions: a std ('0.1'), per-dim stds "
                                        "('0.1,0.1,0.1,0,0,0,0') or a covariance .npy/.json file."),
    horizon: Optional[int] = horizon_option(),
    obs_camera: Optional[List[str]] = typer.Option(None, "--obs-camera", help=help_text(
        "--obs-camera", "also record this camera's images as obs/<camera>_image (repeat; e.g. agentview, "
                        "robot0_eye_in_hand).")),
    camera_size: int = typer.Option(default_of(EnvSpec, "camera_height"), callback=limits(min=8),
                                    help="Camera image height and width in pixels."),
):
    """Collect scripted-expert demonstrations (successful ones unless --keep-failed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from takeover.datasets.scripted_collection import collect_scripted

    if expert != "scripted":
        fail(f"unknown expert {expert!r}; available: scripted")
    if out.exists() and not append:
        fail(f"{out} exists; pass --append to add to it or choose another --out")
    spec = EnvSpec(task=task, horizon=horizon, camera_names=tuple(obs_camera or ()), camera_height=camera_size,
                   camera_width=camera_size)
    action_noise = None
    if noise:
        from takeover.sim.noise import ActionNoise

        action_noise = ActionNoise.from_option(noise, action_dim=7, seed=seed or 0)
    with Progress(TextColumn("[bold]collect {task.fields[task]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("tried {task.fields[tried]}"), TimeElapsedColumn(), transient=False) as bar:
        tid = bar.add_task("collect", total=n, task=task, tried=0)
        summary = collect_scripted(spec, str(out), n, seed=seed, workers=workers, keep_failed=keep_failed,
                                   append=append, action_noise=action_noise,
                                   progress=lambda saved, tried, res: bar.update(tid, completed=saved, tried=tried))
    typer.echo(f"saved {summary['saved']} demos to {out} ({summary['expert_successes']}/{summary['tried']} "
               f"expert episodes succeeded)")
    try:
        from takeover.cli.data_cmds import print_info
    except ImportError:  # the data commands are optional at this layer
        return
    print_info(out)
