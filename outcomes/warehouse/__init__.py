"""Where the warehouse lives: the embedded DuckDB file or a server reached by SQLAlchemy URL."""

from outcomes.warehouse.target import DEFAULT_TARGET, Target, WarehouseError, checked_target, resolve_target

__all__ = ["DEFAULT_TARGET", "Target", "WarehouseError", "checked_target", "resolve_target"]
