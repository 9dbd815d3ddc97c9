"""The log inspector: read run logs back, filter, follow, count, re-check, diff, export.

Public names for the command line and for tests: the reader, the selector, and
each view's entry point. Every view streams the log (bounded memory).
"""

from vgic_actors.logs.check import CheckResult, OfflineChecker, OfflineViolation, check_log
from vgic_actors.logs.diff import DiffResult, diff
from vgic_actors.logs.reader import LogReader, Problem, kind_of
from vgic_actors.logs.select import Selector, parse_kinds, parse_predicate, parse_range
from vgic_actors.logs.stats import Stats, collect

__all__ = [
    "CheckResult",
    "DiffResult",
    "LogReader",
    "OfflineChecker",
    "OfflineViolation",
    "Problem",
    "Selector",
    "Stats",
    "check_log",
    "collect",
    "diff",
    "kind_of",
    "parse_kinds",
    "parse_predicate",
    "parse_range",
]
