"""From finding to fix: a finding as a bug report, the version that introduced it, and
the fix variant's result. Public names: the loader, the builder and the renderers."""

from vgic_actors.report.bisect import Bisection, VersionResult, bisect
from vgic_actors.report.finding import Case, load_case
from vgic_actors.report.render import RENDERERS, Options, Report, build

__all__ = ["RENDERERS", "Bisection", "Case", "Options", "Report", "VersionResult", "bisect",
           "build", "load_case"]
