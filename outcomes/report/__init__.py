"""The outcomes report (interfaces.md, `outcomes report --out FILE.html`): tables and charts for
every outcome, linkage quality and data quality, in one self-contained HTML file.

Outcome figures are read only from the disclosure-controlled `published` schema; data quality
only as counts from the delivery ledger and the quarantine tables.
"""

from outcomes.report.render import render_report, write_report

__all__ = ["render_report", "write_report"]
