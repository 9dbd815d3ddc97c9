"""Invariants and liveness judgements over the model's state and events."""

from vgic_actors.checks.catalogue import INVARIANTS, Invariant, known_names
from vgic_actors.checks.final import Violation, all_irqs, check_run, irq_name, is_active

__all__ = [
    "INVARIANTS",
    "Invariant",
    "Violation",
    "all_irqs",
    "check_run",
    "irq_name",
    "is_active",
    "known_names",
]
