"""kernel-vgic.md section 12: the variant catalogue as data."""

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
