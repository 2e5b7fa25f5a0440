"""The Procfile's web command as an argv, so the benches run the web process exactly as it is deployed."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def web_command(port: int, *extra: str) -> list[str]:
    """The `web:` line bound to 127.0.0.1:port, the venv's gunicorn, `extra` flags before the app (they win)."""
    line = next(ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.startswith("web:"))
    argv = shlex.split(re.sub(r"\$\{PORT:-\d+\}", str(port), line.split(":", 1)[1]))
    argv = [f"127.0.0.1:{port}" if a.startswith("0.0.0.0:") else a for a in argv]
    return [str(Path(sys.executable).with_name(argv[0])), *argv[1:-1], *extra, argv[-1]]
