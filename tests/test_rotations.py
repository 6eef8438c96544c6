"""Quaternion observations become sign-free rotation matrices (policies/rotations.py)."""
import numpy as np
import pytest
import torch

from takeover.policies.rotations import ObsFeatures, quaternion_starts, quaternion_to_matrix
from takeover.sim import EnvSpec, ObsLayout, object_layout


def test_matrix_is_a_rotation_and_the_same_for_q_and_minus_q():
    q = torch.randn(100, 4, dtype=torch.float64)
    m = quaternion_to_matrix(q).view(-1, 3, 3)
    assert torch.allclose(m @ m.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(100, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(m), torch.ones(100, dtype=torch.float64))
    assert torch.equal(quaternion_to_matrix(q), quaternion_to_matrix(-q))
    # (x, y, z, w) order: 90 degrees about z maps the x axis onto y
    rz = quaternion_to_matrix(torch.tensor([0.0, 0.0, np.sin(np.pi / 4), np.cos(np.pi / 4)], dtype=torch.float32)).view(3, 3)
    assert torch.allclose(rz @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)


def test_features_replace_each_quaternion_and_keep_the_rest_in_order():
    features = ObsFeatures(11, (3,))
    x = torch.arange(11, dtype=torch.float32)[None].repeat(2, 1)
    x[1, 3:7] *= -1  # the other sign of the same quaternion
    out = features(x)
    assert out.shape == (2, 16) and features.out_dim == 16
    assert torch.equal(out[:, :3], x[:, :3]) and torch.equal(out[:, 12:], x[:, 7:])
    assert torch.allclose(out[0, 3:12], out[1, 3:12])
    assert torch.equal(ObsFeatures(5)(x[:, :5]), x[:, :5])  # no quaternions: identity


def test_features_match_the_matrix_of_each_quaternion_slice():
    # ObsFeatures computes every slice in one quadratic form; checkpoints rely on it being this function
    starts, dim = (3, 12, 19), 38
    x = torch.randn(4, 2, dim, dtype=torch.float64)
    x[0, 0, 12:16] = 0.0  # a zero quaternion maps to the identity, as in quaternion_to_matrix
    parts, prev = [], 0
    for s in starts:
        parts += [x[..., prev:s], quaternion_to_matrix(x[..., s:s + 4])]
        prev = s + 4
    expected = torch.cat(parts + [x[..., prev:]], dim=-1)
    assert torch.allclose(ObsFeatures(dim, starts).double()(x), expected, atol=1e-12)


def test_quaternion_slices_are_found_by_name_inside_object():
    parts = object_layout(EnvSpec(task="NutAssemblySquare"))
    layout = ObsLayout(("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object"), ((3,), (4,), (2,), (14,)))
    starts = quaternion_starts(layout, parts)
    names = dict(zip(parts.keys, (s.start for s in parts.slices().values())))
    assert starts == (3, 9 + names["SquareNut_to_robot0_eef_quat"], 9 + names["SquareNut_quat"])
    # an object vector that does not match the simulator's parts keeps its values raw
    assert quaternion_starts(ObsLayout(("object",), ((10,),)), parts) == ()


def test_overlapping_quaternions_are_refused():
    with pytest.raises(ValueError, match="does not fit"):
        ObsFeatures(8, (0, 2))
