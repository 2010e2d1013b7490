"""`outcomes link --as-of D`: a past knowledge date can be linked, then built; dates are linked in
order, and a date that can no longer be linked is refused with one line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from outcomes.cli import app
from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.marts.build import _check_ready
from outcomes.synth.generator import SynthConfig, synthesise
from outcomes.warehouse import WarehouseError, resolve_target
from tests.backends import warehouse_target

BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
runner = CliRunner()


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("link_as_of")
    synthesise(SynthConfig(persons=400, seed=5, start="2024-01", months=3), out)
    return out / "landing"


def _dates(landing: Path) -> list[dt.date]:
    return sorted({dt.date.fromisoformat(json.loads(m.read_text())["extract_date"]) for m in landing.glob("*.json")})


@pytest.mark.parametrize("kind", BACKENDS)
def test_past_dates_link_in_order_and_build(kind, landing, tmp_path):
    first, second, last = _dates(landing)
    with warehouse_target(kind, tmp_path) as target:
        with connect(resolve_target(target)) as backend:
            Ingestor(backend, tmp_path / "archive").ingest(landing)
            with pytest.raises(WarehouseError, match=f"outcomes link --as-of {first}"):
                _check_ready(backend, first)

        early = runner.invoke(app, ["link", "--as-of", "2020-01-31", "--warehouse", target])
        assert early.exit_code == 2 and "no delivery applied on or before 2020-01-31" in early.stderr
        for date in (first, last):  # the second date is skipped, to be refused below
            ok = runner.invoke(app, ["link", "--as-of", str(date), "--warehouse", target])
            assert ok.exit_code == 0, ok.output
            assert f"as of {date}" in ok.stdout
        with connect(resolve_target(target)) as backend:
            with backend.transaction() as s:
                runs = s.fetch("select as_of from linkage.runs order by run_id")["as_of"].to_pylist()
                # the first run saw only what was known on its date
                linked_first = s.scalar("select count(*) from linkage.link_events where as_of = :d", {"d": first})
                known_first = s.scalar(
                    "select sum(rows_applied) from events.deliveries where extract_date = :d and status = 'applied'",
                    {"d": first},
                )
            assert runs == [first, last]
            assert 0 < linked_first <= known_first
            _check_ready(backend, first)  # a build as of the first date may now go ahead
            _check_ready(backend, last)
            with pytest.raises(WarehouseError, match="not in the person spine"):
                _check_ready(backend, second)  # its new records were linked only as of the last date

        late = runner.invoke(app, ["link", "--as-of", str(second), "--warehouse", target])
        assert late.exit_code == 2, late.output
        assert len(late.stderr.strip().splitlines()) == 1
        assert f"is as of {last}, after {second}" in late.stderr
        again = runner.invoke(app, ["link", "--as-of", str(first), "--warehouse", target])
        assert again.exit_code == 0, again.output  # a date linked already: nothing new, no change
        assert "0 new records" in again.stdout
        bad = runner.invoke(app, ["link", "--as-of", "31/01/2024", "--warehouse", target])
        assert bad.exit_code == 2 and "--as-of must be YYYY-MM-DD" in bad.stderr
