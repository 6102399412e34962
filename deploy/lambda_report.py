"""Lambda's REPORT log line: writing it (the local gateway) and reading it (every Lambda target).

AWS writes one REPORT line per invocation at the end of its log (text log format; ``<TAB>`` is a
tab)::

    REPORT RequestId: <uuid><TAB>Duration: 26.73 ms<TAB>Billed Duration: 27 ms<TAB>Memory Size: 128 MB<TAB>
    Max Memory Used: 75 MB<TAB>Init Duration: 130.49 ms<TAB>      (one line)

`Init Duration` appears only on the first invocation an execution environment serves; a failed
invocation may add ``Status: error`` / ``Status: timeout`` and ``Error Type: ...``. The parser
takes fields separated by tabs or by runs of spaces (CloudWatch shows both), ignores what follows
the REPORT line (XRAY lines, other log lines) and also reads the JSON log format's
``platform.report`` record. Fields that start with ``Servesim`` are the local gateway's own
additions (the CPU and memory limits applied to the environment), put after AWS's fields so a
parser that only knows AWS's fields reads servesim's lines unchanged.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any, Mapping

# AWS's field names -> (key in the parsed dict, type). Durations are in ms, memory in MB.
_FIELDS = {
    "Duration": ("duration_ms", float),
    "Billed Duration": ("billed_duration_ms", int),
    "Memory Size": ("memory_size_mb", int),
    "Max Memory Used": ("max_memory_used_mb", int),
    "Init Duration": ("init_duration_ms", float),
    "Restore Duration": ("restore_duration_ms", float),
    "Billed Restore Duration": ("billed_restore_duration_ms", int),
    "Status": ("status", str),
    "Error Type": ("error_type", str),
}
_REQUIRED = ("duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb")
_OPTIONAL = ("init_duration_ms", "restore_duration_ms", "billed_restore_duration_ms", "status", "error_type")

_REPORT_LINE = re.compile(r"(?m)^[^\n]*?\bREPORT RequestId: ?(\S+)([^\n]*)$")
# A field: a name of capitalised words, ': ', a value, an optional unit. Values never hold tabs.
_FIELD = re.compile(r"([A-Z][A-Za-z]*(?: [A-Z][A-Za-z]*)*): ([^\s:]+(?: (?:ms|MB))?)(?=\s|$)")
_SERVESIM_FIELD = re.compile(r"(Servesim [A-Za-z ]+?): ([^\t\n]*?)\s*(?=\t|$)")


def billed_duration_ms(duration_ms: float) -> int:
    """Lambda's Billed Duration: the Duration as written (2 decimals) rounded up to 1 ms, at
    least 1 ms."""
    if not math.isfinite(duration_ms) or duration_ms < 0:
        raise ValueError(f"duration must be finite and >= 0 ms, got {duration_ms!r}")
    return max(1, math.ceil(round(duration_ms, 2)))


def format_report(request_id: str, *, duration_ms: float, memory_size_mb: int, max_memory_used_mb: int,
                  init_duration_ms: float | None = None, billed_ms: int | None = None,
                  status: str | None = None, error_type: str | None = None,
                  servesim: Mapping[str, str] | None = None) -> str:
    """One REPORT line (no newline) in AWS's text format: tab after every field, Init Duration
    only when given, then ``Status``/``Error Type`` for failures, then ``Servesim <name>``
    fields. `billed_ms` defaults to `billed_duration_ms(duration_ms)`."""
    billed = billed_duration_ms(duration_ms) if billed_ms is None else int(billed_ms)
    parts = [f"REPORT RequestId: {request_id}", f"Duration: {duration_ms:.2f} ms", f"Billed Duration: {billed} ms",
             f"Memory Size: {int(memory_size_mb)} MB", f"Max Memory Used: {int(max_memory_used_mb)} MB"]
    if init_duration_ms is not None:
        parts.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if status is not None:
        parts.append(f"Status: {status}")
    if error_type is not None:
        parts.append(f"Error Type: {error_type}")
    for name, value in (servesim or {}).items():
        if "\t" in value or "\n" in value:
            raise ValueError(f"a REPORT field value cannot hold tabs or newlines: {value!r}")
        parts.append(f"Servesim {name}: {value}")
    return "\t".join(parts) + "\t"


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _number(value: str, kind: type, field: str) -> Any:
    raw = value.split(" ", 1)[0]
    try:
        return kind(float(raw)) if kind is int else kind(raw)
    except ValueError:
        raise ValueError(f"REPORT field {field!r} is not a number: {value!r}") from None


def parse_report(text: str) -> dict:
    """The first REPORT line in `text` (a log or log tail, text or JSON format), as a dict.

    Keys: request_id, duration_ms, billed_duration_ms, memory_size_mb, max_memory_used_mb,
    init_duration_ms (None on a warm invocation), restore_duration_ms,
    billed_restore_duration_ms, status, error_type (None when absent) and, for servesim's own
    fields, ``servesim_<name>`` (``Servesim CPU Limit`` -> ``servesim_cpu_limit``), as text.
    ValueError if there is no REPORT line or a required field is missing."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        parsed = _parse_json_report(stripped)
        if parsed is not None:
            return parsed
    m = _REPORT_LINE.search(text)
    if m is None:
        raise ValueError("no REPORT line in the log")
    out: dict[str, Any] = {"request_id": m.group(1)}
    out.update({k: None for k in _OPTIONAL})
    body = m.group(2)
    servesim_at = body.find("Servesim ")
    aws_part = body if servesim_at < 0 else body[:servesim_at]
    for fm in _FIELD.finditer(aws_part):
        name, value = fm.group(1), fm.group(2)
        if name in _FIELDS:
            key, kind = _FIELDS[name]
            out[key] = value if kind is str else _number(value, kind, name)
    if servesim_at >= 0:
        for sm in _SERVESIM_FIELD.finditer(body[servesim_at:]):
            out[_snake(sm.group(1))] = sm.group(2).strip()
    missing = [k for k in _REQUIRED if k not in out]
    if missing:
        raise ValueError(f"REPORT line lacks {', '.join(missing)}: {m.group(0).strip()!r}")
    order = ("request_id", *_REQUIRED, *_OPTIONAL)
    return {**{k: out[k] for k in order}, **{k: v for k, v in out.items() if k not in order}}


def _parse_json_report(text: str) -> dict | None:
    """A ``platform.report`` record of the JSON log format (or None if `text` is not one)."""
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict) or rec.get("type") != "platform.report":
            continue
        record = rec.get("record") or {}
        metrics = record.get("metrics") or {}
        try:
            out = {"request_id": record["requestId"], "duration_ms": float(metrics["durationMs"]),
                   "billed_duration_ms": int(metrics["billedDurationMs"]),
                   "memory_size_mb": int(metrics["memorySizeMB"]),
                   "max_memory_used_mb": int(metrics["maxMemoryUsedMB"])}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"platform.report record lacks {exc}") from None
        out["init_duration_ms"] = float(metrics["initDurationMs"]) if "initDurationMs" in metrics else None
        out["restore_duration_ms"] = float(metrics["restoreDurationMs"]) if "restoreDurationMs" in metrics else None
        out["billed_restore_duration_ms"] = (int(metrics["billedRestoreDurationMs"])
                                             if "billedRestoreDurationMs" in metrics else None)
        status = record.get("status")
        out["status"] = None if status == "success" else status  # as the text format: Status only on failures
        out["error_type"] = record.get("errorType")
        return out
    return None


def decode_log_result(log_result_b64: str) -> str:
    """The text of an Invoke response's ``LogResult`` (base64 of the log's last 4 KB)."""
    try:
        return base64.b64decode(log_result_b64, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"LogResult is not base64: {exc}") from None


def parse_log_result(log_result_b64: str) -> dict:
    """`parse_report` of a base64 ``LogResult`` (``X-Amz-Log-Result``)."""
    return parse_report(decode_log_result(log_result_b64))
