"""Scenario files (TOML): every parameter of a simulated sales org, validated with clear errors."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from crm_adapters.sandbox._qualification import QualField, QualNoise

SCENARIOS = Path(__file__).parent / "scenarios"


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with the file and key at fault."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One ICP/disqualification condition on an account or lead field."""

    field: str
    op: str
    value: Any

    def matches(self, row: Mapping[str, Any]) -> bool:
        got = row.get(self.field)
        if got is None:
            return False
        op, want = self.op, self.value
        if op == "in":
            return bool(got in want)
        if op == "not_in":
            return bool(got not in want)
        if op == "==":
            return bool(got == want)
        if op == "!=":
            return bool(got != want)
        try:
            return bool({"<": got < want, "<=": got <= want, ">": got > want, ">=": got >= want}[op])
        except TypeError:
            return False

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op, "value": self.value}


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    effect: float
    rules: tuple[Rule, ...]

    def matches(self, row: Mapping[str, Any]) -> bool:
        return all(rule.matches(row) for rule in self.rules)


@dataclass(frozen=True, slots=True)
class Underperformer:
    index: int
    cause: str
    fabrication_rate: float | None = None
    meddic_capture_factor: float | None = None


@dataclass(frozen=True, slots=True)
class ObjectionSpec:
    weight: float
    effect: float
    responses: dict[str, float]


@dataclass(frozen=True, slots=True)
class SequenceSpec:
    id: str
    steps: int
    variants: dict[str, float]  # variant id -> true reply rate per enrollment


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole simulated world; effects are already multiplied by `effects_scale`."""

    name: str
    source: str
    start: date
    weeks: int
    seed: int
    currency: str
    managers: int
    sdrs: int
    bdms: int
    accounts: int
    contacts_per_account: tuple[int, int]
    leads_per_week: float
    base_win_rate: float
    noise_sd: float
    effects_scale: float
    amount_median: float
    amount_sigma: float
    industries: dict[str, float]
    countries: dict[str, float]
    employees_median: float
    employees_sigma: float
    revenue_per_employee: float
    segments: tuple[Segment, ...]
    lead_sources: dict[str, tuple[float, float]]  # source -> (share, effect)
    pains: dict[str, tuple[float, float]]  # pain -> (prevalence, effect)
    fabrication_rate: float
    omission_rate: float
    discovery_rate: float
    misaligned_pain_effect: float
    meddic: dict[str, tuple[float, float]]  # element -> (capture, effect)
    questions: dict[str, tuple[float, float, float]]  # id -> (sdr ask, bdm ask, effect)
    sdr_skill_sd: float
    underperformers: tuple[Underperformer, ...]
    objection_rate: float
    objections: dict[str, ObjectionSpec]
    enrollments_per_week: float
    positive_share: float
    meeting_rate: float
    sequences: tuple[SequenceSpec, ...]
    warning_signs: dict[str, tuple[float, float]]  # sign -> (rate, effect)
    stage_days: tuple[float, float, float, float]
    stall_factor: float
    quiet_days: float
    typo_rate: float
    hedge_rate: float
    qualification: tuple[QualField, ...] = ()  # qualification fields the SDR fills (crm_adapters/sandbox/_qualification.py)
    qualification_noise: QualNoise = QualNoise()

    def scaled(self, deals: int) -> Scenario:
        """The same world with volumes (leads, accounts, staff, enrollments) scaled to about `deals` deals."""
        factor = deals / max(self.expected_deals(), 1.0)

        def grow(n: int) -> int:
            return max(1, round(n * factor))

        return dataclasses.replace(
            self,
            leads_per_week=self.leads_per_week * factor,
            enrollments_per_week=self.enrollments_per_week * factor,
            accounts=grow(self.accounts),
            sdrs=max(self.sdrs, grow(self.sdrs)),
            bdms=max(self.bdms, grow(self.bdms)),
            managers=max(self.managers, grow(self.managers)),
        )

    def expected_deals(self) -> float:
        """Leads plus outbound meetings expected over `weeks`."""
        seq_rate = sum(sum(s.variants.values()) / len(s.variants) for s in self.sequences) / max(
            len(self.sequences), 1
        )
        outbound = self.enrollments_per_week * seq_rate * self.positive_share * self.meeting_rate
        return (self.leads_per_week + outbound) * self.weeks


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read and validate a scenario file; None is the default scenario, a bare name one of ours."""
    file = _resolve(path)
    raw = _read_with_extends(file, seen=())
    return _Parser(file.name).scenario(raw)


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


class _Parser:
    """Walks the TOML tree with the key path at hand, so every error names what is wrong where."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def fail(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.filename}: [{where}] {message}")

    def table(self, raw: Mapping[str, Any], key: str, where: str = "") -> dict[str, Any]:
        path = f"{where}.{key}" if where else key
        value = raw.get(key)
        if not isinstance(value, dict):
            raise self.fail(path, "missing table" if value is None else "must be a table")
        return value

    def num(
        self, raw: Mapping[str, Any], key: str, where: str, lo: float = -math.inf, hi: float = math.inf
    ) -> float:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"{key} must be a number, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(where, f"{key} must be in [{lo}, {hi}], got {value}")
        return float(value)

    def count(self, raw: Mapping[str, Any], key: str, where: str, lo: int = 0) -> int:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise self.fail(where, f"{key} must be an integer >= {lo}, got {value!r}")
        return value

    def known(
        self, raw: Mapping[str, Any], allowed: tuple[str, ...], where: str, complete: bool = True
    ) -> None:
        unknown = sorted(set(raw) - set(allowed))
        if unknown:
            raise self.fail(where, f"unknown keys {unknown}; expected {list(allowed)}")
        missing = sorted(set(allowed) - set(raw))
        if complete and missing:
            raise self.fail(where, f"missing keys {missing}")

    def shares(self, raw: Any, where: str) -> dict[str, float]:
        if not isinstance(raw, dict) or not raw:
            raise self.fail(where, "must be a non-empty table of name = weight")
        out = {str(k): self.num(raw, k, where, 0.0) for k in raw}
        if sum(out.values()) <= 0:
            raise self.fail(where, "weights must not all be zero")
        return out

    def scenario(self, raw: dict[str, Any]) -> Scenario:
        from crm_adapters.sandbox._scenario_parts import parse_all

        return parse_all(self, raw)
