"""The diffusion head: its schedulers recover a known chunk from an oracle denoiser, its samples cover
both modes of bimodal data, the loss falls and ignores padding, checkpoints act identically, act()
replans once per exec_horizon, and the EMA helper follows Diffusion Policy's decay schedule."""
from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from synthetic import bimodal, build, train
from torch import nn

from takeover.policies import PolicyError, make_config
from takeover.policies.checkpoint import load_checkpoint, save_checkpoint
from takeover.policies.ema import EMA
from takeover.policies.heads.diffusion import DiffusionConfig, DiffusionPolicy
from takeover.policies.heads.unet1d import NATIVE_MAX_BATCH, ConditionalUnet1D
from takeover.policies.heads.unet1d_native import NativeTrunkError, native_library, native_unavailable_reason
from takeover.sim.spec import EnvSpec

torch.set_num_threads(1)

TA = 4  # chunk length in the learning tests (a multiple of the tiny U-Net's down-sampling factor 2)
TINY = {"down_dims": (32, 64), "step_embed_dim": 32, "obs_horizon": 1, "action_horizon": TA, "exec_horizon": 2}


def features_for(policy, obs: np.ndarray) -> torch.Tensor:
    """obs (N, To, D) raw -> the head's normalised features (N, To, F)."""
    return policy.encoder(policy.normalizer.obs(torch.as_tensor(obs)))


# ----- schedulers: an oracle denoiser must give back the clean chunk ---------------------------
class NoiseOracle(nn.Module):
    """Knows the clean chunk x0 and returns the exact noise: (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)."""

    def __init__(self, x0: torch.Tensor, alphas_cumprod: torch.Tensor):
        super().__init__()
        self.x0, self.abar = x0, alphas_cumprod.double()

    def forward(self, x_t, t, cond):
        a = self.abar[t.long()].view(-1, 1, 1)
        return ((x_t.double() - a.sqrt() * self.x0.double()) / (1 - a).sqrt()).to(x_t.dtype)


def test_training_schedule_is_the_capped_cosine_of_100_steps():
    policy = build("diffusion", *bimodal(64, action_dim=2), **TINY)
    T, s = 100, 0.008
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    betas = torch.tensor([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)], dtype=torch.float64)
    sched = policy.noise_scheduler
    assert sched.config.num_train_timesteps == 100 and sched.config.prediction_type == "epsilon" and sched.config.clip_sample
    assert torch.allclose(sched.alphas_cumprod.double(), torch.cumprod(1 - betas, 0), atol=1e-6)
    # the inference scheduler is a separate object on the very same betas
    assert policy.inference_scheduler is not sched
    assert torch.allclose(policy.inference_scheduler.alphas_cumprod, sched.alphas_cumprod)


@pytest.mark.parametrize("scheduler,steps,spacing", [("ddim", 10, "trailing"), ("ddim", 10, "leading"),
                                                     ("ddpm", 100, "leading"), ("dpm", 10, "trailing")])
def test_oracle_denoiser_recovers_the_clean_chunk(scheduler, steps, spacing):
    obs, actions = bimodal(64, action_dim=3)
    policy = build("diffusion", obs, actions, **{**TINY, "action_horizon": 16}, inference_scheduler=scheduler,
                   inference_steps=steps, inference_timestep_spacing=spacing)
    x0 = torch.empty(5, 16, 3).uniform_(-0.95, 0.95, generator=torch.Generator().manual_seed(1))
    policy.denoiser = NoiseOracle(x0, policy.noise_scheduler.alphas_cumprod)
    policy.seed(0)
    out = policy.predict(features_for(policy, obs[:5, None]))
    assert out.shape == (5, 16, 3)
    assert (out - x0).abs().max().item() < 1e-3, f"{scheduler}-{steps}: max error {(out - x0).abs().max():.2e}"
    assert len(policy._timesteps) == steps and policy._timesteps.max() >= 90  # starts near pure noise


# ----- the denoiser ------------------------------------------------------------------------------
def random_unet(down_dims=(32, 64, 128), action_dim=7, cond_dim=12, step_embed_dim=32) -> ConditionalUnet1D:
    torch.manual_seed(0)
    unet = ConditionalUnet1D(action_dim=action_dim, cond_dim=cond_dim, down_dims=down_dims, step_embed_dim=step_embed_dim).eval()
    for p in unet.parameters():  # FiLM and up-samplers start near zero; make every path count
        nn.init.normal_(p, std=0.2)
    return unet


@pytest.mark.parametrize("backend", ["native", "modules"])
@pytest.mark.parametrize("down_dims,length,batch", [((32, 64, 128), 16, 1), ((16, 32, 64, 160), 10, 3), ((32, 64), 16, 300)])
def test_inference_trunk_equals_forward(down_dims, length, batch, backend):
    """conditioned() (precomputed FiLM; the compiled trunk or the modules) is forward(). Four levels at
    length 10 pad the chunk and give a down-sampler and a block convolution the same scratch shape;
    batch 300 is past the compiled trunk's batch limit and takes the modules."""
    unet = random_unet(down_dims)
    unet.cpu_inference = backend
    x, cond, steps = torch.randn(batch, length, 7), torch.randn(batch, 12), torch.tensor([99, 42, 0])
    with torch.no_grad():
        eps = unet.conditioned(cond, steps)
        for i, t in enumerate(steps):
            ref = unet(x, t.expand(batch), cond)
            assert ref.shape == x.shape
            assert torch.allclose(eps(x, i), ref, atol=1e-4, rtol=1e-4)
    assert (unet._native is not None) == (backend == "native" and batch <= NATIVE_MAX_BATCH)


def test_the_compiled_trunk_is_built_here():
    """CI machines have gcc: the default CPU path must be the compiled one, not a silent fallback."""
    assert native_library() is not None, native_unavailable_reason()


def test_compiled_trunk_follows_the_weights():
    """The compiled trunk's copy of the weights is rebuilt whenever they change: in place under no_grad
    or inference_mode, by an optimiser step, by load_state_dict (copying or assigning new tensors)."""
    unet = ConditionalUnet1D(action_dim=3, cond_dim=5, down_dims=(16, 32), step_embed_dim=16).eval()
    x, cond, steps = torch.randn(1, 8, 3), torch.randn(1, 5), torch.tensor([50])
    other = ConditionalUnet1D(action_dim=3, cond_dim=5, down_dims=(16, 32), step_embed_dim=16).state_dict()
    last = []

    def check():
        with torch.inference_mode():
            out = unet.conditioned(cond, steps)(x, 0)
            assert torch.allclose(out, unet(x, steps, cond), atol=1e-5)
        assert not last or not torch.allclose(out, last[-1], atol=1e-4), "the weights changed, the output did not"
        last.append(out)

    check()
    with torch.no_grad():
        unet.final[1].bias.add_(0.5)
    check()
    with torch.inference_mode():
        unet.down[0][0].block1[0].weight.mul_(-1)
    check()
    optimiser = torch.optim.SGD(unet.parameters(), lr=0.1)
    unet(x, steps, cond).square().sum().backward()
    optimiser.step()
    check()
    unet.load_state_dict(other)
    check()
    unet.load_state_dict({k: v + 0.01 for k, v in other.items()}, assign=True)
    check()
    assert native_library() is not None and unet._native is not None


def corruptions(prog, lib, film_width: int):
    """(what, op index, word, value): one bad word in an otherwise valid op list."""
    words = prog.ops.view(-1, lib.op_words)
    first = {}
    for i, code in enumerate(words[:, 0].tolist()):
        first.setdefault(lib.op_names[code], i)
    conv, norm, film, add, concat = (first[n] for n in ("CONV", "NORM_MISH", "FILM", "ADD", "CONCAT"))
    return [("unknown opcode", conv, 0, 99), ("negative opcode", conv, 0, -1),
            ("conv output past the arena", conv, 2, prog.arena_size), ("conv input before the arena", conv, 1, -8),
            ("conv rows", conv, 3, 1 << 20), ("conv weights past the buffer", conv, 7, 1 << 30),
            ("conv bias past the buffer", conv, 8, 2**31 - 1), ("negative conv stride", conv, 6, -1),
            ("norm channels past the stack", norm, 3, lib.max_channels + 8), ("groups not dividing channels", norm, 4, 3),
            ("zero groups", norm, 4, 0), ("eps past the weights", norm, 7, 1 << 30),
            ("FiLM past its row", film, 4, film_width - 1), ("add size", add, 3, prog.arena_size),
            ("concat source", concat, 2, prog.arena_size - 1),
            ("copy in more than a chunk", 0, 2, 10**6), ("copy out past the arena", len(words) - 1, 1, prog.arena_size)]


def test_compiled_trunk_refuses_a_corrupted_op_list():
    """Every bad offset or size is refused by the C side before any op runs: a clear error naming the
    op, the weights and scratch untouched, and the next valid call still equal to forward()."""
    unet = random_unet()
    x, cond, steps = torch.randn(1, 16, 7), torch.randn(1, 12), torch.tensor([30])
    with torch.no_grad():
        eps = unet.conditioned(cond, steps)
        expected = unet(x, steps, cond)
        assert torch.allclose(eps(x, 0), expected, atol=1e-4, rtol=1e-4)
        trunk = unet._native[1]
        film = trunk.film(steps, cond)
        prog = trunk.program(16)
        lib = trunk.lib
        assert set(lib.opcodes) == {"COPY_IN", "CONV", "NORM_MISH", "FILM", "ADD", "CONCAT", "COPY_OUT"}
        weights = trunk.weights.clone()
        for what, index, word, value in corruptions(prog, lib, trunk.film.width):
            ops = prog.ops.clone()
            ops[index * lib.op_words + word] = value
            arena = trunk._local.arenas[prog.arena_size]
            arena.fill_(7.0)
            with pytest.raises(NativeTrunkError, match=f"refused op {index} "):
                trunk.run(ops, prog.arena_size, x, film)
            assert torch.equal(arena, torch.full_like(arena, 7.0)), f"{what}: the arena was written"
            arena.zero_()  # the borders must be zero again for the valid calls
        with pytest.raises(NativeTrunkError, match="refused op"):  # an arena too small for the program
            trunk.run(prog.ops, prog.arena_size // 2, x, film)
        with pytest.raises(NativeTrunkError, match="whole"):
            trunk.run(prog.ops[:-1], prog.arena_size, x, film)
        with pytest.raises(NativeTrunkError, match="FiLM"):
            trunk(x, film[:, :-1])
        with pytest.raises(NativeTrunkError, match="float32"):
            trunk(x.double(), film)
        with pytest.raises(NativeTrunkError, match="FiLM"):  # fewer FiLM rows than chunks
            trunk.run(prog.ops, prog.arena_size, x.repeat(2, 1, 1), film)
        assert torch.equal(trunk.weights, weights)
        assert torch.allclose(eps(x, 0), expected, atol=1e-4, rtol=1e-4)


def test_compiled_trunk_never_reads_weights_off_the_cpu():
    """Weights elsewhere (here the meta device, whose tensors have no memory) are refused, not read."""
    unet = ConditionalUnet1D(action_dim=3, cond_dim=5, down_dims=(16, 32), step_embed_dim=16).to("meta")
    with pytest.raises(NativeTrunkError, match="CPU weights"), torch.no_grad():
        unet.conditioned(torch.randn(1, 5), torch.tensor([10]))


def test_compiled_trunk_gives_each_thread_its_own_scratch():
    """Two threads denoising at once (ctypes releases the GIL) get what each gets alone."""
    unet = random_unet()
    steps = torch.tensor([90, 40])
    inputs = [(torch.randn(1, 16, 7), torch.randn(1, 12)) for _ in range(2)]
    with torch.inference_mode():
        alone = [unet.conditioned(c, steps)(x, 1) for x, c in inputs]
        results = [[], []]

        def work(k):
            with torch.inference_mode():
                x, c = inputs[k]
                eps = unet.conditioned(c, steps)
                results[k] = [eps(x, 1) for _ in range(200)]

        threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for k in range(2):
        assert all(torch.equal(r, alone[k]) for r in results[k])


SAMPLE_SCRIPT = """
import sys, torch
from takeover.policies.checkpoint import load_checkpoint
from takeover.policies.heads.unet1d_native import native_unavailable_reason
policy = load_checkpoint(sys.argv[1])[0]
torch.save(policy.seed(3).predict(torch.load(sys.argv[2])), sys.argv[3])
print("REASON", native_unavailable_reason(), "NATIVE", policy.denoiser._native is not None)
"""


@pytest.mark.parametrize("env", [{"TAKEOVER_NATIVE": "0"}, {"CC": "false"}], ids=["TAKEOVER_NATIVE=0", "no-compiler"])
def test_sampling_without_the_compiled_trunk_gives_the_same_chunks(tmp_path, env):
    """The same checkpoint and seed sample the same chunks through the compiled trunk (here) and through
    the modules in a process that may not build it: one warning, the reason on record, no library left."""
    policy, _ = bimodal_policy()
    save_checkpoint(tmp_path / "policy.pt", policy, EnvSpec(), step=1)
    features = features_for(policy, bimodal(4, seed=5)[0][:, None])
    torch.save(features, tmp_path / "features.pt")
    native = policy.seed(3).predict(features)
    assert policy.denoiser._native is not None
    environ = {**os.environ, "TAKEOVER_CACHE": str(tmp_path / "cache"), **env}
    done = subprocess.run([sys.executable, "-c", SAMPLE_SCRIPT, str(tmp_path / "policy.pt"), str(tmp_path / "features.pt"),
                           str(tmp_path / "out.pt")], env=environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    reason = "TAKEOVER_NATIVE=0" if "TAKEOVER_NATIVE" in env else "false failed"
    assert f"REASON {reason}" in done.stdout and "NATIVE False" in done.stdout, done.stdout
    assert done.stderr.count("compiled U-Net trunk unavailable") == 1, done.stderr
    assert not list(tmp_path.rglob("*.so")), "a failed build left a library behind"
    assert torch.allclose(torch.load(tmp_path / "out.pt"), native, atol=1e-5)


def test_the_build_lands_in_the_cache_whole(tmp_path):
    """A fresh cache gets exactly one library, no temporary files, and a second process reuses it."""
    script = ("from takeover.policies.heads.unet1d_native import NativeTrunkError, native_library, native_unavailable_reason\n"
              "assert native_library() is not None, native_unavailable_reason()\n")
    env = {**os.environ, "TAKEOVER_CACHE": str(tmp_path)}
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    files = list((tmp_path / "native").iterdir())
    assert len(files) == 1 and files[0].suffix == ".so", files


def test_small_batch_sampling_runs_on_one_thread_and_restores_the_count():
    obs, actions = bimodal(16, action_dim=3)
    policy = build("diffusion", obs, actions, **TINY)
    seen = []
    policy.denoiser.down[0][0].register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    policy.denoiser.cpu_inference = "modules"  # the hook sees nn.Module calls only
    features = features_for(policy, obs[:1, None])
    try:
        torch.set_num_threads(2)
        policy.seed(0)
        two = policy.predict(features)
        assert torch.get_num_threads() == 2 and seen and set(seen) == {1}
        torch.set_num_threads(1)
        policy.seed(0)
        assert torch.equal(policy.predict(features), two)
    finally:
        torch.set_num_threads(1)


def test_config_round_trip_and_validation():
    config = make_config("diffusion", unet_size="paper", inference_scheduler="ddpm", inference_steps=100)
    assert isinstance(config, DiffusionConfig) and config.unet_down_dims == (256, 512, 1024)
    assert (config.obs_horizon, config.action_horizon, config.exec_horizon, config.action_norm) == (2, 16, 8, "minmax")
    again = DiffusionConfig.from_dict(__import__("json").loads(__import__("json").dumps(config.to_dict())))
    assert again == config
    explicit = DiffusionConfig.from_dict({"down_dims": [16, 32]})
    assert explicit.down_dims == (16, 32) and DiffusionConfig.from_dict(explicit.to_dict()) == explicit
    for bad in ({"inference_scheduler": "euler"}, {"inference_steps": 0}, {"unet_size": "huge"}, {"prediction_type": "x"},
                {"beta_schedule": "cosine"}, {"exec_horizon": 17}):
        with pytest.raises(PolicyError):
            make_config("diffusion", **bad)
    with pytest.raises(PolicyError, match="n_groups"):
        build("diffusion", *bimodal(8), down_dims=(12, 24))


# ----- learning ----------------------------------------------------------------------------------
@functools.cache
def bimodal_policy():
    """Every chunk is +1 or -1 throughout (one coin per sample), whatever the observation."""
    obs, actions = bimodal(4000, action_dim=2)
    chunks = np.repeat(actions[:, None], TA, axis=1)
    policy = build("diffusion", obs, chunks, **TINY)
    losses = train(policy, obs[:, None], chunks, steps=300, lr=3e-3)
    return policy, losses


def test_loss_decreases():
    _, losses = bimodal_policy()
    start, end = np.mean(losses[:10]), np.mean(losses[-30:])
    assert end < 0.5 * start, f"loss {start:.3f} -> {end:.3f}"


def test_samples_cover_both_modes():
    policy, _ = bimodal_policy()
    obs = bimodal(400, seed=7)[0]
    policy.seed(11)
    with torch.no_grad():
        chunks = policy.normalizer.unaction(policy.predict(features_for(policy, obs[:, None])))
    means = chunks.mean(dim=(1, 2))
    plus, minus = (means > 0).float().mean().item(), (means < 0).float().mean().item()
    assert plus >= 0.3 and minus >= 0.3, f"modes: +{plus:.2f} -{minus:.2f}"
    near = ((chunks - chunks.mean(dim=(1, 2), keepdim=True).sign()).abs() < 0.3).float().mean().item()
    assert near > 0.9, f"only {near:.2f} of sampled actions lie near a mode"


class PerStepDenoiser(nn.Module):
    """Sees each time step of the chunk alone, so padded steps cannot reach the others' outputs."""

    def __init__(self, action_dim: int):
        super().__init__()
        self.net = nn.Linear(action_dim, action_dim)

    def forward(self, x, t, cond):
        return self.net(x)


def test_padding_is_ignored():
    obs, actions = bimodal(32, action_dim=2)
    chunks = torch.as_tensor(np.repeat(actions[:, None], TA, axis=1))
    policy = build("diffusion", obs, chunks.numpy(), **TINY)
    torch.manual_seed(0)  # the denoiser's initial weights, whatever ran before
    policy.denoiser = PerStepDenoiser(2)
    mask = torch.ones(32, TA, dtype=torch.bool)
    mask[:16, 2:] = False  # half the windows run past the episode's end
    garbage = chunks.clone()
    garbage[~mask] = 123.0

    def loss(a, m):
        torch.manual_seed(0)  # the same noise and diffusion steps for every call
        return policy.loss({"obs": torch.as_tensor(obs[:, None]), "actions": a, "action_mask": m})["loss"].item()

    assert loss(chunks, mask) == pytest.approx(loss(garbage, mask), rel=1e-6)
    assert loss(garbage, torch.ones_like(mask)) > 10 * loss(chunks, mask)  # without the mask it would count


# ----- checkpoints, seeding, receding horizon ---------------------------------------------------
def test_checkpoint_round_trip_samples_identically(tmp_path):
    policy, _ = bimodal_policy()
    save_checkpoint(tmp_path / "policy.pt", policy, EnvSpec(), step=3)
    loaded, _, info = load_checkpoint(tmp_path / "policy.pt")
    assert info["step"] == 3 and type(loaded) is DiffusionPolicy and loaded.config == policy.config
    feats = features_for(policy, bimodal(6, seed=3)[0][:, None])
    a = policy.seed(5).predict(feats)
    b = loaded.seed(5).predict(feats)
    assert torch.equal(a, b)
    assert torch.equal(policy.seed(5).predict(feats), a)  # reseeding repeats the draw
    assert not torch.equal(policy.seed(6).predict(feats), a)
    obs = bimodal(10, seed=4)[0]
    runs = []
    for p in (policy, loaded):  # unseeded: the global RNG, as for every head
        p.seed(None)
        p.reset()
        torch.manual_seed(2)
        runs.append(np.stack([p.act(o) for o in obs]))
    assert np.array_equal(*runs)


def test_act_replans_once_per_exec_horizon():
    obs, actions = bimodal(20, action_dim=2)
    policy = build("diffusion", obs, np.repeat(actions[:, None], 16, axis=1), down_dims=(16, 32), step_embed_dim=16)
    assert (policy.config.obs_horizon, policy.config.action_horizon, policy.config.exec_horizon) == (2, 16, 8)
    chunks = []
    original = policy.predict

    def counting_predict(features, sample=True):
        assert features.shape == (1, 2, 3)  # the last two observations
        chunks.append(original(features, sample))
        return chunks[-1]

    policy.predict = counting_predict
    policy.seed(0).reset()
    executed = [policy.act(o) for o in obs[:20]]
    assert len(chunks) == 3  # steps 0, 8, 16
    raw = [policy.normalizer.unaction(c)[0].clamp(-1, 1).numpy() for c in chunks]
    expected = np.concatenate([r[:8] for r in raw])[:20]
    assert np.allclose(np.stack(executed), expected)
    policy.reset()
    policy.act(obs[0])
    assert len(chunks) == 4  # reset drops the queued actions


# ----- EMA ---------------------------------------------------------------------------------------
def test_ema_follows_the_warmup_decay_and_restores():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(model, power=0.75, max_decay=0.9999)
    assert ema.get_decay(1) == 0.0
    assert ema.get_decay(10_001) == pytest.approx(0.999, abs=1e-6)  # (1 + 10^4)^-0.75 ~ 1e-3
    assert ema.get_decay(10**9) == 0.9999
    history = []
    for step in range(1, 4):
        with torch.no_grad():
            model[0].weight.fill_(float(step))
        model.train()
        model(torch.randn(4, 2))  # moves the BatchNorm buffers
        ema.update(model)
        history.append(ema.decay)
    d2, d3 = history[1], history[2]
    expected = (1 * d2 + 2 * (1 - d2)) * d3 + 3 * (1 - d3)  # first update copies (decay 0)
    assert torch.allclose(ema.shadow["0.weight"], torch.full((2, 2), expected))
    assert torch.equal(ema.shadow["1.running_mean"], model[1].running_mean)  # buffers copied
    with ema.applied_to(model):
        assert torch.allclose(model[0].weight, torch.full((2, 2), expected))
    assert torch.equal(model[0].weight, torch.full((2, 2), 3.0))
    again = EMA(model)
    again.load_state_dict(ema.state_dict())
    assert again.step == 3 and torch.equal(again.shadow["0.weight"], ema.shadow["0.weight"])
    ema.copy_to(model)
    assert torch.allclose(model[0].weight, torch.full((2, 2), expected))
