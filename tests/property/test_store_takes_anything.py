"""The store takes whatever a CRM sends: one odd record is stored or quarantined, never fatal to its batch.

Each case is a record the issue saw stop a tenant's sync for good; all run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import func, select

from connector.store import Store
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from connector.store.records import load_records
from connector.store.tables import CrmRecord, QuarantinedRecord, SyncCursor
from crm_adapters.model import Entity
from crm_adapters.port import Quarantined
from jobs.sync import sync_installation
from tests.factories import a_deal, a_pipeline, an_activity
from tests.fakes.memory_crm import MemoryCrm

CIPHER = TokenCipher.from_key_text(TokenCipher.generate_key_text())


def _installation(store: Store) -> str:
    with store.session() as s:
        return inst.upsert(s, CIPHER, crm="sandbox", tenant_id="t1", tokens={"access_token": "a"}).id


def _counts(store: Store, installation_id: str) -> tuple[int, int]:
    with store.session() as s:
        stored = s.execute(select(func.count()).select_from(CrmRecord)
                           .where(CrmRecord.installation_id == installation_id, CrmRecord.entity != "pipeline")).scalar_one()
        kept = s.execute(select(func.count()).select_from(QuarantinedRecord)
                         .where(QuarantinedRecord.installation_id == installation_id)).scalar_one()
    return int(stored), int(kept)


def test_odd_ids_and_texts_are_stored_or_quarantined_and_the_batch_lands(any_store: Store) -> None:
    installation_id = _installation(any_store)
    crm = MemoryCrm(page_size=50)
    crm.seed(a_pipeline())
    crm.seed(
        a_deal(remote_id="ok-1", name="plain"),
        a_deal(remote_id="x" * 65, name="id too long"),
        a_deal(remote_id="nul\x00id", name="NUL in the id"),
        a_deal(remote_id="lone\ud800id", name="lone surrogate in the id"),
        a_deal(remote_id="ok-2", name="a NUL\x00 and a lone \udc00 surrogate in the name"),
        a_deal(remote_id="dup", name="first copy"),
        a_deal(remote_id="dup", name="second copy"),
        a_deal(remote_id="ok-3", name="emoji \U0001F600 kept", custom={"score": float("nan"), "top": float("-inf")}),
    )
    crm.seed(an_activity(deal_id="ok-1", remote_id="a1", body="text\x00with NUL"))
    crm.bad[Entity.DEAL].append((0, Quarantined(
        remote_id="q" * 200 + "\x00", reason="bad stage \x00 with \ud800",
        raw={"id": "q" * 200, "amount": float("nan"), "low": float("-inf"), "text": "a\x00b\udfff", 7: {"nested": [float("inf")]}})))
    report = sync_installation(any_store, installation_id, crm)
    assert report.quarantined == 4  # three unstorable ids and the raw the CRM could not map
    assert _counts(any_store, installation_id) == (5, 4)  # ok-1, ok-2, dup, ok-3, a1
    with any_store.session() as s:
        deals = {d.remote_id: d for d in load_records(s, installation_id, Entity.DEAL)}
        assert deals["dup"].name == "second copy"
        assert deals["ok-2"].name == "a NUL\ufffd and a lone \ufffd surrogate in the name"
        assert deals["ok-3"].name == "emoji \U0001F600 kept"
        assert deals["ok-3"].custom == {"score": "NaN", "top": "-Infinity"}
        reasons = sorted(s.execute(select(QuarantinedRecord.reason)).scalars())
        assert any("65 characters long" in r for r in reasons)
        assert sum("NUL character" in r for r in reasons) == 2
        row = s.execute(select(QuarantinedRecord).where(QuarantinedRecord.reason.like("bad stage%"))).scalar_one()
        assert len(row.remote_id) == 64 and row.raw["amount"] == "NaN" and row.raw["7"] == {"nested": ["Infinity"]}
        cursor = s.get(SyncCursor, (installation_id, "deal"))
        assert cursor is not None and cursor.cursor == "8"


def test_a_page_repeating_an_id_is_stored_once_and_synced_again_without_change(any_store: Store) -> None:
    installation_id = _installation(any_store)
    crm = MemoryCrm(page_size=10)
    crm.seed(a_pipeline(), a_deal(remote_id="d1", name="old"), a_deal(remote_id="d1", name="new"))
    first = sync_installation(any_store, installation_id, crm)
    assert first.changed["deal"] == 1
    with any_store.session() as s:
        assert [d.name for d in load_records(s, installation_id, Entity.DEAL)] == ["new"]
