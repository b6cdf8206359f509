"""Capped exponential backoff with jitter, for waiting out transient failures."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, *, base: float = 0.1, cap: float = 30.0, factor: float = 2.0) -> None:
        self.base = base
        self.cap = cap
        self.factor = factor
        self.attempt = 0

    def next(self) -> float:
        """The next delay in seconds: base * factor**attempt, capped, with +-20 % jitter."""
        delay = min(self.cap, self.base * self.factor**self.attempt)
        self.attempt += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.attempt = 0
