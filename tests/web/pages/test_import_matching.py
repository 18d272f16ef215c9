"""Import: a user column given by e-mail (a link cell naming a unique value of the
target, not only its display name), and duplicates on fields the uploader ticks
(against earlier rows of the file and the records already in the table), through
the preview and the commit job. Both databases."""

from __future__ import annotations

import pytest

from cubebase.apps.sample import SALES_EMAIL, SALES_PASSWORD
from cubebase.platform.users import find_user_id

from .conftest import Browser, system_records
from .test_import import import_id_of, post_step, upload, wait_done


@pytest.fixture
def owned(sample):
    """Deals get an `owner` user field; companies a phone number (Acme has one)."""
    with sample.schema_editor() as ed:
        ed.add_field("deals", {"key": "owner", "type": "user"})
        ed.add_field("companies", {"key": "phone", "type": "phone"})
    with system_records(sample) as svc:
        acme = next(
            r for r in svc.list("companies", limit=50).records if r.values["name"] == "Acme"
        )
        svc.update("companies", acme.id, {"phone": "+1 555 0100"})
    return sample


def deals(platform) -> dict[str, object]:
    with system_records(platform) as svc:
        return {r.values["title"]: r.values["owner"] for r in svc.list("deals", limit=500).records}


def companies(platform) -> list[tuple[str, str | None]]:
    with system_records(platform) as svc:
        return sorted(
            (r.values["name"], r.values["phone"]) for r in svc.list("companies", limit=500).records
        )


def test_a_user_column_may_give_the_users_email(admin, owned):
    data = (
        b"Title,Owner\nBy e-mail,SALES@example.com\nBy name,Sam Sales\n"
        b"Gone,left.us@example.com\nNobody,\n"
    )
    iid = import_id_of(upload(admin, data, "deals.csv", table="deals"))
    post_step(admin, iid, "map", {"map.0": "title", "map.1": "owner"})
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert 'data-row="4"' in page and 'data-row="2"' not in page and 'data-row="3"' not in page
    assert "no record is named or has the E-mail `left.us@example.com`" in page
    post_step(admin, iid, "fix", {"cell.2.1": "admin@example.com"})
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert "All 4 rows can be imported" in page
    post_step(admin, iid, "commit", {})
    assert "Imported 4 records" in wait_done(admin, iid)
    with owned.session() as s:
        sales = find_user_id(owned, s, SALES_EMAIL)
        boss = find_user_id(owned, s, "admin@example.com")
    got = deals(owned)
    assert got["By e-mail"] == sales and got["By name"] == sales
    assert got["Gone"] == boss and got["Nobody"] is None


def test_an_email_that_is_no_email_still_finds_a_name(admin, owned):
    """Cells that are not e-mail addresses are looked up by name only (no refusal
    of the lookup itself)."""
    data = b"Title,Owner\nOne,not an address\n"
    iid = import_id_of(upload(admin, data, "deals.csv", table="deals"))
    post_step(admin, iid, "map", {"map.0": "title", "map.1": "owner"})
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert "no record is named or has the E-mail `not an address`" in page


HEADER = "Name,Phone,Segment\n"
ROWS = (
    "Stark,555-0199,enterprise\n"  # row 2
    "Acme ,+1 (555) 0100,enterprise\n"  # row 3: Acme is in the table with this phone
    "stark,555 0199,small business\n"  # row 4: the same as row 2 (case, spaces, punctuation)
    "Wayne,,enterprise\n"  # row 5: no phone, never a duplicate
    "Wayne,,mid-market\n"  # row 6
    "Stark,555-0200,enterprise\n"  # row 7: another phone, not a duplicate
)


def test_duplicates_on_the_ticked_fields(admin, owned):
    iid = import_id_of(upload(admin, (HEADER + ROWS).encode()))
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    # the mapping offers the fields to compare; none is ticked at first
    assert 'name="match" value="name"' in page and 'name="match" value="phone"' in page
    assert 'name="match" value="notes"' not in page  # long text is not compared
    assert "checked" not in page[page.index('id="match"') :].split("</fieldset>")[0]
    mapping = {"map.0": "name", "map.1": "phone", "map.2": "segment"}
    post_step(admin, iid, "map", mapping)
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert 'id="duplicates"' not in page and "All 6 rows can be imported" in page
    # tick name and phone (a ticked field that is not mapped is ignored)
    post_step(admin, iid, "map", {**mapping, "match": ["name", "phone", "email"]})
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert 'value="name" checked' in page and 'value="email" checked' not in page
    dup = page[page.index('id="duplicates"') : page.index('id="problems"')]
    assert "Row 3: duplicate: Acme (#" in dup and "already has the same Name and Phone" in dup
    assert "Row 4: duplicate: row 2 has the same Name and Phone" in dup
    assert "Row 2:" not in dup and "Row 5" not in dup and "Row 6" not in dup
    assert "Row 7" not in dup
    assert 'id="commit"' not in page
    # a forced commit writes nothing and lists the duplicates
    before = companies(owned)
    post_step(admin, iid, "commit", {})
    html = wait_done(admin, iid)
    assert 'id="import-failed"' in html and "nothing was written" in html
    assert "Row 3" in html and "Row 4" in html
    assert companies(owned) == before
    # drop them: the rest goes in
    post_step(admin, iid, "fix", {"drop.1": "1", "drop.2": "1"})
    page = admin.get(f"/imports/{iid}").get_data(as_text=True)
    assert "All 4 rows can be imported" in page
    post_step(admin, iid, "commit", {})
    assert "Imported 4 records" in wait_done(admin, iid)
    after = companies(owned)
    assert len(after) == len(before) + 4
    assert ("Stark", "555-0199") in after and ("Stark", "555-0200") in after
    assert ("Acme", "+1 555 0100") in after and ("Acme", "+1 (555) 0100") not in after


def test_a_duplicate_that_appears_after_the_preview_stops_the_commit(admin, owned):
    iid = import_id_of(upload(admin, (HEADER + "Late,555-0300,\nOther,555-0301,\n").encode()))
    post_step(admin, iid, "map", {"map.0": "name", "map.1": "phone", "match": ["name", "phone"]})
    assert 'id="commit"' in admin.get(f"/imports/{iid}").get_data(as_text=True)
    with system_records(owned) as svc:
        svc.create("companies", {"name": "Late", "phone": "555 0300"})
    before = companies(owned)
    post_step(admin, iid, "commit", {})
    html = wait_done(admin, iid)
    assert 'id="import-failed"' in html and "Row 2" in html and "Late (#" in html
    assert companies(owned) == before


def test_duplicates_are_found_only_among_records_the_user_sees(app, platform, owned):
    """A salesperson who may read only small-business companies is not told about
    (nor shown the name of) an enterprise company with the same name and phone."""
    with owned.schema_editor() as ed:
        ed.set_permissions(
            "companies",
            [{"role": "sales", "read": 'segment = "small business"', "create": True}],
        )
    b = Browser(app.test_client())
    assert b.login(SALES_EMAIL, SALES_PASSWORD).status_code == 302
    iid = import_id_of(upload(b, (HEADER + "Acme,+1 555 0100,small business\n").encode()))
    post_step(b, iid, "map", {"map.0": "name", "map.1": "phone", "map.2": "segment",
                              "match": ["name", "phone"]})  # fmt: skip
    page = b.get(f"/imports/{iid}").get_data(as_text=True)
    assert 'id="duplicates"' not in page and "All 1 rows can be imported" in page
