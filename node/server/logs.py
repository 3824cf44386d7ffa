"""Logging set-up: human-readable text, or one JSON object per line (``[logging] format =
"json"``), with secrets kept out of every line (:class:`RedactingFilter`)."""

from __future__ import annotations

import logging
import sys
import time

import orjson

from node.config import SECRET_KEY

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in _STD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = record.exc_text or self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


#: Field names whose values are secrets wherever they appear (structured ``extra`` fields).
SECRET_NAME = SECRET_KEY
REDACTED = "[redacted]"


class RedactingFilter(logging.Filter):
    """Keeps secrets out of log lines, by value and by name:

    * every configured secret *value* (the admin token) is replaced wherever it appears in a
      message, its arguments or a traceback;
    * ``extra`` fields whose *name* says secret (:data:`SECRET_NAME`) are replaced;
    * aiohttp's warning that lists the WebSocket subprotocols a client offered (clients put
      bearer tokens there: ``Sec-WebSocket-Protocol``) becomes an INFO line without them.
    """

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "aiohttp.websocket" and "Client protocols" in str(record.msg):
            record.msg = ("a WebSocket client offered subprotocols the node does not serve "
                          "(values not logged: they may carry credentials)")
            record.args = ()
            record.levelno, record.levelname = logging.INFO, "INFO"
        for k in record.__dict__:
            if k not in _STD and SECRET_NAME.search(k):
                record.__dict__[k] = REDACTED
        if self.secrets:
            msg = record.getMessage()
            clean = self.scrub(msg)
            if clean != msg:
                record.msg, record.args = clean, ()
            if record.exc_info and not record.exc_text:
                record.exc_text = self.scrub(
                    logging.Formatter().formatException(record.exc_info))
            elif record.exc_text:
                record.exc_text = self.scrub(record.exc_text)
        return True


def setup(level: str, fmt: str, secrets: list[str] | None = None) -> None:
    """Send the root logger to stderr in ``fmt``; ``secrets`` (values) never reach a line."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    h = logging.StreamHandler(sys.stderr)
    h.addFilter(RedactingFilter(secrets or []))
    if fmt == "json":
        h.setFormatter(JsonFormatter())
    else:
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(h)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
