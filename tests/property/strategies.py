"""What a CRM, a browser or an attacker may send: texts with NUL characters, lone surrogates, digits that
are not ASCII, huge and non-finite numbers, nested JSON of the wrong shape."""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import strategies as st

NASTY_CHARS = ["\x00", "\ud800", "\udfff", "\U0001F600", "²", "٣", "é", "\n", "'", '"', "<", "&", "%", "/", "\\",
               "\u202e", "\ufeff", " "]
NASTY_WORDS = ["", "0", "-1", "1e20", "1e400", "NaN", "-Infinity", "null", "true", "[]", "{}", "x" * 65,
               "9" * 30, "2026-02-30", "2026-06-01T09:00:00Z", "100000000000000000000", "a,b", "../..",
               "<script>", "%00", "approve", "reject", "deal", "contact.privacyDeletion", "deal.deletion"]

nasty_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(NASTY_WORDS + NASTY_CHARS), max_size=4).map("".join),
    st.text(alphabet=st.sampled_from(NASTY_CHARS + list(string.ascii_letters + string.digits)), max_size=80),
)
numbers = st.one_of(
    st.integers(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e20, -1e20, 1e300, 0, -1, 2**63]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, nasty_text)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4), max_leaves=12
)


def with_keys(keys: list[str], value: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[dict[str, Any]]:
    """Objects that may hold each of `keys` (with any value) plus a few keys of their own."""
    return st.builds(lambda picked, extra: {**extra, **picked},
                     st.fixed_dictionaries({}, optional={k: value for k in keys}),
                     st.dictionaries(nasty_text, json_values, max_size=2))


def plausible(value: st.SearchStrategy[Any], odd: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes anything at all."""
    return st.one_of(value, value, value, odd)


def dumps(value: Any) -> bytes:
    """JSON as a CRM would send it (NaN and Infinity included, lone surrogates escaped)."""
    return json.dumps(value).encode()
