"""Frame time of the live take-over window (HG-DAgger) with and without a background retrain running.

A virtual SDL gamepad drives the headless window (SDL dummy video): the policy drives, the "person"
pushes the stick for 6 of every 20 steps. `--retrain-every 1` starts a background retrain after the
first saved attempt; frames are labelled by whether the retrain process was running during them, so
both sets see the same session (and the same machine load, which is recorded: the bar is 50 ms p95).
Writes benchmarks/results/live_takeover.json.

    python benchmarks/live_takeover.py [--render-size 256] [--horizon 100] [--train-steps 200]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

TARGET_P95_MS = 50.0


def stats(ms) -> dict:
    a = np.asarray(ms, dtype=float)
    if not a.size:
        return {"frames": 0}
    return {"frames": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p95_ms": round(float(np.percentile(a, 95)), 2), "max_ms": round(float(a.max()), 2)}


def measure(tmp: Path, name: str, render_thread: bool, pad, args) -> dict:
    from takeover.correction.dagger import DaggerConfig, DaggerRun
    from takeover.correction.live import run_live
    from takeover.teleop import ActionGains
    from takeover.teleop.gamepad import GamepadDevice
    from takeover.teleop.session import RECORDING, Pacer, SessionConfig

    cfg = DaggerConfig(data=str(tmp / "demos.hdf5"), policy=str(tmp / "bc"), out=str(tmp / f"run_{name}"),
                       labeller="human", retrain_every=1, train_overrides={"steps": args.train_steps, "threads": 1})
    frames = {"no_retrain": [], "retrain_running": []}
    periods = {"no_retrain": [], "retrain_running": []}  # frame start to frame start
    info = {}

    def drive(session):
        live = session.live
        started = time.monotonic()
        swapped_at = last_start = None
        pacer = Pacer(session.period)  # as the window's own loop does
        while time.monotonic() - started < args.timeout:
            if session.state != RECORDING:
                pad.set_button(6, True)
                session.frame()
                pad.set_button(6, False)
                pacer.wait()
                last_start = None
                continue
            pad.set_axis(1, 0.6 if session.steps % 20 < 6 else 0.0)
            running = live.retrain.running
            frame_start = time.perf_counter()
            if last_start is not None:
                periods["retrain_running" if running else "no_retrain"].append((frame_start - last_start) * 1e3)
            last_start = frame_start
            session.frame()
            frames["retrain_running" if running and live.retrain.running else "no_retrain"].append(
                session.result.frame_ms[-1])
            pacer.wait()
            if swapped_at is None and len(live.state["checkpoints"]) > 1:
                swapped_at = time.monotonic()
                info["retrain_wall_s"] = round(swapped_at - started, 1)
            if swapped_at is not None and time.monotonic() - swapped_at > 5:
                break
        info["swapped"] = swapped_at is not None
        info["renders_per_frame"] = round(session.result.renders / max(1, session.result.frames), 3)
        info["planner"] = {"prefetched": session.planner.prefetched, "synchronous": session.planner.synchronous}
        info["attempts"] = live.counts.attempts

    run_live(DaggerRun(cfg), GamepadDevice(),
             SessionConfig(realtime=True, render_size=args.render_size, gains=ActionGains(gripper_mode="hold"),
                           render_thread=render_thread), drive=drive)
    return {"render_thread": render_thread, "no_retrain": stats(frames["no_retrain"]),
            "retrain_running": stats(frames["retrain_running"]),
            "period_ms": {k: stats(v) for k, v in periods.items()}, **info}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--demos", type=int, default=4)
    parser.add_argument("--policy-steps", type=int, default=300)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import torch

    torch.set_num_threads(1)
    from takeover.policies.train import TrainConfig, train
    from takeover.sim import EnvSpec
    from takeover.teleop._pygame import pygame
    from takeover.datasets.scripted_collection import collect_scripted
    from takeover.teleop.virtual_joystick import VirtualJoystick

    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        collect_scripted(EnvSpec(task="Lift", horizon=args.horizon), str(tmp / "demos.hdf5"), args.demos, workers=1)
        train(TrainConfig(data=str(tmp / "demos.hdf5"), out=str(tmp / "bc"), head="gmm", steps=args.policy_steps,
                          eval_episodes=0, threads=1))
        pygame.display.init()
        pad = VirtualJoystick().attach()
        try:
            # the window's render thread against rendering inside the frame, on the same policy and machine
            modes = {name: measure(tmp, name, render_thread, pad, args)
                     for name, render_thread in (("render_thread", True), ("render_in_loop", False))}
        finally:
            pad.detach()
    result = {"benchmark": "live_takeover", "render_size": args.render_size, "horizon": args.horizon,
              "policy": f"gmm, {args.policy_steps} steps on {args.demos} scripted demos",
              "retrain": f"{args.train_steps} steps, warm start, background process (SCHED_IDLE, 1 torch thread)",
              **modes, "target_p95_ms": TARGET_P95_MS, "control_period_ms": 50.0,
              "load_avg_1m_at_start": round(load_start, 2), "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
              "note": "frame = events + device + policy (prefetched on a thread) + env.step + HUD/display + recorder + "
                      "the render itself (render_in_loop; with render_thread it runs beside the loop and the newest "
                      "finished image is shown: renders_per_frame below 1 means the display ran slower than the control "
                      "loop), pacing excluded; period = frame start to frame start, paced at the control frequency as the "
                      "window is"}
    path = write_result("live_takeover", result, args.out)
    print(path)
    for name in modes:
        print(name, {k: modes[name][k] for k in ("no_retrain", "retrain_running")})


if __name__ == "__main__":
    main()
