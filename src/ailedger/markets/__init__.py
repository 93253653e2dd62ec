"""Markets built on the staking primitive: labeling, dataset audits, inference."""

__all__: list[str] = []
