"""Every loop the engine can run, by name. Each loop module adds its LoopDefinition here."""

from __future__ import annotations

from jobs.loops.base import LoopDefinition

LOOPS: dict[str, LoopDefinition] = {}


def register(definition: LoopDefinition) -> LoopDefinition:
    LOOPS[definition.name] = definition
    return definition


def all_loops() -> dict[str, LoopDefinition]:
    """Import every loop module (each registers itself) and return them by name."""
    import importlib

    for module in ("deal_risk.loop", "handoff.loop", "discovery", "objections", "sequences", "icp"):
        try:
            importlib.import_module(f"jobs.loops.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"jobs.loops.{module}":
                raise
    return dict(LOOPS)
