"""Split a transcript into speaker turns ("Rep: ..." / "Prospect: ..."), keeping character offsets."""

from __future__ import annotations

import re
from dataclasses import dataclass

# "Rep:", "Prospect (Dana):", "SDR - Sam:", "[00:01:02] Prospect:" ... -> rep | prospect
_SPEAKER = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)?(?P<who>rep|sales ?rep|sdr|bdr|bdm|ae|seller|agent|prospect|customer|buyer|client|lead)"
    r"\s*(?:\([^)\n]{0,40}\)|[-–]\s*[A-Z][\w.]*(?:\s[A-Z][\w.]*)?)?\s*:\s?",
    re.IGNORECASE,
)
_ROLE = {"rep": "rep", "salesrep": "rep", "sales rep": "rep", "sdr": "rep", "bdr": "rep", "bdm": "rep", "ae": "rep",
         "seller": "rep", "agent": "rep"}


@dataclass(frozen=True, slots=True)
class Turn:
    """What one speaker said in one go; `offset` is where `text` starts in the original string."""

    speaker: str | None  # "rep" | "prospect" | None (notes: the author's own voice)
    text: str
    offset: int


def split_turns(text: str) -> list[Turn]:
    """Lines starting with a speaker label open a turn; other lines continue the current one."""
    turns: list[Turn] = []
    speaker: str | None = None
    start = 0
    pieces: list[tuple[int, int]] = []
    position = 0
    for line in text.splitlines(keepends=True):
        match = _SPEAKER.match(line)
        if match:
            _close(turns, text, speaker, pieces)
            pieces = []
            who = match.group("who").lower()
            speaker = _ROLE.get(who, "prospect")
            start = position + match.end()
            pieces.append((start, position + len(line)))
        else:
            pieces.append((position, position + len(line)))
        position += len(line)
    _close(turns, text, speaker, pieces)
    return turns


def _close(turns: list[Turn], text: str, speaker: str | None, pieces: list[tuple[int, int]]) -> None:
    if not pieces:
        return
    begin, end = pieces[0][0], pieces[-1][1]
    chunk = text[begin:end]
    if chunk.strip():
        turns.append(Turn(speaker=speaker, text=chunk, offset=begin))
