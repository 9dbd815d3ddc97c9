"""What a finding is, as one typed value: the `Signature` every re-finding compares.

A soak de-duplicates findings by signature, and shrink, replay and the differential
re-run on merged each ask "is this the same finding?" with `Signature.same_finding`,
the one comparison. A signature is the core invariants broken and, for a lost
deactivation, how the last deactivation was made, the branch vgic_v3_deactivate
(vgic-v3.c) took for a trapped DIR, and where the Active state stayed. A new part of
what a finding is goes here: a field, its place in `key` and in `from_key`.

A finding also has a class (runtime/context.py: `timing_class`): ``ordering`` when its
run stayed within the realistic timing bounds, ``timing-window`` when it needed a stall.

Its text form, `key`, names finding folders and goes into results.jsonl and
finding.json: ``ordering/deactivation-lost/DIR-trapped:pseudo-lr/on-ap-list@merged-too``
(``crash/RuntimeError`` for a run that raised). `from_key` reads it back. A lost
deactivation's key ends with where it was lost (checks/loss.py):
``.../on-ap-list/undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state,clear:vgic_v3_fold_lr<-vgic_v3_deactivate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from vgic_actors.checks.final import Violation

WHERE = ("in-lr", "on-ap-list", "off-ap-list")
"""Where a lost deactivation left the Active state (`Violation.where`)."""

MERGED_TOO = "@merged-too"

SITE_PREFIX = "undo:"
"""How a lost deactivation's root-cause component starts (`Signature.site`)."""

CLASSES = ("ordering", "timing-window")
"""A finding's classes (`Signature.finding_class`)."""


ROOT_CAUSES: dict[str, frozenset[str]] = {
    "resample-lost": frozenset({"deadlock", "livelock", "budget-spent", "expectation",
                                "guest-assertion", "mi-storm"}),
}
"""Root-cause invariants and the symptoms they explain: a dropped resample leaves the
device waiting (deadlock), the line high (an interrupt storm: livelock, or budget-spent
while the storm keeps the guest's handler making progress, or the maintenance
interrupts of the storm, mi-storm) or the guest taking the interrupt again
(expectation), one bug (F3) whatever the run then did."""


UNDERCOUNT = "active-spis-undercount"
"""An SPI in flight that active_spis does not count: TDIR may then be clear, so a DIR lost
untrapped beside it is its (F6's wrap, mutant-dec-on-every-fold), not a sign of another
bug that leaves TDIR clear (`Signature.shows`)."""

LOSSES = ("deactivation-lost", "stuck-active")
"""Violations whose how/outcome/where/site name the finding before any other's: a lost
deactivation inside an F3 storm is keyed by where the deactivation was lost."""


def core_invariants(violations: Iterable[str]) -> set[str]:
    """The invariants that make a finding what it is (a scenario's own expectations and
    guest checks follow from them, and shrinking may drop those checks; a root cause's
    symptoms follow from it, `ROOT_CAUSES`)."""
    names = set(violations)
    for cause, symptoms in ROOT_CAUSES.items():
        if cause in names:
            names -= symptoms
    core = names - {"expectation", "guest-assertion"}
    return core or names


class Signature(msgspec.Struct, frozen=True, kw_only=True):
    """A finding's identity. ``invariants``: the core invariants, sorted; ``how``: how the
    first lost deactivation was made (EOIR, DIR-trapped, DIR-untrapped, ICACTIVER), or the
    exception of a crash; ``outcome``: vgic_v3_deactivate's branch for that trapped DIR
    (icactiver, pseudo-lr, not-queued, ...); ``where``: one of `WHERE`;
    ``site``: where a lost deactivation was lost (checks/loss.py: the event that undid it
    and the function that cleared it, ``undo:FN<-CALLER,clear:FN<-CALLER``);
    ``merged_too``: the differential re-run on merged broke the same (the finding is not
    the variant's own); ``finding_class``: one of `CLASSES` (or "" when unknown). A
    clean run has no invariants and is falsy."""

    finding_class: str = ""
    invariants: tuple[str, ...] = ()
    how: str = ""
    outcome: str = ""
    where: str = ""
    site: str = ""
    merged_too: bool = False

    @classmethod
    def of(cls, violations: Sequence[Violation], finding_class: str = "") -> Signature:
        """The signature of a run that broke ``violations`` (warnings excluded), of class
        ``finding_class``."""
        lost = next((v for v in violations if v.how and v.invariant in LOSSES), None) or \
            next((v for v in violations if v.how), None)
        return cls(finding_class=finding_class if violations else "",
                   invariants=tuple(sorted(core_invariants(v.invariant for v in violations))),
                   how=lost.how if lost else "", outcome=lost.outcome if lost else "",
                   where=lost.where if lost else "", site=lost.site if lost else "")

    @classmethod
    def crash(cls, exc: BaseException) -> Signature:
        """The signature of a run that raised ``exc`` (a model or generator bug)."""
        return cls(invariants=("crash",), how=type(exc).__name__)

    def __bool__(self) -> bool:
        return bool(self.invariants)

    @property
    def root(self) -> str:
        """A lost deactivation's root cause: how it was made (and vgic_v3_deactivate's
        branch) and where it was lost, whatever else the run broke. One bug reached from
        different runs has one root. "" unless the site names kernel functions
        (``callee<-caller``): an untrapped DIR is undone by the guest's own instruction
        (``undo:ICV_DIR_EL1``), which says nothing of why TDIR was clear (no tracking,
        a missed request, a wrapped count: different bugs)."""
        if "<-" not in self.site:
            return ""
        return self.how + (f":{self.outcome}" if self.outcome else "") + f"/{self.site}"

    def shows(self, spec: str) -> bool:
        """Whether this signature shows ``spec``, ``INVARIANT[/HOW[:OUTCOME]]``: the
        invariant among its core ones and, if given, the same way the deactivation was
        made (`Variant.shows`)."""
        invariant, _, how = spec.partition("/")
        made = self.how + (f":{self.outcome}" if self.outcome else "")
        if (self.how == "DIR-untrapped" and UNDERCOUNT in self.invariants
                and invariant != UNDERCOUNT):
            return False  # TDIR was clear because the count was low: that bug's DIR
        return invariant in self.invariants and (
            not how or made == how or made.startswith(how + ":"))

    def same_finding(self, other: Signature) -> bool:
        """The one comparison: the same finding, whatever the merged re-run said."""
        return msgspec.structs.replace(self, merged_too=False) == \
            msgspec.structs.replace(other, merged_too=False)

    @property
    def key(self) -> str:
        """The text form (see the module docstring); "" for a clean run."""
        if not self:
            return ""
        text = (f"{self.finding_class}/" if self.finding_class else "") + "+".join(
            self.invariants)
        if self.how:
            text += f"/{self.how}" + (f":{self.outcome}" if self.outcome else "")
        if self.where:
            text += f"/{self.where}"
        if self.site:
            text += f"/{self.site}"
        return text + (MERGED_TOO if self.merged_too else "")

    @classmethod
    def from_key(cls, key: str) -> Signature:
        """Read back a `key` (older, shorter keys read as signatures without the parts
        they lack, so they no longer match a full one)."""
        merged_too = key.endswith(MERGED_TOO)
        parts = key.removesuffix(MERGED_TOO).split("/")
        finding_class = parts.pop(0) if len(parts) > 1 and parts[0] in CLASSES else ""
        site = parts.pop() if len(parts) > 1 and parts[-1].startswith(SITE_PREFIX) else ""
        where = parts.pop() if len(parts) > 1 and parts[-1] in WHERE else ""
        how, _, outcome = (parts[1] if len(parts) > 1 else "").partition(":")
        return cls(finding_class=finding_class,
                   invariants=tuple(p for p in parts[0].split("+") if p), how=how,
                   outcome=outcome, where=where, site=site, merged_too=merged_too)

    def __str__(self) -> str:
        return self.key or "no finding"
