"""File fields: upload on the form, download for those who may read the record and
the field (always as an attachment), remove; on both databases."""

from __future__ import annotations

import hashlib
import io
import re

import pytest

from cubebase.platform.listing import Condition

from .conftest import csrf_of, system_records


@pytest.fixture
def contract(sample, platform):
    with platform.schema_editor() as ed:
        ed.add_field("deals", {"key": "contract", "type": "file", "label": "Contract"})
    with system_records(platform) as svc:
        return svc.list("deals", where=Condition("title", "eq", "Globex pilot")).records[0].id


def _post_form(browser, rid, data):
    page = browser.get(f"/t/deals/{rid}/edit").get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    fields = {
        "csrf_token": csrf_of(page),
        "version": version,
        "title": "Globex pilot",
        "stage": "qualified",
        **data,
    }
    return browser.client.post(
        f"/t/deals/{rid}/edit", data=fields, content_type="multipart/form-data"
    )


def test_upload_download_and_remove_a_file(admin, platform, contract):
    body = b"%PDF-1.4 signed contract\n" * 100
    form = admin.get(f"/t/deals/{contract}/edit").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in form and 'type="file"' in form
    r = _post_form(admin, contract, {"contract": (io.BytesIO(body), "../Vertrag <1>.pdf")})
    assert r.status_code == 302, r.get_data(as_text=True)
    with system_records(platform) as svc:
        value = svc.get("deals", contract).values["contract"]
    assert value["key"] == hashlib.sha256(body).hexdigest() and value["size"] == len(body)
    assert value["name"] == "Vertrag _1_.pdf"  # no path, no odd characters
    page = admin.get(f"/t/deals/{contract}").get_data(as_text=True)
    link = f"/t/deals/{contract}/files/contract"
    assert link in page and "Vertrag _1_.pdf" in page
    download = admin.get(link)
    assert download.status_code == 200 and download.data == body
    assert download.headers["Content-Disposition"].startswith("attachment")
    # saving the form again without a new file keeps the file
    assert _post_form(admin, contract, {}).status_code == 302
    with system_records(platform) as svc:
        assert svc.get("deals", contract).values["contract"]["key"] == value["key"]
    assert _post_form(admin, contract, {"contract__clear": "y"}).status_code == 302
    with system_records(platform) as svc:
        assert svc.get("deals", contract).values["contract"] is None
    assert admin.get(link).status_code == 404


def test_a_file_is_only_for_those_who_may_read_its_record_and_field(
    admin, sales, platform, contract
):
    _post_form(admin, contract, {"contract": (io.BytesIO(b"secret"), "terms.txt")})
    link = f"/t/deals/{contract}/files/contract"
    allowed = sales.get(link).status_code
    with platform.schema_editor() as ed:
        ed.set_field_permissions("deals", "contract", [{"role": "sales", "read": "FALSE"}])
    assert sales.get(link).status_code == 404
    assert admin.get(link).status_code == 200
    assert allowed in (200, 404)  # whatever the sample's row rules give the salesperson
    assert admin.get("/t/deals/999999/files/contract").status_code == 404
    assert admin.get(f"/t/deals/{contract}/files/title").status_code == 404
