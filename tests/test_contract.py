"""The contract module says what the spec says."""

from __future__ import annotations

from outcomes.contract import SOURCES, codes
from tests.spec_text import codes_in, identity_columns, prose_code_list, source_columns


def test_identity_block_matches_spec():
    for source in SOURCES.values():
        identity = [c.name for c in source.columns if c.identity or c.name == "record_id"]
        assert identity == identity_columns()


def test_source_columns_and_code_lists_match_spec():
    for name, source in SOURCES.items():
        spec = source_columns(name)
        own = [c for c in source.columns if c.name not in identity_columns()]
        assert [c.name for c in own] == list(spec)
        for col in own:
            type_text, meaning = spec[col.name]
            listed = codes_in(type_text)
            if col.codes and len(listed) > 1:
                assert list(col.codes) == listed, col.name
            required = "not null" in type_text or f"`{col.name}` not null" in meaning
            assert required == (not col.nullable), col.name
            if type_text.startswith("date"):
                assert col.type == "date", col.name


def test_prose_code_lists_match_spec():
    assert list(codes.DISCHARGE_REASONS) == prose_code_list("`discharge_reason`: ")
    assert list(codes.SUBSTANCES) == prose_code_list("Substances: ")
