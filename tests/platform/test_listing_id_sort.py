"""A sort by the id: one statement a page (the id is never blank, so no segment of
blank ids, no ``id IS NOT NULL``, no ``ORDER BY id, id``), the same records and cursors
as before, on both databases."""

from __future__ import annotations

import base64
import json

import pytest
import sqlalchemy as sa


def _sent(records, call) -> tuple[object, list[str]]:
    """What ``call()`` returns, and the SELECTs it sent."""
    sent: list[str] = []

    def seen(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append(statement)

    engine = records.platform.engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        return call(), sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)


def _tags(records, n: int) -> list[int]:
    return records.bulk_create("tags", [{"name": f"t{i}"} for i in range(n)])


def _cursor(values: list, signature: str = "id") -> str:
    raw = json.dumps([signature, values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _by_sql(table):  # a filter given as SQL: the list builds its statements itself
    return table.sql.c.id > 0


@pytest.mark.parametrize("where", [None, _by_sql], ids=["template", "built"])
@pytest.mark.parametrize("sort", ["id", "-id"])
def test_an_id_sort_reads_a_page_in_one_statement(records, sort, where):
    ids = _tags(records, 7)
    expected = ids if sort == "id" else ids[::-1]
    table = records.table("tags").sql.name
    records.list("tags", sort=sort, limit=3, where=where)  # warm: the page templates
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page, sent = _sent(
            records,
            lambda c=cursor: records.list("tags", sort=sort, limit=3, cursor=c, where=where),
        )
        pages += 1
        (statement,) = [s for s in sent if table in s]  # the last page too: no blank ids
        assert ".id IS NOT NULL" not in statement and ".id IS NULL" not in statement
        order = statement.upper().split("ORDER BY", 1)[1].split("LIMIT")[0]
        assert order.count(".ID") == 1, statement
        seen += [r.id for r in page.records]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected and pages == 3


def test_iter_records_by_id_sends_one_statement_a_page(records):
    ids = _tags(records, 10)
    table = records.table("tags").sql.name
    got, sent = _sent(records, lambda: list(records.iter_records("tags", sort="id", page_size=4)))
    assert [r.id for r in got] == ids
    assert len([s for s in sent if table in s]) == 3  # 4 + 4 + 2


def test_a_cursor_of_an_id_sort_continues_after_its_id(records):
    ids = _tags(records, 5)
    page = records.list("tags", sort="id", limit=2)
    assert [r.id for r in page.records] == ids[:2]
    after = records.list("tags", sort="id", limit=10, cursor=page.next_cursor)
    assert [r.id for r in after.records] == ids[2:] and after.next_cursor is None
    back = records.list("tags", sort="-id", limit=10, cursor=_cursor([ids[3], ids[3]], "-id"))
    assert [r.id for r in back.records] == ids[2::-1]
    # a tampered cursor whose id is blank: its rows were the blank ids, so none (as before)
    blank = records.list("tags", sort="id", limit=10, cursor=_cursor([None, ids[0]]))
    assert blank.records == [] and blank.next_cursor is None
