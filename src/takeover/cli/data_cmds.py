"""`takeover data ...`: inspect, split, merge, import, export, replay and recover demonstration files. Each
command is a thin call into takeover.datasets; errors are DatasetErrors printed as one line (exit 2)."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .app import data_app, fail
from .vocabulary import limits, camera_option, help_text, out_option, parse_size, size_option

_console = Console(stderr=True)


@contextlib.contextmanager
def _progress(label: str, total: int | None):
    """A rich progress bar on stderr (quiet when stderr is not a terminal); yields advance(name)."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=_console, transient=True, disable=not _console.is_terminal) as bar:
        task = bar.add_task(label, total=total)
        yield lambda *_: bar.advance(task)


def _count_demos(path) -> int | None:
    from takeover.datasets import DemoReader

    with DemoReader(path) as r:
        return len(r)


@data_app.command("info")
def info_cmd(file: Path = typer.Argument(..., help="Demonstration file (HDF5)."),
             as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
             no_check: bool = typer.Option(False, "--no-check", help="Skip the per-demo NaN/length check.")):
    """Summarise a demonstration file: demos, steps, lengths, observation keys, action range, sources, splits."""
    from takeover.datasets import info

    with _progress("checking demos", _count_demos(file)) as advance:
        summary = info(file, validate=not no_check, progress=advance)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    console = Console()
    table = Table(title=str(file), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("task", str(summary["task"]))
    table.add_row("demos", f"{summary['demos']}" + (f" ({summary['pending_in_journal']} in the journal: folded "
                                                    f"when their writer closes, or by `takeover data recover`)" if summary["pending_in_journal"] else ""))
    table.add_row("steps", str(summary["total_steps"]))
    table.add_row("length min / mean / max", f"{summary['length_min']} / {summary['length_mean']:.1f} / {summary['length_max']}")
    table.add_row("successes", f"{summary['successes']} of {summary['demos']}")
    table.add_row("sources", ", ".join(f"{k}: {v}" for k, v in summary["sources"].items()) or "-")
    table.add_row("splits", ", ".join(f"{k}: {v}" for k, v in summary["splits"].items()) or "none")
    table.add_row("observations", "\n".join(f"{k} {tuple(v)}" for k, v in summary["obs_keys"].items()) or "-")
    ends = summary.get("subtask_ends") or {}
    if ends:
        shown = [f"{name}: {' '.join(map(str, e))}" for name, e in list(ends.items())[:5]]
        table.add_row("subtask ends", "\n".join(shown) + (f"\n... ({len(ends)} demos)" if len(ends) > 5 else ""))
    table.add_row("action dim", str(summary["action_dim"]))
    table.add_row("action min", " ".join(f"{x:+.3f}" for x in summary["action_min"]))
    table.add_row("action max", " ".join(f"{x:+.3f}" for x in summary["action_max"]))
    console.print(table)


@data_app.command("split")
def split_cmd(file: Path = typer.Argument(..., help="Demonstration file; gets mask/train and mask/valid."),
              valid: float = typer.Option(0.1, "--valid", help="Fraction of demos for validation.",
                                          callback=limits(min=0, below=1)),
              seed: int = typer.Option(0, "--seed", help="Seed of the random split.")):
    """Write a seeded train/valid split into the file (copy-on-write, atomic)."""
    from takeover.datasets import split

    result = split(file, valid_fraction=valid, seed=seed)
    typer.echo(f"{file}: {len(result['train'])} train, {len(result['valid'])} valid demos")


@data_app.command("merge")
def merge_cmd(inputs: list[Path] = typer.Argument(..., help="Files to merge (same task, keys, action size)."),
              out: Path = out_option("the new file to write (must not exist).")):
    """Merge demonstration files into a new one; demos are renumbered, attributes and splits kept."""
    from takeover.datasets import merge

    total = sum(_count_demos(p) for p in inputs)
    with _progress("merging", total) as advance:
        result = merge(inputs, out, progress=advance)
    skipped = len(result["duplicates_skipped"])
    typer.echo(f"{out}: {result['demos']} demos from {len(inputs)} files"
               + (f" ({skipped} duplicate(s) of earlier demos skipped)" if skipped else ""))


def _consistency_table(title: str, rows: list[dict]) -> Table:
    table = Table(title=title)
    for col in ("demo", "steps", "arm joint error / step motion", "velocity error / step change", "max abs error"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["demo"], str(r["steps"]), f"{r['qpos_rel']:.1%}", f"{r['qvel_rel']:.1%}", f"{r['max_abs_error']:.2e}")
    return table


def _relabel_table(title: str, report: dict) -> Table:
    table = Table(title=title)
    for col in ("demo", "steps", "joint error / motion (before -> after)", "open-loop joint error, rad (before -> after)",
                "success (recorded / before / after)"):
        table.add_column(col, justify="right")
    yes = {True: "yes", False: "no"}
    for r in report["demos"]:
        b, a, ob, oa = r["before"], r["after"], r["open_loop_before"], r["open_loop_after"]
        table.add_row(r["demo"], str(r["steps"]), f"{b['qpos_rel']:.1%} -> {a['qpos_rel']:.1%}",
                      f"{ob['joint_error_mean']:.3f} -> {oa['joint_error_mean']:.3f}",
                      f"{yes[r['recorded_success']]} / {yes[ob['success']]} / {yes[oa['success']]}")
    return table


def _print_relabel(report: dict):
    Console().print(_relabel_table("relabelled actions (one step from each recorded state; open loop from the first)", report))
    typer.echo(f"relabelling: {report['steps']} steps, {report['simulated_steps_per_step']:.1f} simulated steps and "
               f"{report['cpu_seconds_per_step'] * 1000:.0f} CPU ms per step, "
               f"{report['seconds_wall']:.0f} s on {report['workers']} worker(s)")


@data_app.command("import-robosuite")
def import_cmd(raw: Path = typer.Argument(..., help="robosuite collect_human_demonstrations.py output (demo.hdf5)."),
               out: Path = out_option("the new takeover demonstration file."),
               no_step_check: bool = typer.Option(False, "--no-step-check",
                                                  help="Skip measuring how well the actions fit today's controller (faster)."),
               strict: bool = typer.Option(False, "--strict", help="Refuse demos whose actions do not reproduce their "
                                           "states under today's controller."),
               relabel: bool = typer.Option(False, "--relabel", help="Replace the actions by ones today's controller turns "
                                            "into the recorded motion (originals kept as original_actions)."),
               workers: int = typer.Option(2, "--workers", help="Processes for --relabel.", callback=limits(min=1)),
               obs_camera: list[str] = typer.Option([], "--obs-camera", help=help_text("--obs-camera", "also render this "
                                                    "camera as image observations (repeat)."))):
    """Import robosuite's raw demonstrations: observations regenerated by replaying every state."""
    from takeover.datasets import import_robosuite
    from takeover.datasets.robosuite_import import count_raw_demos

    with _progress("replaying demos", count_raw_demos(raw)) as advance:
        report = import_robosuite(raw, out, check_steps=not no_step_check, strict=strict, relabel=relabel,
                                  workers=workers, cameras=tuple(obs_camera), progress=advance)
    if report.get("consistency"):
        Console().print(_consistency_table("recorded actions under today's controller (one step from each recorded state)",
                                           report["consistency"]))
        worst = max(r["qpos_rel"] for r in report["consistency"])
        if worst > 0.05 and not relabel:
            typer.echo(f"the recorded actions move the arm up to {worst:.0%} of a step away from the recorded motion "
                       f"(another robosuite version or controller?): `takeover data relabel` fits actions to today's controller")
    if relabel:
        _print_relabel(report["relabel"])
    typer.echo(f"{out}: {report['demos']} demos, {report['steps']} steps imported "
               f"(state round trip max error {report['roundtrip_max_error']:.2e}; model: {report['model']})")


@data_app.command("relabel")
def relabel_cmd(file: Path = typer.Argument(..., help="Demonstration file with states (ours, or imported)."),
                out: Path = out_option("the new file with the relabelled actions."),
                workers: int = typer.Option(2, "--workers", help="Worker processes.", callback=limits(min=1))):
    """Fit, per step, the action today's controller turns into the recorded motion; originals kept as original_actions."""
    from takeover.datasets.relabel import relabel

    with _progress("relabelling demos", _count_demos(file)) as advance:
        report = relabel(file, out, workers=workers, progress=advance)
    _print_relabel(report)
    typer.echo(f"{out}: {len(report['demos'])} demos relabelled")


@data_app.command("replay")
def replay_cmd(file: Path = typer.Argument(..., help="Demonstration file."),
               demo: str = typer.Option(..., "--demo", help="Demo number or name (3 or demo_3)."),
               video: Path = typer.Option(..., "--video", help=help_text("--video", "H.264.")),
               camera: str = camera_option("the view rendered."),
               size: str = size_option("of the frames, N or WxH pixels (at least 8)."),
               fps: int = typer.Option(20, "--fps", help="Frames per second of the video.", callback=limits(min=1))):
    """Render a demo by replaying its recorded states into an mp4."""
    from takeover.datasets import replay_video

    with _progress("rendering", None) as advance:
        path = replay_video(file, demo, video, camera=camera, size=parse_size(size, minimum=8), fps=fps,
                            progress=advance)
    typer.echo(f"{path}")


@data_app.command("recover")
def recover_cmd(file: Path = typer.Argument(..., help="Demonstration file whose writer was interrupted.")):
    """Fold saved episodes left in the journal by an interrupted writer into the file."""
    from takeover.datasets import recover

    names = recover(file)
    typer.echo(f"{file}: recovered {len(names)} episode(s)" + (f" ({', '.join(names)})" if names else ""))


@data_app.command("export")
def export_cmd(file: Path = typer.Argument(..., help="Demonstration file (HDF5) to export."),
               fmt: str = typer.Option(..., "--format", help="Output format: lerobot (a LeRobotDataset v3.0 folder)."),
               out: Path = out_option("the new folder to write (must not exist)."),
               fps: int = typer.Option(None, "--fps", help="Frame rate of the dataset (default: the file's control frequency).",
                                       callback=limits(min=1)),
               task_text: str = typer.Option(None, "--task-text", help="The task's text (default: a sentence for the file's task)."),
               pix_fmt: str = typer.Option("yuv444p", "--pix-fmt", help="Video pixel format: yuv444p (near-lossless) or "
                                           "yuv420p (smaller, plays in browsers).",
                                           callback=limits(choices=["yuv444p", "yuv420p"]))):
    """Export a demonstration file for another framework: LeRobotDataset v3.0 (parquet frames, mp4 cameras)."""
    from takeover.datasets.lerobot_export import export_lerobot

    if fmt != "lerobot":
        fail(f"--format must be lerobot (a LeRobotDataset v3.0 folder), got {fmt!r}")
    with _progress("exporting demos", _count_demos(file)) as advance:
        result = export_lerobot(file, out, fps=fps, task_text=task_text, pix_fmt=pix_fmt, progress=advance)
    splits = ", ".join(f"{k} {v}" for k, v in result["splits"].items())
    typer.echo(f"{out}: {result['episodes']} episodes, {result['frames']} frames at {result['fps']} fps "
               f"(LeRobotDataset v3.0; splits {splits}; task {result['task']!r})")


@data_app.command("import-lerobot")
def import_lerobot_cmd(folder: Path = typer.Argument(..., help="LeRobotDataset v3.0 folder (meta/info.json, data/, videos/)."),
                       out: Path = out_option("the new takeover demonstration file."),
                       task: str = typer.Option(None, "--task", help="The takeover task a dataset from elsewhere belongs "
                                                "to (a takeover export names its own).")):
    """Import a LeRobotDataset v3.0 folder: a takeover export comes back exact, others as observations and actions."""
    from takeover.datasets.lerobot_import import import_lerobot

    with _progress("importing episodes", None) as advance:
        result = import_lerobot(folder, out, task=task, progress=advance)
    how = "exact (states included)" if result["exact"] else "observations and actions, no simulator states"
    typer.echo(f"{out}: {result['demos']} demos, {result['frames']} frames imported, {how}")


@data_app.command("segment")
def segment_cmd(file: Path = typer.Argument(..., help="Demonstration file of a task with subtask declarations."),
                override: Path = typer.Option(None, "--override", help='JSON {"demo_3": [end step per subtask]} '
                                              "replacing the found boundaries of those demos."),
                dry_run: bool = typer.Option(False, "--dry-run", help="Print the boundaries, change nothing.")):
    """Find each successful demo's object-centric subtask boundaries by replaying its states and store them
    in the file (demo attribute subtask_ends; `takeover data info` shows them, demo generation uses them)."""
    from takeover.correction.segments import SUBTASK_ENDS_ATTR, load_library
    from takeover.datasets.tools import set_demo_attrs

    lib = load_library(file, override, recompute=True)
    names = [s.name for s in lib.subtasks]
    for demo, ends in lib.ends.items():
        typer.echo(f"{demo}: " + ", ".join(f"{n} ends at {e}" for n, e in zip(names, ends)))
    for demo, why in lib.left_out.items():
        typer.echo(f"{demo}: left out ({why})")
    if not dry_run:
        set_demo_attrs(file, {demo: {SUBTASK_ENDS_ATTR: ends} for demo, ends in lib.ends.items()})
        typer.echo(f"{file}: stored the subtask ends of {len(lib.ends)} demos")
