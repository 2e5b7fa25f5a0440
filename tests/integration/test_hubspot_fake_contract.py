"""The contract of the fake: every body it serves deserializes through hubspot-api-client's own models.

For each endpoint the adapter uses, the fake's response is fed to the SDK package's
ApiClient.deserialize with the model class that package expects for that status (read from the
generated API's response_types_map), with client-side validation on (required fields), and no
key may be one the model does not know (the SDK would silently drop it).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.hubspot.app import FakeHubSpot

NATIVE = {"str", "int", "float", "bool", "object", "datetime", "date"}
# Keys the 2026-03 OAuth endpoints send that the SDK's v1-era models do not know (documented in research §1.1).
OAUTH_2026_EXTRAS = {"hub_id", "scopes", "token_use", "user_id"}
# HubSpot's real error bodies carry "status": "error" (research §4.9); the SDK's Error model has no such field.
ERROR_EXTRAS = {"status"}


class _Body:
    def __init__(self, text: str) -> None:
        self.data = text


def unknown_keys(data: Any, klass: str, models: Any, where: str = "$") -> list[str]:
    """Paths of keys in `data` that the SDK model `klass` (and its nested models) would drop."""
    if data is None or klass in NATIVE:
        return []
    if m := re.fullmatch(r"list\[(.*)\]", klass):
        return [p for i, item in enumerate(data) for p in unknown_keys(item, m.group(1), models, f"{where}[{i}]")]
    if m := re.fullmatch(r"dict\[([^,]*), (.*)\]", klass):
        return [p for k, v in data.items() for p in unknown_keys(v, m.group(2), models, f"{where}.{k}")]
    cls = getattr(models, klass)
    known = {v: k for k, v in cls.attribute_map.items()}
    out = [f"{where}.{k}" for k in data if k not in known]
    for key, value in data.items():
        if key in known:
            out += unknown_keys(value, cls.openapi_types[known[key]], models, f"{where}.{key}")
    return out


def expect(package: str, api: str, method: str, status: int) -> str:
    """The model name the generated API deserializes `status` into for `method`."""
    src = importlib.import_module(f"{package}.api.{api}").__file__
    text = open(src).read()  # noqa: SIM115 - read the generated code once
    block = text.split(f"    def {method}_with_http_info(")[1].split("return self.api_client.call_api")[0]
    types = dict(re.findall(r'(\d+): "(\w+)"', block.split("response_types_map = {")[1]))
    return types[str(status)]


def check(resp: Any, package: str, model: str, extras: set[str] = frozenset()) -> Any:  # type: ignore[assignment]
    pkg = importlib.import_module(package)
    text = resp.get_data(as_text=True)
    obj = pkg.ApiClient().deserialize(_Body(text), model)  # raises on a missing required field
    allowed = set(extras) | (ERROR_EXTRAS if model == "Error" else set())
    bad = [k for k in unknown_keys(json.loads(text), model, pkg.models) if k.split(".")[-1] not in allowed]
    assert not bad, f"{model}: keys the SDK does not know: {bad[:5]}"
    return obj


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[Any, dict[str, str]]]:
    fake = FakeHubSpot(rate_limit=10_000, search_per_s=10_000)
    p = fake.portal
    p.add_pipeline("default", "Sales", 0, [{"id": "s1", "label": "New", "order": 0, "probability": 0.1, "closed": False}])
    p.add_owner(7, email="o@example.com", first="O", last="W", teams=[("t1", "SDR")])
    company = p.put("companies", {"name": "Acme"}, id=11)
    contact = p.put("contacts", {"firstname": "C"}, id=12)
    deal = p.put("deals", {"dealname": "D", "dealstage": "s1"}, id=13)
    p.update("deals", 13, {"dealstage": "s1", "amount": "5"})
    p.associate("deals", deal.id, "companies", company.id, [("HUBSPOT_DEFINED", 5)])
    label = p.define_label("deals", "contacts", "Champion")
    p.associate("deals", deal.id, "contacts", contact.id, [("USER_DEFINED", label)])
    for otype in ("calls", "emails", "meetings", "notes", "tasks"):
        p.put(otype, {"hs_timestamp": "2026-01-01T00:00:00Z"}, id={"calls": 21, "emails": 22, "meetings": 23,
                                                                     "notes": 24, "tasks": 25}[otype])
    p.archive("calls", 21)
    p.create_group("deals", {"name": "salesloop", "label": "salesloop"})
    grant = fake.oauth.grant_for(p.hub_id)
    token = fake.oauth.issue(grant)["access_token"]
    client = fake.wsgi().test_client()
    yield client, {"Authorization": f"Bearer {token}"}


OBJ = "hubspot.crm.objects"


@pytest.mark.parametrize("otype", ["deals", "companies", "contacts", "calls", "emails", "meetings", "notes", "tasks"])
def test_object_endpoints_deserialize(world: Any, otype: str) -> None:
    client, auth = world
    listed = client.get(f"/crm/v3/objects/{otype}?limit=100&properties=hs_object_id&associations=deals"
                        f"&associations=companies&propertiesWithHistory=hs_object_id", headers=auth)
    page = check(listed, OBJ, expect(OBJ, "basic_api", "get_page", listed.status_code))
    archived = client.get(f"/crm/v3/objects/{otype}?archived=true", headers=auth)
    check(archived, OBJ, expect(OBJ, "basic_api", "get_page", 200))
    found = client.post(f"/crm/v3/objects/{otype}/search", headers=auth, json={
        "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}], "limit": 200})
    check(found, OBJ, expect(OBJ, "search_api", "do_search", found.status_code))
    ids = [{"id": o.id} for o in page.results] + [{"id": "404404"}]
    read = client.post(f"/crm/v3/objects/{otype}/batch/read", headers=auth, json={"inputs": ids, "properties": []})
    assert read.status_code == 207
    check(read, OBJ, expect(OBJ, "batch_api", "read", 207))
    if page.results:
        one = client.get(f"/crm/v3/objects/{otype}/{page.results[0].id}", headers=auth)
        check(one, OBJ, expect(OBJ, "basic_api", "get_by_id", one.status_code))


def test_write_endpoints_deserialize(world: Any) -> None:
    client, auth = world
    created = client.post("/crm/v3/objects/tasks", headers=auth, json={
        "properties": {"hs_timestamp": "2026-01-01T00:00:00Z"},
        "associations": [{"to": {"id": "13"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 216}]}]})
    check(created, OBJ, expect(OBJ, "basic_api", "create", 201))
    batch = client.post("/crm/v3/objects/tasks/batch/create", headers=auth, json={"inputs": [
        {"properties": {"hs_timestamp": "2026-01-01T00:00:00Z"}, "objectWriteTraceId": "k1"}, {"properties": {}}]})
    check(batch, OBJ, expect(OBJ, "batch_api", "create", batch.status_code))
    upd = client.post("/crm/v3/objects/deals/batch/update", headers=auth,
                      json={"inputs": [{"id": "13", "properties": {"amount": "7"}}, {"id": "999", "properties": {}}]})
    check(upd, OBJ, expect(OBJ, "batch_api", "update", upd.status_code))
    patched = client.patch("/crm/v3/objects/deals/13", headers=auth, json={"properties": {"amount": "8"}})
    check(patched, OBJ, expect(OBJ, "basic_api", "update", 200))


def test_association_endpoints_deserialize(world: Any) -> None:
    client, auth = world
    v4 = "hubspot.crm.associations.v4"
    read = client.post("/crm/v4/associations/deals/contacts/batch/read", headers=auth,
                       json={"inputs": [{"id": "13"}, {"id": "11"}]})
    obj = check(read, v4, expect(v4, "batch_api", "get_page", read.status_code))
    assert obj.results[0].to[0].association_types[0].label == "Champion"
    page = client.get("/crm/v4/objects/deals/13/associations/companies", headers=auth)
    check(page, v4, expect(v4, "basic_api", "get_page", 200))
    schema = "hubspot.crm.associations.v4.schema"
    labels = client.get("/crm/v4/associations/deals/contacts/labels", headers=auth)
    check(labels, schema, expect(schema, "definitions_api", "get_all", 200))


def test_properties_pipelines_owners_deserialize(world: Any) -> None:
    client, auth = world
    props = "hubspot.crm.properties"
    body = {"name": "salesloop_risk_level", "label": "Risk", "type": "enumeration", "fieldType": "select",
            "groupName": "salesloop", "options": [{"label": "High", "value": "high"}]}
    check(client.post("/crm/v3/properties/deals", headers=auth, json=body), props, expect(props, "core_api", "create", 201))
    dup = client.post("/crm/v3/properties/deals", headers=auth, json=body)
    assert dup.status_code == 409
    check(dup, props, "Error")
    check(client.get("/crm/v3/properties/deals", headers=auth), props, expect(props, "core_api", "get_all", 200))
    group = client.post("/crm/v3/properties/companies/groups", headers=auth, json={"name": "salesloop", "label": "s"})
    check(group, props, expect(props, "groups_api", "create", 201))
    check(client.get("/crm/v3/properties/companies/groups", headers=auth), props,
          expect(props, "groups_api", "get_all", 200))
    pipes = "hubspot.crm.pipelines"
    check(client.get("/crm/v3/pipelines/deals", headers=auth), pipes, expect(pipes, "pipelines_api", "get_all", 200))
    owners = "hubspot.crm.owners"
    check(client.get("/crm/v3/owners/?limit=100", headers=auth), owners, expect(owners, "owners_api", "get_page", 200))


def test_error_bodies_deserialize(world: Any) -> None:
    client, auth = world
    missing = client.get("/crm/v3/objects/deals/404404", headers=auth)
    assert missing.status_code == 404
    check(missing, OBJ, "Error")
    unauth = client.get("/crm/v3/objects/deals", headers={"Authorization": "Bearer nope"})
    assert unauth.status_code == 401
    check(unauth, OBJ, "Error")
    bad = client.post("/crm/v3/objects/deals/search", headers=auth, json={"limit": 201})
    assert bad.status_code == 400
    check(bad, OBJ, "Error")


def test_rate_limit_body_and_headers() -> None:
    fake = FakeHubSpot(rate_limit=1, window_s=10)
    token = fake.oauth.issue(fake.oauth.grant_for(fake.portal.hub_id))["access_token"]
    client = fake.wsgi().test_client()
    auth = {"Authorization": f"Bearer {token}"}
    first = client.get("/crm/v3/pipelines/deals", headers=auth)
    assert first.headers["X-HubSpot-RateLimit-Max"] == "1" and first.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    limited = client.get("/crm/v3/pipelines/deals", headers=auth)
    assert limited.status_code == 429 and limited.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert json.loads(limited.get_data())["policyName"] == "TEN_SECONDLY_ROLLING"
    check(limited, OBJ, "Error", extras={"errorType", "policyName", "groupName"})


def test_oauth_endpoints_deserialize() -> None:
    fake = FakeHubSpot()
    client = fake.wsgi().test_client()
    code = fake.oauth.authorize(fake.portal.hub_id, "https://x/cb")
    creds = {"client_id": fake.oauth.client_id, "client_secret": fake.oauth.client_secret}
    v1 = client.post("/oauth/v1/token", data={**creds, "grant_type": "authorization_code", "code": code,
                                              "redirect_uri": "https://x/cb"})
    tokens = check(v1, "hubspot.oauth", expect("hubspot.oauth", "tokens_api", "create", 200), extras={"hub_id"})
    info = client.get(f"/oauth/v1/access-tokens/{tokens.access_token}")
    check(info, "hubspot.oauth", expect("hubspot.oauth", "access_tokens_api", "get", 200))
    new = client.post("/oauth/2026-03/token", data={**creds, "grant_type": "refresh_token",
                                                    "refresh_token": tokens.refresh_token})
    check(new, "hubspot.oauth", "TokenResponseIF", extras=OAUTH_2026_EXTRAS)
    # introspect (2026-03) has no model in SDK 12; its fields are a superset of the v1 token-info model's
    info = client.post("/oauth/2026-03/token/introspect", data={**creds, "token": tokens.access_token})
    check(info, "hubspot.oauth", "AccessTokenInfoResponse", extras={"active", "token_use", "client_id"})
    bad = client.post("/oauth/2026-03/token", data={**creds, "grant_type": "refresh_token", "refresh_token": "x"})
    assert bad.status_code == 400 and json.loads(bad.get_data())["status"] == "BAD_REFRESH_TOKEN"
    check(bad, "hubspot.oauth", "Error", extras={"error", "error_description"})


def _walk(client: Any, auth: dict[str, str], url: str, package: str, model: str, *, post: dict[str, Any] | None = None,
          ) -> tuple[list[str], int]:
    """Follow paging.next.after to the end; every page deserializes; (ids in order, pages)."""
    ids: list[str] = []
    after, pages = None, 0
    while True:
        sep = "&" if "?" in url else "?"
        if post is None:
            resp = client.get(url + (f"{sep}after={after}" if after else ""), headers=auth)
        else:
            resp = client.post(url, headers=auth, json={**post, **({"after": after} if after else {})})
        page = check(resp, package, model)
        pages += 1
        ids += [str(getattr(r, "id", None) or getattr(r, "to_object_id", None)) for r in page.results]
        if page.paging is None or page.paging.next is None:
            return ids, pages
        after = page.paging.next.after


def test_every_listing_fills_more_than_a_page_and_pages_through_once() -> None:
    fake = FakeHubSpot(rate_limit=10_000, search_per_s=10_000)
    p = fake.portal
    deals = [p.put("deals", {"dealname": f"d{i}"}, id=5000 + i).id for i in range(230)]
    for oid in deals[:120]:
        p.archive("deals", oid)
    for i in range(1100):
        p.put("contacts", {"firstname": f"c{i}"}, id=20_000 + i)
        p.associate("deals", deals[-1], "contacts", 20_000 + i)
    for i in range(520):
        p.add_owner(100 + i, email=f"o{i}@example.com", first="O", last=str(i))
    fake.index_now()
    token = fake.oauth.issue(fake.oauth.grant_for(p.hub_id))["access_token"]
    client, auth = fake.wsgi().test_client(), {"Authorization": f"Bearer {token}"}
    listing = expect(OBJ, "basic_api", "get_page", 200)
    live, pages = _walk(client, auth, "/crm/v3/objects/deals?limit=100", OBJ, listing)
    assert live == [str(i) for i in deals[120:]] and pages == 2
    gone, pages = _walk(client, auth, "/crm/v3/objects/deals?limit=100&archived=true", OBJ, listing)
    assert gone == [str(i) for i in deals[:120]] and pages == 2
    found, pages = _walk(client, auth, "/crm/v3/objects/contacts/search", OBJ, expect(OBJ, "search_api", "do_search", 200),
                         post={"limit": 200, "properties": ["firstname"]})
    assert len(found) == len(set(found)) == 1100 and pages == 6
    owners = "hubspot.crm.owners"
    people, pages = _walk(client, auth, "/crm/v3/owners/?limit=500", owners, expect(owners, "owners_api", "get_page", 200))
    assert len(set(people)) == 520 and pages == 2
    v4 = "hubspot.crm.associations.v4"
    linked, pages = _walk(client, auth, f"/crm/v4/objects/deals/{deals[-1]}/associations/contacts?limit=500", v4,
                          expect(v4, "basic_api", "get_page", 200))
    assert len(set(linked)) == 1100 and pages == 3
