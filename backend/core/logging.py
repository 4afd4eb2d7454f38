"""Structured logs: one JSON object per line on stdout.

Log calls pass facts through `extra=`; message content, passwords and keys are never logged.
"""

import json
import logging
import sys
from datetime import UTC, datetime

from backend.core import startup_errors

# Attributes every LogRecord has; anything else came from `extra=` and is emitted as a field.
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(
            (key, value) for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _already_reported(record: logging.LogRecord) -> bool:
    """Leave out uvicorn's report (a traceback, then "Application startup failed") of a start-up
    that a configuration error stopped: its one sentence is already on stderr."""
    if startup_errors.reported is None or startup_errors.debugging():
        return True
    return record.levelno < logging.ERROR


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own lines go through the same formatter; its access log is replaced by ours,
    # which leaves out query strings (they can carry search terms).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("uvicorn.error").addFilter(_already_reported)
    # The SDK and HTTP client log request details at INFO/DEBUG; keep them quiet.
    # SQLAlchemy's engine logs statements with their parameters (row contents) at INFO.
    for name in ("httpx", "httpx2", "openai", "httpcore", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
