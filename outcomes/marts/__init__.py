"""Building the outcome marts with dbt (dbt_project/) as of a knowledge date, publishing them,
and the PostgreSQL roles that decide who reads which schema."""

from outcomes.marts.build import BuildResult, build, publish

__all__ = ["BuildResult", "build", "publish"]
