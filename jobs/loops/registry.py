"""Every loop the engine can run, by name: listed here, explicitly (a misspelt module fails at import)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from jobs.loops import discovery, icp, objections, sequences
from jobs.loops.base import LoopDefinition
from jobs.loops.deal_risk import loop as deal_risk
from jobs.loops.handoff import loop as handoff

LOOPS: Mapping[str, LoopDefinition[Any]] = MappingProxyType({
    loop.name: loop
    for loop in (deal_risk.DEFINITION, handoff.DEFINITION, discovery.DEFINITION, objections.DEFINITION,
                 sequences.DEFINITION, icp.DEFINITION)
})


def all_loops() -> dict[str, LoopDefinition[Any]]:
    """Every loop by name, in the order the engine runs them."""
    return dict(LOOPS)


def title(name: str) -> str:
    """A loop's name as people read it ("SDR to BDM handoff", not "handoff"); a name no loop has any more
    (an old stored row) is shown with its underscores as spaces rather than failing the page."""
    loop = LOOPS.get(name)
    return loop.title if loop is not None and loop.title else name.replace("_", " ").capitalize()
