"""Users, passwords, tokens and the first start, on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cubebase.platform.bootstrap import init_platform
from cubebase.platform.errors import BadRequest, ConflictError, NotFound, ValidationError
from cubebase.platform.models import ApiToken, Credential
from cubebase.platform.users import (
    add_role,
    authenticate_password,
    authenticate_token,
    create_token,
    create_user,
    find_user_id,
    hash_password,
    revoke_tokens,
    set_password,
)


@pytest.fixture
def session(platform):
    with platform.session() as s:
        yield s
        s.rollback()


@pytest.fixture
def bob(platform, session) -> int:
    with platform.schema_editor() as ed:
        add_role(ed, "sales", "Salesperson")
    uid = create_user(
        platform, session, "Bob@Example.com", name="Bob", roles=["sales"], password="bob-secret-1"
    )
    session.commit()
    return uid


def _deactivate(platform, session, uid: int) -> None:
    from cubebase.platform.actor import Actor

    platform.records(session, Actor.system_actor()).update("users", uid, {"active": False})


def test_password_is_stored_hashed(platform, session, bob):
    stored = session.get(Credential, bob).password_hash
    assert "bob-secret-1" not in stored and stored.startswith("scrypt:")
    users_table = platform.schema(session).table("users")
    row = session.execute(sa.select(users_table.sql)).all()
    assert "bob-secret-1" not in repr(row) and stored not in repr(row)
    assert set(users_table.fields) >= {"email", "name", "roles", "active"}
    assert not any("password" in k for k in users_table.fields)


def test_production_hash_is_scrypt_with_a_real_work_factor(monkeypatch):
    monkeypatch.undo()  # the fixtures use a cheap work factor
    from cubebase.platform import users

    assert users.hash_password("x" * 8).startswith("scrypt:32768:8:1$")


def test_authenticate_password(platform, session, bob):
    actor = authenticate_password(platform, session, " BOB@example.com ", "bob-secret-1")
    assert actor is not None and actor.user_id == bob
    assert actor.roles == frozenset({"sales"}) and actor.email == "bob@example.com"
    assert not actor.is_admin
    assert authenticate_password(platform, session, "bob@example.com", "wrong-pass") is None
    assert authenticate_password(platform, session, "bob@example.com", "") is None
    assert authenticate_password(platform, session, "nobody@example.com", "bob-secret-1") is None
    admin = authenticate_password(platform, session, "admin@example.com", "admin-password-1")
    assert admin is not None and admin.is_admin


def test_change_password(platform, session, bob):
    set_password(session, bob, "new-secret-2")
    assert authenticate_password(platform, session, "bob@example.com", "bob-secret-1") is None
    assert authenticate_password(platform, session, "bob@example.com", "new-secret-2")
    with pytest.raises(BadRequest, match="at least 8"):
        set_password(session, bob, "short")


def test_user_without_password_cannot_log_in(platform, session):
    create_user(platform, session, "nopass@example.com")
    assert authenticate_password(platform, session, "nopass@example.com", "") is None
    assert authenticate_password(platform, session, "nopass@example.com", "anything1") is None


def test_deactivated_or_trashed_user_cannot_log_in(platform, session, bob):
    from cubebase.platform.actor import Actor

    token = create_token(platform, session, "bob@example.com")
    assert authenticate_token(platform, session, token).user_id == bob
    _deactivate(platform, session, bob)
    assert authenticate_password(platform, session, "bob@example.com", "bob-secret-1") is None
    assert authenticate_token(platform, session, token) is None
    with pytest.raises(ConflictError, match="not active"):
        create_token(platform, session, "bob@example.com")
    rs = platform.records(session, Actor.system_actor())
    rs.update("users", bob, {"active": True})
    assert authenticate_token(platform, session, token).user_id == bob
    rs.delete("users", bob)
    assert authenticate_token(platform, session, token) is None
    assert authenticate_password(platform, session, "bob@example.com", "bob-secret-1") is None


def test_tokens_are_stored_as_digests(platform, session, bob):
    token = create_token(platform, session, "bob@example.com", label="ci")
    assert token.startswith("cb_") and len(token) > 40
    rows = session.scalars(sa.select(ApiToken)).all()
    assert len(rows) == 1
    assert token not in rows[0].token_hash and rows[0].prefix == token[:10]
    assert token[10:] not in repr(vars(rows[0]))
    assert rows[0].last_used_at is None
    assert authenticate_token(platform, session, token).user_id == bob
    assert session.scalars(sa.select(ApiToken)).one().last_used_at is not None
    for bad in ("", "cb_", token[:-1], token + "x", "x" * 500, "Bearer " + token):
        assert authenticate_token(platform, session, bad) is None
    other = create_token(platform, session, "bob@example.com")
    assert other != token
    assert revoke_tokens(session, bob) == 2
    assert authenticate_token(platform, session, token) is None
    assert authenticate_token(platform, session, other) is None
    with pytest.raises(NotFound):
        create_token(platform, session, "nobody@example.com")


def test_duplicate_email_is_a_conflict(platform, session, bob):
    for email in ("bob@example.com", " BOB@EXAMPLE.COM "):
        with pytest.raises(ConflictError, match="already exists"):
            create_user(platform, session, email, password="whatever-1")
    assert find_user_id(platform, session, "bob@example.com") == bob


def test_create_user_refusals(platform, session):
    with pytest.raises(BadRequest, match="Unknown role: boss"):
        create_user(platform, session, "x@example.com", roles=["boss"])
    with pytest.raises(BadRequest, match="at least 8"):
        create_user(platform, session, "x@example.com", password="short")
    with pytest.raises(ValidationError) as err:
        create_user(platform, session, "not an email")
    assert err.value.problems[0].field == "email"
    assert find_user_id(platform, session, "x@example.com") is None


def test_roles_are_options_of_users_roles(platform, session, bob):
    with platform.session() as s:
        options = platform.schema(s).table("users").field("roles").config["options"]
    assert options == ["admin", "sales"]
    with platform.schema_editor() as ed:
        add_role(ed, "sales", "Again")  # nothing changes
        with pytest.raises(BadRequest):
            add_role(ed, "Bad Role")


def test_init_is_idempotent(platform):
    again = init_platform(platform, admin_password="another-password")
    assert again.admin_password is None
    with platform.session() as s:
        assert authenticate_password(platform, s, "admin@example.com", "admin-password-1")
        t = platform.schema(s).table("users").sql
        assert s.scalar(sa.select(sa.func.count()).select_from(t)) == 1


def test_init_generates_a_password_when_none_is_given(engine, tmp_path):
    from tests.platform.conftest import make_platform

    p = make_platform(engine, tmp_path)
    result = init_platform(p, admin_email="Boss@Example.com")
    assert result.admin_email == "boss@example.com" and len(result.admin_password) >= 12
    with p.session() as s:
        assert authenticate_password(p, s, "boss@example.com", result.admin_password)


def test_hash_password_is_salted():
    assert hash_password("same-password") != hash_password("same-password")
