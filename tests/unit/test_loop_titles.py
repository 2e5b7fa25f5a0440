"""Every loop has a name people read ("SDR to BDM handoff"), defined once on its LoopDefinition."""

from __future__ import annotations

from jobs.loops import registry
from jobs.loops.labels import plain_problems


def test_every_loop_has_a_plain_title() -> None:
    titles = {name: registry.title(name) for name in registry.LOOPS}
    assert titles == {"deal_risk": "Deal risk", "handoff": "SDR to BDM handoff", "discovery": "Discovery questions",
                      "objections": "Objection handling", "sequences": "Outbound sequences",
                      "icp": "Ideal customer profile"}
    assert all(loop.title for loop in registry.LOOPS.values())
    assert not [p for t in titles.values() for p in plain_problems(t)]


def test_a_name_no_loop_has_reads_as_words_not_an_identifier() -> None:
    assert registry.title("old_loop") == "Old loop"
    assert not plain_problems(registry.title("some_retired_loop"))
