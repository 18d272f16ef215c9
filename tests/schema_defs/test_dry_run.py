"""A dry run applies, measures on the live data and rolls back; its counts are what the
apply then does."""

from __future__ import annotations

import shutil

from cubebase.platform.actor import Actor
from cubebase.platform.records import FormulaFilter
from cubebase.platform.users import create_user, load_actor
from cubebase.schema_defs import apply_app, load_app

from .conftest import SALES, snapshot


def setup_sales(platform, tmp_path):
    folder = tmp_path / "sales"
    shutil.copytree(SALES, folder)
    apply_app(platform, load_app(folder))
    with platform.session(write=True) as s, s.begin():
        li = create_user(platform, s, "li.wei@example.com", roles=["salesperson"])
        bo = create_user(platform, s, "bo@example.com", roles=["salesperson"])
        service = platform.records(s, Actor.system_actor())
        for i in range(12):
            owner = li if i % 3 else bo
            service.create(
                "customers",
                {
                    "name": f"c{i}",
                    "phone": "12345678" if i % 4 else "123",
                    "stage": "lost" if i % 5 == 0 else "customer",
                    "account_manager": owner,
                    "email": f"c{i}@example.com" if i % 2 else None,
                },
            )
    return folder, li, bo


def change(folder, old: str, new: str, file: str = "customers.yaml") -> None:
    path = folder / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def readable(platform, user_id: int) -> int:
    with platform.session() as s:
        actor = load_actor(platform, s, user_id)
        return platform.records(s, actor).count("customers")


def test_dry_run_counts_equal_what_apply_does(platform, tmp_path):
    folder, li, bo = setup_sales(platform, tmp_path)
    change(
        folder,
        "validations:\n",
        "validations:\n  - {rule: 'LEN(phone) >= 7', message: 'A phone number has at least 7 digits'}\n",
    )
    change(
        folder,
        "read: 'account_manager = USER()', update",
        "read: 'account_manager = USER() AND stage != \"lost\"', update",
    )
    change(
        folder,
        "{key: email, type: email, unique: true}",
        "{key: email, type: email, unique: true, required: true}",
    )
    before = snapshot(platform)
    li_before, bo_before = readable(platform, li), readable(platform, bo)
    assert (li_before, bo_before) == (8, 4)

    result = apply_app(platform, load_app(folder), dry_run=True)
    assert not result.applied
    assert snapshot(platform) == before
    assert sorted(result.report) == sorted(
        [
            "3 customers would fail the new rule `LEN(phone) >= 7` (A phone number has at least 7 digits)",
            "6 customers have no `email`, which becomes required (they are kept; the next change to "
            "each will ask for it)",
            "user li.wei@example.com would lose read access to 2 customers",
            "user bo@example.com would lose read access to 1 customer",
        ]
    )
    text = result.describe()
    assert "On the live data:" in text and "would fail the new rule" in text

    apply_app(platform, load_app(folder))
    with platform.session() as s:
        service = platform.records(s, Actor.system_actor())
        failing = service.count("customers") - service.count(
            "customers", where=FormulaFilter("LEN(phone) >= 7")
        )
        blank = service.count("customers", where=FormulaFilter("ISBLANK(email)"))
    assert failing == result.counts[("fail", "customers", "LEN(phone) >= 7")] == 3
    assert blank == result.counts[("blank", "customers", "email")] == 6
    assert (
        li_before - readable(platform, li)
        == result.counts[("read", "li.wei@example.com", "customers")][0]
        == 2
    )
    assert (
        bo_before - readable(platform, bo)
        == result.counts[("read", "bo@example.com", "customers")][0]
        == 1
    )


def test_dry_run_reports_losses_without_refusing(platform, tmp_path):
    folder, _, _ = setup_sales(platform, tmp_path)
    change(folder, "  - {key: email, type: email, unique: true}\n", "")
    before = snapshot(platform)
    result = apply_app(platform, load_app(folder), dry_run=True)
    assert result.report[0] == "Delete field `customers.email` (email): 6 values would be lost"
    assert snapshot(platform) == before
    permissions = apply_app(platform, load_app(folder), dry_run=True, confirm_data_loss=True)
    assert permissions.report == result.report
