"""The U-Net trunk for small-batch CPU inference in compiled code: one foreign call per denoising step.

At batch 1 a denoising step of the small U-Net is ~4 M multiply-adds, well under a millisecond of
arithmetic, spread over ~150 tensor ops that PyTorch dispatches at 2-20 us each. unet1d_native.c runs
the whole trunk as one call: this module lays out the weights in one float32 buffer, writes the
network as a list of ops over one scratch arena (per chunk length and thread) and calls it through
ctypes; the C side checks every op against the buffers' sizes before it runs any. Measured against
ONNX Runtime, OpenVINO and torch.compile in benchmarks/diffusion_latency.py (docs/results/diffusion-cpu.md).

The library is compiled on first use with the system C compiler (`-O3 -march=native`, so it is built
on the machine that runs it) and cached under ~/.cache/takeover/native, keyed by the source, the
flags and the CPU. No compiler, a failed build or TAKEOVER_NATIVE=0: `native_library()` returns None
with the reason in `native_unavailable_reason()`, and the U-Net runs its nn modules (one warning).
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PolicyError

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("unet1d_native.c")
CFLAGS = ["-O3", "-march=native", "-std=gnu11", "-shared", "-fPIC"]

_lock = threading.Lock()
_library: NativeLibrary | None = None
_reason: str | None = None
_tried = False


class NativeTrunkError(PolicyError):
    """The compiled trunk refused an op list or an input instead of reading or writing outside a buffer."""


def _cpu_signature() -> str:
    """The CPU model and feature flags: -march=native code is only reused on the same kind of CPU."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        keep = [ln for ln in lines if ln.split(":")[0].strip() in ("model name", "flags", "Features", "CPU part")]
        return "\n".join(sorted(set(keep)))
    except OSError:
        return platform.processor() or platform.machine()


def cache_dir() -> Path:
    root = os.environ.get("TAKEOVER_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "takeover")
    return Path(root) / "native"


def _build(compiler: str) -> Path:
    source = SOURCE.read_bytes()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256(b"\0".join([source, " ".join(CFLAGS).encode(), version.encode(), _cpu_signature().encode()]))
    target = cache_dir() / f"unet1d-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:  # build beside the target, then rename: a concurrent or killed build never leaves half a library
        done = subprocess.run([compiler, *CFLAGS, "-o", tmp, str(SOURCE), "-lm"], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


class NativeLibrary:
    """The compiled runner, with its opcodes and op size read from it (the C enum is their one definition)."""

    def __init__(self, path: Path):
        lib = self.cdll = ctypes.CDLL(str(path))
        lib.takeover_unet_run.restype = ctypes.c_int
        lib.takeover_unet_run.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int64,
                                          ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
                                          ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int]
        lib.takeover_checksum.restype = ctypes.c_uint64
        lib.takeover_checksum.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        lib.takeover_unet_op_name.restype = ctypes.c_char_p
        lib.takeover_unet_op_name.argtypes = [ctypes.c_int]
        self.op_words = lib.takeover_unet_op_words()
        self.max_channels = lib.takeover_unet_max_channels()
        self.opcodes: dict[str, int] = {}
        while (name := lib.takeover_unet_op_name(len(self.opcodes))) is not None:
            self.opcodes[name.decode()] = len(self.opcodes)
        self.op_names = {code: name for name, code in self.opcodes.items()}

    def checksum(self, tensors: list[torch.Tensor]) -> int:
        """A checksum of what the tensors hold, in order (not of where they live)."""
        if any(t.device.type != "cpu" for t in tensors):
            raise NativeTrunkError("the compiled trunk reads CPU weights; move the model with .cpu() first")
        tensors = [t if t.is_contiguous() else t.contiguous() for t in tensors]  # kept alive through the call
        n = len(tensors)
        ptrs = (ctypes.c_void_p * n)(*[t.data_ptr() for t in tensors])
        sizes = (ctypes.c_int64 * n)(*[t.numel() * t.element_size() for t in tensors])
        return self.cdll.takeover_checksum(ptrs, sizes, n)


def native_library() -> NativeLibrary | None:
    """The compiled trunk runner, built on first use; None when it cannot be (see native_unavailable_reason)."""
    global _library, _reason, _tried
    if _tried:
        return _library
    with _lock:
        if _tried:
            return _library
        try:
            if os.environ.get("TAKEOVER_NATIVE", "1") == "0":
                raise RuntimeError("TAKEOVER_NATIVE=0")
            compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
            if compiler is None:
                raise RuntimeError("no C compiler (gcc or cc) on PATH")
            _library = NativeLibrary(_build(compiler))
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            _reason = str(e)
            log.warning("compiled U-Net trunk unavailable (%s); denoising through the nn modules (~10x slower)", _reason)
        _tried = True
    return _library


def native_unavailable_reason() -> str | None:
    native_library()
    return _reason


def conv_matrix(conv: nn.Conv1d) -> torch.Tensor:
    """A Conv1d's weight as (k*C_in, C_out), rows tap-major: the GEMM over channels-last input windows."""
    out_ch, in_ch, k = conv.weight.shape
    return conv.weight.detach().permute(2, 1, 0).reshape(k * in_ch, out_ch)


def upsampler_matrix(up: nn.ConvTranspose1d) -> tuple[torch.Tensor, torch.Tensor]:
    """ConvTranspose1d(k=4, stride=2, padding=1) as a k=3 conv with outputs [even | odd]:
    out[2m] = W1'x[m] + W3'x[m-1], out[2m+1] = W2'x[m] + W0'x[m+1] (W' = tap transposed); its
    channels-last output rows *are* the interleaved sequence. Returns (weight (3*C_in, 2*C_out), bias)."""
    if (up.kernel_size[0], up.stride[0], up.padding[0]) != (4, 2, 1):
        raise PolicyError(f"the compiled trunk only has the U-Net's ConvTranspose1d(k=4, s=2, p=1), not {up}")
    wt = up.weight.detach()  # (C_in, C_out, 4): tap j maps input m to output 2m - 1 + j
    zero = torch.zeros_like(wt[..., 0])
    taps = [torch.cat(pair, dim=1) for pair in ((wt[..., 3], zero), (wt[..., 1], wt[..., 2]), (zero, wt[..., 0]))]
    return torch.cat(taps), torch.cat([up.bias, up.bias]).detach()


def column_panels(weight: torch.Tensor) -> torch.Tensor:
    """(K, N) -> gemm()'s layout: K x 16 blocks of columns (K x 8 for the last multiple of 8), then K x (N % 8)."""
    N = weight.shape[1]
    n8 = N - N % 8
    edges = list(range(0, n8, 16)) + [n8, N]
    return torch.cat([weight[:, a:b].reshape(-1) for a, b in zip(edges[:-1], edges[1:]) if b > a])


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
        self.offsets, offset = {}, 0  # id(residual block) -> where its [scale; bias] starts (module order)
        for b in unet._film_blocks:
            self.offsets[id(b)] = offset
            offset += 2 * b.out_ch
        self.width = offset
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


@dataclass(frozen=True)
class Buf:
    """An activation in the arena: `rows` x `channels` floats from float offset `at` (its interior)."""
    at: int
    rows: int
    channels: int


class _Program:
    """The op list and arena size of one chunk length, written by walking the U-Net like its trunk()."""

    def __init__(self, trunk: NativeTrunk, unet, length: int):
        self.trunk, self.lib, self.words, self.arena_size = trunk, trunk.lib, [], 0
        self.border = max(unet.final[0][0].kernel_size[0] // 2, 1)  # rows of zeros around every buffer
        padded = length + (-length % unet.down_factor)
        x = self.buffer(padded, unet.action_dim)
        self.op("COPY_IN", x.at, length * unet.action_dim)
        skips = []
        for b1, b2, down in unet.down:
            x = self.block(self.block(x, b1), b2)
            skips.append(x)
            if not isinstance(down, nn.Identity):
                x = self.conv(x, conv_matrix(down), down.bias, down.kernel_size[0], down.padding[0], down.stride[0])
        for b in unet.mid:
            x = self.block(x, b)
        for b1, b2, up in unet.up:
            skip = skips.pop()
            cat = self.buffer(x.rows, x.channels + skip.channels)
            self.op("CONCAT", cat.at, x.at, skip.at, x.rows, x.channels, skip.channels)
            x = self.block(self.block(cat, b1), b2)
            y = self.conv(x, *upsampler_matrix(up), 3, 1, 1)  # rows of [even | odd] outputs ...
            x = Buf(y.at, 2 * y.rows, y.channels // 2)  # ... are the interleaved sequence
        x = self.norm_mish(self.conv_module(x, unet.final[0][0]), unet.final[0][1])
        x = self.conv_module(x, unet.final[1])
        self.op("COPY_OUT", x.at, length * unet.action_dim)
        self.ops = torch.tensor(self.words, dtype=torch.int32)
        self.n_ops = len(self.words) // self.lib.op_words

    def op(self, name: str, *args: int):
        if len(args) >= self.lib.op_words:
            raise NativeTrunkError(f"op {name} has {len(args)} arguments; an op holds {self.lib.op_words - 1}")
        self.words += [self.lib.opcodes[name], *args] + [0] * (self.lib.op_words - 1 - len(args))

    def buffer(self, rows: int, channels: int) -> Buf:
        start = self.arena_size
        self.arena_size += (rows + 2 * self.border) * channels
        return Buf(start + self.border * channels, rows, channels)

    def conv_module(self, x: Buf, conv: nn.Conv1d) -> Buf:
        return self.conv(x, conv_matrix(conv), conv.bias, conv.kernel_size[0], conv.padding[0], conv.stride[0])

    def conv(self, x: Buf, weight: torch.Tensor, bias: torch.Tensor, kernel: int, padding: int, stride: int) -> Buf:
        if padding > self.border:
            raise NativeTrunkError(f"conv padding {padding} exceeds the arena's border {self.border}")
        w, b = self.trunk.offset(column_panels(weight)), self.trunk.offset(bias)
        rows = (x.rows + 2 * padding - kernel) // stride + 1
        y = self.buffer(rows, weight.shape[1])
        self.op("CONV", x.at - padding * x.channels, y.at, rows, kernel * x.channels, weight.shape[1], stride * x.channels, w, b)
        return y

    def norm_mish(self, x: Buf, norm: nn.GroupNorm) -> Buf:
        self.op("NORM_MISH", x.at, x.rows, x.channels, norm.num_groups, self.trunk.offset(norm.weight),
                self.trunk.offset(norm.bias), self.trunk.offset(torch.tensor([norm.eps])))
        return x

    def block(self, x: Buf, block) -> Buf:
        h = self.norm_mish(self.conv_module(x, block.block1[0]), block.block1[1])
        self.op("FILM", h.at, h.rows, h.channels, self.trunk.film.offsets[id(block)])
        h = self.norm_mish(self.conv_module(h, block.block2[0]), block.block2[1])
        residual = x if isinstance(block.residual, nn.Identity) else self.conv_module(x, block.residual)
        self.op("ADD", h.at, residual.at, h.rows * h.channels)
        return h


class NativeTrunk:
    """ConditionalUnet1D.trunk through unet1d_native.c: (B, T, A) float32 sample + (B, F, 1) FiLM -> (B, T, A).

    `film(timesteps, cond)` once per chunk, then one call per denoising step. The weights are copied
    at construction; ConditionalUnet1D.native_trunk() builds a new one when their checksum changes.
    """

    def __init__(self, unet, library: NativeLibrary):
        self.lib = library
        self.film = PackedFiLM(unet)
        self._unet = unet
        widest = max(m.weight.shape[0] for m in unet.modules() if isinstance(m, nn.GroupNorm))
        if widest > library.max_channels:
            raise NativeTrunkError(f"U-Net width {widest} exceeds the compiled trunk's limit {library.max_channels}")
        self._build_lock = threading.Lock()
        self._chunks: list[torch.Tensor] | None = []  # the weights while the first program lays them out
        self._size = 0
        self._programs: dict[int, _Program] = {16: _Program(self, unet, 16)}  # 16: the default chunk length
        self.weights = torch.cat(self._chunks)
        self._chunks = None
        self._local = threading.local()  # each thread its own scratch arenas, dropped with the thread

    def offset(self, tensor: torch.Tensor) -> int:
        """A weight's float offset in the buffer. Every program walks the U-Net in the same order, so
        the first one appends the values and later ones (other chunk lengths) find the same offsets."""
        at = self._size
        self._size += tensor.numel()
        if self._chunks is not None:
            self._chunks.append(tensor.detach().reshape(-1).to(torch.float32))
        return at

    def program(self, length: int) -> _Program:
        prog = self._programs.get(length)
        if prog is None:
            with self._build_lock:  # offset() counts through self._size
                prog = self._programs.get(length)
                if prog is None:
                    self._size = 0
                    prog = _Program(self, self._unet, length)
                    if self._size != self.weights.numel():
                        raise NativeTrunkError(f"the program for {length} steps lays out {self._size} weights, "
                                               f"the buffer holds {self.weights.numel()}")
                    self._programs[length] = prog
        return prog

    def __call__(self, sample: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        prog = self.program(sample.shape[1])
        return self.run(prog.ops, prog.arena_size, sample, film)

    def run(self, ops: torch.Tensor, arena_size: int, sample: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """One op list over this thread's arena of `arena_size` floats; the C side checks it first."""
        if ops.dtype != torch.int32 or ops.dim() != 1 or ops.numel() % self.lib.op_words:
            raise NativeTrunkError(f"an op list is a flat int32 tensor of whole {self.lib.op_words}-word ops")
        if (sample.dtype != torch.float32 or sample.dim() != 3 or film.dtype != torch.float32
                or film.shape != (sample.shape[0], self.film.width, 1)):
            raise NativeTrunkError(f"the compiled trunk takes float32 (B, T, A) samples and (B, {self.film.width}, 1) "
                                   f"FiLM, not {sample.dtype} {tuple(sample.shape)} and {film.dtype} {tuple(film.shape)}")
        arenas = self._local.__dict__.setdefault("arenas", {})
        arena = arenas.get(arena_size)
        if arena is None:
            arena = arenas[arena_size] = torch.zeros(arena_size, dtype=torch.float32)
        ops, x, film = ops.contiguous(), sample.contiguous(), film.contiguous()
        out = torch.empty_like(x)
        B, T, A = x.shape
        rc = self.lib.cdll.takeover_unet_run(ops.data_ptr(), ops.numel() // self.lib.op_words, self.weights.data_ptr(),
                                             self.weights.numel(), arena.data_ptr(), arena.numel(), x.data_ptr(),
                                             out.data_ptr(), T * A, film.data_ptr(), film.shape[1] * film.shape[2], B)
        if rc:
            code = int(ops[(rc - 1) * self.lib.op_words])
            raise NativeTrunkError(f"compiled U-Net trunk refused op {rc - 1} ({self.lib.op_names.get(code, f'unknown opcode {code}')}): "
                                   "it reaches outside its buffers or is malformed")
        return out
