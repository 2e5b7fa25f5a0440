"""A tenant's settings read and written through one type: old rows read back, unknown keys survive, and a
stored clock moves only a sandbox tenant's time."""

from __future__ import annotations

from datetime import datetime

from connector.store import installation_settings
from connector.store.installation_settings import InstallationSettings
from connector.store.tables import Installation


def test_a_row_written_before_the_type_reads_back_unchanged() -> None:
    raw = {"loops": {"icp": {"enabled": False, "schedule": ""}}, "fields_ready": True, "time_zone": "Europe/Paris",
           "someone_elses_key": [1, 2]}
    settings = InstallationSettings.from_json(raw)
    assert settings.loops == {"icp": {"enabled": False, "schedule": ""}} and settings.time_zone == "Europe/Paris"
    assert settings.paused is None and settings.other == {"someone_elses_key": [1, 2]}
    assert settings.to_json() == raw


def test_write_changes_only_what_it_names() -> None:
    row = Installation(crm="hubspot", tenant_id="1", settings={"fields_ready": True, "extra": "kept"})
    installation_settings.write(row, paused={"deal_risk": {"reason": "PSI 0.4", "since": "2026-01-05T00:00:00+00:00"}})
    assert row.settings == {"fields_ready": True, "extra": "kept",
                            "paused": {"deal_risk": {"reason": "PSI 0.4", "since": "2026-01-05T00:00:00+00:00"}}}
    assert installation_settings.read(row).fields_ready is True


def test_a_stored_clock_moves_only_a_sandbox_tenant() -> None:
    settings = InstallationSettings(clock="2026-03-02T09:00:00+00:00")
    assert settings.simulated_now("sandbox") == datetime.fromisoformat("2026-03-02T09:00:00+00:00")
    assert settings.simulated_now("hubspot") is None and settings.simulated_now("salesforce") is None
    assert InstallationSettings().simulated_now("sandbox") is None
