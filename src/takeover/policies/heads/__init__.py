"""Action heads; each module registers one head with takeover.policies.registry."""
