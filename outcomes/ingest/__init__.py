"""Ingestion: landing folder -> checked deliveries -> validated rows -> events (extracts.md §1, §4)."""

from outcomes.ingest.apply import Ingestor, IngestReport, Outcome, ingest

__all__ = ["IngestReport", "Ingestor", "Outcome", "ingest"]
