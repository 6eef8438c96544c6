"""Live HG-DAgger: the policy drives in the window, a person takes over with the gamepad or keyboard.

    takeover dagger DATA --policy RUN --expert human --input gamepad --out RUN [--retrain-every N] [--resume]

It runs through the same `DaggerRun` as the headless paths (run folder, `data.hdf5` aggregate,
`dagger.json`, resume, retraining options): `run_live(DaggerRun(cfg), device)`.

- Who drives: `sim.agents.GatedTakeover` with the person's side from `teleop.takeover_control`
  (hold the take-over control, or push a stick past the deadzone on a gamepad; let go to hand back);
  the hand-over is seamless both ways (hold action then a ramp; the policy's queue and history reset).
- Every step stores `interventions`, `policy_actions` and `executed_actions`; each attempt is one
  episode (`source=dagger`, `round`, `labeller=human`, `success`), saved when success has held for
  `success_hold` steps, at the horizon, or on the save / reset control (discard retries the start).
  Only the person's steps are labels (datasets/labels.py).
- The policy's next action/chunk is computed on a thread while the frame renders
  (`policies.background.BackgroundPlanner`).
- `retrain_every=N`: after every N saved episodes a background process retrains on the aggregate
  (`retrain.py`); the new policy is swapped in between episodes and starts round k+1.
- report.md says what the live run did (`write_live_report`): attempts, the person's steps, take-overs
  per attempt, success with and without help, policy swaps, time in the window.
- Quit at any time: saved episodes are durable (DemoWriter's journal), the unfinished attempt is
  dropped, a running retrain is stopped; `--resume` continues (a stopped retrain restarts from its state).

Seeds: the n-th saved live episode starts from 3,000,000 + seed * 100,000 + n (a discard retries it).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from takeover.datasets import DemoReader, DemoWriter
from takeover.datasets.tools import add_to_split
from takeover.policies.background import BackgroundPlanner
from takeover.policies.checkpoint import load_checkpoint
from takeover.sim.agents import GatedTakeover
from takeover.sim.experts import EXPERT_SUCCESS_HOLD
from takeover.teleop.input_log import EVENTS_LOG_KEY, INPUT_LOG_KEY
from takeover.teleop.session import READY, RECORDING, RecordingSession, SessionConfig
from takeover.teleop.takeover_control import HumanTakeover, gripper_help
from takeover.teleop.window import DIM, FG, GREEN, RED, YELLOW

from .dagger import DaggerRun, labels_in
from .dagger_config import DAGGER_SEED_START, SEED_BLOCK
from .retrain import BackgroundRetrain
from .runs import write_atomic

log = logging.getLogger(__name__)

LOADED_NOTICE_S = 8.0  # the HUD highlights a freshly loaded policy this long
TAKEOVER_HELP = ["take over: hold it (pad: or push a stick)", "let go: the policy drives again",
                 "save/reset: keep the attempt; discard: retry"]


@dataclass
class SessionCounts:
    """What the HUD and dagger.json say about the person's attempts in this session."""
    attempts: int = 0
    successes: int = 0
    alone_attempts: int = 0  # attempts the policy drove alone (no take-over)
    alone_successes: int = 0
    round_labels: dict = field(default_factory=dict)  # round -> the person's steps saved
    round_episodes: dict = field(default_factory=dict)

    def add(self, k: int, episode):
        flags = episode.extras["interventions"]
        success = bool(episode.attrs.get("success"))
        self.attempts += 1
        self.successes += success
        if not flags.any():
            self.alone_attempts += 1
            self.alone_successes += success
        self.round_labels[k] = self.round_labels.get(k, 0) + int((flags != 0).sum())
        self.round_episodes[k] = self.round_episodes.get(k, 0) + 1

    def summary(self) -> dict:
        return {"attempts": self.attempts, "successes": self.successes, "alone_attempts": self.alone_attempts,
                "alone_successes": self.alone_successes}


class LiveTakeoverSession(RecordingSession):
    """The recording window with a policy at the wheel: `RecordingSession`'s frame loop, devices, pause
    on unplug, views and HUD; `LiveDagger` (below) owns the run's bookkeeping."""

    def __init__(self, config: SessionConfig, device, live: "LiveDagger", stick_takeover: bool, **kwargs):
        self.live = live
        self.planner = live.planner
        self._stick_takeover = stick_takeover
        self.episode_labels = 0
        super().__init__(config, device, **kwargs)
        self.episode_run.success_hold = live.success_hold

    def episode_agent(self):
        self.human = HumanTakeover(self.agent, stick_takeover=self._stick_takeover)
        self.gated = GatedTakeover(self.human.teacher, self.planner, self.human.gate)
        return self.gated

    @property
    def driver(self) -> str:
        return "person" if self.gated.teacher_driving else "policy"

    def new_episode(self, advance: bool):
        self.live.between_episodes(self)
        super().new_episode(advance)
        self.episode_labels = 0
        self.planner.prefetch(self.obs)

    def save_episode(self):
        if self.steps == 0:
            return
        k = self.live.round
        episode = self.episode_run.episode(source="dagger", round=k, labeller="human", device=self.device.name)
        name = self.writer.save(episode)
        self.result.saved.append(name)
        self.live.saved(k, name, episode)
        log.info("saved %s: %d steps, %d by the person, success=%s, seed=%d", name, len(episode),
                 labels_in(episode), episode.attrs["success"], self.seed)
        if self.config.episodes and len(self.result.saved) >= self.config.episodes:
            self.finished = True
            return
        self.new_episode(advance=True)

    def discard_episode(self, advance: bool):
        if advance:  # reset: the attempt ends here and is kept, success or not
            self.save_episode()
        else:
            if self.steps:
                self.live.discarded()
            super().discard_episode(advance)

    def step(self, ds):
        self.agent.state = ds
        _, _, _, truncated = self.episode_run.step(**{INPUT_LOG_KEY: ds.to_row(), EVENTS_LOG_KEY: np.uint32(ds.event_mask())})
        self.episode_labels += int(self.gated.teacher_driving)
        self._scene_changed = True
        if self.episode_run.succeeded or truncated:
            self.save_episode()
        else:
            self.planner.prefetch(self.obs)

    def end_of_frame(self):
        # inside the frame's measured time: a stall here (the retrain's process join once took 1.4 s)
        # must show in frame_ms, the HUD and the frame-time tests
        self.live.poll()
        if self.state == READY and self.steps == 0:
            self.live.between_episodes(self)

    def banner(self, ds):
        text, color = super().banner(ds)
        if self.state == READY and text:
            return "ready: start (the policy drives) or take over", GREEN
        return text, color

    def hud_lines(self, ds) -> list:
        live, spec = self.live, self.env.spec
        counts = live.counts
        k = live.round
        if self.state == RECORDING:
            who = ("YOU DRIVE", YELLOW) if self.gated.teacher_driving else ("policy drives", GREEN)
        else:
            who = (self.state.value.upper(), YELLOW if self.state != READY else GREEN)
        loaded_ago = time.monotonic() - live.loaded_at if live.loaded_at else None
        policy_line = (f"policy {live.policy_name}"
                       + (f" LOADED {time.strftime('%H:%M:%S', time.localtime(live.loaded_wall))}"
                          if loaded_ago is not None else ""))
        lines = [
            (f"{spec.task} HG-DAgger  round {k}  seed {self.seed}", FG),
            (f"driving: {who[0]}   step {self.steps}/{spec.max_steps}", who[1]),
            (f"labels this round {live.round_labels(k) + self.episode_labels}"
             f"  (this attempt {self.episode_labels})", FG),
            (f"success {counts.successes}/{counts.attempts}   policy alone "
             f"{counts.alone_successes}/{counts.alone_attempts}", FG),
            (policy_line, GREEN if loaded_ago is not None and loaded_ago < LOADED_NOTICE_S else FG),
            (live.retrain_status(), DIM),
            (f"now: success {'YES' if self.success else 'no'}   gripper "
             f"{'closed' if self.human.last_gripper > 0 else 'open'}", GREEN if self.success else DIM),
            (f"device {ds.status or self.device.name}", FG if ds.connected else RED),
            (f"view {self.main_camera}" + (f" + {self.inset_camera}" if self.inset_camera else " (camera: more)")
             + f"   frame {self.result.frame_ms[-1] if self.result.frame_ms else 0.0:.0f} ms", DIM),
        ]
        return lines

    def help_lines(self) -> list:
        if not self.show_help:
            return []
        lines = TAKEOVER_HELP + [gripper_help(self.agent.gains.gripper_mode)] + self.device.help_lines()
        return [(line, DIM) for line in lines]


class LiveDagger:
    """The live run's bookkeeping on top of a `DaggerRun`: rounds, seeds, counts, the background
    retrain and the policy swap."""

    def __init__(self, run: DaggerRun, policy_overrides: dict | None = None, success_hold: int = EXPERT_SUCCESS_HOLD,
                 retrain_defaults: dict | None = None):
        self.run = run
        self.cfg = run.cfg
        self.success_hold = int(success_hold)
        self.overrides = dict(policy_overrides or {})
        self.retrain_defaults = {"eval_episodes": 0, **(retrain_defaults or {})}
        self.counts = SessionCounts()
        self.retrain = BackgroundRetrain()
        self.ready = None  # a finished retrain waiting for the end of the attempt: (checkpoint, Future of its policy)
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-loader")
        self.loaded_at = self.loaded_wall = None
        self.last_error = ""
        self._clock = time.monotonic()  # time in the window not yet added to the state's `seconds`
        self.planner = BackgroundPlanner(self._load(self.state["checkpoints"][-1]))

    @property
    def state(self) -> dict:
        return self.run.state

    @property
    def round(self) -> int:
        """Episodes are collected with checkpoints[-1]; checkpoints[0] (the initial policy) makes round 1."""
        return len(self.state["checkpoints"])

    @property
    def policy_name(self) -> str:
        return policy_label(self.state["checkpoints"][-1])

    def _load(self, checkpoint: str):
        policy, _, _ = load_checkpoint(checkpoint, overrides=self.overrides)
        return policy

    def first_seed(self) -> int:
        with DemoReader(self.run.out / "data.hdf5") as reader:
            saved = sum(1 for d in reader.demos if reader.attrs(d).get("source") == "dagger")
        return DAGGER_SEED_START + self.cfg.seed * SEED_BLOCK + saved

    # ----- events from the session --------------------------------------------------------------
    def saved(self, k: int, name: str, episode):
        self.counts.add(k, episode)
        live = self.state.setdefault("live", {"saved": 0, "retrain_from": 0, "training": None})
        live["saved"] += 1
        self.add_time()
        self.run.save_state()
        self._maybe_retrain()

    def discarded(self):
        live = self.state["live"]
        live["discarded"] = live.get("discarded", 0) + 1
        self.add_time()
        self.run.save_state()

    def add_time(self):
        """Add the time in the window since the last call to the state (written with it): a kill loses
        at most the time since the last save or discard."""
        now = time.monotonic()
        live = self.state["live"]
        live["seconds"] = round(live.get("seconds", 0.0) + now - self._clock, 1)
        self._clock = now

    def _maybe_retrain(self):
        live = self.state.get("live") or {}
        every = self.cfg.retrain_every
        if every and not self.retrain.running and self.ready is None and live.get("saved", 0) - live.get("retrain_from", 0) >= every:
            live["retrain_from"] = live["saved"]
            live["training"] = self.round
            self.run.save_state()
            self._start_retrain(self.round)

    def _start_retrain(self, k: int):
        cfg, resume = self.run.retrain_config(k, self.state["checkpoints"][-1], self.run.out / "data.hdf5",
                                              **self.retrain_defaults)
        self.retrain.start(k, self.run.out / "data.hdf5", cfg, resume)

    def poll(self):
        message = self.retrain.poll()
        if message is None:
            return
        if message[0] == "ok":
            self.ready = (message[1], self._loader.submit(self._load, message[1]))  # loads off the frame thread
            log.info("retrained policy ready (%d steps): %s; it takes over after this attempt", message[2], message[1])
        else:
            self.last_error = message[1]
            log.error("background retrain failed: %s; the current policy stays", message[1])
            self.state["live"]["training"] = None
            self.run.save_state()

    def between_episodes(self, session=None):
        """Swap in a finished retrain (the window calls this only between attempts)."""
        self.poll()
        if self.ready is None or not self.ready[1].done():
            return
        (best, loading), self.ready = self.ready, None
        try:
            policy = loading.result()
        except Exception as exc:  # noqa: BLE001  (a bad checkpoint leaves the current policy driving)
            self.last_error = f"{Path(best).name}: {str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}"
            log.error("cannot load the retrained policy: %s", self.last_error)
            self.state["live"]["training"] = None
            self.run.save_state()
            return
        self.planner.set_policy(policy)
        k = self.round
        rounds = self.state["rounds"]
        labels = (rounds[-1]["expert_labels"] if rounds else self.state["initial_labels"])
        new = self.round_labels(k)
        self.state["checkpoints"].append(str(Path(best).resolve()))
        rounds.append({"round": k, "beta": 0.0, "episodes": self.counts.round_episodes.get(k, 0) + self._episodes_before(k),
                       "new_labels": new, "expert_labels": labels + new, "checkpoint": str(Path(best).resolve()),
                       "eval_episodes": 0, "session": self.counts.summary(),
                       "loaded": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time()))})
        self.state["live"]["training"] = None
        self.run.save_state()
        self.loaded_at, self.loaded_wall = time.monotonic(), time.time()
        log.info("round %d: retrained policy loaded; round %d starts", k, k + 1)
        self._maybe_retrain()

    def retrain_status(self) -> str:
        every = self.cfg.retrain_every
        if self.retrain.running:
            return f"retraining round {self.retrain.round}... {time.monotonic() - self.retrain.started:.0f} s"
        if self.ready is not None:
            return "retrained: loads after this attempt"
        if self.last_error:
            return f"retrain failed: {self.last_error}"
        if not every:
            return "no retraining (--retrain-every)"
        live = self.state.get("live") or {}
        left = every - (live.get("saved", 0) - live.get("retrain_from", 0))
        return f"retrain after {max(left, 0)} more episode(s)"

    # ----- resume: what earlier sessions saved ----------------------------------------------------
    def load_history(self):
        self._before = {}
        with DemoReader(self.run.out / "data.hdf5") as reader:
            for d in reader.demos:
                attrs = reader.attrs(d)
                if attrs.get("source") == "dagger":
                    k = int(attrs.get("round", 0))
                    labels, episodes = self._before.get(k, (0, 0))
                    group = reader.group(d)
                    flags = group["interventions"][()] if "interventions" in group else None
                    self._before[k] = (labels + int(np.sum(flags != 0)) if flags is not None else labels, episodes + 1)

    def round_labels(self, k) -> int:
        """The person's steps saved in round k, earlier sessions included."""
        return self.counts.round_labels.get(k, 0) + self._labels_before_session(k)

    def _labels_before_session(self, k):
        return getattr(self, "_before", {}).get(k, (0, 0))[0]

    def _episodes_before(self, k):
        return getattr(self, "_before", {}).get(k, (0, 0))[1]

    def close(self):
        self.retrain.stop()
        self._loader.shutdown(wait=True)
        self.planner.close()


def run_live(run: DaggerRun, device, session_config: SessionConfig | None = None, *, stick_takeover: bool | None = None,
             policy_overrides: dict | None = None, success_hold: int = EXPERT_SUCCESS_HOLD, retrain_defaults=None,
             window=None, say=log.info, drive=None) -> dict:
    """Open the window and run live take-over until quit (or `session_config.episodes` saved episodes).
    `drive(session)`, when given, runs the frames instead of the window's own loop (tests step it frame
    by frame). Returns the run state (dagger.json)."""
    if run.state is None:
        run.start()
    data = run.out / "data.hdf5"
    _fold_dagger_into_train(data)  # a kill may have left saved episodes outside the train split
    live = LiveDagger(run, policy_overrides, success_hold, retrain_defaults)
    live.load_history()
    state_live = run.state.setdefault("live", {"saved": 0, "retrain_from": 0, "training": None})
    state_live["sessions"] = state_live.get("sessions", 0) + 1
    state_live.setdefault("device", getattr(device, "name", "?"))
    if stick_takeover is None:
        stick_takeover = getattr(device, "name", "") == "gamepad"
    base = session_config or SessionConfig()
    import dataclasses

    config = dataclasses.replace(base, task=run.spec.task, output=str(data), append=True, spec=run.spec,
                                 seed=live.first_seed(),
                                 title=base.title or f"takeover dagger - {run.spec.task} ({device.name})")
    writer = DemoWriter(data, run.spec, append=True)
    session = None
    try:
        if state_live.get("training") is not None:  # a retrain a quit or kill interrupted: again, from its state
            say(f"round {state_live['training']}: restarting the interrupted retrain in the background")
            live._start_retrain(state_live["training"])
        session = LiveTakeoverSession(config, device, live, stick_takeover, writer=writer, window=window)
        say(f"round {live.round}: live take-over with {live.policy_name}; seed {config.seed}")
        if drive is None:
            session.run()
        else:
            try:
                drive(session)
            finally:
                session.close()
        say(f"saved {len(session.result.saved)} episode(s) this session; "
            f"{live.counts.round_labels.get(live.round, 0)} labels in round {live.round}")
    finally:
        live.add_time()
        live.close()
        writer.close()
        if session is None:
            device.close()
    _fold_dagger_into_train(data)
    run.save_state()
    write_live_report(run)
    return run.state


def _fold_dagger_into_train(data: Path):
    with DemoReader(data) as reader:
        names = [d for d in reader.demos if reader.attrs(d).get("source") == "dagger"]
    if names:
        add_to_split(data, "train", names)


def policy_label(checkpoint) -> str:
    """'bc/best.pt', 'round_1/best.pt': the run (a DAgger round's is round_<k>/train) and the file."""
    path = Path(checkpoint)
    if path.parent.name != "checkpoints":
        return path.name
    run = path.parent.parent
    return f"{run.parent.name if run.name == 'train' else run.name}/{path.name}"


def _attempts(data: Path) -> list[dict]:
    """Every live attempt saved in the run's data file, in order: round, seed, steps, the person's steps,
    take-overs (stretches of the person's steps) and success."""
    out = []
    with DemoReader(data) as reader:
        for d in reader.demos:
            attrs = reader.attrs(d)
            if attrs.get("source") != "dagger":
                continue
            group = reader.group(d)
            flags = (group["interventions"][()] != 0) if "interventions" in group else np.zeros(0, bool)
            steps = int(group["actions"].shape[0])
            out.append({"round": int(attrs.get("round", 0)), "seed": int(attrs.get("seed", -1)), "steps": steps,
                        "person_steps": int(flags.sum()), "takeovers": int(np.sum(np.diff(np.r_[0, flags.astype(int)]) == 1)),
                        "success": bool(attrs.get("success"))})
    return out


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _rate(successes: int, n: int) -> str:
    return f"{successes}/{n}" + (f" ({successes / n:.0%})" if n else "")


def write_live_report(run: DaggerRun) -> Path:
    """report.md of a live run: what the person and the policy did (attempts, the person's steps,
    take-overs per attempt, success with and without help, policy swaps, time), from the data file
    (every saved attempt) and dagger.json; none of the headless DAgger's settings, which a live run
    does not use."""
    state, cfg = run.state, run.cfg
    live = state.get("live") or {}
    attempts = _attempts(run.out / "data.hdf5")
    freq = run.spec.control_freq
    rounds = sorted({a["round"] for a in attempts} | set(range(1, len(state["checkpoints"]) + 1)))
    lines = [f"# Live HG-DAgger on {state['task']}: a person takes over from the policy", "",
             f"Data: `{cfg.data}` ({state['initial_labels']} expert labels); first policy `{state['checkpoints'][0]}`; "
             f"device {live.get('device', '?')}; "
             + (f"retrained in the background after every {cfg.retrain_every} saved attempt(s)."
                if cfg.retrain_every else "no retraining during the sessions."), ""]
    person = sum(a["person_steps"] for a in attempts)
    steps = sum(a["steps"] for a in attempts)
    helped = [a for a in attempts if a["takeovers"]]
    alone = [a for a in attempts if not a["takeovers"]]
    seconds = float(live.get("seconds", 0.0))
    lines += [f"- Attempts saved: {len(attempts)} ({live.get('discarded', 0)} discarded and retried) over "
              f"{live.get('sessions', 0)} session(s), {_duration(seconds)} in the window; the robot moved "
              f"{steps} steps ({_duration(steps / freq)} at {freq} Hz).",
              f"- Steps the person drove (the labels): {person} of {steps}"
              + (f" ({person / steps:.0%})" if steps else "") + "; take-overs: "
              f"{sum(a['takeovers'] for a in attempts)}"
              + (f", {np.mean([a['takeovers'] for a in attempts]):.1f} per attempt" if attempts else "") + ".",
              f"- Success with the person's help: {_rate(sum(a['success'] for a in helped), len(helped))}; "
              f"the policy alone (no take-over): {_rate(sum(a['success'] for a in alone), len(alone))}.",
              f"- Policy swaps (a retrained policy loaded between attempts): {len(state['checkpoints']) - 1}.",
              "", "Success counts are the attempts as they happened, each from its own start and helped or not as "
              "the person chose: not an evaluation on fixed seeds (`takeover eval` a round's checkpoint for that).",
              "", "| round | policy | loaded | attempts | person's steps | take-overs per attempt | success with help | "
              "policy alone |", "|---|---|---|---|---|---|---|---|"]
    loaded = {r["round"] + 1: r.get("loaded", "") for r in state["rounds"] if "session" in r}
    for k in rounds:
        mine = [a for a in attempts if a["round"] == k]
        ckpt = policy_label(state["checkpoints"][k - 1]) if k - 1 < len(state["checkpoints"]) else "?"
        h = [a for a in mine if a["takeovers"]]
        n = [a for a in mine if not a["takeovers"]]
        per = f"{np.mean([a['takeovers'] for a in mine]):.1f}" if mine else "-"
        lines.append(f"| {k} | `{ckpt}` | {'start' if k == 1 else loaded.get(k, '?')} | "
                     f"{len(mine)} | {sum(a['person_steps'] for a in mine)} | {per} | "
                     f"{_rate(sum(a['success'] for a in h), len(h))} | {_rate(sum(a['success'] for a in n), len(n))} |")
    if attempts:
        lines += ["", "Every attempt:", "", "| # | round | seed | steps | person's steps | take-overs | success |",
                  "|---|---|---|---|---|---|---|"]
        for i, a in enumerate(attempts, 1):
            lines.append(f"| {i} | {a['round']} | {a['seed']} | {a['steps']} | {a['person_steps']} | {a['takeovers']} | "
                         f"{'yes' if a['success'] else 'no'} |")
    path = run.out / "report.md"
    write_atomic(path, "\n".join(lines) + "\n")
    return path
