"""Quaternions in the observation become rotation matrices before normalisation.

robosuite writes quaternions (x, y, z, w) with w >= 0 enforced. An orientation near w = 0 (a rotation
of about 180 degrees) therefore flips the sign of the whole quaternion whenever it tilts a hair. The
gripper points down at a nut lying flat, so in NutAssemblySquare demonstrations
`SquareNut_to_robot0_eef_quat` inside `object` jumps between about (+1, ...) and (-1, ...) ~30 times per
100-step episode, and the gripper-to-nut yaw, which decides the grasp, arrives with a random sign. q and -q are one rotation; the 3x3
matrix is a continuous function of the rotation and the same for both signs (Zhou et al. 2019 on
continuous rotation representations), so each quaternion slice is replaced by its 9 matrix entries.

The quaternion slices of a flat observation are found by name: low-dim keys ending in `_quat` (the
robot's `robot0_eef_quat`) and the `*_quat` parts of `object`, whose part names only the simulator
knows (`Env.object_layout`). Their start offsets travel in PolicyShapes, so a checkpoint rebuilds the
same features without the simulator.
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from takeover.sim.observations import ObsLayout

log = logging.getLogger(__name__)

QUAT_SIZE, MATRIX_SIZE = 4, 9


def quaternion_starts(layout: ObsLayout, object_layout: ObsLayout | None = None) -> tuple[int, ...]:
    """Offsets in the flat observation where an (x, y, z, w) quaternion starts."""
    starts = []
    for key, sl in layout.slices().items():
        size = sl.stop - sl.start
        if key == "object":
            if object_layout is None:
                continue
            if object_layout.dim != size:  # e.g. a file imported from another robosuite version
                log.warning("object has %d values but the simulator's parts %s make %d; its quaternions stay raw",
                            size, list(object_layout.keys), object_layout.dim)
                continue
            starts += [sl.start + p.start for name, p in object_layout.slices().items()
                       if name.endswith("_quat") and p.stop - p.start == QUAT_SIZE]
        elif key.endswith("_quat") and size == QUAT_SIZE:
            starts.append(sl.start)
    return tuple(starts)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (x, y, z, w), any sign or norm -> (..., 9) row-major rotation matrices."""
    q = q / q.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    x, y, z, w = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=-1)


def _matrix_form() -> torch.Tensor:
    """(16, 9) M with R = I + (q q^T).flatten() @ M / |q|^2: quaternion_to_matrix as one quadratic form."""
    x, y, z, w = range(4)
    terms = [  # row-major R - I, each entry a sum of coefficient * q_a * q_b
        {(y, y): -2, (z, z): -2}, {(x, y): 2, (z, w): -2}, {(x, z): 2, (y, w): 2},
        {(x, y): 2, (z, w): 2}, {(x, x): -2, (z, z): -2}, {(y, z): 2, (x, w): -2},
        {(x, z): 2, (y, w): -2}, {(y, z): 2, (x, w): 2}, {(x, x): -2, (y, y): -2},
    ]
    m = torch.zeros(16, MATRIX_SIZE)
    for k, entry in enumerate(terms):
        for (a, b), c in entry.items():
            m[4 * a + b, k] += c
    return m


class ObsFeatures(nn.Module):
    """Raw flat observation (..., D) -> (..., D + 5 * #quaternions): each quaternion as its matrix.

    Computed for all quaternions at once (a gather, one outer product, one matmul, one gather back):
    `act` runs this every step, and at batch 1 the cost is the number of tensor ops, not arithmetic.
    """

    def __init__(self, obs_dim: int, quat_starts: tuple[int, ...] = ()):
        super().__init__()
        self.quat_starts = tuple(sorted(quat_starts))
        for a, b in zip(self.quat_starts, self.quat_starts[1:] + (obs_dim,)):
            if b - a < QUAT_SIZE:
                raise ValueError(f"quaternion at {a} does not fit before {b} (obs dim {obs_dim})")
        self.out_dim = obs_dim + (MATRIX_SIZE - QUAT_SIZE) * len(self.quat_starts)
        quat_cols = [s + i for s in self.quat_starts for i in range(QUAT_SIZE)]
        # output column j reads column order[j] of cat([x, matrices]): the raw columns in place, each
        # quaternion's 4 columns replaced by its 9 matrix entries
        order, prev = [], 0
        for k, s in enumerate(self.quat_starts):
            order += list(range(prev, s)) + [obs_dim + MATRIX_SIZE * k + i for i in range(MATRIX_SIZE)]
            prev = s + QUAT_SIZE
        order += list(range(prev, obs_dim))
        self.register_buffer("_quat_cols", torch.tensor(quat_cols, dtype=torch.long), persistent=False)
        self.register_buffer("_order", torch.tensor(order, dtype=torch.long), persistent=False)
        self.register_buffer("_form", _matrix_form(), persistent=False)
        self.register_buffer("_identity", torch.eye(3).flatten(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.quat_starts:
            return x
        lead = x.shape[:-1]
        q = x.index_select(-1, self._quat_cols).view(*lead, -1, QUAT_SIZE)
        outer = (q.unsqueeze(-1) * q.unsqueeze(-2)).flatten(-2)  # (..., n, 16)
        scale = outer[..., ::5].sum(-1, keepdim=True).clamp(min=1e-16)  # |q|^2 from the diagonal
        matrices = torch.addcdiv(self._identity, outer @ self._form, scale).flatten(-2)  # (..., n * 9)
        return torch.cat([x, matrices], dim=-1).index_select(-1, self._order)
