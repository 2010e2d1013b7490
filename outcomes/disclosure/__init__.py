"""Disclosure control of the published tables (outcomes.md §7): primary suppression of counts 1-4,
secondary suppression across linked tables chosen by an integer program, an LP attack as audit."""
