"""Hypothesis profiles for the unit tests: "ci" (thorough) under CI, else "dev"."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=500, stateful_step_count=50, deadline=None)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI", "").strip().lower() in {"true", "1"} else "dev")
