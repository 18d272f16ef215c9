"""First start: platform tables, the built-in users table, the admin role and
the first admin. Running it again changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from .actor import ADMIN_ROLE
from .core import Platform
from .migrate import upgrade
from .users import add_role, create_user, ensure_users_table, find_user_id, generate_password


@dataclass
class InitResult:
    admin_email: str
    admin_password: str | None  # None when the admin already existed


def init_platform(
    platform: Platform, admin_email: str = "admin@example.com", admin_password: str | None = None
) -> InitResult:
    upgrade(platform.engine)
    with platform.schema_editor() as editor:
        ensure_users_table(editor)
        add_role(editor, ADMIN_ROLE, "Administrator")
    with platform.session(write=True) as session, session.begin():
        if find_user_id(platform, session, admin_email) is not None:
            return InitResult(admin_email.lower(), None)
        password = admin_password or generate_password()
        create_user(
            platform,
            session,
            admin_email,
            name="Administrator",
            roles=[ADMIN_ROLE],
            password=password,
        )
    return InitResult(admin_email.lower(), password)
