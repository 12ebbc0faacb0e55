"""The tenant control plane: onboarding, suspension, tier changes, secret rotation and removal; `python -m scripts.tenants`."""
