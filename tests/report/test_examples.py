"""docs/reports/ holds what `vgic-actors report --examples docs/reports` prints."""

from pathlib import Path

import pytest

from vgic_actors.report.examples import EXAMPLES, FORMATS, example_texts

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", [e.name for e in EXAMPLES])
def test_committed_example_report_is_up_to_date(name, monkeypatch):
    """Regenerate with `vgic-actors report --examples docs/reports` when this fails."""
    monkeypatch.chdir(ROOT)
    folder = Path("docs/reports") / name
    texts = example_texts(folder)
    for fmt, file in FORMATS:
        committed = (folder / file).read_text(encoding="utf-8")
        assert texts[fmt] == committed, f"{folder / file} is stale: run vgic-actors report " \
            "--examples docs/reports"
    assert all(len(line) <= 80 for line in texts["text"].splitlines())


def test_every_example_is_a_replayable_finding_of_its_signature(monkeypatch):
    """Each docs/reports folder is a findings folder whose finding.json names the
    example's signature (make_finding wrote it; shrink may have added the shrunk pair)."""
    monkeypatch.chdir(ROOT)
    import msgspec

    from vgic_actors.soak.campaign import Finding

    for example in EXAMPLES:
        folder = Path("docs/reports") / example.name
        finding = msgspec.json.decode((folder / "finding.json").read_bytes(), type=Finding)
        assert finding.signature == example.signature
        assert (folder / "scenario.yaml").exists() and (folder / "choices.json").exists()


@pytest.mark.parametrize("name", [e.name for e in EXAMPLES])
def test_every_example_replays_to_its_signature(name, monkeypatch):
    """The folder's own replay (the shrunk pair when present) shows the finding: a report
    whose replay went clean would describe nothing."""
    monkeypatch.chdir(ROOT)
    from vgic_actors.report.finding import load_case
    from vgic_actors.report.render import replay

    example = next(e for e in EXAMPLES if e.name == name)
    first, _, _ = replay(load_case(str(Path("docs/reports") / name)))
    assert first.signature.key == example.signature

