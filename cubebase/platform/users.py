"""Users, roles, passwords and API tokens.

The ``users`` table is an ordinary user table (apps add fields to it); its
password hashes and tokens live in platform tables that no records path can
read. Passwords are hashed with scrypt; tokens are stored as SHA-256 digests
and shown once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .actor import ADMIN_ROLE, Actor
from .errors import BadRequest, ConflictError, NotFound
from .models import ApiToken, Credential, Role
from .schema import USERS

TOKEN_PREFIX = "cb_"  # noqa: S105 - a marker, not a secret
MIN_PASSWORD = 8

USERS_FIELDS = [
    {"key": "email", "label": "E-mail", "type": "email", "required": True, "unique": True},
    {"key": "name", "label": "Name", "type": "text", "required": True},
    {"key": "roles", "label": "Roles", "type": "multi_select", "options": [ADMIN_ROLE]},
    {"key": "active", "label": "Active", "type": "boolean", "default": "TRUE"},
]


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def check_password_strength(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise BadRequest(f"A password needs at least {MIN_PASSWORD} characters")


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def ensure_users_table(editor) -> None:
    """Create the built-in users table (first install only)."""
    if not editor.schema.has_table(USERS):
        editor.create_table(USERS, "Users", fields=USERS_FIELDS, display_field="name", system=True)


def add_role(
    editor,
    key: str,
    label: str | None = None,
    *,
    app: str | None = None,
    description: str | None = None,
) -> Role:
    """Roles are data: a row here, and an option of ``users.roles``."""
    from .schema_changes import check_key

    check_key(key, "role")
    session = editor.session
    role = session.scalar(sa.select(Role).where(Role.key == key))
    if role is None:
        role = Role(
            key=key, label=label or key.replace("_", " ").title(), app=app, description=description
        )
        session.add(role)
        session.flush()
    options = list(editor.schema.table(USERS).field("roles").config.get("options") or [])
    if key not in options:
        editor.update_field(USERS, "roles", config={"options": [*options, key]})
    return role


def role_keys(session: Session) -> list[str]:
    return list(session.scalars(sa.select(Role.key).order_by(Role.key)))


def create_user(
    platform,
    session: Session,
    email: str,
    *,
    name: str | None = None,
    roles: list[str] = (),
    password: str | None = None,
    actor: Actor | None = None,
) -> int:
    """Add a user record and its password; an existing e-mail is a conflict."""
    records = platform.records(session, actor or Actor.system_actor())
    known = set(role_keys(session))
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise BadRequest(f"Unknown role: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    email_norm = (email or "").strip().lower()
    if find_user_id(platform, session, email_norm) is not None:
        raise ConflictError(f"A user with e-mail {email_norm} already exists")
    if password is not None:
        check_password_strength(password)
    record = records.create(
        USERS,
        {
            "email": email_norm,
            "name": name or email_norm.split("@")[0],
            "roles": list(roles),
            "active": True,
        },
    )
    if password is not None:
        set_password(session, record.id, password)
    return record.id


def find_user_id(platform, session: Session, email: str) -> int | None:
    table = platform.schema(session).table(USERS)
    col = table.column(table.field("email"))
    return session.scalar(
        sa.select(table.sql.c.id).where(
            col == (email or "").strip().lower(), table.sql.c.deleted_at.is_(None)
        )
    )


def set_password(session: Session, user_id: int, password: str) -> None:
    check_password_strength(password)
    cred = session.get(Credential, user_id)
    now = datetime.now(UTC)
    if cred is None:
        session.add(
            Credential(user_id=user_id, password_hash=hash_password(password), changed_at=now)
        )
    else:
        cred.password_hash = hash_password(password)
        cred.changed_at = now
    session.flush()


def _actor_query(platform, session: Session) -> tuple[sa.Select, sa.Select, Any]:
    """The statements that read a user as an Actor (by id, by API token digest), with
    the schema version alongside, and how to make the Actor from a row.

    It is built from the last schema loaded, even if another process has changed the
    schema since: the users table's built-in columns (email, roles, active) never
    change name or type. The version read with the user tells the transaction which
    schema is current, so a request costs one round trip less."""
    registry = platform.registry
    schema = registry.cached()
    if schema is None or not schema.has_table(USERS):
        schema = platform.schema(session)
    hit = schema.formula_cache.get(("actor_query",))
    if hit is None:
        table = schema.table(USERS)
        t = table.sql
        roles_field = table.field("roles")
        select = sa.select(
            t.c.id,
            table.column(table.field("email")).label("email"),
            table.column(roles_field).label("roles"),
            table.column(table.field("active")).label("active"),
            registry.version_column(),
        ).where(t.c.deleted_at.is_(None))

        def actor(session: Session, row) -> Actor | None:
            if row is None:
                return None
            registry.note_version(session, row.cb_schema_version)
            if row.active is False:
                return None
            roles = roles_field.ftype.from_db(roles_field, row.roles)
            return Actor(user_id=row.id, roles=frozenset(roles), email=row.email)

        by_id = select.where(t.c.id == sa.bindparam("cb_uid"))
        by_token = (
            select.add_columns(ApiToken.id.label("token_id"))
            .join(ApiToken, ApiToken.user_id == t.c.id)
            .where(ApiToken.token_hash == sa.bindparam("cb_digest"), ApiToken.revoked_at.is_(None))
        )
        hit = schema.formula_cache[("actor_query",)] = (by_id, by_token, actor)
    return hit


def load_actor(platform, session: Session, user_id: int) -> Actor | None:
    """The acting user, or None when missing, trashed or inactive."""
    by_id, _, actor = _actor_query(platform, session)
    return actor(session, session.execute(by_id, {"cb_uid": user_id}).first())


def authenticate_password(platform, session: Session, email: str, password: str) -> Actor | None:
    """The user for a correct e-mail and password; None otherwise (same time either way)."""
    user_id = find_user_id(platform, session, email)
    cred = session.get(Credential, user_id) if user_id is not None else None
    stored = cred.password_hash if cred else hash_password("not-a-real-password-x")
    ok = check_password_hash(stored, password or "")
    if not ok or user_id is None:
        return None
    return load_actor(platform, session, user_id)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(platform, session: Session, email: str, label: str | None = None) -> str:
    """A new API token for the user; only its digest is stored, so print it now."""
    user_id = find_user_id(platform, session, email)
    if user_id is None:
        raise NotFound(f"No user with e-mail {email}")
    if load_actor(platform, session, user_id) is None:
        raise ConflictError(f"User {email} is not active")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user_id,
            prefix=token[:10],
            token_hash=_digest(token),
            label=label,
            created_at=datetime.now(UTC),
        )
    )
    session.flush()
    return token


def authenticate_token(platform, session: Session, token: str) -> Actor | None:
    """The active user behind a token that is not revoked, or None."""
    found = token_actor(platform, session, token)
    if found is None:
        return None
    session.execute(
        sa.update(ApiToken).where(ApiToken.id == found[0]).values(last_used_at=datetime.now(UTC))
    )
    return found[1]


def token_actor(platform, session: Session, token: str) -> tuple[int, Actor] | None:
    """(token id, its active user) for a token that is not revoked, or None. Reads
    only: the API counts token use itself (see ``cb_api_token_use``)."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    _, by_token, actor_of = _actor_query(platform, session)
    # the token, its user and the schema version: one round trip
    row = session.execute(by_token, {"cb_digest": _digest(token)}).first()
    actor = actor_of(session, row)
    return None if actor is None else (row.token_id, actor)


def revoke_tokens(session: Session, user_id: int) -> int:
    result = session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return result.rowcount
