"""Putting a recorded state back into an environment on the model it was recorded on: the recorded
MJCF when it loads, else today's model when the state fits (an older robosuite's joint names are
mapped to today's first). Shared by the robosuite import, relabelling and state playback."""
from __future__ import annotations

import logging
import re

import numpy as np

from .errors import DatasetError

log = logging.getLogger(__name__)

OLD_JOINT_NAMES = ((re.compile(r"^gripper(\d+)_finger_joint(\d+)$"), r"gripper\1_right_finger_joint\2"),
                   (re.compile(r"^(.+)_jnt(\d+)$"), r"\1_joint\2"))


def today_joint_name(name: str) -> str:
    for pattern, repl in OLD_JOINT_NAMES:
        if pattern.match(name):
            return pattern.sub(repl, name)
    return name


def recorded_joints(xml: str) -> list[str] | None:
    """Names of the joints (incl. free joints) in an XML model, in MuJoCo's order; None if unparsable."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    worldbody = root.find("worldbody")
    if worldbody is None:
        return None
    return [el.get("name", "") for el in worldbody.iter() if el.tag in ("joint", "freejoint")]


def _old_layout(env, xml: str, where: str) -> bool:
    """True when `xml` is an older robosuite layout (old joint names) whose joints map onto today's
    model one to one; raises DatasetError naming the first difference when they do not."""
    names = recorded_joints(xml)
    if not names or all(today_joint_name(n) == n for n in names):
        return False
    model = env.raw.sim.model
    today = [model.joint_id2name(i) for i in range(model.njnt)]
    mapped = [today_joint_name(n) for n in names]
    if mapped != today:
        extra = [n for n, m in zip(names, mapped) if m not in today]
        missing = [n for n in today if n not in mapped]
        why = (f"the recorded model has joint(s) today's {env.spec.task} model lacks: {', '.join(extra[:3])}" if extra
               else f"today's {env.spec.task} model has joint(s) the recording lacks: {', '.join(missing[:3])}" if missing
               else "the joints come in another order")
        raise DatasetError(f"{where}: an older robosuite layout that does not fit today's model ({why}); cannot replay")
    return True


def load_model(env, xml: str, state: np.ndarray, where: str) -> tuple[dict, str]:
    """Put `env` in `state` on the recorded model if it loads, else on today's model when the state
    size matches. Returns (observation, "recorded" | "today"); raises DatasetError otherwise."""
    from takeover.sim.errors import SimError

    reason = "it is a file name, not XML"
    if xml and xml.lstrip().startswith("<") and _old_layout(env, xml, where):
        reason = "older robosuite joint names, mapped to today's"
        xml = ""
    if xml and xml.lstrip().startswith("<"):
        try:
            return env.set_state(state, model_xml=env.raw.edit_model_xml(xml)), "recorded"
        except SimError as exc:
            raise DatasetError(f"{where}: {exc}") from None
        except Exception as exc:  # mujoco/robosuite errors for meshes that cannot be found, bad XML
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            # reset_from_xml_string closed the sim before failing: rebuild today's model in place
            env.raw.deterministic_reset = False
            env.raw.hard_reset = True
            try:
                env.raw.reset()
            finally:
                env.raw.hard_reset = False
            env._model_xml = None
            env._refresh_object_parts()
    if len(state) != env.state_dim:
        raise DatasetError(f"{where}: the recorded model cannot be loaded ({reason}) and its states have {len(state)} "
                           f"values while today's {env.spec.task} model needs {env.state_dim}; cannot replay")
    log.warning("%s: recorded model not usable (%s); replaying on today's model", where, reason)
    return env.set_state(state), "today"
