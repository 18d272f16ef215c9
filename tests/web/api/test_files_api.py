"""File fields through the API: upload (multipart) sets the field through the records
service, download only for readers of the record and the field, always as an
attachment; on both databases."""

from __future__ import annotations

import hashlib
import io

import pytest
from openapi_spec_validator import validate

from tests.web.api.conftest import error_of
from tests.web.api.test_openapi import MAX_EXAMPLES, run_schemathesis

R = "/api/v1/tables"
PDF = b"%PDF-1.4 signed contract\n" * 50


@pytest.fixture
def world(app, client, users):
    """Customers with a file field `logo` and a file field `contract` hidden from
    sales; `badge` readable but not writable by sales. Each salesperson owns a
    customer; deals have a file field `signed` and are closed once won."""
    platform = app.extensions["cubebase"]
    users.role("sales")
    with platform.schema_editor() as editor:
        for key in ("logo", "contract", "badge"):
            editor.add_field("customers", {"key": key, "type": "file", "label": key.title()})
        editor.add_field("deals", {"key": "signed", "type": "file", "label": "Signed"})
        editor.set_permissions(
            "customers",
            [{"role": "sales", "read": "owner = USER()", "update": "owner = USER()"}],
        )
        editor.set_field_permissions("customers", "contract", [{"role": "sales", "read": "FALSE"}])
        editor.set_field_permissions(
            "customers", "badge", [{"role": "sales", "read": "TRUE", "write": "FALSE"}]
        )
        editor.set_permissions("deals", [{"role": "sales", "read": "TRUE", "update": "TRUE"}])
        editor.set_lock("deals", 'stage = "won"')
    ann = users.add("ann@example.com", ["sales"])
    bob = users.add("bob@example.com", ["sales"])
    mine = client.post(f"{R}/customers/records", json={"fields": {"name": "Ann's", "owner": ann}})
    theirs = client.post(f"{R}/customers/records", json={"fields": {"name": "Bob's", "owner": bob}})
    won = client.post(
        f"{R}/deals/records",
        json={"fields": {"customer": mine.get_json()["id"], "amount": "10", "stage": "won"}},
    )
    return {
        "ann": users.client("ann@example.com"),
        "mine": mine.get_json()["id"],
        "theirs": theirs.get_json()["id"],
        "won": won.get_json()["id"],
    }


def upload(c, path: str, body: bytes = PDF, name: str = "contract.pdf", ctype="application/pdf"):
    return c.post(
        path,
        data={"file": (io.BytesIO(body), name, ctype)},
        content_type="multipart/form-data",
    )


def field_of(client, table: str, rid: int, key: str):
    return client.get(f"{R}/{table}/records/{rid}").get_json()["fields"].get(key)


def test_upload_sets_the_field_and_download_gives_the_bytes_back(client, world):
    rid = world["mine"]
    path = f"{R}/customers/records/{rid}/files/logo"
    before = client.get(f"{R}/customers/records/{rid}").get_json()["version"]
    resp = upload(client, path, name="../reports/Q1 <final>.pdf")
    assert resp.status_code == 200, resp.get_json()
    record = resp.get_json()
    assert record["version"] == before + 1
    assert record["fields"]["logo"] == {
        "key": hashlib.sha256(PDF).hexdigest(),
        "name": "Q1 _final_.pdf",  # no directories, no odd characters
        "size": len(PDF),
        "content_type": "application/pdf",
    }
    history = client.get(f"{R}/customers/records/{rid}/history").get_json()["history"]
    assert any(c["field"] == "logo" for h in history for c in h["changes"])

    download = client.get(path)
    assert download.status_code == 200 and download.data == PDF
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "Q1 _final_.pdf" in download.headers["Content-Disposition"]
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]
    etag = download.headers["ETag"]
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304


def test_a_page_is_downloaded_never_shown_and_odd_types_are_not_kept(client, world):
    path = f"{R}/customers/records/{world['mine']}/files/logo"
    page = b"<html><script>alert(1)</script></html>"
    assert upload(client, path, page, "x.html", "text/html; charset=utf-8").status_code == 200
    download = client.get(path)
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Type"].startswith("text/html")
    resp = upload(client, path, b"GIF89a...", "a.gif", "image/gif<script>")
    assert resp.get_json()["fields"]["logo"]["content_type"] == "application/octet-stream"
    assert client.get(path).headers["Content-Type"] == "application/octet-stream"


def test_a_descriptor_sent_in_a_patch_keeps_no_odd_content_type(client, world):
    rid = world["mine"]
    path = f"{R}/customers/records/{rid}/files/logo"
    descriptor = upload(client, path, b"hello").get_json()["fields"]["logo"]
    descriptor["content_type"] = "text/html\r\nSet-Cookie: stolen=1"
    resp = client.patch(f"{R}/customers/records/{rid}", json={"fields": {"logo": descriptor}})
    assert resp.status_code == 200
    assert resp.get_json()["fields"]["logo"]["content_type"] == "application/octet-stream"
    download = client.get(path)
    assert download.status_code == 200 and "Set-Cookie" not in download.headers


def test_remove_empties_the_field_and_download_is_then_404(client, world):
    path = f"{R}/customers/records/{world['mine']}/files/logo"
    upload(client, path)
    resp = client.delete(path)
    assert resp.status_code == 200 and resp.get_json()["fields"]["logo"] is None
    missing = client.get(path)
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"


def test_a_stale_version_is_a_conflict_and_nothing_changes(client, world):
    rid = world["mine"]
    path = f"{R}/customers/records/{rid}/files/logo"
    version = client.get(f"{R}/customers/records/{rid}").get_json()["version"]
    client.patch(f"{R}/customers/records/{rid}", json={"fields": {"name": "Ann & Co"}})
    resp = upload(client, f"{path}?version={version}")
    assert resp.status_code == 409 and error_of(resp)["code"] == "conflict"
    assert field_of(client, "customers", rid, "logo") is None
    assert upload(client, f"{path}?version={version + 1}").status_code == 200
    bad = upload(client, f"{path}?version=soon")
    assert bad.status_code == 400 and error_of(bad)["code"] == "bad_request"


def test_a_salesperson_cannot_upload_to_or_download_from_another_users_customer(client, world):
    ann, theirs, mine = world["ann"], world["theirs"], world["mine"]
    path = f"{R}/customers/records/{theirs}/files/logo"
    upload(client, path)  # the admin puts a file there
    for resp in (upload(ann, path, b"mine now"), ann.get(path), ann.delete(path)):
        assert resp.status_code == 404 and error_of(resp)["code"] == "not_found"
    assert field_of(client, "customers", theirs, "logo")["size"] == len(PDF)
    own = upload(ann, f"{R}/customers/records/{mine}/files/logo", b"ann's logo", "logo.png")
    assert own.status_code == 200 and own.get_json()["fields"]["logo"]["name"] == "logo.png"
    assert ann.get(f"{R}/customers/records/{mine}/files/logo").data == b"ann's logo"


def test_a_hidden_file_field_is_404_and_a_read_only_one_is_refused(client, world):
    ann, mine = world["ann"], world["mine"]
    hidden = f"{R}/customers/records/{mine}/files/contract"
    upload(client, hidden)
    for resp in (ann.get(hidden), upload(ann, hidden), ann.delete(hidden)):
        assert resp.status_code == 404 and error_of(resp)["code"] == "not_found"
    assert client.get(hidden).data == PDF  # the admin still has it
    read_only = upload(ann, f"{R}/customers/records/{mine}/files/badge")
    assert read_only.status_code == 403 and error_of(read_only)["code"] == "forbidden"
    assert field_of(client, "customers", mine, "badge") is None


def test_a_closed_record_refuses_the_upload(client, world):
    path = f"{R}/deals/records/{world['won']}/files/signed"
    for c in (world["ann"], client):
        resp = upload(c, path)
        assert resp.status_code == 409 and error_of(resp)["code"] == "locked"
    assert field_of(client, "deals", world["won"], "signed") is None


def test_a_file_too_large_is_413_and_nothing_changes(app, client, world):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    path = f"{R}/customers/records/{world['mine']}/files/logo"
    resp = upload(client, path, b"x" * 10_000)
    assert resp.status_code == 413
    err = error_of(resp)
    assert err["code"] == "too_large" and "too large" in err["message"]
    assert field_of(client, "customers", world["mine"], "logo") is None


def test_wrong_field_type_unknown_field_and_wrong_bodies(client, world):
    base = f"{R}/customers/records/{world['mine']}/files"
    wrong = upload(client, f"{base}/name")
    assert wrong.status_code == 422
    err = error_of(wrong)
    assert err["code"] == "validation_failed" and err["details"][0]["field"] == "name"
    assert "not a file field" in err["details"][0]["message"]
    assert client.get(f"{base}/name").status_code == 404
    assert upload(client, f"{base}/nope").status_code == 404
    assert upload(client, f"{R}/customers/records/999999/files/logo").status_code == 404
    as_json = client.post(f"{base}/logo", json={"file": "aGVsbG8="})
    assert as_json.status_code == 415 and error_of(as_json)["code"] == "unsupported_media_type"
    no_part = client.post(f"{base}/logo", data={"other": "x"}, content_type="multipart/form-data")
    assert no_part.status_code == 400 and "`file`" in error_of(no_part)["message"]
    assert field_of(client, "customers", world["mine"], "name") == "Ann's"


def test_the_document_lists_the_file_endpoints_the_caller_may_use(client, world):
    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)
    path = "/tables/customers/records/{id}/files/{field}"
    ops = doc["paths"][path]
    assert set(ops) == {"get", "post", "delete"}
    field = next(p for p in ops["post"]["parameters"] if p["name"] == "field")
    assert field["schema"]["enum"] == ["logo", "contract", "badge"]
    assert "multipart/form-data" in ops["post"]["requestBody"]["content"]
    assert "/tables/regions/records/{id}/files/{field}" not in doc["paths"]
    sales_doc = world["ann"].get("/api/v1/openapi.json").get_json()
    field = next(p for p in sales_doc["paths"][path]["get"]["parameters"] if p["name"] == "field")
    assert field["schema"]["enum"] == ["logo", "badge"]  # `contract` is hidden from sales


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_on_the_file_endpoints(app, token, client, world, mode):
    """Generated uploads, downloads and removals: no 5xx, and every response
    conforms to the document."""
    run_schemathesis(app, token, mode, MAX_EXAMPLES * 2, lambda op: "/files/" in op.path, 2)


class _WatchedBody(io.BytesIO):
    """A request body that, when the server starts reading it, checks whether
    another connection could take SQLite's write lock at that moment."""

    def __init__(self, data: bytes, platform):
        super().__init__(data)
        self.platform = platform
        self.free: bool | None = None

    def _check(self) -> None:
        if self.free is None:
            raw = self.platform.engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA busy_timeout=100")
                raw.driver_connection.execute("BEGIN IMMEDIATE")
                raw.driver_connection.execute("ROLLBACK")
                self.free = True
            except Exception:  # "database is locked"
                self.free = False
            finally:
                raw.close()

    def read(self, size: int | None = -1) -> bytes:
        self._check()
        return super().read(size)

    def read1(self, size: int = -1) -> bytes:
        self._check()
        return super().read1(size)

    def readinto(self, buffer) -> int:
        self._check()
        return super().readinto(buffer)

    def readline(self, size: int | None = -1) -> bytes:
        self._check()
        return super().readline(size)


def test_other_writers_do_not_wait_while_an_upload_arrives(app, client, world):
    platform = app.extensions["cubebase"]
    if platform.dialect != "sqlite":
        pytest.skip("the write lock taken at BEGIN is SQLite's")
    boundary = "cubebase-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + PDF
        + f"\r\n--{boundary}--\r\n".encode()
    )
    stream = _WatchedBody(body, platform)
    resp = client.post(
        f"{R}/customers/records/{world['mine']}/files/logo",
        input_stream=stream,
        content_type=f"multipart/form-data; boundary={boundary}",
        content_length=len(body),
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["fields"]["logo"]["size"] == len(PDF)
    assert stream.free is True
