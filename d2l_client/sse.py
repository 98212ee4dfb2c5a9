"""Reading a `text/event-stream` body line by line (the WHATWG rules the service's events need).

Shared by the sync and async clients, so both see exactly the same events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One server-sent event: `kind` is its `event:` name, `data` its decoded JSON payload."""

    kind: str
    data: dict[str, Any]
    id: str | None = None


@dataclass
class EventParser:
    """Feed it lines; it hands back each event once its blank line arrives."""

    kind: str = "message"
    data_lines: list[str] = field(default_factory=list)
    id: str | None = None
    last_id: str | None = None

    def feed(self, line: str) -> Event | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):  # a comment: the server's keepalive
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.kind = value
        elif name == "data":
            self.data_lines.append(value)
        elif name == "id":
            self.id = value
        return None

    def _dispatch(self) -> Event | None:
        if not self.data_lines:
            self.kind, self.id = "message", None
            return None
        raw = "\n".join(self.data_lines)
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = {"text": raw}
        if self.id is not None:
            self.last_id = self.id
        event = Event(self.kind, data if isinstance(data, dict) else {"value": data}, self.id)
        self.kind, self.data_lines, self.id = "message", [], None
        return event
