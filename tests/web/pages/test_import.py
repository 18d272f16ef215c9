"""Import of CSV and XLSX files: upload, mapping, the dry-run preview with each
row's problems and duplicates, fixing rows, the all-or-nothing commit job with its
progress, bad files, and escaping. Both databases; in-process jobs (and rq on
Redis in test_import_with_rq)."""

from __future__ import annotations

import io
import re
import time

import pytest

from cubebase.web.pages import imports

from .conftest import Browser, system_records

HEADER = "Name,Segment,E-mail,Code\n"


@pytest.fixture
def coded(sample):
    """Companies get a unique `code` field (one existing company holds ACME)."""
    with sample.schema_editor() as ed:
        ed.add_field("companies", {"key": "code", "type": "text", "unique": True})
    with system_records(sample) as svc:
        acme = svc.list("companies", where=[], limit=50).records
        acme = next(r for r in acme if r.values["name"] == "Acme")
        svc.update("companies", acme.id, {"code": "ACME"})
    return sample


def upload(b: Browser, data: bytes, name: str = "companies.csv", table="companies", **extra):
    token = b.token(f"/t/{table}/import")
    return b.client.post(
        f"/t/{table}/import",
        data={"csrf_token": token, "file": (io.BytesIO(data), name), **extra},
        content_type="multipart/form-data",
    )


def import_id_of(resp) -> str:
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    m = re.search(r"/imports/([\w-]+)$", resp.headers["Location"])
    assert m, resp.headers["Location"]
    return m.group(1)


def post_step(b: Browser, import_id: str, step: str, data: dict):
    token = b.token(f"/imports/{import_id}")
    return b.client.post(f"/imports/{import_id}/{step}", data={"csrf_token": token, **data})


def wait_done(b: Browser, import_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        html = b.get(f"/imports/{import_id}/progress", headers={"HX-Request": "true"}).get_data(
            as_text=True
        )
        status = re.search(r'data-status="(\w+)"', html).group(1)
        if status in ("done", "failed") or time.monotonic() > deadline:
            return html
        time.sleep(0.05)


def company_names(platform) -> set[str]:
    with system_records(platform) as svc:
        return {r.values["name"] for r in svc.list("companies", limit=500).records}


def test_csv_with_a_bad_row_fixed_then_committed(admin, coded):
    data = (
        HEADER + "Stark,enterprise,tony@stark.example,STARK\n"
        "Wayne,huge,bruce@wayne.example,WAYNE\n"
        "Oscorp,small business,not-an-email,OSC\n"
    ).encode()
    iid = import_id_of(upload(admin, data))
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    # the mapping is guessed from labels and keys, nothing is checked yet
    assert 'name="map.0"' in page and 'value="name" selected' in page
    assert 'value="email" selected' in page and 'value="code" selected' in page
    resp = post_step(
        admin, iid, "map", {"map.0": "name", "map.1": "segment", "map.2": "email", "map.3": "code"}
    )
    assert resp.status_code == 302
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert 'id="problems"' in page and 'id="commit"' not in page
    assert "Rows with problems" in page
    assert 'data-row="3"' in page and 'data-row="4"' in page and 'data-row="2"' not in page
    assert "huge" in page  # the bad value, shown for correction
    # nothing was written by the preview
    assert "Stark" not in company_names(coded)
    # fix row 3's segment, drop row 4
    resp = post_step(admin, iid, "fix", {"cell.1.1": "enterprise", "drop.2": "1"})
    assert resp.status_code == 302
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert 'id="commit"' in page and "All 2 rows can be imported" in page
    resp = post_step(admin, iid, "commit", {})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/progress")
    html = wait_done(admin, iid)
    assert 'id="import-done"' in html and "Imported 2 records" in html
    names = company_names(coded)
    assert {"Stark", "Wayne"} <= names and "Oscorp" not in names
    # the progress page without htmx is a whole page; the step page now leads there
    assert admin.get(f"/imports/{iid}").status_code == 302
    full = admin.get(f"/imports/{iid}/progress").get_data(as_text=True)
    assert "<progress" in full and "<html" in full


def test_duplicates_in_the_file_and_against_existing_records(admin, coded):
    data = (HEADER + "One,,,X1\nTwo,,,X1\nThree,,,ACME\n").encode()
    iid = import_id_of(upload(admin, data))
    post_step(admin, iid, "map", {"map.0": "name", "map.3": "code"})
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert 'id="duplicates"' in page
    dup = page[page.index('id="duplicates"') : page.index('id="problems"')]
    assert "Row 3" in dup and "appears twice in this file" in dup
    assert "Row 4" in dup and "already used by another record" in dup
    assert "Row 2," not in dup


def test_required_and_rule_problems_come_from_the_records_service(admin, sample):
    data = b"Title,Amount,Company\nGood deal,100,Acme\n,50,Acme\nNegative,-5,Nowhere Inc\n"
    iid = import_id_of(upload(admin, data, "deals.csv", table="deals"))
    post_step(admin, iid, "map", {"map.0": "title", "map.1": "amount", "map.2": "company"})
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert "is required" in page  # row 3: no title
    assert "Amount cannot be negative" in page  # the table's validation rule
    assert "no record is named `Nowhere Inc`" in page  # a link by display name
    assert 'data-row="2"' not in page  # "Acme" found by name


def test_xlsx_import(admin, sample):
    from datetime import date

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Title", "Amount", "Close date", "Hot", "Stage"])
    ws.append(["Sheet deal", 1234.5, date(2026, 5, 4), True, "qualified"])
    ws.append(["Sheet deal 2", 10, None, False, "lead"])
    ws.append([None, None, None, None, None])  # blank rows are left out
    buf = io.BytesIO()
    wb.save(buf)
    iid = import_id_of(upload(admin, buf.getvalue(), "deals.xlsx", table="deals"))
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert "2 rows" in page
    post_step(
        admin,
        iid,
        "map",
        {
            "map.0": "title",
            "map.1": "amount",
            "map.2": "close_date",
            "map.3": "hot",
            "map.4": "stage",
        },
    )
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert 'id="commit"' in page, page[page.find('id="preview"') :][:3000]
    post_step(admin, iid, "commit", {})
    assert "Imported 2 records" in wait_done(admin, iid)
    with system_records(sample) as svc:
        recs = svc.list("deals", where=[], sort="-id", limit=2).records
        got = {r.values["title"]: r.values for r in recs}
    assert str(got["Sheet deal"]["amount"]) in ("1234.5", "1234.50")
    assert got["Sheet deal"]["close_date"] == date(2026, 5, 4) and got["Sheet deal"]["hot"] is True


@pytest.mark.parametrize(
    ("data", "name", "encoding", "message"),
    [
        (b"", "x.csv", "utf-8", "The file is empty."),
        (b"   \n\n", "x.csv", "utf-8", "The file is empty."),
        (b"Name,Code\n", "x.csv", "utf-8", "header row but no records"),
        ("Name\nCaf\u00e9\n".encode("cp1252"), "x.csv", "utf-8", "is not UTF-8 text: line 2"),
        (b"%PDF-1.4 binary\x00\x01", "x.pdf", "utf-8", "neither"),
        (b"a,b\x00c\n", "x.csv", "utf-8", "binary data"),
        (b"PK\x03\x04 not really a zip", "x.xlsx", "utf-8", "not an Excel .xlsx file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 old", "x.xls", "utf-8", "old Excel file"),
    ],
)
def test_bad_files_get_clear_errors(admin, sample, data, name, encoding, message):
    resp = upload(admin, data, name, encoding=encoding)
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert 'id="import-error"' in page and message in page.replace("&#39;", "'")


def test_windows_encoding_can_be_chosen(admin, sample):
    data = "Name\nCaf\u00e9 Noir\n".encode("cp1252")
    iid = import_id_of(upload(admin, data, encoding="cp1252"))
    assert "Café Noir" in admin.get(f"/imports/{iid}").get_data(as_text=True)


def test_too_large_files(admin, sample, monkeypatch):
    monkeypatch.setattr(imports, "MAX_FILE_BYTES", 1000)
    resp = upload(admin, b"Name\n" + b"x\n" * 1000)
    assert resp.status_code == 422 and "files up to" in resp.get_data(as_text=True)
    # beyond the request limit (a 50 MB file): refused before it is read
    big = b"Name\n" + b"y" * (50 * 1024 * 1024)
    resp = upload(admin, big)
    assert resp.status_code == 413
    assert "too large" in resp.get_data(as_text=True)


def test_an_import_is_only_its_uploaders(admin, sales, sample):
    iid = import_id_of(upload(admin, b"Name\nZed\n"))
    assert sales.get(f"/imports/{iid}").status_code == 404
    assert sales.get(f"/imports/{iid}/progress").status_code == 404
    assert sales.get("/imports/nope").status_code == 404


def test_commit_is_all_or_nothing(admin, coded):
    """A conflicting record appears after the preview: the job refuses every row."""
    iid = import_id_of(upload(admin, (HEADER + "P,,,P1\nQ,,,Q1\n").encode()))
    post_step(admin, iid, "map", {"map.0": "name", "map.3": "code"})
    assert 'id="commit"' in admin.get(f"/imports/{iid}").get_data(as_text=True)
    with system_records(coded) as svc:
        svc.create("companies", {"name": "Late", "code": "Q1"})
    post_step(admin, iid, "commit", {})
    html = wait_done(admin, iid)
    assert 'id="import-failed"' in html and "nothing was written" in html
    assert "Row 3" in html
    assert "P" not in company_names(coded)
    # back to the preview, which shows the problem; a fix makes it importable again
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert "already used by another record" in page


def test_import_preview_escapes(admin, sample):
    data = b'<script>alert(1)</script>,Segment\n"\\"><img src=x onerror=alert(2)>",enterprise\n'
    iid = import_id_of(upload(admin, data))
    post_step(admin, iid, "map", {"map.0": "name", "map.1": "segment"})
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page


def test_import_with_rq(app, admin, coded, monkeypatch):
    """With Redis: the commit is an rq job run by a worker, progress kept in Redis."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    from cubebase.workflows import jobs
    from tests.conftest import need_redis

    url = need_redis()
    platform = coded
    monkeypatch.setattr(platform.config, "redis_url", url)
    platform.__dict__.pop("cb_import_store", None)
    monkeypatch.setattr(jobs, "_worker_platform", platform)
    iid = import_id_of(upload(admin, (HEADER + "Rq one,,,R1\nRq two,,,R2\n").encode()))
    post_step(admin, iid, "map", {"map.0": "name", "map.3": "code"})
    post_step(admin, iid, "commit", {})
    q = Queue(jobs.queue_name(platform.config.database_url), connection=Redis.from_url(url))
    try:
        html = admin.get(f"/imports/{iid}/progress").get_data(as_text=True)
        assert 'data-status="queued"' in html and "hx-get" in html
        SimpleWorker([q], connection=q.connection).work(burst=True)
        html = wait_done(admin, iid)
        assert "Imported 2 records" in html
        assert {"Rq one", "Rq two"} <= company_names(platform)
    finally:
        q.empty()
        platform.__dict__.pop("cb_import_store", None)
