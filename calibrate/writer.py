"""Writing the measurement table as a campaign goes (layout in `calibrate.table`).

The table is a folder of part files plus ``_campaign.json``. Rows are buffered and written as a
part file (a temporary ``.part-*.tmp`` beside it, then `os.replace`, so a reader never sees half a
part) every `flush_rows` rows and whenever a unit ends. A **unit** is what a campaign measures
in one go and resumes as a whole: one configuration's cold phase, its warm phase, or one load
level, i.e. one ``(config, phase, level)`` (`unit_key`). A part holds the rows of one unit only.

``_campaign.json`` (also replaced atomically) holds the run id, the target and the model, one
entry per session (each start or resume: its time, host checks, warnings and settings), and the
finished units with a summary of each. A unit is *finished* once its last part is on disk and it
is listed there; parts of a unit that never finished (the campaign was interrupted in the middle
of it) stay readable in the table, and are removed when the campaign resumes, which measures
that unit again. So an interrupted campaign keeps every row it measured, and a resumed one has
each unit exactly once.
"""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from calibrate.table import COLUMNS, SCHEMA_VERSION
from sim.atomic import atomic_path, write_text
from sim.errors import ServesimError

CAMPAIGN_FILE = "_campaign.json"
_PART = re.compile(r"^part-(\d{6})\.parquet$")
_NAMES = set(COLUMNS.names)


def unit_key(config: str, phase: str, level: float | None = None) -> str:
    """The key of a unit: ``config|phase|level`` (level empty for cold and warm; a NaN level,
    as pandas reads a null one, is empty too)."""
    empty = level is None or level != level
    return f"{config}|{phase}|{'' if empty else format(float(level), 'g')}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def write_json_atomic(path: Path, data: Mapping) -> None:
    """`data` as indented JSON at `path`, via a temporary file and a rename."""
    write_text(path, json.dumps(data, indent=1, default=str) + "\n")


class TableWriter:
    """Appends rows to the measurement table folder `path` for campaign `run_id`.

    Without `resume`, a `path` that already holds a table (parts or ``_campaign.json``) is a
    ServesimError. With `resume`, the campaign recorded there continues: its run id replaces
    `run_id`, its finished units are `done_units()`, and parts of unfinished units are removed
    by `start`. Nothing is created until `start`. Use as a context manager: leaving it (also on
    Ctrl-C) writes the rows still buffered."""

    def __init__(self, path: str | os.PathLike, run_id: str, resume: bool = False, *, flush_rows: int = 1000):
        if flush_rows < 1:
            raise ValueError(f"flush_rows must be >= 1, got {flush_rows}")
        self.path = Path(path)
        self.run_id = run_id
        self.resume = bool(resume)
        self.flush_rows = int(flush_rows)
        self.meta: dict = {}
        self._buffer: list[dict] = []
        self._buffer_unit: str | None = None
        self._next_part = 0
        self._started = False
        self.rows_written = 0
        if self.path.exists() and not self.path.is_dir():
            raise ServesimError(f"{self.path} exists and is not a measurement table folder: choose another --out")
        existing = self._has_table()
        if existing and not self.resume:
            raise ServesimError(f"{self.path} already holds measurements: pass --resume to continue that "
                                "campaign, or choose another --out path")
        if existing:
            meta_path = self.path / CAMPAIGN_FILE
            if not meta_path.is_file():
                raise ServesimError(f"{self.path} has part files but no {CAMPAIGN_FILE}: it was not written by a "
                                    "campaign and cannot be resumed; choose another --out path")
            try:
                self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ServesimError(f"{meta_path}: unreadable campaign record ({exc}); cannot resume") from None
            if self.meta.get("schema") != SCHEMA_VERSION:
                raise ServesimError(f"{meta_path}: schema {self.meta.get('schema')!r}, expected {SCHEMA_VERSION!r}")
            self.run_id = self.meta["run_id"]

    def _has_table(self) -> bool:
        if not self.path.is_dir():
            return False
        return (self.path / CAMPAIGN_FILE).exists() or any(self.parts())

    def parts(self) -> list[Path]:
        """The part files on disk, in the order they were written."""
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.iterdir() if _PART.match(p.name))

    # ---- campaign record --------------------------------------------------------------------

    def start(self, *, target: str, model: str, model_sha256: str | None, session: Mapping) -> None:
        """Create the folder (or continue the recorded campaign) and record a new session
        (`session`: host checks, warnings, settings). On resume, the target and model must be
        those recorded, and parts of units that did not finish are removed."""
        if self.meta:
            recorded = (self.meta.get("target"), self.meta.get("model"), self.meta.get("model_sha256"))
            if recorded != (target, model, model_sha256):
                raise ServesimError(f"{self.path} holds a campaign of target {recorded[0]!r}, model {recorded[1]!r} "
                                    f"(sha256 {str(recorded[2])[:12]}); this one is {target!r}, {model!r} "
                                    f"(sha256 {str(model_sha256)[:12]}): choose another --out path")
            self._drop_unfinished()
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self.meta = {"schema": SCHEMA_VERSION, "run_id": self.run_id, "target": target, "model": model,
                         "model_sha256": model_sha256, "started": _now(), "updated": None, "finished": None,
                         "sessions": [], "units": {}}
        numbers = [int(_PART.match(p.name).group(1)) for p in self.parts()]
        self._next_part = max(numbers, default=-1) + 1
        self.meta["sessions"].append({"started": _now(), **session})
        self.meta["host"] = session.get("host")
        self.meta["finished"] = None
        self._started = True
        self._write_meta()

    def _drop_unfinished(self) -> None:
        done = self.done_units()
        for part in self.parts():
            t = pq.read_table(part, columns=["config", "phase", "level"])
            keys = {unit_key(c, p, lv) for c, p, lv in zip(*(t.column(n).to_pylist() for n in t.column_names))}
            if not keys <= done:
                part.unlink()

    def _write_meta(self) -> None:
        self.meta["updated"] = _now()
        write_json_atomic(self.path / CAMPAIGN_FILE, self.meta)

    def done_units(self) -> set[str]:
        """Keys (`unit_key`) of the units finished in this campaign, in any session."""
        return set(self.meta.get("units", {}))

    def unit_summary(self, key: str) -> dict | None:
        """The summary recorded when unit `key` finished (None if it did not)."""
        entry = self.meta.get("units", {}).get(key)
        return None if entry is None else entry.get("summary")

    # ---- rows -------------------------------------------------------------------------------

    def append(self, rows: Iterable[Mapping]) -> None:
        """Buffer rows (mappings of table columns; missing columns are null, unknown ones an
        error); a full buffer, or a row of another unit, writes a part."""
        if not self._started:
            raise RuntimeError("TableWriter.start() first")
        for row in rows:
            unknown = set(row) - _NAMES
            if unknown:
                raise ValueError(f"not columns of the measurement table: {sorted(unknown)}")
            key = unit_key(row["config"], row["phase"], row.get("level"))
            if self._buffer_unit is not None and key != self._buffer_unit:
                self.flush()
            self._buffer_unit = key
            self._buffer.append(row)
            if len(self._buffer) >= self.flush_rows:
                self.flush()

    def flush(self) -> Path | None:
        """Write the buffered rows as one part file (atomically); the part's path, or None."""
        if not self._buffer:
            return None
        table = pa.Table.from_pylist([{n: r.get(n) for n in COLUMNS.names} for r in self._buffer], schema=COLUMNS)
        target = self.path / f"part-{self._next_part:06d}.parquet"
        with atomic_path(target) as tmp:
            pq.write_table(table, tmp)
        self._next_part += 1
        self.rows_written += len(self._buffer)
        self._buffer, self._buffer_unit = [], None
        return target

    def end_unit(self, key: str, summary: Mapping | None = None, *, rows: int | None = None) -> None:
        """Write the unit's last rows and record it as finished (with `summary`)."""
        self.flush()
        self.meta["units"][key] = {"finished": _now(), "rows": rows, "summary": dict(summary or {})}
        self._write_meta()

    def finish(self) -> None:
        """Write what is buffered and mark the campaign finished."""
        self.flush()
        self.meta["finished"] = _now()
        self._write_meta()

    def close(self) -> None:
        """Write what is buffered (the rows of an unfinished unit are kept, not marked done)."""
        if self._started:
            self.flush()
            self._write_meta()

    def __enter__(self) -> "TableWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
