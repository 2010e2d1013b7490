"""The append-only event store (schema `events`) and its as-of state."""

from outcomes.eventstore.backend import Backend, connect
from outcomes.eventstore.state import state_as_of

__all__ = ["Backend", "connect", "state_as_of"]
