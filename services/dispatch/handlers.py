"""Dispatch's handlers put together: one per input, sharing the policy (taxonomy, tier rules,
deadlines) and the clock (injectable). ``app.py`` subscribes them.

| input | handler |
|---|---|
| ``cases.opened`` | ``opening.Opening`` (a batch at a time) |
| ``cases.merged`` | ``merges.Merges`` (a batch at a time; ``on_merged`` one at a time) |
| ``cases.reopened`` | ``reopening.Reopening`` |
| ``handler.actions`` | ``actions.Actions`` |
| the deadline and warning sweeps | ``deadlines.Deadlines`` |
| the command centre's triage (HTTP) | ``triage.Triage`` |
"""

from __future__ import annotations

from datetime import timedelta

from shared.contract.taxonomy import Taxonomy
from shared.runtime.clock import Clock, utcnow

from .actions import DEFAULT_SKEW_MAX, Actions
from .deadlines import Deadlines
from .merges import Merges
from .opening import Opening
from .planning import Policy
from .reopening import Reopening
from .sla import SlaPolicy
from .stages import DEFAULT_WARN_FRACTION, WarnPolicy
from .tiers import DispatchRules
from .triage import Triage


class Dispatch:
    def __init__(
        self,
        taxonomy: Taxonomy,
        rules: DispatchRules,
        *,
        sla_scale: float = 1.0,
        warn_fraction: float = DEFAULT_WARN_FRACTION,
        action_skew_max: timedelta = DEFAULT_SKEW_MAX,
        clock: Clock = utcnow,
    ) -> None:
        warnings = WarnPolicy(warn_fraction, rules.warnings)
        self.policy = Policy(taxonomy, rules, SlaPolicy(rules, sla_scale), warnings)
        self.clock = clock
        self.opening = Opening(self.policy, clock)
        self.merges = Merges(self.policy, clock)
        self.reopening = Reopening(self.policy, clock)
        self.actions = Actions(self.policy, clock, skew_max=action_skew_max)
        self.deadlines = Deadlines(self.policy)
        self.triage = Triage(self.policy)
        # the subscribers' and sweepers' entry points
        self.on_opened = self.opening.on_opened
        self.on_merged_batch = self.merges.on_merged_batch
        self.on_merged = self.merges.on_merged
        self.on_reopened = self.reopening.on_reopened
        self.on_action = self.actions.on_action
        self.on_actions = self.actions.on_actions
        self.on_invalid_action = self.actions.on_invalid
        self.sweep_response = self.deadlines.sweep_response
        self.sweep_resolution = self.deadlines.sweep_resolution
        self.sweep_pauses = self.deadlines.sweep_pauses
        self.sweep_respond_warnings = self.deadlines.sweep_respond_warnings
        self.sweep_resolve_warnings = self.deadlines.sweep_resolve_warnings
        self.sweep_verification = self.deadlines.sweep_verification
        self.sweep_verify_warnings = self.deadlines.sweep_verify_warnings
        self.sweep_order_reports = self.deadlines.sweep_order_reports  # 吹哨报到

    @property
    def sweep_fallbacks(self) -> int:
        """Sweeps whose set-based write failed and that went one case at a time."""
        return self.deadlines.fallbacks
