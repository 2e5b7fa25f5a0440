"""Read the first sheet of an .xlsx file with the standard library (no spreadsheet dependency)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def _column(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref).group(0)  # type: ignore[union-attr]
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of the first sheet as dicts keyed by the header row (all values as text)."""
    with zipfile.ZipFile(path) as book:
        shared = []
        if "xl/sharedStrings.xml" in book.namelist():
            root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t")) for si in root.findall("m:si", _NS)]
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    table: list[list[str]] = []
    for row in sheet.iter(f"{{{_NS['m']}}}row"):
        values: dict[int, str] = {}
        for cell in row.findall("m:c", _NS):
            v = cell.find("m:v", _NS)
            text = v.text if v is not None and v.text is not None else ""
            if cell.get("t") == "s" and text:
                text = shared[int(text)]
            elif cell.get("t") == "inlineStr":
                text = "".join(t.text or "" for t in cell.iter(f"{{{_NS['m']}}}t"))
            values[_column(cell.get("r", "A1"))] = text
        table.append([values.get(i, "") for i in range(max(values) + 1 if values else 0)])
    header = table[0]
    return [{h: (r[i] if i < len(r) else "") for i, h in enumerate(header)} for r in table[1:]]
