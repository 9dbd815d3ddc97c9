"""kernel-vgic.md section 12: the variant catalogue as data."""

from pathlib import Path

import pytest

from vgic_actors.errors import UsageError
from vgic_actors.kvm.variants import VARIANTS, KernelSwitches, differences, get_variant

REQUIRED = {"merged", "v4-applied", "v2-posted", "v1-posted", "no-spi-tracking", "pre-series"}


def test_catalogue_has_every_section_12_variant_and_mutants():
    """All six kernel variants and at least four mutants are listed, each with a story."""
    assert set(VARIANTS) >= REQUIRED
    assert sum(v.is_mutant for v in VARIANTS.values()) >= 4
    assert all(v.story and len(v.story) < 200 for v in VARIANTS.values())


def test_merged_is_the_default_switches():
    """merged has no differences from the default switches."""
    assert VARIANTS["merged"].switches == KernelSwitches()


def test_every_other_variant_differs_from_merged():
    """Every variant changes at least one switch; mutants change only mutant switches."""
    for name, v in VARIANTS.items():
        diff = differences(v)
        assert (name == "merged") == (not diff), name
        if v.is_mutant:
            assert all(k.startswith("mutant_") for k in diff), name
        elif name != "merged":
            assert not any(k.startswith("mutant_") for k in diff), name


def test_v4_applied_differs_only_in_the_walk_start():
    """v4-applied is merged before 6da5e537f5af: only the EOIcount walk differs."""
    assert differences(VARIANTS["v4-applied"]) == {"eoicount_walk_start": ("after_last_lr", "head")}


def test_unknown_variant_is_a_usage_error_listing_names():
    """An unknown name raises a usage error that lists the known ones."""
    with pytest.raises(UsageError, match="merged") as exc:
        get_variant("mereged")
    assert exc.value.exit_code == 2


SHOWN_BY = {  # variant -> its library reproducer and the strategy it is run under
    "v4-applied": ("late_mi_overflow.yaml", "random"),
    "v2-posted": ("late_mi_overflow.yaml", "random"),
    "no-spi-tracking": ("asym_dir.yaml", "random"),
    "pre-series": ("asym_dir.yaml", "random"),
    "mutant-kick-only-target": ("asym_dir.yaml", "random"),
    "mutant-no-request-recheck": ("entry_window.yaml", "window"),
    "mutant-dec-on-every-fold": ("dec_on_fold.yaml", "random"),
    "mutant-stale-tdir": ("entry_window.yaml", "window"),
}


@pytest.mark.parametrize("name", sorted(SHOWN_BY))
def test_what_a_variant_shows_is_what_its_reproducer_finds(name):
    """`Variant.shows` (what `bench` counts as the variant's own bug) is the signature its
    library reproducer breaks with, and merged's runs of it never show it."""
    from vgic_actors.runtime.context import timing_model
    from vgic_actors.scenario import load_scenario
    from vgic_actors.scenario.runner import run_once

    file, strategy = SHOWN_BY[name]
    scn = load_scenario(Path("scenarios") / file)
    timing = timing_model("realistic")
    shows = VARIANTS[name].shows
    assert any(run_once(scn, name, seed, strategy, timing=timing).signature.shows(shows)
               for seed in range(120)), (name, shows)
    assert not any(run_once(scn, "merged", seed, strategy, timing=timing).signature.shows(
        shows) for seed in range(20))
