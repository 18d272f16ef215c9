"""Platform fixtures: an initialised platform, its admin, a small CRM schema and a
records service, on each database.

Building the platform and the CRM schema takes a second per test, so each is
built once per test process and database kind and then copied into every test's
private database: SQLite by copying the file, PostgreSQL by replaying the
recorded SQL into the test's schema (the statements are unqualified, so they
land in the test's ``search_path``). The copy is exactly what the build wrote:
same ids, same metadata. A test module adds its own tables to the template with
``pytestmark = pytest.mark.schema.with_args(builder)``. ``CUBEBASE_TEST_NO_TEMPLATES=1``
builds everything for every test instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from cubebase.platform.actor import Actor
from cubebase.platform.bootstrap import init_platform
from cubebase.platform.config import Config
from cubebase.platform.core import Platform
from cubebase.platform.db import make_engine
from tests.conftest import postgres_base_url

ADMIN_PASSWORD = "admin-password-1"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "schema(*builders): functions of the platform that add to the crm schema; "
        "built once per process and database kind, like the crm itself",
    )


@pytest.fixture(autouse=True)
def fast_password_hash(monkeypatch):
    """scrypt with a small work factor: the same code path, a hundred times faster."""
    from werkzeug.security import generate_password_hash

    from cubebase.platform import users

    monkeypatch.setattr(
        users,
        "hash_password",
        lambda password: generate_password_hash(password, method="scrypt:1024:8:1"),
    )


def build_platform(platform: Platform) -> None:
    init_platform(platform, admin_password=ADMIN_PASSWORD)


def make_platform(engine: sa.Engine, data_dir: Path) -> Platform:
    url = engine.url.render_as_string(hide_password=False)
    return Platform(Config(database_url=url, data_dir=data_dir), engine=engine)


class _Templates:
    """Built states, per (database kind, name): a SQLite file or recorded SQL."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.states: dict[tuple[str, str], Any] = {}
        self.pg_schemas: list[str] = []

    def copy_into(self, engine: sa.Engine, name: str, builders: list[Callable]) -> None:
        kind = engine.dialect.name
        key = (kind, name)
        if key not in self.states:
            self.states[key] = (
                self._build_sqlite(name, builders)
                if kind == "sqlite"
                else self._build_postgres(builders)
            )
        if kind == "sqlite":
            shutil.copyfile(self.states[key], engine.url.database)
        else:
            _replay(engine, self.states[key])

    def _build_sqlite(self, name: str, builders: list[Callable]) -> Path:
        path = self.workdir / f"{hashlib.sha1(name.encode()).hexdigest()[:16]}.sqlite"
        engine = make_engine(f"sqlite:///{path}")
        try:
            p = make_platform(engine, self.workdir)
            for build in builders:
                build(p)
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            engine.dispose()
        return path

    def _build_postgres(self, builders: list[Callable]) -> list[tuple]:
        schema = f"tpl_{uuid.uuid4().hex[:12]}"
        self.pg_schemas.append(schema)
        admin = sa.create_engine(postgres_base_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        url = sa.engine.make_url(postgres_base_url()).update_query_dict(
            {"options": f"-csearch_path={schema}"}
        )
        engine = make_engine(url.render_as_string(hide_password=False))
        recorded: list[tuple] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            no_params = not parameters and context is not None and context.no_parameters
            recorded.append((statement, None if no_params else parameters, executemany))

        def undone(*args):
            # a rolled-back write would be replayed as if it had happened
            raise RuntimeError("a template build must not roll back: it cannot be replayed")

        event.listen(engine, "before_cursor_execute", record)
        event.listen(engine, "rollback_savepoint", undone)
        try:
            p = make_platform(engine, self.workdir)
            for build in builders:
                build(p)
        finally:
            event.remove(engine, "before_cursor_execute", record)
            event.remove(engine, "rollback_savepoint", undone)
            engine.dispose()
        return recorded

    def drop(self) -> None:
        if not self.pg_schemas:
            return
        admin = sa.create_engine(postgres_base_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for schema in self.pg_schemas:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _replay(engine: sa.Engine, recorded: list[tuple]) -> None:
    """Run recorded statements in one transaction on ``engine``'s own schema (plain
    reads are skipped; psycopg's pipeline saves the round trips)."""
    with engine.begin() as conn:
        driver = conn.connection.driver_connection
        cursor = driver.cursor()
        with driver.pipeline():
            for statement, parameters, many in recorded:
                text = statement.lstrip()[:6].upper()
                if text == "SELECT" and "nextval(" not in statement:
                    continue
                if many and isinstance(parameters, list | tuple):
                    cursor.executemany(statement, parameters)
                elif parameters is None:
                    cursor.execute(statement)
                else:
                    cursor.execute(statement, parameters)
        cursor.close()


@pytest.fixture(scope="session")
def _templates(tmp_path_factory):
    templates = _Templates(tmp_path_factory.mktemp("templates"))
    yield templates
    templates.drop()


@pytest.fixture
def platform(request, engine, tmp_path, _templates):
    """An initialised platform (tables, users, admin) on each database; with the
    ``crm`` schema already in place when the test asks for ``crm``."""
    builders = [build_platform]
    marker = request.node.get_closest_marker("schema")
    if "crm" in request.fixturenames or marker:
        builders.append(build_crm)
    if marker:
        builders += list(marker.args)
    # module and name: two test modules may each call their builder build_rules
    name = "+".join(f"{b.__module__}.{b.__qualname__}" for b in builders)
    if os.environ.get("CUBEBASE_TEST_NO_TEMPLATES") == "1":
        p = make_platform(engine, tmp_path)
        for build in builders:
            build(p)
        return p
    _templates.copy_into(engine, name, builders)
    return make_platform(engine, tmp_path)


@pytest.fixture
def admin(platform) -> Actor:
    from cubebase.platform.users import find_user_id, load_actor

    with platform.session() as s:
        return load_actor(platform, s, find_user_id(platform, s, "admin@example.com"))


@pytest.fixture
def crm(platform):
    """The platform with a small schema: regions (a tree), customers, deals, tags
    (many-to-many); see ``build_crm``."""
    return platform


@pytest.fixture
def records(crm, admin):
    """A records service in an open session (committed by the test when needed)."""
    session = crm.session()
    yield crm.records(session, admin)
    session.rollback()
    session.close()


def build_crm(platform: Platform) -> None:
    """A small schema: regions (a tree), customers, deals, tags (many-to-many)."""
    with platform.schema_editor() as ed:
        ed.create_table(
            "regions",
            "Regions",
            fields=[
                {"key": "name", "type": "text", "required": True, "unique": True},
            ],
        )
        ed.add_field(
            "regions",
            {"key": "parent", "type": "link", "to": "regions", "related_name": "children"},
        )
        ed.create_table("tags", "Tags", fields=[{"key": "name", "type": "text"}])
        ed.create_table(
            "customers",
            "Customers",
            display_field="name",
            fields=[
                {"key": "name", "type": "text", "required": True},
                {"key": "email", "type": "email", "unique": True},
                {"key": "phone", "type": "phone"},
                {"key": "stage", "type": "select", "options": ["lead", "potential", "customer"]},
                {"key": "region", "type": "link", "to": "regions", "related_name": "customers"},
                {"key": "owner", "type": "user"},
                {
                    "key": "tags",
                    "type": "link",
                    "to": "tags",
                    "many": True,
                    "related_name": "customers",
                },
            ],
        )
        ed.create_table(
            "deals",
            "Deals",
            fields=[
                {
                    "key": "customer",
                    "type": "link",
                    "to": "customers",
                    "related_name": "deals",
                    "required": True,
                },
                {"key": "amount", "type": "currency"},
                {"key": "stage", "type": "select", "options": ["new", "won", "lost"]},
                {"key": "closed_on", "type": "date"},
                {"key": "number", "type": "autonumber"},
            ],
        )
