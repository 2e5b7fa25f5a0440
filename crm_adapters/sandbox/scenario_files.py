"""Scenario files (TOML): read one (following 'extends'), validate every parameter, with clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from crm_adapters.sandbox._scenario_parts import _Parser, parse_all
from crm_adapters.sandbox.scenario import Scenario, ScenarioError

SCENARIOS = Path(__file__).parent / "scenarios"


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read and validate a scenario file; None is the default scenario, a bare name one of ours."""
    file = _resolve(path)
    raw = _read_with_extends(file, seen=())
    return parse_all(_Parser(file.name), raw)


def _resolve(path: str | Path | None) -> Path:
    if path is None:
        return SCENARIOS / "default.toml"
    file = Path(path)
    if not file.exists() and not file.suffix and (SCENARIOS / f"{file.name}.toml").exists():
        return SCENARIOS / f"{file.name}.toml"
    if not file.exists():
        raise ScenarioError(f"scenario file not found: {file}")
    return file


def _read_with_extends(file: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if file.resolve() in seen:
        raise ScenarioError(f"{file.name}: circular 'extends'")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{file.name}: not valid TOML: {exc}") from exc
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ScenarioError(f"{file.name}: 'extends' must be a file name")
    base = _read_with_extends(file.parent / parent, seen + (file.resolve(),))
    return _merge(base, raw)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
