"""`Violation`: one invariant that did not hold, as data (shared by every check module)."""

from __future__ import annotations

import msgspec

from vgic_actors.checks.catalogue import INVARIANTS


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """One invariant that did not hold (or a warning), explained in kernel terms.

    A lost deactivation also says, as data, how the last deactivation was made (``how``:
    EOIR, DIR-trapped, DIR-untrapped, ICACTIVER), the branch vgic_v3_deactivate took for a
    trapped DIR (``outcome``, the DirEmulated outcome) and where the Active state stayed
    (``where``: in-lr, on-ap-list, off-ap-list), and where it was lost (``site``: the
    undoing event and the clearing function, checks/loss.py): the parts of a finding's
    signature."""

    invariant: str
    kind: str
    message: str
    how: str = ""
    outcome: str = ""
    where: str = ""
    site: str = ""


def violation(name: str, message: str) -> Violation:
    """A Violation of the catalogued invariant ``name``."""
    return Violation(invariant=name, kind=INVARIANTS[name].kind, message=message)
