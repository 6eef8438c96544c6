"""gymnasium.Env over takeover's Env: flat float32 observations in the EnvSpec's layout, actions in
[-1, 1], `terminated` on success only if asked (robosuite tasks have no failure states)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from .env import make_env
from .spec import EnvSpec


class GymEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, spec: EnvSpec | None = None, terminate_on_success: bool = False,
                 render_mode: str | None = None, render_size: int = 256):
        self.env = make_env(spec or EnvSpec())
        self.layout = self.env.layout
        self.terminate_on_success = terminate_on_success
        self.render_mode = render_mode
        self.render_size = render_size
        self.metadata = dict(self.metadata, render_fps=self.env.spec.control_freq)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.layout.dim,), np.float32)
        self.action_space = gym.spaces.Box(self.env.action_low, self.env.action_high, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(0, 2**31 - 1))
        obs = self.env.reset(seed=episode_seed)
        return self.layout.flatten(obs), {"episode_seed": episode_seed}

    def step(self, action):
        obs, reward, success, truncated, info = self.env.step(np.asarray(action, dtype=np.float64))
        terminated = success and self.terminate_on_success
        return self.layout.flatten(obs), float(reward), terminated, truncated, {"success": success}

    def render(self):
        if self.render_mode == "rgb_array":
            return self.env.render(self.render_size, self.render_size)
        return None

    def close(self):
        self.env.close()
