"""Structured (JSON) log lines carrying the request id. Secrets never reach them."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from .request_context import get_request_id

# Anything that looks like a bearer token or a Plinth token is masked, wherever it appears.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"plinth_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{20,}"),
    re.compile(r"(?i)(password|secret|token)=([^&\s]+)"),
]


def redact(text: str) -> str:
    text = _SECRET_PATTERNS[0].sub(r"\1[redacted]", text)
    text = _SECRET_PATTERNS[1].sub("[redacted-token]", text)
    return _SECRET_PATTERNS[2].sub(r"\1=[redacted]", text)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = get_request_id()
        return True


class JsonFormatter(logging.Formatter):
    _EXTRA = ("request_id", "method", "path", "status", "duration_ms", "user", "remote_addr", "task")

    def format(self, record: logging.LogRecord) -> str:
        payload: dict = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key in self._EXTRA:
            value = getattr(record, key, None)
            if value is not None:
                payload[key] = value
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)
