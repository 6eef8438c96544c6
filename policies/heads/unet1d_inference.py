"""The U-Net's trunk for inference on the CPU: every convolution one matmul over channels-last windows.

At batch 1 a denoising step of the small U-Net is ~25 convolutions over 4-16 time steps and as many
norms and activations: per-op overhead, not arithmetic, sets its cost. Profiled on a 2-vCPU EPYC
(benchmarks/results/diffusion_latency*.json): F.conv1d takes PyTorch's generic im2col path at
10-130 us per call, while the windows of a zero-bordered channels-last copy of the input are a free
`as_strided` view, so the same convolution is one copy and one addmm. Outputs stay in channels-last
memory and are handed on as (B, C, T) views, which GroupNorm and the next copy accept. The
up-sampler (ConvTranspose1d, k=4, stride 2, padding 1) becomes a k=3 convolution with twice the
channels whose channels-last output *is* the interleaved sequence after a view.

`PackedTrunk(unet)` lays the weights out once; ConditionalUnet1D.cpu_trunk() keeps it until a
parameter's storage or version changes. It is the CPU path where the compiled trunk
(unet1d_native.py) is not: no C compiler, or more chunks at once than NATIVE_MAX_BATCH. Training and
GPU inference use the nn modules; tests/test_diffusion.py holds the paths equal.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class PackBuffers:
    """Zero-bordered (B, T + 2p, C) scratch tensors that convolutions copy their input into.

    Only the interior is ever written, so the borders stay the zero padding. One set per thread and
    per inference-mode state (a tensor made under inference_mode cannot be written outside it).
    """

    def __init__(self):
        self._local = threading.local()  # dropped with the thread

    def get(self, like: torch.Tensor, batch: int, length: int, padding: int, channels: int) -> torch.Tensor:
        """(batch, padding + length + padding, channels); rows [padding, padding + length) are the caller's."""
        buffers = self._local.__dict__.setdefault("buffers", {})
        key = (torch.is_inference_mode_enabled(), like.device, like.dtype, batch, length, padding, channels)
        buf = buffers.get(key)
        if buf is None:
            buf = buffers[key] = like.new_zeros(batch, length + 2 * padding, channels)
        return buf


@dataclass
class PackedConv:
    """A Conv1d as one matmul of channels-last windows (T', k*C_in) by weight (k*C_in, C_out), rows tap-major.

    Time on the rows is the fast orientation: MKL's small-N GEMM makes (C_out, k*C_in) @ (k*C_in, T')
    3-4x slower for T' <= 16 (profiled), so outputs are channels-last, handed on as (B, C, T) views.
    """
    weight: torch.Tensor
    bias: torch.Tensor
    kernel: int
    padding: int
    stride: int
    buffers: PackBuffers

    @classmethod
    def from_conv(cls, conv: nn.Conv1d, buffers: PackBuffers) -> "PackedConv":
        out_ch, in_ch, k = conv.weight.shape
        return cls(conv.weight.detach().permute(2, 1, 0).reshape(k * in_ch, out_ch).contiguous(), conv.bias.detach(),
                   k, conv.padding[0], conv.stride[0], buffers)

    @classmethod
    def from_upsampler(cls, up: nn.ConvTranspose1d, buffers: PackBuffers) -> "PackedConv":
        """ConvTranspose1d(k=4, stride=2, padding=1) as a k=3 conv with outputs [even | odd]:
        out[2m] = W1'x[m] + W3'x[m-1], out[2m+1] = W2'x[m] + W0'x[m+1] (W' = tap transposed)."""
        if (up.kernel_size[0], up.stride[0], up.padding[0]) != (4, 2, 1):
            raise ValueError(f"only the U-Net's ConvTranspose1d(k=4, s=2, p=1) is packed, not {up}")
        wt = up.weight.detach()  # (C_in, C_out, 4): tap j maps input m to output 2m - 1 + j
        zero = torch.zeros_like(wt[..., 0])
        taps = [torch.cat(pair, dim=1) for pair in ((wt[..., 3], zero), (wt[..., 1], wt[..., 2]), (zero, wt[..., 0]))]
        return cls(torch.cat(taps).contiguous(), torch.cat([up.bias, up.bias]).detach(), 3, 1, 1, buffers)

    def channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T), any strides -> (B, T_out, C_out) contiguous."""
        B, C, T = x.shape
        if self.kernel == 1:
            cols = x.transpose(1, 2)
        else:
            T_pad = T + 2 * self.padding
            buf = self.buffers.get(x, B, T, self.padding, C)
            buf[:, self.padding:self.padding + T].copy_(x.transpose(1, 2))
            T_out = (T_pad - self.kernel) // self.stride + 1
            cols = buf.as_strided((B, T_out, self.kernel * C), (T_pad * C, self.stride * C, 1))  # windows, a view
        if B == 1:
            return torch.addmm(self.bias, cols[0], self.weight).unsqueeze(0)
        return torch.matmul(cols, self.weight).add_(self.bias)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T) -> (B, C_out, T_out), a view of channels-last memory."""
        return self.channels_last(x).transpose(1, 2)


@dataclass
class PackedNormAct:
    """Conv1d -> GroupNorm -> Mish (Conv1dBlock)."""
    conv: PackedConv
    norm: nn.GroupNorm

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm  # torch.group_norm: F.group_norm's argument checks cost ~6 us a call at batch 1
        return F.mish(torch.group_norm(self.conv(x), n.num_groups, n.weight, n.bias, n.eps))


@dataclass
class PackedResidualBlock:
    block1: PackedNormAct
    block2: PackedNormAct
    residual: PackedConv | None
    film_offset: int  # where this block's [scale; bias] starts in the packed FiLM output
    channels: int

    def __call__(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """film: (B, F, 1), every block's [scale; bias] for this denoising step."""
        o, c = self.film_offset, self.channels
        h = torch.addcmul(film[:, o + c:o + 2 * c], self.block1(x), film[:, o:o + c])
        return self.block2(h).add_(x if self.residual is None else self.residual(x))


def film_offsets(unet) -> dict[int, int]:
    """id(residual block) -> where its [scale; bias] starts in the packed FiLM output (module order)."""
    offsets, offset = {}, 0
    for b in unet._film_blocks:  # module order: the order of film_params() and forward()
        offsets[id(b)] = offset
        offset += 2 * b.out_ch
    return offsets


class PackedFiLM:
    """Every block's FiLM Linear as one matmul: steps (S,) and conditions (B, C) -> (S*B, F, 1).

    Its input is Mish([step embedding, observation]) and Mish is elementwise, so the step rows' share
    is fixed per timestep list: computed once, kept.
    """

    def __init__(self, unet):
        weight = torch.cat([b.film[1].weight.detach() for b in unet._film_blocks]).t()  # (E + C, F)
        E = unet.step_embedding[-1].out_features
        self.step_weight, self.cond_weight = weight[:E].contiguous(), weight[E:].contiguous()
        self.bias = torch.cat([b.film[1].bias.detach() for b in unet._film_blocks])
        self.step_embedding = unet.step_embedding
        self.offsets = film_offsets(unet)
        self._step_film: dict[tuple, torch.Tensor] = {}

    def __call__(self, timesteps: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        """Every block's [scale; bias] per step and condition, step-major."""
        key = (torch.is_inference_mode_enabled(), tuple(timesteps.tolist()))
        steps = self._step_film.get(key)
        if steps is None:
            emb = self.step_embedding(timesteps.to(global_cond.device))
            steps = self._step_film[key] = torch.addmm(self.bias, F.mish(emb), self.step_weight)
        cond = F.mish(global_cond) @ self.cond_weight  # (B, F)
        return (steps[:, None] + cond[None]).flatten(0, 1).unsqueeze(2)


class PackedTrunk:
    """ConditionalUnet1D.trunk for inference: (B, T, A) sample + (B, F, 1) packed FiLM -> (B, T, A)."""

    def __init__(self, unet):
        buffers = PackBuffers()

        def conv(c):
            return PackedConv.from_conv(c, buffers)

        def norm_act(seq):
            return PackedNormAct(conv(seq[0]), seq[1])

        offsets = film_offsets(unet)

        def block(b):
            residual = None if isinstance(b.residual, nn.Identity) else conv(b.residual)
            return PackedResidualBlock(norm_act(b.block1), norm_act(b.block2), residual, offsets[id(b)], b.out_ch)

        self.down = [(block(b1), block(b2), None if isinstance(d, nn.Identity) else conv(d)) for b1, b2, d in unet.down]
        self.mid = [block(b) for b in unet.mid]
        self.up = [(block(b1), block(b2), PackedConv.from_upsampler(up, buffers)) for b1, b2, up in unet.up]
        self.final = (norm_act(unet.final[0]), conv(unet.final[1]))
        self.down_factor = unet.down_factor
        self.film = PackedFiLM(unet)

    def __call__(self, sample: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        T = sample.shape[1]
        x = sample.transpose(1, 2)
        pad = -T % self.down_factor
        if pad:  # as in ConditionalUnet1D.trunk: zero-pad the end, crop it at the end
            x = F.pad(x, (0, pad))
        skips = []
        for b1, b2, down in self.down:
            x = b2(b1(x, film), film)
            skips.append(x)
            if down is not None:
                x = down(x)
        for b in self.mid:
            x = b(x, film)
        for b1, b2, up in self.up:
            x = up.channels_last(b2(b1(torch.cat([x, skips.pop()], dim=1), film), film))
            B, L, C2 = x.shape
            x = x.view(B, 2 * L, C2 // 2).transpose(1, 2)  # [even | odd] per step is the interleaved sequence
        x = self.final[1](self.final[0](x))
        return (x[..., :T] if pad else x).transpose(1, 2)
