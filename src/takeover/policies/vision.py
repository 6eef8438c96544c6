"""Camera encoders (DESIGN §8, robomimic's image pipeline): a conv trunk, then a spatial-softmax
keypoint head, so the features say *where* things are in the image (global pooling throws that away).

    trunk "resnet18": ResNet-18 (plain torch, GroupNorm in place of BatchNorm: EMA and BatchNorm do not
                      mix), 512 channels at 1/32 of the crop; what robomimic and Diffusion Policy use.
    trunk "small":    three convolutions with GroupNorm, 64 channels at ~1/5 of the crop; for the CPU.
    trunk "pooled":   the encoder of checkpoints from before this module (global average pooling, no
                      crop); only loaded, never a default.

Every camera image (uint8 H x W x 3) is cropped to `crop` of its height and width (random offsets in
training mode, the centre in eval mode: the same feature shape either way), scaled with ImageNet's
mean and std, run through its camera's trunk, turned into `keypoints` expected (x, y) positions and
projected to `feature_dim` features. `EncoderConfig` is the one place these settings live; the
policy stores it with its shapes (PolicyShapes.image_encoder), so a checkpoint rebuilds its encoder.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import PolicyError


TRUNKS = ("small", "resnet18", "pooled")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EncoderConfig:
    trunk: str = "small"  # every camera's trunk unless `cameras` names another
    cameras: tuple[tuple[str, str], ...] = ()  # (image key, trunk) per-camera choices, e.g. (("agentview_image", "resnet18"),)
    keypoints: int = 32  # spatial-softmax keypoints per camera
    feature_dim: int = 64  # features per camera after the keypoint projection
    crop: float = 0.9  # crop side as a fraction of the image side (1.0: no crop)
    groups: int = 16  # GroupNorm groups (channels per group = channels / groups)
    pretrained: str | None = None  # a local ResNet-18 state dict (torchvision names) read once when training starts

    def __post_init__(self):
        cameras = self.cameras.items() if isinstance(self.cameras, dict) else self.cameras
        object.__setattr__(self, "cameras", tuple(sorted((str(k), str(v)) for k, v in cameras)))
        for trunk in (self.trunk, *dict(self.cameras).values()):
            if trunk not in TRUNKS:
                raise PolicyError(f"image encoder trunk must be one of {', '.join(TRUNKS[:2])}, got {trunk!r}")
        if not 0.1 <= self.crop <= 1.0:
            raise PolicyError(f"image encoder crop must lie in [0.1, 1.0] (a fraction of the image side), got {self.crop}")
        if self.keypoints < 1 or self.feature_dim < 1 or self.groups < 1:
            raise PolicyError("image encoder keypoints, feature_dim and groups must be >= 1")

    def trunk_for(self, key: str) -> str:
        return dict(self.cameras).get(key, self.trunk)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "cameras": dict(self.cameras)}

    @classmethod
    def from_dict(cls, data: dict) -> EncoderConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyError(f"image encoder has no option(s) {unknown}; options: {sorted(known)}")
        return cls(**data)


# What a checkpoint without a stored encoder used: the pooled encoder, no crop.
LEGACY_ENCODER = EncoderConfig(trunk="pooled", crop=1.0)


def crop_size(image_hw: tuple[int, int], crop: float) -> tuple[int, int]:
    return max(1, round(image_hw[0] * crop)), max(1, round(image_hw[1] * crop))


def crop_images(images: torch.Tensor, size: tuple[int, int], random: bool, generator=None) -> torch.Tensor:
    """(N, H, W, C) -> (N, h, w, C): a random window per image (training) or the centre one (evaluation)."""
    n, H, W = images.shape[:3]
    h, w = size
    if (h, w) == (H, W):
        return images
    if random:
        top = torch.randint(H - h + 1, (n,), generator=generator, device="cpu").to(images.device)
        left = torch.randint(W - w + 1, (n,), generator=generator, device="cpu").to(images.device)
        rows = top[:, None] + torch.arange(h, device=images.device)
        cols = left[:, None] + torch.arange(w, device=images.device)
        return images[torch.arange(n, device=images.device)[:, None, None], rows[:, :, None], cols[:, None, :]]
    top, left = (H - h) // 2, (W - w) // 2
    return images[:, top:top + h, left:left + w]


class SpatialSoftmax(nn.Module):
    """(N, C, h, w) feature maps -> (N, 2K): each keypoint's expected (x, y) in [-1, 1] under a softmax
    over the map (a 1x1 convolution makes K keypoint maps from C channels; num_keypoints=None uses the
    channels themselves). x runs left to right over columns, y top to bottom over rows."""

    def __init__(self, in_channels: int, height: int, width: int, num_keypoints: int | None = 32,
                 learn_temperature: bool = True):
        super().__init__()
        self.project = nn.Conv2d(in_channels, num_keypoints, 1) if num_keypoints else nn.Identity()
        self.num_keypoints = num_keypoints or in_channels
        xs = torch.linspace(-1.0, 1.0, width) if width > 1 else torch.zeros(1)
        ys = torch.linspace(-1.0, 1.0, height) if height > 1 else torch.zeros(1)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        self.register_buffer("pos", torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1), persistent=False)
        self.log_temperature = nn.Parameter(torch.zeros(()), requires_grad=learn_temperature)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        maps = self.project(maps)
        n, k = maps.shape[:2]
        attention = torch.softmax(maps.reshape(n, k, -1) / self.log_temperature.exp(), dim=-1)
        return (attention @ self.pos).reshape(n, 2 * k)  # (x0, y0, x1, y1, ...)


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, channels), channels)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, groups: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = _norm(cout, groups)  # torchvision's names, so its ResNet-18 weights load by key
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = _norm(cout, groups)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(cout, groups))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18Trunk(nn.Module):
    """torchvision's resnet18 up to layer4 (no pooling, no fc), GroupNorm for BatchNorm."""

    out_channels = 512

    def __init__(self, groups: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = _norm(64, groups)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, cin = (64, 128, 256, 512), 64
        for i, cout in enumerate(widths, start=1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(cin, cout, stride, groups), BasicBlock(cout, cout, 1, groups)))
            cin = cout

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class SmallConvTrunk(nn.Module):
    """Three convolutions (strides 2, 2, 1) with GroupNorm: ~10 MFLOP per 76x76 crop, for the CPU."""

    out_channels = 64

    def __init__(self, groups: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 5, 2), _norm(32, groups), nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, 2), _norm(32, groups), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, 1), _norm(64, groups), nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.net(x)


class CameraEncoder(nn.Module):
    """uint8 (..., H, W, 3) images of one camera -> (..., feature_dim): crop, trunk, keypoints, linear."""

    def __init__(self, image_shape: tuple[int, ...], trunk: str, cfg: EncoderConfig):
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)
        self.trunk_name = trunk
        self.feature_dim = cfg.feature_dim
        if trunk == "pooled":
            self.crop = self.image_shape[:2]
            self.net = nn.Sequential(  # the pre-keypoint encoder, under its old parameter names
                nn.Conv2d(3, 32, 5, stride=2), nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2), nn.ReLU(),
                nn.Conv2d(64, 64, 3, stride=2), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, cfg.feature_dim),
            )
            return
        if len(self.image_shape) != 3 or self.image_shape[2] != 3:
            raise PolicyError(f"camera images must be H x W x 3, got {self.image_shape}")
        self.crop = crop_size(self.image_shape[:2], cfg.crop)
        self.trunk = ResNet18Trunk(cfg.groups) if trunk == "resnet18" else SmallConvTrunk(cfg.groups)
        with torch.no_grad():
            maps = self.trunk(torch.zeros(1, 3, *self.crop))
        if maps.shape[-1] < 1 or maps.shape[-2] < 1:
            raise PolicyError(f"{self.image_shape[0]}x{self.image_shape[1]} images are too small for the {trunk} trunk")
        self.keypoints = SpatialSoftmax(maps.shape[1], maps.shape[2], maps.shape[3], cfg.keypoints)
        self.project = nn.Linear(2 * cfg.keypoints, cfg.feature_dim)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        lead = images.shape[:-3]
        x = images.reshape(-1, *images.shape[-3:])
        if self.trunk_name == "pooled":
            return self.net(x.permute(0, 3, 1, 2).float() / 255.0).reshape(*lead, self.feature_dim)
        x = crop_images(x, self.crop, random=self.training)  # torch's global generator: seeded by the trainer
        x = (x.permute(0, 3, 1, 2).float() / 255.0 - self.mean) / self.std
        return self.project(self.keypoints(self.trunk(x))).reshape(*lead, self.feature_dim)

    def load_pretrained(self, path) -> int:
        """Copy a ResNet-18 state dict's matching tensors (torchvision key names; BatchNorm's affine
        weights go to the GroupNorm in its place, its running statistics are dropped) into this
        camera's trunk; returns how many tensors were copied."""
        if self.trunk_name != "resnet18":
            raise PolicyError(f"pretrained weights are for resnet18 trunks; this camera uses {self.trunk_name!r}")
        path = Path(path)
        if not path.is_file():
            raise PolicyError(f"{path}: no such pretrained weights file")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (any unreadable file is one message)
            raise PolicyError(f"{path}: not a readable state dict ({str(exc).splitlines()[0][:120]})") from None
        state = state.get("state_dict", state) if isinstance(state, dict) else {}
        own = self.trunk.state_dict()
        matched = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
        if not matched:
            raise PolicyError(f"{path}: holds no ResNet-18 weights (no key matches torchvision's resnet18 names)")
        self.trunk.load_state_dict(matched, strict=False)
        return len(matched)


# `takeover train`'s defaults when the observation keys include a camera (the options a user leaves
# out): settings for the 2-core CPU. A step of the small trunk at batch 64 with two 84x84 cameras is
# ~8 GFLOP (forward and backward), so 6,000 steps are estimated at about an hour there; pixel
# rollouts render every step, so selection evaluations are fewer and shorter than low-dim ones.
IMAGE_TRAIN_DEFAULTS = {"batch_size": 64, "steps": 6000, "eval_every": 2000, "eval_episodes": 10,
                        "valid_every": 1000, "log_every": 50, "checkpoint_every": 500}


def with_image_defaults(cfg, given=()):
    """`cfg` (a TrainConfig) with IMAGE_TRAIN_DEFAULTS for every setting not in `given` (the names the
    user set), when its observation keys include a camera; otherwise `cfg` unchanged."""
    from takeover.sim.observations import is_image_key

    if not any(is_image_key(k) for k in cfg.obs_keys or ()):
        return cfg
    return dataclasses.replace(cfg, **{k: v for k, v in IMAGE_TRAIN_DEFAULTS.items() if k not in set(given)})
