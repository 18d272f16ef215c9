"""crm.md problem 15, played as the admin through the import pages: the shipped
samples (cubebase/apps/crm/samples/legacy_customers.csv and .xlsx) are uploaded,
the preview shows each bad row and the duplicates, a commit with bad rows left
writes nothing, the rows are fixed or dropped on the page, and the commit creates
exactly the expected customers with the right account managers. Both databases.

The samples name the demo company's salespeople (sales.north1@crm.example ...)
and one of its customers; the fixed test company gets those people and that
customer first (``legacy``)."""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import secrets
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from itsdangerous import URLSafeTimedSerializer

import cubebase.apps.crm
from cubebase.platform.actor import Actor
from cubebase.platform.records import RecordsService
from cubebase.platform.users import create_user, find_user_id
from cubebase.web.pages import imports
from cubebase.web.pages.imports import read_file

SAMPLES = Path(cubebase.apps.crm.__file__).parent / "samples"
CSV = SAMPLES / "legacy_customers.csv"
XLSX = SAMPLES / "legacy_customers.xlsx"
SALESPEOPLE = [f"sales.{r}{i}@crm.example" for r in ("north", "east", "south") for i in range(1, 7)]
EXISTING = {"name": "Orient Foods Co. (Beijing 3)", "phone": "+86 15 9953 5399"}
NEW_REGIONS = [("Hangzhou", "East"), ("South", None), ("Guangzhou", "South"),
               ("Shenzhen", "South")]  # fmt: skip
# the sample's columns, in its order, and the fields they go to
COLUMNS = ["name", "stage", "category", "industry", "phone", "fax", "contact_person", "email",
           "postcode", "mailing_address", "region", "account_manager", "customer_since", ""]  # fmt: skip
SALESPERSON, REMARKS = 11, 13
# the sample's bad rows (line in the file: what the preview must say)
BAD = {
    7: ("Name", "is required"),
    16: ("Email", "`zhang.min at jinqiao-media.cn` is not an e-mail address"),
    24: ("Stage", "`VIP` is not one of the options"),
    33: ("Account manager", "no record is named or has the E-mail `liu.gang@crm.example`"),
    42: ("Customer since", "`2019-02-30` is not a date"),
    54: ("", "A customer needs a category, a fax number, a postcode and a mailing address"),
    65: ("", "duplicate: row 13 has the same Name and Phone"),
    72: ("", "duplicate: Orient Foods Co. (Beijing 3) (#"),
}
# the admin's corrections on the page: (line, column) -> text; and the rows dropped
FIXES = {
    (16, 7): "zhang.min@jinqiao-media.cn",
    (24, 1): "customer",
    (33, SALESPERSON): "sales.east2@crm.example",
    (42, 12): "2019-02-28",
    (54, 5): "021-6288 3457",
}
DROPPED = [7, 65, 72]  # no name; two duplicates


@pytest.fixture
def legacy(co):
    """The part of the demo company the samples refer to."""
    p = co.platform
    with p.session(write=True) as s, s.begin():
        records = p.records(s, Actor.system_actor())
        region = {r.values["name"]: r.id for r in records.list("regions", limit=100).records}
        for name, parent in NEW_REGIONS:
            region[name] = records.create(
                "regions", {"name": name, "parent": region.get(parent)}
            ).id
        for address in SALESPEOPLE:
            uid = create_user(p, s, address, name=address.split("@")[0], roles=["salesperson"])
            top = address.split("@")[0].split(".")[1].rstrip("0123456789").title()
            records.update("users", uid, {"region": region[top]})
        owner = find_user_id(p, s, "ann@crm.test")
        records.create(
            "customers",
            {**EXISTING, "stage": "lead", "region": region["Beijing"], "account_manager": owner},
        )
    return co


class Admin:
    """The admin in a browser: a signed-in session, forms posted with its CSRF token."""

    def __init__(self, co):
        self.client = co.app.test_client()
        raw = secrets.token_hex(20)
        with co.platform.session() as s:
            uid = find_user_id(co.platform, s, "admin@example.com")
        with self.client.session_transaction() as sess:
            sess["user_id"] = uid
            sess["csrf_token"] = raw
        self.csrf = URLSafeTimedSerializer(co.app.secret_key, salt="wtf-csrf-token").dumps(raw)

    def page(self, url: str) -> str:
        resp = self.client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
        return resp.get_data(as_text=True)

    def upload(self, path: Path) -> str:
        resp = self.client.post(
            "/t/customers/import",
            data={"csrf_token": self.csrf, "file": (io.BytesIO(path.read_bytes()), path.name)},
            content_type="multipart/form-data",
        )
        assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
        return re.search(r"/imports/([\w-]+)$", resp.headers["Location"]).group(1)

    def step(self, import_id: str, step: str, data: dict) -> None:
        resp = self.client.post(
            f"/imports/{import_id}/{step}", data={"csrf_token": self.csrf, **data}
        )
        assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]

    def commit(self, import_id: str) -> str:
        """Press "Import", then watch the progress until the job is done or failed."""
        self.step(import_id, "commit", {})
        deadline = time.monotonic() + 60
        while True:
            html = self.client.get(
                f"/imports/{import_id}/progress", headers={"HX-Request": "true"}
            ).get_data(as_text=True)
            status = re.search(r'data-status="(\w+)"', html).group(1)
            if status in ("done", "failed") or time.monotonic() > deadline:
                return html
            time.sleep(0.05)


def sample_rows() -> list[list[str]]:
    """The CSV's rows as [line, cell, ...] (as the import reads them)."""
    return read_file(CSV.name, CSV.read_bytes())[1]


def customers(co) -> dict[tuple[str, str | None], dict]:
    """Every customer by name and phone (two companies of the sample share a name)."""
    return {(r["fields"]["name"], r["fields"]["phone"]): r for r in co.all("admin", "customers")}


def mapping(match: bool = True) -> dict:
    data = {f"map.{i}": key for i, key in enumerate(COLUMNS)}
    if match:
        data["match"] = ["name", "phone"]
    return data


def problem_rows(html: str) -> dict[int, str]:
    """Line -> the text of its problems, from the preview's rows with problems."""
    out = {}
    for m in re.finditer(r'<tr class="bad" data-row="(\d+)">(.*?)</tr>', html, re.S):
        out[int(m.group(1))] = re.sub(r"<[^>]+>", " ", m.group(2))
    return out


def expected(rows: list[list[str]], co) -> dict[tuple[str, str | None], dict]:
    """What the admin expects to find per customer (name, phone) after the import."""
    region = {r["fields"]["name"]: r["id"] for r in co.all("admin", "regions")}
    out = {}
    for row in rows:
        cells = dict(zip(COLUMNS, row[1:], strict=True))
        owner = cells["account_manager"]
        with co.platform.session() as s:
            uid = find_user_id(co.platform, s, owner) if owner else None
        out[(cells["name"], cells["phone"] or None)] = {
            "stage": cells["stage"],
            "account_manager": uid,
            "region": region[cells["region"]],
            "phone": cells["phone"] or None,
            "customer_since": cells["customer_since"] or None,
        }
    return out


def check_imported(co, before: dict[tuple, dict], rows: list[list[str]]) -> None:
    after = customers(co)
    want = expected(rows, co)
    assert set(after) == set(before) | set(want)
    assert len(after) == len(before) + len(rows)
    for key, values in want.items():
        got = after[key]["fields"]
        assert {k: got[k] for k in values} == values, key
    # nothing else changed: the customers that were there are as they were
    for key, rec in before.items():
        assert after[key] == rec


def test_import_the_legacy_csv_fixing_its_rows_on_the_page(legacy):
    co, admin = legacy, Admin(legacy)
    before = customers(co)
    rows = sample_rows()
    assert len(rows) == 84
    iid = admin.upload(CSV)
    page = admin.page(f"/imports/{iid}")
    # the columns named like fields are mapped; the old salesperson column is not
    for key in ("name", "stage", "phone", "fax", "contact_person", "postcode", "customer_since"):
        assert f'value="{key}" selected' in page
    assert 'value="account_manager" selected' not in page
    admin.step(iid, "map", mapping())
    page = admin.page(f"/imports/{iid}")
    # the preview: each bad row with what is wrong, the duplicates, no commit button
    assert 'id="commit"' not in page
    found = problem_rows(page)
    assert sorted(found) == sorted(BAD)
    for line, (label, message) in BAD.items():
        assert message in found[line], (line, found[line])
        assert label in found[line]
    dup = page[page.index('id="duplicates"') : page.index('id="problems"')]
    assert "Row 65:" in dup and "Row 72:" in dup and dup.count("<li>") == 2
    assert customers(co) == before  # the preview wrote nothing
    # importing anyway writes nothing and says which rows were refused
    html = admin.commit(iid)
    assert 'id="import-failed"' in html and "nothing was written" in html
    assert "Row 7" in html and "Row 72" in html
    assert customers(co) == before
    # back on the preview: correct five cells, drop three rows
    admin.page(f"/imports/{iid}")
    fixes = {f"cell.{line - 2}.{col}": text for (line, col), text in FIXES.items()}
    admin.step(iid, "fix", {**fixes, **{f"drop.{line - 2}": "1" for line in DROPPED}})
    page = admin.page(f"/imports/{iid}")
    assert "All 81 rows can be imported" in page and 'id="commit"' in page
    html = admin.commit(iid)
    assert 'id="import-done"' in html and "Imported 81 records" in html
    fixed = []
    for row in rows:
        line = int(row[0])
        if line in DROPPED:
            continue
        row = list(row)
        for (at, col), text in FIXES.items():
            if at == line:
                row[col + 1] = text
        fixed.append(row)
    check_imported(co, before, fixed)
    after = {key[0]: rec for key, rec in customers(co).items()}
    assert after["Phoenix Appliances Group"]["fields"]["stage"] == "customer"
    assert after["Skyline Machinery Co."]["fields"]["customer_since"] == "2019-02-28"
    # the same name with another phone number is another company, not a duplicate
    same = [k for k in customers(co) if k[0] == "杭州同创软件有限公司"]
    assert sorted(same) == [
        ("杭州同创软件有限公司", "0571-8816 2233"),
        ("杭州同创软件有限公司", "18302402040"),
    ]
    # the new customer's history says the admin created it
    cid = customers(co)[("杭州同创软件有限公司", "0571-8816 2233")]["id"]
    history = co.admin.get(f"/api/v1/tables/customers/records/{cid}/history").get_json()
    by = history["history"][-1]["by"]
    with co.platform.session() as s:
        assert (by.get("id") if isinstance(by, dict) else by) == find_user_id(
            co.platform, s, "admin@example.com"
        )


def test_import_the_legacy_xlsx_dropping_its_bad_rows(legacy):
    co, admin = legacy, Admin(legacy)
    before = customers(co)
    iid = admin.upload(XLSX)
    admin.step(iid, "map", mapping())
    page = admin.page(f"/imports/{iid}")
    # the same rows are bad in the spreadsheet (mobile numbers stored as numbers are fine)
    assert sorted(problem_rows(page)) == sorted(BAD)
    admin.step(iid, "fix", {f"drop.{line - 2}": "1" for line in BAD})
    page = admin.page(f"/imports/{iid}")
    assert "All 76 rows can be imported" in page
    html = admin.commit(iid)
    assert "Imported 76 records" in html
    kept = [row for row in sample_rows() if int(row[0]) not in BAD]
    check_imported(co, before, kept)
    mobile = next(r for r in kept if r[5].isdigit())
    assert (mobile[1], mobile[5]) in customers(co)


def test_a_rule_broken_in_a_late_chunk_commits_nothing(legacy, monkeypatch):
    """Ten rows per transaction step: the customer without a fax (line 54, the
    48th row left) is in the fifth chunk; the forty rows before it, already
    written in the import's transaction, are rolled back with it."""
    job = sys.modules[imports.run_import.__module__]  # the module whose loop reads it
    monkeypatch.setattr(job, "COMMIT_CHUNK", 10)
    co, admin = legacy, Admin(legacy)
    before = customers(co)
    iid = admin.upload(CSV)
    admin.step(iid, "map", mapping())
    drop = [line for line in BAD if line != 54]
    admin.step(iid, "fix", {f"drop.{line - 2}": "1" for line in drop})
    page = admin.page(f"/imports/{iid}")
    assert sorted(problem_rows(page)) == [54]
    chunks: list[int] = []
    bulk_create = RecordsService.bulk_create

    def counted(self, table_key, rows):
        chunks.append(len(rows))
        return bulk_create(self, table_key, rows)

    monkeypatch.setattr(RecordsService, "bulk_create", counted)
    html = admin.commit(iid)
    assert chunks == [10, 10, 10, 10, 10]  # four went in, the fifth was refused
    assert 'id="import-failed"' in html and "nothing was written" in html
    assert "Row 54" in html and "needs a category, a fax number" in html
    assert customers(co) == before


def test_without_the_duplicate_check_only_the_file_itself_decides(legacy):
    """Not ticking name and phone: the two duplicates are ordinary rows (the
    uploader's choice), the six bad rows remain."""
    admin = Admin(legacy)
    iid = admin.upload(CSV)
    admin.step(iid, "map", mapping(match=False))
    page = admin.page(f"/imports/{iid}")
    assert sorted(problem_rows(page)) == sorted(set(BAD) - {65, 72})
    assert 'id="duplicates"' not in page


def test_the_xlsx_is_the_csv_as_a_spreadsheet(tmp_path):
    """The shipped .xlsx reads back as the CSV's rows, and make_xlsx.py rebuilds it."""
    header, rows = read_file(CSV.name, CSV.read_bytes())
    assert read_file(XLSX.name, XLSX.read_bytes()) == (header, rows)
    spec = importlib.util.spec_from_file_location("make_xlsx", SAMPLES / "make_xlsx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build(CSV, tmp_path / "again.xlsx")
    assert read_file(built.name, built.read_bytes()) == (header, rows)
    from openpyxl import load_workbook

    ws = load_workbook(built).active
    since = [c.value for c in ws["M"][1:] if c.value]
    assert any(isinstance(v, date) for v in since) and "2019-02-30" in since
    assert len(list(csv.reader(io.StringIO(CSV.read_text("utf-8-sig"))))) == 85
