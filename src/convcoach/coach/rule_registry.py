"""The registry of diagnosis rules: each rule's name, its place in the evaluation (`order`) and whether
it reads the curves; every registered rule runs, in `RULES.sequence()`."""

from __future__ import annotations

from collections.abc import Callable

from ..registry import Registry
from .diagnosis import Facts, Finding

Rule = Callable[[Facts, list[Finding]], Finding | None]


class RuleRegistry(Registry[Rule]):
    """Diagnosis rules with their place in the evaluation: every registered rule runs, in `sequence()`."""

    def __init__(self) -> None:
        super().__init__("diagnosis rule")
        self.orders: dict[str, float] = {}
        self.curve: set[str] = set()  # read the loss/accuracy curves: skipped when the run is too short

    def register(self, *names: str, order: float | None = None, curve: bool = False) -> Callable[[Rule], Rule]:
        """Lower `order` runs first (ties in registration order); without one, after every rule registered so far.
        `curve=True`: the rule reads the curves, so it is skipped once `too_short` has found the run too short."""
        add_to_registry = super().register(*names)

        def add(rule: Rule) -> Rule:
            add_to_registry(rule)
            for name in names:
                self.orders[name] = order if order is not None else max(self.orders.values(), default=0) + 10
                if curve:
                    self.curve.add(name)
            return rule

        return add

    def sequence(self) -> list[str]:
        """Every registered rule's name, in evaluation order."""
        return sorted(self._items, key=self.orders.__getitem__)  # stable: registration order breaks ties


RULES = RuleRegistry()
CURVE_RULES = RULES.curve  # filled by registration (curve=True)
