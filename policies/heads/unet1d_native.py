"""The U-Net trunk for small-batch CPU inference in compiled code: one foreign call per denoising step.

At batch 1 a denoising step of the small U-Net is ~4 M multiply-adds, well under a millisecond of
arithmetic, spread over ~150 tensor ops. Through PyTorch each op costs 2-20 us of dispatch on a
2-vCPU EPYC, which is most of a step even after the packed trunk (unet1d_inference.py) removed the
worst of it. unet1d_native.c runs the whole trunk as one call: this module lays out the weights in
one float32 buffer, writes the network as a list of ops over one scratch arena (per chunk length
and thread) and calls it through ctypes. The library is compiled on first use with the system C
compiler (`-O3 -march=native`, so it is built on the machine that runs it) and cached under
~/.cache/takeover/native, keyed by the source, the flags and the CPU. No compiler, a failed build or
TAKEOVER_NATIVE=0: `native_library()` returns None with the reason in `native_unavailable_reason()`,
and the U-Net uses the packed PyTorch trunk instead. tests/test_diffusion.py holds all three equal.
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
from torch import nn

from .unet1d_inference import PackedConv, PackedFiLM

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("unet1d_native.c")
CFLAGS = ["-O3", "-march=native", "-std=gnu11", "-shared", "-fPIC"]
OP_WORDS = 10
OP_COPY_IN, OP_CONV, OP_NORM_MISH, OP_FILM, OP_ADD, OP_CONCAT, OP_COPY_OUT = range(7)

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_reason: str | None = None
_tried = False


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


def native_library() -> ctypes.CDLL | None:
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
            lib = ctypes.CDLL(str(_build(compiler)))
            lib.takeover_unet_run.restype = ctypes.c_int
            lib.takeover_unet_run.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                              ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                              ctypes.c_int, ctypes.c_int]
            lib.takeover_unet_max_channels.restype = ctypes.c_int
            _library = lib
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            _reason = str(e)
            log.warning("compiled U-Net trunk unavailable (%s); using the PyTorch trunk", _reason)
        _tried = True
    return _library


def native_unavailable_reason() -> str | None:
    native_library()
    return _reason


def column_panels(weight: torch.Tensor) -> torch.Tensor:
    """(K, N) -> gemm()'s layout: K x 16 blocks of columns (K x 8 for the last multiple of 8), then K x (N % 8)."""
    N = weight.shape[1]
    n8 = N - N % 8
    edges = list(range(0, n8, 16)) + [n8, N]
    return torch.cat([weight[:, a:b].reshape(-1) for a, b in zip(edges[:-1], edges[1:]) if b > a])


@dataclass(frozen=True)
class Buf:
    """An activation in the arena: `rows` x `channels` floats from float offset `at` (its interior)."""
    at: int
    rows: int
    channels: int


class _Program:
    """The op list and arena size of one chunk length, written by walking the U-Net like its trunk()."""

    def __init__(self, trunk: NativeTrunk, unet, length: int):
        self.trunk, self.words, self.arena_size = trunk, [], 0
        self.border = max(unet.final[0][0].kernel_size[0] // 2, 1)  # rows of zeros around every buffer
        padded = length + (-length % unet.down_factor)
        x = self.buffer(padded, unet.action_dim)
        self.op(OP_COPY_IN, x.at, length * unet.action_dim)
        skips = []
        for b1, b2, down in unet.down:
            x = self.block(self.block(x, b1), b2)
            skips.append(x)
            if not isinstance(down, nn.Identity):
                x = self.conv(x, down)
        for b in unet.mid:
            x = self.block(x, b)
        for b1, b2, up in unet.up:
            skip = skips.pop()
            cat = self.buffer(x.rows, x.channels + skip.channels)
            self.op(OP_CONCAT, cat.at, x.at, skip.at, x.rows, x.channels, skip.channels)
            x = self.block(self.block(cat, b1), b2)
            y = self.conv(x, up, PackedConv.from_upsampler(up, None))  # rows of [even | odd] outputs
            x = Buf(y.at, 2 * y.rows, y.channels // 2)  # ... are the interleaved sequence
        x = self.norm_mish(self.conv(x, unet.final[0][0]), unet.final[0][1])
        x = self.conv(x, unet.final[1])
        self.op(OP_COPY_OUT, x.at, length * unet.action_dim)
        self.ops = torch.tensor(self.words, dtype=torch.int32)
        self.n_ops = len(self.words) // OP_WORDS

    def op(self, code: int, *args: int):
        assert len(args) < OP_WORDS
        self.words += [code, *args] + [0] * (OP_WORDS - 1 - len(args))

    def buffer(self, rows: int, channels: int) -> Buf:
        start = self.arena_size
        self.arena_size += (rows + 2 * self.border) * channels
        return Buf(start + self.border * channels, rows, channels)

    def conv(self, x: Buf, conv: nn.Module, packed: PackedConv | None = None) -> Buf:
        packed = packed or PackedConv.from_conv(conv, None)
        if packed.padding > self.border:
            raise ValueError(f"conv padding {packed.padding} exceeds the arena's border {self.border}")
        w, b = self.trunk.offset(column_panels(packed.weight)), self.trunk.offset(packed.bias)
        rows = (x.rows + 2 * packed.padding - packed.kernel) // packed.stride + 1
        out_ch = packed.weight.shape[1]
        y = self.buffer(rows, out_ch)
        self.op(OP_CONV, x.at - packed.padding * x.channels, y.at, rows, packed.kernel * x.channels, out_ch,
                packed.stride * x.channels, w, b)
        return y

    def norm_mish(self, x: Buf, norm: nn.GroupNorm) -> Buf:
        self.op(OP_NORM_MISH, x.at, x.rows, x.channels, norm.num_groups, self.trunk.offset(norm.weight),
                self.trunk.offset(norm.bias), self.trunk.offset(torch.tensor([norm.eps])))
        return x

    def block(self, x: Buf, block) -> Buf:
        h = self.norm_mish(self.conv(x, block.block1[0]), block.block1[1])
        self.op(OP_FILM, h.at, h.rows, h.channels, self.trunk.film.offsets[id(block)])
        h = self.norm_mish(self.conv(h, block.block2[0]), block.block2[1])
        residual = x if isinstance(block.residual, nn.Identity) else self.conv(x, block.residual)
        self.op(OP_ADD, h.at, residual.at, h.rows * h.channels)
        return h


class NativeTrunk:
    """ConditionalUnet1D.trunk through unet1d_native.c: (B, T, A) float32 sample + (B, F, 1) FiLM -> (B, T, A).

    Same interface as PackedTrunk (`film(timesteps, cond)`, then one call per denoising step). The
    weights are copied at construction; ConditionalUnet1D rebuilds it when a parameter changes.
    """

    def __init__(self, unet, library: ctypes.CDLL):
        self.lib = library
        self.film = PackedFiLM(unet)
        self._unet = unet
        widest = max(m.weight.shape[0] for m in unet.modules() if isinstance(m, nn.GroupNorm))
        if 2 * widest > library.takeover_unet_max_channels():
            raise ValueError(f"U-Net width {widest} exceeds the compiled trunk's limit")
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
                    assert self._size == self.weights.numel(), "programs disagree on the weight layout"
                    self._programs[length] = prog
        return prog

    def __call__(self, sample: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        B, T, A = sample.shape
        prog = self.program(T)
        arenas = self._local.__dict__.setdefault("arenas", {})
        arena = arenas.get(T)
        if arena is None:
            arena = arenas[T] = torch.zeros(prog.arena_size, dtype=torch.float32)
        x = sample.contiguous()
        film = film.contiguous()
        out = torch.empty_like(x)
        rc = self.lib.takeover_unet_run(prog.ops.data_ptr(), prog.n_ops, self.weights.data_ptr(), arena.data_ptr(),
                                        x.data_ptr(), T * A, out.data_ptr(), film.data_ptr(), film.shape[1], B)
        if rc:
            raise RuntimeError(f"compiled U-Net trunk rejected op {rc - 1}")
        return out
