"""Writing outputs safely: every file appears whole or not at all (temp file + rename)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.atomic import atomic_path, write_text


def write_json(path: str | Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class ParquetStream:
    """Tables streamed into one Parquet file, renamed into place when the `with` block succeeds.

    On an exception the partial file is removed. The first table fixes the schema.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._ctx = atomic_path(self.path)
        self._tmp: Path | None = None
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def __enter__(self) -> "ParquetStream":
        self._tmp = self._ctx.__enter__()
        return self

    def write(self, df: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(df, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, table.schema)
        self._writer.write_table(table.cast(self._writer.schema))
        self.rows += len(df)

    def __exit__(self, exc_type, exc, tb):
        if self._writer is not None:
            self._writer.close()
        elif exc_type is None:
            pq.write_table(pa.table({}), self._tmp)
        return self._ctx.__exit__(exc_type, exc, tb)


class RecordWriter(ParquetStream):
    """Per-request records of several platforms in one Parquet file (a `platform` column first)."""

    def sink(self, platform: str):
        """A callable taking one DataFrame of records of `platform`."""
        def write(df: pd.DataFrame) -> None:
            df = df.copy()
            df.insert(0, "platform", platform)
            df["status"] = df["status"].astype(str)
            self.write(df)
        return write
