"""`indexed: true` gives a field an index an admin can add and remove online."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cubebase.platform.errors import BadRequest


def _indexes(platform, table_key: str) -> set[str]:
    with platform.session() as session:
        name = platform.schema(session).table(table_key).sql.name
    return {ix["name"] for ix in sa.inspect(platform.engine).get_indexes(name)}


def _field_id(platform, table_key: str, key: str) -> int:
    with platform.session() as session:
        return platform.schema(session).table(table_key).field(key).id


def test_an_indexed_field_gets_an_index_and_loses_it_again(crm, admin):
    with crm.schema_editor() as ed:
        ed.add_field("deals", {"key": "score", "type": "integer", "indexed": True})
    fid = _field_id(crm, "deals", "score")
    assert any(name.endswith(f"_f{fid}") for name in _indexes(crm, "deals"))
    with crm.schema_editor() as ed:
        ed.update_field("deals", "score", config={"indexed": False})
    assert not any(name.endswith(f"_f{fid}") for name in _indexes(crm, "deals"))
    with crm.schema_editor() as ed:
        ed.update_field("deals", "amount", config={"indexed": True})
    amount = _field_id(crm, "deals", "amount")
    assert any(name.endswith(f"_f{amount}") for name in _indexes(crm, "deals"))
    with crm.session() as session:
        records = crm.records(session, admin)
        customer = records.create("customers", {"name": "Acme"})
        records.create("deals", {"customer": customer.id, "amount": 5})
        assert records.list("deals", sort="-amount").records[0].values["amount"] == 5


def test_unique_then_not_unique_keeps_the_plain_index(crm):
    with crm.schema_editor() as ed:
        ed.add_field("customers", {"key": "code", "type": "text", "indexed": True})
        ed.update_field("customers", "code", unique=True)
        ed.update_field("customers", "code", unique=False)
    fid = _field_id(crm, "customers", "code")
    names = _indexes(crm, "customers")
    assert f"ix_t{crm_table_id(crm, 'customers')}_f{fid}" in names


def crm_table_id(platform, key: str) -> int:
    with platform.session() as session:
        return platform.schema(session).table(key).id


def test_json_fields_cannot_be_indexed(crm):
    with pytest.raises(BadRequest) as err, crm.schema_editor() as ed:
        ed.add_field(
            "customers",
            {"key": "labels", "type": "multi_select", "options": ["a"], "indexed": True},
        )
    assert "cannot be indexed" in err.value.message
