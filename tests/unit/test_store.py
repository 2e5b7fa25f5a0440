from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import text

from connector.store import SchemaError, Store, records
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from connector.store.db import make_engine
from crm_adapters.model import Crm, Deal, Entity, Pipeline, Stage
from crm_adapters.port import Quarantined


def a_deal(remote_id: str = "d1", **kw: object) -> Deal:
    base = dict(crm=Crm.SANDBOX, remote_id=remote_id, stage_id="s1", amount=Decimal("100.50"))
    base.update(kw)
    return Deal(**base)  # type: ignore[arg-type]


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher.from_key_text(TokenCipher.generate_key_text())


def test_records_round_trip_and_unchanged_payload_is_not_rewritten(any_store: Store, cipher: TokenCipher) -> None:
    with any_store.session() as s:
        i = inst.upsert(s, cipher, crm="sandbox", tenant_id="t1", tokens={"access_token": "a"})
        pipe = Pipeline(crm=Crm.SANDBOX, remote_id="p", stages=(Stage(id="s1", label="S", order=1, probability=0.1, is_closed=False, is_won=False),))
        records.save_pipelines(s, i.id, [pipe])
        assert records.upsert_records(s, i.id, Entity.DEAL, [a_deal(), a_deal("d2")]) == 2
        assert records.upsert_records(s, i.id, Entity.DEAL, [a_deal(), a_deal("d2", name="x")]) == 1
        snap = records.load_snapshot(s, i.id)
    assert {d.remote_id for d in snap.deals} == {"d1", "d2"}
    assert snap.deal_by_id["d1"].amount == Decimal("100.50")
    assert snap.stage_by_id["s1"].label == "S"


def test_deleted_records_leave_the_snapshot(any_store: Store, cipher: TokenCipher) -> None:
    with any_store.session() as s:
        i = inst.upsert(s, cipher, crm="sandbox", tenant_id="t1", tokens={})
        records.upsert_records(s, i.id, Entity.DEAL, [a_deal(), a_deal("d2")])
        records.upsert_records(s, i.id, Entity.DEAL, [a_deal("d2", deleted=True)])
        assert [d.remote_id for d in records.load_snapshot(s, i.id).deals] == ["d1"]


def test_tenants_never_see_each_other(any_store: Store, cipher: TokenCipher) -> None:
    with any_store.session() as s:
        a = inst.upsert(s, cipher, crm="hubspot", tenant_id="111", tokens={})
        b = inst.upsert(s, cipher, crm="hubspot", tenant_id="222", tokens={})
        records.upsert_records(s, a.id, Entity.DEAL, [a_deal("only-a")])
        assert records.load_snapshot(s, b.id).deals == ()


def test_reinstall_maps_to_same_tenant_and_tokens_are_encrypted(any_store: Store, cipher: TokenCipher) -> None:
    with any_store.session() as s:
        first = inst.upsert(s, cipher, crm="hubspot", tenant_id="42", tokens={"access_token": "secret-1"})
        again = inst.upsert(s, cipher, crm="hubspot", tenant_id="42", tokens={"access_token": "secret-2"})
        assert first.id == again.id
        assert b"secret-2" not in again.tokens
        assert inst.read_tokens(again, cipher)["access_token"] == "secret-2"


def test_token_swap_is_compare_and_set(any_store: Store, cipher: TokenCipher) -> None:
    with any_store.session() as s:
        i = inst.upsert(s, cipher, crm="salesforce", tenant_id="00D", tokens={"refresh_token": "r1"})
        version = i.token_version
    with any_store.session() as s:
        assert inst.swap_tokens(s, cipher, i.id, expected_version=version, tokens={"refresh_token": "r2"}, expires_at=None)
    with any_store.session() as s:
        assert not inst.swap_tokens(s, cipher, i.id, expected_version=version, tokens={"refresh_token": "r3"}, expires_at=None)
    with any_store.session() as s:
        assert inst.read_tokens(inst.get(s, i.id), cipher)["refresh_token"] == "r2"


def test_quarantine_keeps_the_raw_record_and_reason(any_store: Store, cipher: TokenCipher) -> None:
    from connector.store.tables import QuarantinedRecord

    with any_store.session() as s:
        i = inst.upsert(s, cipher, crm="sandbox", tenant_id="t", tokens={})
        records.quarantine(s, i.id, Entity.DEAL, [Quarantined("x1", "amount 'abc' is not a number", {"amount": "abc", "at": datetime.now(UTC)})])
    with any_store.session() as s:
        row = s.query(QuarantinedRecord).one()
        assert row.reason.startswith("amount") and row.raw["amount"] == "abc"


def test_token_cipher_binds_ciphertext_to_installation(cipher: TokenCipher) -> None:
    blob = cipher.encrypt({"a": 1}, installation_id="one")
    with pytest.raises(InvalidTag):
        cipher.decrypt(blob, installation_id="two")


def test_unmigrated_database_gives_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SchemaError, match="salesloop db upgrade"):
        Store.connect(f"sqlite:///{tmp_path / 'empty.db'}", upgrade=False)


def test_corrupt_database_file_names_the_fix(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SchemaError, match="corrupt"):
        Store.connect(f"sqlite:///{bad}", upgrade=False)


def test_half_migrated_database_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'half.db'}"
    Store.connect(url)
    engine = make_engine(url)
    with engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num='0000'"))
    with pytest.raises(SchemaError, match="db upgrade"):
        Store.connect(url, upgrade=False)


def test_a_loaded_snapshot_equals_the_stored_records_and_shares_each_id_once(any_store: Store, cipher: TokenCipher) -> None:
    from tests.factories import a_role, a_stage_change, an_activity

    deal = a_deal("d7", custom={"region": "emea"})
    activity = an_activity(deal_id="d7", body="We build every report by hand.", contact_ids=("c1",))
    role, change = a_role("d7", "c1"), a_stage_change("d7", "s1")
    plain = a_deal("d8")
    with any_store.session() as s:
        i = inst.upsert(s, cipher, crm="sandbox", tenant_id="t-share", tokens={})
        for entity, record in ((Entity.DEAL, deal), (Entity.DEAL, plain), (Entity.ACTIVITY, activity),
                               (Entity.DEAL_CONTACT_ROLE, role), (Entity.STAGE_CHANGE, change)):
            records.upsert_records(s, i.id, entity, [record])
        snap = records.load_snapshot(s, i.id, chunk=1)  # one row per fetch: streaming keeps every row
    assert sorted(snap.deals, key=lambda d: d.remote_id) == [deal, plain]
    assert snap.activities == (activity,) and snap.roles == (role,) and snap.stage_changes == (change,)
    loaded = snap.deal_by_id["d7"]
    assert snap.activities[0].deal_ids[0] is loaded.remote_id is snap.roles[0].deal_id is snap.stage_changes[0].deal_id
    assert snap.activities[0].contact_ids[0] is snap.roles[0].contact_id
    assert loaded.custom == {"region": "emea"}
    assert snap.deal_by_id["d8"].custom == {} and snap.deal_by_id["d8"].custom is snap.roles[0].custom  # one shared empty


def test_json_columns_read_what_json_reads_orjson_refuses_included() -> None:
    import json

    from connector.store.db import json_loads

    for raw in ('{"a": [1, 2.5, "é", null, true]}', '{"x": NaN}', '{"big": 123456789012345678901234567890}',
                '{"small": -9223372036854775809}', '{"deep": [{"n": [18446744073709551616]}], "id": "123456789012345678901"}',
                '{"top": 18446744073709551615, "f": 1e300}', '[1, {"a": -1.5e19}]', '12345678901234567890123'):
        got, want = json_loads(raw), json.loads(raw)
        assert repr(got) == repr(want)  # NaN != NaN: compared by its printed form


def _orm_snapshot(session, installation_id: str):  # type: ignore[no-untyped-def]
    """The snapshot as the store loaded it before rows were read through the driver: ORM rows, the JSON column's own
    decoding, each entity in id order (the reference the fast path must equal)."""
    from sqlalchemy import select

    from connector.store.tables import CrmRecord
    from crm_adapters.codec import entity_from_dict, pipeline_from_dict
    from crm_adapters.snapshot import Snapshot

    def payloads(entity: str) -> list[dict]:  # type: ignore[type-arg]
        return list(session.execute(select(CrmRecord.payload).where(
            CrmRecord.installation_id == installation_id, CrmRecord.entity == entity, CrmRecord.deleted.is_(False))).scalars())

    loaded = [r for e in Entity for r in sorted((entity_from_dict(e, p) for p in payloads(str(e))), key=lambda r: r.remote_id)]
    pipelines = sorted((pipeline_from_dict(p) for p in payloads(records.PIPELINE)), key=lambda p: p.remote_id)
    return Snapshot.of(loaded, pipelines)


def test_the_driver_path_loads_the_snapshot_the_orm_loaded_in_id_order(any_store: Store, cipher: TokenCipher) -> None:
    from crm_adapters.sandbox import load_scenario, simulate

    org = simulate(load_scenario(None).scaled(40), seed=3)
    by_entity = {Entity.USER: org.users, Entity.ACCOUNT: org.accounts, Entity.CONTACT: org.contacts, Entity.DEAL: org.deals,
                 Entity.DEAL_CONTACT_ROLE: org.roles, Entity.STAGE_CHANGE: org.stage_changes, Entity.ACTIVITY: org.activities}
    with any_store.session() as s:
        i = inst.upsert(s, cipher, crm="sandbox", tenant_id="t-driver", tokens={})
        records.save_pipelines(s, i.id, org.pipelines)
        for entity, group in by_entity.items():
            records.upsert_records(s, i.id, entity, list(reversed(group)))  # stored out of id order
        records.upsert_records(s, i.id, Entity.DEAL, [a_deal(org.deals[0].remote_id, deleted=True)])
        fast, reference = records.load_snapshot(s, i.id, chunk=7), _orm_snapshot(s, i.id)
    assert fast == reference
    assert len(fast.deals) == len(org.deals) - 1 and len(fast.activities) == len(org.activities) > 0
    assert [d.remote_id for d in fast.deals] == sorted(d.remote_id for d in org.deals[1:])


def test_what_changed_since_a_run_is_found_by_an_index_on_both_databases(any_store: Store) -> None:
    from sqlalchemy import inspect

    from connector.store.tables import CrmRecord

    indexes = {i["name"]: i["column_names"] for i in inspect(any_store.engine).get_indexes("crm_records")}
    assert indexes.get("ix_crm_records_synced") == ["installation_id", "synced_at"]  # the migration made it
    assert {i.name for i in CrmRecord.__table__.indexes} == {"ix_crm_records_synced"}  # and the model declares it


def test_loading_a_snapshot_pauses_the_cyclic_gc_and_gives_it_back_as_it_was(any_store: Store, cipher: TokenCipher) -> None:
    """Building millions of acyclic records, the collector's full passes only cost time (and more, the bigger the
    tenant); it is paused for the load, then left as the caller had it, even when the load fails."""
    import gc

    from crm_adapters.codec import gc_paused

    seen: list[bool] = []
    with any_store.session() as s:
        i = inst.upsert(s, cipher, crm="sandbox", tenant_id="t-gc", tokens={})
        records.upsert_records(s, i.id, Entity.DEAL, [a_deal()])
        real = records.entity_from_dict
        records.entity_from_dict = lambda *a, **k: seen.append(gc.isenabled()) or real(*a, **k)  # type: ignore[assignment]
        try:
            records.load_snapshot(s, i.id)
        finally:
            records.entity_from_dict = real  # type: ignore[assignment]
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        with pytest.raises(RuntimeError), gc_paused():
            raise RuntimeError("a failed load")
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("a failed load")
    assert gc.isenabled()
