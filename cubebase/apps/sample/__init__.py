"""The sample app of ``cubebase demo`` and the web tests, until the CRM app exists.

The app itself is the app file ``app.yaml`` beside this module, installed like
any app (``cubebase app install sample --demo``): companies and their deals, a
formula field, validation rules, a lock rule (lost deals are closed) and a
``sales`` role. App files cannot add users, so ``install_sample_app`` also adds
a sample salesperson to sign in as.
"""

from __future__ import annotations

from ...platform.core import Platform
from ...platform.users import create_user, find_user_id

APP = "sample"
SALES_EMAIL = "sales@example.com"
SALES_PASSWORD = "sales-password-1"  # noqa: S105 - the demo's published sample login


def install_sample_app(platform: Platform, *, demo: bool = True) -> bool:
    """Install (or bring up to date) the sample app and its sales user; True when
    something changed."""
    from ...schema_defs import install_app

    result = install_app(platform, APP, demo=demo)
    added = False
    with platform.session(write=True) as session, session.begin():
        if find_user_id(platform, session, SALES_EMAIL) is None:
            create_user(
                platform,
                session,
                SALES_EMAIL,
                name="Sam Sales",
                roles=["sales"],
                password=SALES_PASSWORD,
            )
            added = True
    return added or not result.plan.empty
