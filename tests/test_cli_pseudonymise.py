"""`outcomes pseudonymise`: an identified extract in, a spec delivery out, the key nowhere."""

from __future__ import annotations

import csv
import hashlib
import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from outcomes.cli import app
from outcomes.contract import arrow_schema
from outcomes.pseudonymise import Pseudonymiser, soundex

KEY = b"provider-secret-key-0123456789abcdef-never-leaves"
runner = CliRunner()

ROWS = [
    {
        "record_id": "D1",
        "source_person_id": "NHS123",
        "forename": "Zoë",
        "surname": "O'Brien",
        "date_of_birth": "1980-02-03",
        "sex": "F",
        "postcode": "me14 5ab",
        "date_of_death": "2024-01-05",
        "date_of_registration": "2024-03-01",
        "underlying_cause": "X42",
        "contributory_causes": "T401|F112",
        "drugs_mentioned": "heroin",
        "controlled_drug_mentioned": "true",
        "la_code": "E10000016",
        "record_status": "active",
    },
    {
        "record_id": "D2",
        "source_person_id": "",
        "forename": "",
        "surname": "Smith",
        "date_of_birth": "",
        "sex": "",
        "postcode": "",
        "date_of_death": "2024-01-09",
        "date_of_registration": "2024-01-12",
        "underlying_cause": "I219",
        "contributory_causes": "",
        "drugs_mentioned": "",
        "controlled_drug_mentioned": "false",
        "la_code": "E09000030",
        "record_status": "active",
    },
]


def write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def key_file(tmp_path):
    p = tmp_path / "provider.key"
    p.write_bytes(KEY)
    return p


def run(*args):
    return runner.invoke(app, ["pseudonymise", *map(str, args)])


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_identified_csv_becomes_a_delivery(tmp_path, key_file, fmt):
    extract = tmp_path / "deaths.csv"
    write_csv(extract, ROWS)
    out = tmp_path / "landing"
    result = run(
        "--source",
        "deaths",
        "--in",
        extract,
        "--key-file",
        key_file,
        "--out",
        out,
        "--extract-date",
        "2024-03-31",
        "--format",
        fmt,
    )
    assert result.exit_code == 0, result.output
    data = out / f"deaths_20240331_01.{fmt}"
    manifest = json.loads((out / "deaths_20240331_01.manifest.json").read_text())
    assert manifest["row_count"] == 2 and manifest["delivery_type"] == "delta"
    assert manifest["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    # the key appears in no output file, in clear or as hex
    for f in out.iterdir():
        blob = f.read_bytes()
        assert KEY not in blob and KEY.hex().encode() not in blob
    assert KEY.decode() not in result.output
    if fmt == "parquet":
        table = pq.read_table(data)
        assert table.schema.equals(arrow_schema("deaths"), check_metadata=False)
        rows = table.to_pylist()
        p = Pseudonymiser(KEY)
        assert rows[0]["forename_token"] == p.token("forename", "ZOE")
        assert rows[0]["surname_token"] == p.token("surname", "O BRIEN")
        assert rows[0]["surname_soundex_token"] == p.token("soundex", soundex("O BRIEN"))
        assert rows[0]["forename_initial"] == "Z" and rows[0]["postcode_district"] == "ME14"
        assert rows[0]["contributory_causes"] == ["T401", "F112"]
        assert rows[0]["controlled_drug_mentioned"] is True
        assert rows[0]["source_person_key"] == p.token("deaths_person", "NHS123")
        assert rows[1]["forename_token"] is None and rows[1]["sex"] == "U"
        assert rows[1]["date_of_birth"] is None and rows[1]["contributory_causes"] == []
    else:
        text = data.read_text()
        assert "T401|F112" in text and "Smith" not in text and "O'Brien" not in text


def test_second_delivery_same_day_takes_next_seq(tmp_path, key_file):
    extract = tmp_path / "deaths.csv"
    write_csv(extract, ROWS)
    for _ in range(2):
        assert (
            run(
                "--source",
                "deaths",
                "--in",
                extract,
                "--key-file",
                key_file,
                "--out",
                tmp_path / "l",
                "--extract-date",
                "2024-03-31",
            ).exit_code
            == 0
        )
    assert (tmp_path / "l" / "deaths_20240331_02.parquet").exists()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("surname"), "lacks columns: surname"),
        (lambda r: r.update(nhs_number="943 476 5919"), "columns the spec does not allow: nhs_number"),
        (lambda r: r.update(date_of_death="05/01/2024"), "'date_of_death' must hold a date"),
        (lambda r: r.update(controlled_drug_mentioned="maybe"), "must hold true or false"),
    ],
)
def test_bad_extracts_fail_with_one_clear_line(tmp_path, key_file, mutate, message):
    rows = [dict(r) for r in ROWS]
    for r in rows:
        mutate(r)
    extract = tmp_path / "deaths.csv"
    write_csv(extract, rows)
    result = run(
        "--source",
        "deaths",
        "--in",
        extract,
        "--key-file",
        key_file,
        "--out",
        tmp_path / "l",
        "--extract-date",
        "2024-03-31",
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert "05/01/2024" not in result.output  # values never echoed: they may be personal data
    assert not (tmp_path / "l").exists() or not list((tmp_path / "l").iterdir())


def test_short_key_and_unknown_source_are_refused(tmp_path):
    extract = tmp_path / "deaths.csv"
    write_csv(extract, ROWS)
    short = tmp_path / "k"
    short.write_bytes(b"short")
    result = run(
        "--source",
        "deaths",
        "--in",
        extract,
        "--key-file",
        short,
        "--out",
        tmp_path / "l",
        "--extract-date",
        "2024-03-31",
    )
    assert result.exit_code == 2 and "at least 32" in result.output
    long_key = tmp_path / "k2"
    long_key.write_bytes(KEY)
    result = run(
        "--source",
        "prisons",
        "--in",
        extract,
        "--key-file",
        long_key,
        "--out",
        tmp_path / "l",
        "--extract-date",
        "2024-03-31",
    )
    assert result.exit_code == 2 and "unknown source" in result.output
