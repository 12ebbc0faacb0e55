"""What the application logs and traces during a test, kept in memory to be read back."""

from __future__ import annotations

import io
import json
from typing import Any


class CapturedLogs:
    """What the application logged through its JSON logger during a test."""

    def __init__(self, stream: io.StringIO):
        self._stream = stream

    @property
    def text(self) -> str:
        """Everything logged, as written."""
        return self._stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Every line, each decoded as the one JSON object it must be."""
        return [json.loads(line) for line in self.text.splitlines()]

    def access(self) -> list[dict[str, Any]]:
        """The access-log lines, one per request that reached the API."""
        return [record for record in self.records() if record["message"] == "request"]

    def security_events(self) -> list[str]:
        """The security_event reason of every line that has one, in order."""
        return [record["security_event"] for record in self.records() if "security_event" in record]


class InMemoryEmitter:
    """An X-Ray emitter that keeps the documents it would send to the daemon, decoded."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def send_entity(self, entity: Any) -> None:
        """Keep the segment or subsegment the recorder would send."""
        self.documents.append(json.loads(entity.serialize()))

    def set_daemon_address(self, address: str | None) -> None:
        """Ignore the daemon address: nothing is sent."""
        pass

    def segments(self) -> list[dict[str, Any]]:
        """The whole segments sent (outside Lambda, one per request or authorization)."""
        return [document for document in self.documents if document.get("type") != "subsegment"]
