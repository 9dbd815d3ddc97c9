"""The same campaign on Dask distributed: a local cluster on loopback."""

import io

import msgspec
import pytest

from vgic_actors.cli import main
from vgic_actors.soak.worker import RunRecord

distributed = pytest.importorskip(
    "distributed", reason="Dask is the optional 'cluster' extra (pip install '.[cluster]')")


def records(out):
    return sorted((r.index, r.signature, r.interleaving) for r in (
        msgspec.json.decode(line, type=RunRecord)
        for line in (out / "results.jsonl").read_bytes().splitlines()))


def test_a_dask_campaign_gives_the_same_runs_as_a_local_one(tmp_path):
    local, dask = tmp_path / "local", tmp_path / "dask"
    argv = ["soak", "--variant", "no-spi-tracking", "--runs", "16"]
    assert main([*argv, "--out", str(local)], stdout=io.StringIO(), stderr=io.StringIO()) == 1
    code = main([*argv, "--out", str(dask), "--engine", "dask", "--workers", "2"],
                stdout=io.StringIO(), stderr=io.StringIO())
    assert code == 1
    assert records(dask) == records(local)
