"""The org's static records: users (managers, SDRs, BDMs), accounts, contacts and the pipeline."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from crm_adapters.model import Account, Contact, Pipeline, Stage, User, UserRole
from crm_adapters.sandbox import _vocab as V
from crm_adapters.sandbox._build import Directory
from crm_adapters.sandbox._draw import Population
from crm_adapters.sandbox._plans import SANDBOX
from crm_adapters.sandbox.scenario import Scenario

FIRST = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn", "Dana", "Robin",
         "Chris", "Pat", "Lee", "Noa", "Maya", "Omar", "Lena", "Ivan", "Priya", "Kenji", "Sofia", "Marco", "Aisha",
         "Tom", "Eva", "Lucas", "Nina", "Raj", "Hana", "Felix", "Zoe", "Mateo", "Ines", "Yusuf")  # fmt: skip
LAST = ("Smith", "Garcia", "Müller", "Martin", "Rossi", "Nowak", "Dubois", "Kim", "Patel", "Silva", "Jensen",
        "Brown", "Ali", "Novak", "Costa", "Larsen", "Schmidt", "Moreau", "Khan", "Sato", "Lopez", "Weber")  # fmt: skip
PREFIX = ("North", "Blue", "Bright", "Iron", "Silver", "Green", "Rapid", "Clear", "Summit", "Harbor", "Vertex",
          "Nova", "Apex", "Cedar", "Pioneer", "Atlas", "Lumen", "Orbit", "Crest", "Delta")  # fmt: skip
SUFFIX = (
    "wind",
    "field",
    "stone",
    "bridge",
    "point",
    "works",
    "labs",
    "path",
    "gate",
    "line",
    "dale",
    "view",
)
KIND = (
    "Analytics",
    "Systems",
    "Group",
    "Health",
    "Logistics",
    "Partners",
    "Bank",
    "Retail",
    "Industries",
    "Academy",
)
TITLES = ("VP Operations", "CFO", "Head of Finance", "Sales Ops Manager", "IT Director", "COO", "Head of RevOps",
          "Controller", "Operations Lead", "CTO", "Compliance Officer", "Head of People")  # fmt: skip


def pipeline() -> Pipeline:
    stages = tuple(Stage(id=sid, label=label, order=i + 1, probability=p, is_closed=closed, is_won=won)
                   for i, (sid, label, p, closed, won) in enumerate(V.STAGES))  # fmt: skip
    return Pipeline(crm=SANDBOX, remote_id=V.PIPELINE_ID, label="Sales", order=0, stages=stages,
                    remote_updated_at=None)  # fmt: skip


def _name(rnd: random.Random) -> tuple[str, str]:
    return rnd.choice(FIRST), rnd.choice(LAST)


def people(sc: Scenario, pop: Population, rnd: random.Random, start: datetime) -> tuple[
        list[User], list[Account], list[Contact], Directory]:  # fmt: skip
    """Users, accounts and contacts as they stand before the first simulated week."""
    t0 = start - timedelta(days=30)
    users: list[User] = []
    names: dict[str, str] = {}
    managers = [str(i + 1) for i in range(sc.managers)]
    for uid in managers:
        first, last = _name(rnd)
        names[uid] = f"{first} {last}"
        users.append(User(crm=SANDBOX, remote_id=uid, remote_updated_at=t0, name=names[uid], role=UserRole.MANAGER,
                          role_raw="Sales Manager", email=f"{first}.{last}{uid}@example.com".lower(), team="Sales"))  # fmt: skip
    sdr_ids, bdm_ids = [], []
    for k in range(sc.sdrs + sc.bdms):
        uid = str(len(users) + 1)
        is_sdr = k < sc.sdrs
        first, last = _name(rnd)
        names[uid] = f"{first} {last}"
        arm = ("treatment" if pop.sdr_arm[k] else "control") if is_sdr else None
        users.append(User(crm=SANDBOX, remote_id=uid, remote_updated_at=t0, name=names[uid],
                          role=UserRole.SDR if is_sdr else UserRole.BDM, role_raw="SDR" if is_sdr else "Account Executive",
                          email=f"{first}.{last}{uid}@example.com".lower(), manager_id=managers[k % len(managers)],
                          team="SDR" if is_sdr else "BDM", custom={"playbook_arm": arm} if arm else {}))  # fmt: skip
        (sdr_ids if is_sdr else bdm_ids).append(uid)
    accounts, account_names = [], []
    for a in range(sc.accounts):
        label = f"{rnd.choice(PREFIX)}{rnd.choice(SUFFIX)} {rnd.choice(KIND)}"
        account_names.append(label)
        accounts.append(Account(crm=SANDBOX, remote_id=str(a + 1), remote_updated_at=t0, name=label,
                                industry=str(pop.industry[a]), employees=int(pop.employees[a]),
                                annual_revenue=Decimal(int(pop.revenue[a])), country=str(pop.country[a]),
                                owner_id=rnd.choice(bdm_ids)))  # fmt: skip
    contacts, contact_ids, contact_first = [], [], []
    for a in range(sc.accounts):
        domain = account_names[a].split()[0].lower()
        for _ in range(int(pop.contact_count[a])):
            cid = str(len(contacts) + 1)
            first, last = _name(rnd)
            contacts.append(Contact(crm=SANDBOX, remote_id=cid, remote_updated_at=t0, account_id=str(a + 1),
                                    first_name=first, last_name=last, email=f"{first}.{last}{cid}@{domain}.com".lower(),
                                    title=rnd.choice(TITLES)))  # fmt: skip
            contact_ids.append(cid)
            contact_first.append(first)
    directory = Directory(sdr_ids, bdm_ids, names, [a.remote_id for a in accounts], account_names, contact_ids,
                          contact_first, np.asarray(pop.contact_start), np.asarray(pop.contact_count))  # fmt: skip
    return users, accounts, contacts, directory
