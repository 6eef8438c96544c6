"""The gmm, cvae, autoregressive and lstm heads on synthetic tasks with known answers:
multimodal labels (samples must cover both modes; the Gaussian mean falls between them), a cue that
only memory can recall, falling loss, exact checkpoint round trips, and padding that changes nothing."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from synthetic import bimodal, build, cue_sequences, sample_actions, train

from takeover.policies.checkpoint import load_checkpoint, save_checkpoint
from takeover.sim.spec import EnvSpec

torch.set_num_threads(1)

WINDOW_HEADS = ("gmm", "cvae", "autoregressive")
SMALL = {
    "gaussian": {"hidden_dims": (64, 64)},
    "gmm": {"hidden_dims": (64, 64)},
    "cvae": {"hidden_dims": (64, 64), "latent_dim": 4},
    # one step per window: these tasks score the per-step action distribution, not chunks
    "autoregressive": {"hidden_dims": (64, 64), "n_bins": 32, "action_horizon": 1, "exec_horizon": 1},
    "lstm": {"rnn_hidden_dim": 32, "rnn_layers": 1, "seq_len": 8},
}
CUE_LEN = 8


@functools.cache
def bimodal_policy(head: str):
    obs, actions = bimodal(4000)
    policy = build(head, obs, actions, **SMALL[head])
    if head == "autoregressive":
        policy.fit_bins(policy.normalizer.action(torch.as_tensor(actions)))
    losses = train(policy, obs[:, None], actions[:, None], steps=400)
    return policy, losses


@functools.cache
def cue_policy(head: str, output: str = "gmm"):
    """lstm trains on whole cue sequences; a memoryless head on the same steps as single pairs."""
    obs, actions, _ = cue_sequences(2000, CUE_LEN)
    if head == "lstm":
        policy = build(head, obs, actions, output=output, **SMALL[head])
        losses = train(policy, obs, actions, steps=200, batch_size=64)
    else:
        obs, actions = obs.reshape(-1, 1, obs.shape[-1]), actions.reshape(-1, 1, actions.shape[-1])
        policy = build(head, obs, actions, **SMALL[head])
        losses = train(policy, obs, actions, steps=300)
    return policy, losses


def trained(head: str):
    return cue_policy(head) if head == "lstm" else bimodal_policy(head)


def cue_accuracy(policy, episodes: int = 100) -> float:
    """Drive the policy through reset()/act(); score sign(action) == cue after the cue is gone."""
    obs, _, cue = cue_sequences(episodes, CUE_LEN, seed=5, balanced=True)
    correct = []
    for i in range(episodes):
        policy.reset()
        for t in range(CUE_LEN):
            action = policy.act(obs[i, t])
            if t >= 1:
                correct.append(np.sign(action[0]) == cue[i])
    return float(np.mean(correct))


# ----- multimodality ----------------------------------------------------------------------------
@pytest.mark.parametrize("head", WINDOW_HEADS)
def test_samples_cover_both_modes(head):
    policy, _ = bimodal_policy(head)
    torch.manual_seed(0)
    obs, _ = bimodal(2000, seed=1)
    a = sample_actions(policy, obs, sample=True)[:, 0]  # (N, 2)
    plus = ((a - 1).abs() < 0.3).all(1).float().mean().item()
    minus = ((a + 1).abs() < 0.3).all(1).float().mean().item()
    assert plus >= 0.3 and minus >= 0.3, f"{head}: mass near +1 {plus:.2f}, near -1 {minus:.2f}"
    # the two dimensions share one coin: a sample must not mix modes across dimensions
    agree = (a[:, 0].sign() == a[:, 1].sign()).float().mean().item()
    assert agree >= 0.9, f"{head}: only {agree:.2f} of samples keep the dimensions in the same mode"


def test_gaussian_mean_sits_between_modes():
    policy, _ = bimodal_policy("gaussian")
    mean = sample_actions(policy, bimodal(500, seed=1)[0], sample=False)[:, 0]
    assert mean.abs().mean().item() < 0.3, f"gaussian mean {mean.mean(0).tolist()} should average the modes"


# ----- memory -----------------------------------------------------------------------------------
def test_lstm_recalls_cue_that_memoryless_head_cannot():
    lstm_acc = cue_accuracy(cue_policy("lstm")[0])
    gmm_acc = cue_accuracy(cue_policy("gmm")[0])
    assert lstm_acc >= 0.95, f"lstm recalled the cue in only {lstm_acc:.2f} of steps"
    assert 0.35 <= gmm_acc <= 0.65, f"memoryless gmm scored {gmm_acc:.2f}, expected chance"


def test_lstm_with_gaussian_output_recalls_cue():
    acc = cue_accuracy(cue_policy("lstm", "gaussian")[0])
    assert acc >= 0.95, f"lstm (gaussian output) recalled the cue in only {acc:.2f} of steps"


def test_lstm_hidden_state_resets():
    policy, _ = cue_policy("lstm")
    obs, _, _ = cue_sequences(2, CUE_LEN, balanced=True)  # cues -1, +1

    def fresh(t):  # the action for observation t from a zero hidden state
        policy.reset()
        return policy.act(obs[0, t])

    policy.reset()
    policy.act(obs[1, 0])  # show the +1 cue, then start a new episode: it must be forgotten
    policy.reset()
    assert np.array_equal(policy.act(obs[0, 1]), fresh(1))
    policy.config.reset_every = 2  # robomimic-style periodic reset: step 2 starts from zero again
    try:
        policy.reset()
        steps = [policy.act(obs[1, t]) for t in range(3)]
        assert np.sign(steps[1][0]) == 1  # the cue is still held at step 1
        assert np.array_equal(steps[2], fresh(2))
    finally:
        policy.config.reset_every = None


# ----- per head: learning, checkpoints, padding -------------------------------------------------
@pytest.mark.parametrize("head", WINDOW_HEADS + ("lstm",))
def test_loss_decreases(head):
    _, losses = trained(head)
    start, end = np.mean(losses[:10]), np.mean(losses[-20:])
    assert end < start - 0.25, f"{head}: loss {start:.3f} -> {end:.3f}"


@pytest.mark.parametrize("head", WINDOW_HEADS + ("lstm",))
def test_checkpoint_round_trip_acts_identically(head, tmp_path):
    policy, _ = trained(head)
    save_checkpoint(tmp_path / "policy.pt", policy, EnvSpec(), step=7)
    loaded, _, info = load_checkpoint(tmp_path / "policy.pt")
    assert info["step"] == 7 and type(loaded) is type(policy)
    obs = cue_sequences(3, CUE_LEN, seed=9)[0] if head == "lstm" else bimodal(3 * CUE_LEN, seed=9)[0].reshape(3, CUE_LEN, -1)

    def run(p, sample):
        p.sample_actions = sample
        torch.manual_seed(3)
        out = []
        for episode in obs:
            p.reset()
            out += [p.act(o) for o in episode]
        p.sample_actions = False
        return np.stack(out)

    for sample in (False, True):
        assert np.array_equal(run(policy, sample), run(loaded, sample)), f"{head} sample={sample}"
    if head == "autoregressive":
        assert bool(loaded.bins_fitted) and torch.equal(loaded.bin_centers, policy.bin_centers)


def _padded_batch(head: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    B, T = 6, 4  # T: sequence length (lstm) or chunk length (action_horizon)
    obs = rng.normal(size=(B, 1 if head != "lstm" else T, 3)).astype(np.float32)
    actions = rng.normal(size=(B, T, 2)).astype(np.float32)
    mask = np.ones((B, T), bool)
    mask[0, 2:] = mask[3, 1:] = False  # padding at episode ends
    return obs, actions, mask


@pytest.mark.parametrize("head", WINDOW_HEADS + ("lstm",))
def test_padding_does_not_change_the_loss(head):
    obs, actions, mask = _padded_batch(head)
    overrides = dict(SMALL[head])
    if head != "lstm":
        overrides.update(action_horizon=4, exec_horizon=4)
    policy = build(head, obs, actions, **overrides)

    def loss(o, a, m):
        torch.manual_seed(0)  # the cvae draws z during training
        return policy.loss({"obs": torch.as_tensor(o), "actions": torch.as_tensor(a),
                            "action_mask": torch.as_tensor(m)})["loss"].item()

    reference = loss(obs, actions, mask)
    garbage_a, garbage_o = actions.copy(), obs.copy()
    garbage_a[~mask] = 1e3
    if head == "lstm":
        garbage_o[~mask] = -1e3  # observations after the episode end cannot reach earlier outputs
    assert loss(garbage_o, garbage_a, mask) == pytest.approx(reference, rel=1e-6, abs=1e-6)
    if head != "cvae":  # (the cvae's z noise depends on the batch size)
        extra_o = np.concatenate([obs, obs[:1]])
        extra_a = np.concatenate([actions, np.full_like(actions[:1], 1e3)])
        extra_m = np.concatenate([mask, np.zeros_like(mask[:1])])
        assert loss(extra_o, extra_a, extra_m) == pytest.approx(reference, rel=1e-6, abs=1e-6)


def test_autoregressive_greedy_decode_matches_the_training_pass():
    """predict() is a hand-unrolled loop; teacher-forcing its own output through the training pass
    must give back the bins (and offsets) it chose, dimension by dimension, over a whole chunk."""
    obs, actions = bimodal(500)
    torch.manual_seed(0)
    p = build("autoregressive", obs, actions, **{**SMALL["autoregressive"], "action_horizon": 3, "exec_horizon": 3})
    p.fit_bins(p.normalizer.action(torch.as_tensor(actions)))
    for param in (p.dim_embed, p.out_bias):  # untrained dims must still differ for the check to bite
        torch.nn.init.normal_(param, std=1.0)
    features = p.encoder(p.normalizer.obs(torch.as_tensor(bimodal(64, seed=5)[0])[:, None]))
    chosen = p.predict(features).flatten(1)  # normalised values: centre + offset
    with torch.no_grad():
        h = p.trunk(features.flatten(1))
        contrib = chosen[..., None] * p.prev_weight
        x = p.hidden(torch.relu(h[:, None] + p.dim_embed + contrib.cumsum(1) - contrib))
        out = torch.einsum("bdh,dho->bdo", x, p.out_weight) + p.out_bias
    nb = p.config.n_bins
    picked = out[..., :nb].argmax(-1)
    decoded = p.bin_centers.gather(1, picked.T).T + out[..., nb:].gather(-1, picked[..., None]).squeeze(-1) * p.bin_scale
    assert len(set(picked[0].tolist())) > 1
    assert torch.allclose(decoded, chosen, atol=1e-5)
    for i in range(5):  # batch 1 takes the numpy path that rollouts use; it must agree
        assert torch.allclose(p.predict(features[i:i + 1]).flatten(1), chosen[i:i + 1], atol=1e-5)
    p.config.offsets = False
    p.out_bias.data[:, nb:] = 0  # without offsets the training pass decodes bin centres only
    assert torch.allclose(p.predict(features[:1]), p.predict(torch.cat([features[:1]] * 2))[:1], atol=1e-6)
