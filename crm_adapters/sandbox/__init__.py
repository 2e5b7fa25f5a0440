"""The embedded sandbox CRM and the simulated sales org behind it (see README.md in this package)."""

from crm_adapters.sandbox.adapter import SandboxCrm
from crm_adapters.sandbox.playbook import Playbook
from crm_adapters.sandbox.scenario import Scenario, ScenarioError
from crm_adapters.sandbox.scenario_files import load_scenario
from crm_adapters.sandbox.simulator import SimulatedOrg, SimulatedWorld, oracle_playbook, simulate
from crm_adapters.sandbox.truth import DealTruth, Truth

__all__ = [
    "DealTruth",
    "Playbook",
    "SandboxCrm",
    "Scenario",
    "ScenarioError",
    "SimulatedOrg",
    "SimulatedWorld",
    "Truth",
    "load_scenario",
    "oracle_playbook",
    "simulate",
]
