"""Recipes built from the shipped option files: the demo's (``demo``), baselines and ablations (``ablations``)."""
