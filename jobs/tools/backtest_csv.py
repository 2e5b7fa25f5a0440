"""Reading a CRM export as people save it: any common delimiter, any common encoding, checked ids.

Why: exports come from Excel in a European locale (`;`, cp1252), from HubSpot (`,`, UTF-8 with a
byte-order mark) or from a tab-separated report; the backtest should read them all, and say which
delimiter and encoding it used, instead of failing with a list of "missing" columns.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

DELIMITERS = ",;\t|"
SAMPLE = 64_000
FALLBACK_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")


class CsvError(ValueError):
    """A file the backtest cannot read; the message says what to fix."""


@dataclass(frozen=True)
class CsvFile:
    """The rows of a CSV with what was used to read it."""

    header: list[str]
    rows: list[dict[str, str]]
    delimiter: str
    encoding: str


def detect_encoding(data: bytes) -> str:
    """UTF-8 when the bytes decode as UTF-8; else charset-normalizer's best guess; else cp1252."""
    try:
        data.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[:SAMPLE]).best()
    if best is None:
        return "cp1252"
    try:  # single-byte guesses often agree with Windows-1252 on every byte present: name the usual one
        return "cp1252" if data.decode("cp1252") == data.decode(best.encoding) else best.encoding
    except (UnicodeDecodeError, LookupError):
        return best.encoding


def detect_delimiter(sample: str) -> str:
    """The delimiter that splits the header and the first rows into the same number of fields."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = Counter({d: first.count(d) for d in DELIMITERS})
        delimiter, n = counts.most_common(1)[0]
        return delimiter if n else ","


def read_csv(path: Path, *, delimiter: str | None = None, encoding: str | None = None) -> CsvFile:
    """Read the whole file; delimiter and encoding are detected unless given."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CsvError(f"CSV file {path} does not exist") from exc
    used = encoding or detect_encoding(data)
    try:
        text = data.decode(used)
    except (UnicodeDecodeError, LookupError) as exc:
        raise CsvError(f"CSV file {path} is not readable as {used}: {exc}; set encoding = \"...\" in the mapping") from exc
    text = text.removeprefix("\ufeff")
    sep = delimiter or detect_delimiter(text[:SAMPLE])
    reader = csv.DictReader(text.splitlines(), delimiter=sep)
    try:
        rows = [{k: (v or "") for k, v in row.items() if k is not None} for row in reader]
    except csv.Error as exc:
        raise CsvError(f"CSV file {path} cannot be read with delimiter {sep!r}: {exc}") from exc
    header = [h for h in (reader.fieldnames or []) if h is not None]
    if len(header) < 2:
        raise CsvError(f"CSV file {path} has a single column with delimiter {sep!r} (encoding {used}); "
                       f"set delimiter = \";\" (or \",\", \"\\t\", \"|\") in the mapping")
    return CsvFile(header, rows, sep, used)


def check_ids(rows: list[dict[str, str]], column: str) -> None:
    """Every row has its own id; else say which column, how many rows and how many distinct values."""
    values = [r.get(column, "").strip() for r in rows]
    empty = sum(1 for v in values if not v)
    distinct = len(set(values) - {""})
    if empty or distinct != len(values):
        repeated = Counter(v for v in values if v).most_common(1)
        example = f"; e.g. {repeated[0][0]!r} appears {repeated[0][1]} times" if repeated and repeated[0][1] > 1 else ""
        raise CsvError(f"id column {column!r} is not unique: {distinct} distinct values over {len(values)} rows "
                       f"({empty} empty){example}. Name a unique column as id, or leave id out and use --split cv "
                       f"(the row number then serves as id)")
