"""takeover: imitation learning for simulated robot manipulation.

Packages, in import order (each imports only from those before it):
sim -> datasets -> teleop -> policies -> correction -> rl_finetune -> cli.
See docs/architecture.md.
"""
