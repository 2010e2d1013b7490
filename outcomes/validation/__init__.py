"""Row-level validation of deliveries (extracts.md section 4) with great-expectations.

`validate_rows(source, frame, extract_date)` runs the source's suite from `expectations/<source>.json`
and returns, for each row that breaks a rule, the row's position and the rule's name.
great-expectations is imported on first use, not with this package.
"""

from outcomes.validation.rules import rule_names
from outcomes.validation.run import RowValidation, SuiteError, validate_rows

__all__ = ["RowValidation", "SuiteError", "rule_names", "validate_rows"]
