"""The providers' tool: turns an identified extract into a spec delivery (extracts.md §1–2).

It runs on the provider's side with a key the warehouse never holds.
"""

from outcomes.pseudonymise.keyed import KeyFileError, Pseudonymiser, dice, load_key
from outcomes.pseudonymise.normalise import normalise_name, postcode_district, soundex

__all__ = ["KeyFileError", "Pseudonymiser", "dice", "load_key", "normalise_name", "postcode_district", "soundex"]
