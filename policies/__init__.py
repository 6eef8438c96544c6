"""takeover.policies: observation encoders, the action heads, training, checkpoints, evaluation."""
from .base import Policy, PolicyShapes
from .config import HeadConfig
from .errors import PolicyError
from .registry import config_from_dict, head_names, make_config, make_policy, register_head

__all__ = ["HeadConfig", "Policy", "PolicyError", "PolicyShapes", "config_from_dict", "head_names", "make_config",
           "make_policy", "register_head"]
