"""takeover.rl_finetune: demo-seeded RL fine-tuning of a behaviour-cloned gaussian policy.

`FinetuneConfig` (config.py) holds the run's settings; the learners are RLPD-style SAC (rlpd.py,
`RLPDConfig`) and DAPG-style PPO (dapg.py, `DAPGConfig`) on the tanh-Gaussian reading of the head
(actor.py), with replay buffers and demo relabelling (buffers.py) and a critic ensemble (critics.py);
`Finetuner` (run.py) collects through `RolloutPool` (collect.py), evaluates, saves and resumes.
"""
