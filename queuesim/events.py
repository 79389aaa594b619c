"""``QueueEvents``: read a queue's events stream, with BullMQ's event names and payload fields.

Every transition script appends an entry to ``<prefix>:<queue>:events`` (a Redis stream). Each entry has an
``event`` field (``added``, ``waiting``, ``active``, ``completed``, ``failed``, ``delayed``, ``stalled``…) plus
that event's fields, all strings; the entry id starts with the time in ms. ``QueueEvents`` turns them into
:class:`Event` objects and hands them to callbacks, or lets you iterate over them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from queuesim.connection import Connection
from queuesim.options import validate_queue_name

__all__ = ["Event", "QueueEvents"]


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the events stream.

    Attributes:
        id: the stream entry id (``<ms>-<seq>``).
        name: the event name (BullMQ's).
        job_id: the job it is about (None for queue-wide events such as ``drained`` or ``paused``).
        fields: the raw string fields (``prev``, ``failedReason``, ``returnvalue``, ``delay``…).
    """

    id: str
    name: str
    job_id: str | None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def time_ms(self) -> int:
        return int(self.id.split("-")[0])

    def value(self) -> Any:
        """The parsed payload: return value for ``completed``, data for ``progress``, due ms for ``delayed``."""
        if self.name == "completed":
            return _loads(self.fields.get("returnvalue"))
        if self.name == "progress":
            return _loads(self.fields.get("data"))
        if self.name == "delayed":
            return int(self.fields["delay"])
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "event": self.name, **({"jobId": self.job_id} if self.job_id else {}),
                **self.fields}


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class QueueEvents:
    """A reader of one queue's events stream.

    Args:
        name: the queue name.
        connection: from :func:`queuesim.connect`.
        last_event_id: where to start: ``"$"`` (default, BullMQ's) = only events added from now on;
            ``"0"`` = from the oldest entry still in the stream.
    """

    def __init__(self, name: str, connection: Connection, last_event_id: str = "$") -> None:
        self.name = validate_queue_name(name)
        self.connection = connection
        self.backend = connection.backend
        if last_event_id == "$":
            last_event_id = self.backend.last_event_id(name)
        self.last_event_id = last_event_id
        self._listeners: dict[str, list[Callable[[Event], Any]]] = {}

    def on(self, event: str, callback: Callable[[Event], Any]) -> Callable[[Event], Any]:
        """Call ``callback(event)`` for every event of that name (``"*"`` = every event)."""
        self._listeners.setdefault(event, []).append(callback)
        return callback

    def read(self, count: int | None = None, block_ms: int | None = None) -> list[Event]:
        """The events added since the last read (optionally waiting up to ``block_ms`` for one)."""
        raw = self.backend.read_events(self.name, self.last_event_id, count, block_ms)
        events = []
        for event_id, fields in raw:
            name = fields.pop("event", "")
            job_id = fields.pop("jobId", None)
            events.append(Event(event_id, name, job_id, fields))
            self.last_event_id = event_id
        return events

    def poll(self, count: int | None = None, block_ms: int | None = None) -> list[Event]:
        """Read new events and call the listeners; returns the events."""
        events = self.read(count, block_ms)
        for ev in events:
            for cb in (*self._listeners.get(ev.name, ()), *self._listeners.get("*", ())):
                cb(ev)
        return events

    def __iter__(self) -> Iterator[Event]:
        """Yield events as they come, forever (blocking reads of up to 10 s, BullMQ's blocking timeout)."""
        while True:
            yield from self.poll(block_ms=10_000)
