"""Log formats: human-readable by default, one JSON object per line with LOG_FORMAT=json.

Both carry the ids of backend.observability.context. Secrets never reach a record: the
gateway logs only error class names and request ids, and `RedactingFilter` masks anything
that still looks like a Stripe key, a webhook secret or a card number.
"""
import logging
import re

from pythonjsonlogger.json import JsonFormatter

from backend.observability.context import FIELDS

_SECRET = re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9_]+|\bwhsec_[A-Za-z0-9_]+|\b(?:\d[ -]?){13,19}\b")


class RedactingFilter(logging.Filter):
    """Masks key-, secret- and card-number-shaped text in the final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRET.search(message):
            record.msg, record.args = _SECRET.sub("[redacted]", message), ()
        return True


class JsonLogFormatter(JsonFormatter):
    """One line per record: time, level, logger, message, process, the ids, and the exception."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s %(process)d", *args, **kwargs)

    def add_fields(self, log_record, record, message_dict):
        super().add_fields(log_record, record, message_dict)
        for field in FIELDS:
            if log_record.get(field) is None:
                log_record.pop(field, None)


class PlainFormatter(logging.Formatter):
    """The default: `time LEVEL logger message [ids]`."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{f}={getattr(record, f)}" for f in FIELDS if getattr(record, f, None))
        return f"{text} [{ids}]" if ids else text


class CrashesOnly(logging.Filter):
    """django.request logs every 5xx response; only an unhandled exception (it carries
    exc_info) is worth a mail. A 502/503 we answered on purpose (Stripe down) is not."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is not None


def logging_config(*, log_format: str, level: str) -> dict:
    """Django's LOGGING (and Celery's, which keeps it: worker_hijack_root_logger is off).
    Unhandled exceptions of requests are also mailed to ADMINS (when DEBUG is off)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "backend.observability.context.ContextFilter"},
            "redact": {"()": "backend.observability.logging.RedactingFilter"},
            "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
            "crashes_only": {"()": "backend.observability.logging.CrashesOnly"},
        },
        "formatters": {
            "plain": {"()": "backend.observability.logging.PlainFormatter",
                      "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "json": {"()": "backend.observability.logging.JsonLogFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["context", "redact"]},
            "mail_admins": {"level": "ERROR", "class": "django.utils.log.AdminEmailHandler",
                            "filters": ["require_debug_false", "crashes_only", "redact"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {"handlers": ["mail_admins"], "level": "INFO"},
            "django.db.backends": {"level": "WARNING"},
            "stripe": {"level": "WARNING"},
        },
    }
