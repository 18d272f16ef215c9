"""The ``cubebase`` command line.

Every command reads its configuration from the environment (see
docs/deployment.md); errors a user can cause print one clear line and exit 1.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click
import sqlalchemy.exc

from .platform.config import Config
from .platform.errors import CubebaseError


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can cause into one line instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CubebaseError as exc:
            _fail(exc.message)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError) as exc:
            text = _first_line(exc.orig)
            if "no such table" in text or "does not exist" in text:
                _fail("the database is not set up yet: run `cubebase init` first")
            _fail(f"cannot reach the database: {text}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("psycopg"):
                _fail("PostgreSQL support is not installed: pip install 'cubebase[postgres]'")
            raise

    return wrapper


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return text.splitlines()[0] if text else "unknown error"


def make_platform(db: str | None = None, *, config: Config | None = None):
    """A platform for a command: workflows and automations take part in its writes."""
    from .platform.core import Platform
    from .workflows.automations import install as install_automations
    from .workflows.engine import install

    config = config or Config.from_env(database_url=db)
    if config.database_url.startswith("sqlite:///"):
        config.data_dir.mkdir(parents=True, exist_ok=True)
    platform = Platform(config)
    install(platform)  # workflows take part in every command's writes and renames
    install_automations(platform)  # and automations in every command's writes
    return platform


@click.group()
@click.version_option(package_name="cubebase")
def main() -> None:
    """Cubebase: a low-code web database platform."""


@main.command()
@click.option("--db", help="Database URL (default: CUBEBASE_DATABASE_URL or ./cubebase-data).")
@click.option("--admin-email", default="admin@example.com", show_default=True)
@click.option("--admin-password", help="Password for the first admin (default: generated).")
@friendly
def init(db: str | None, admin_email: str, admin_password: str | None) -> None:
    """Create the platform tables and the first admin."""
    from .platform.bootstrap import init_platform

    platform = make_platform(db)
    result = init_platform(platform, admin_email, admin_password)
    click.echo(f"Database ready: {platform.engine.url.render_as_string(hide_password=True)}")
    if result.admin_password:
        click.echo(f"Admin login: {result.admin_email} / {result.admin_password}")
    else:
        click.echo(f"Admin {result.admin_email} already exists; nothing changed.")


@main.command()
@click.option("--db", help="Database URL.")
@friendly
def status(db: str | None) -> None:
    """Show the tables, their record counts and the users."""
    from .platform.actor import Actor

    platform = make_platform(db)
    with platform.session() as session:
        schema = platform.schema(session)
        records = platform.records(session, Actor.system_actor())
        click.echo(f"Database: {platform.engine.url.render_as_string(hide_password=True)}")
        click.echo(f"Schema version: {schema.version}")
        for table in schema.tables.values():
            fields = [f for f in table.fields.values() if not f.system]
            click.echo(
                f"  {table.key:<20} {records.count(table.key):>9,} records  "
                f"{len(fields)} fields ({', '.join(f.key for f in fields[:8])}"
                f"{', ...' if len(fields) > 8 else ''})"
            )


@main.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("email")
@click.option("--role", "roles", multiple=True, help="A role key (repeat for several).")
@click.option("--name", help="Display name (default: from the e-mail).")
@click.option("--password", help="Password (default: one is generated and printed).")
@click.option("--db", help="Database URL.")
@friendly
def user_add(
    email: str, roles: tuple[str, ...], name: str | None, password: str | None, db: str | None
) -> None:
    """Add a user."""
    from .platform.users import create_user, generate_password

    platform = make_platform(db)
    generated = password is None
    password = password or generate_password()
    with platform.session() as session, session.begin():
        create_user(platform, session, email, name=name, roles=list(roles), password=password)
    click.echo(
        f"Added {email.strip().lower()}" + (f" with roles {', '.join(roles)}" if roles else "")
    )
    if generated:
        click.echo(f"Password: {password}")


@user.command("token")
@click.argument("email")
@click.option("--label", help="What the token is for.")
@click.option("--db", help="Database URL.")
@friendly
def user_token(email: str, label: str | None, db: str | None) -> None:
    """Print a new API token for the user, alone on the last line."""
    from .platform.users import create_token

    platform = make_platform(db)
    with platform.session() as session, session.begin():
        token = create_token(platform, session, email, label)
    click.echo("Keep this token secret; it is shown only once:", err=True)
    click.echo(token)


@main.group()
def formula() -> None:
    """Work with formulas."""


@formula.command("check")
@click.argument("table")
@click.argument("source", metavar="FORMULA")
@click.option("--db", help="Database URL.")
@friendly
def formula_check(table: str, source: str, db: str | None) -> None:
    """Print the type of FORMULA on TABLE, or its errors with their positions."""
    from .platform.actor import Actor
    from .platform.formulas import check_formula

    platform = make_platform(db)
    with platform.session() as session:
        result = check_formula(platform, session, Actor.system_actor(), table, source)
    if "type" in result:
        click.echo(result["type"])
        return
    for err in result["errors"]:
        click.echo(f"line {err['line']}, column {err['column']}: {err['message']}", err=True)
        for line in err["excerpt"].splitlines():
            click.echo(f"    {line}", err=True)
    sys.exit(1)


@main.command("access")
@click.argument("email")
@click.argument("table")
@click.argument("record_id", required=False)
@click.option("--field", "field_key", help="Explain one field of the record.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@click.option("--db", help="Database URL.")
@friendly
def access(
    email: str,
    table: str,
    record_id: str | None,
    field_key: str | None,
    as_json: bool,
    db: str | None,
) -> None:
    """What EMAIL may do on TABLE (the rules, how many rows they see), or with
    RECORD_ID: why they may or may not read, change or delete that record."""
    import json

    from .platform.errors import NotFound
    from .platform.explain import describe, explain_record, explain_table
    from .platform.users import find_user_id, load_actor

    platform = make_platform(db)
    with platform.session() as session:
        uid = find_user_id(platform, session, email)
        if uid is None:
            raise NotFound(f"No user with e-mail {email}")
        actor = load_actor(platform, session, uid)
        if actor is None:
            _fail(f"{email} is deactivated: they can do nothing at all")
        if record_id is None:
            if field_key:
                _fail("--field needs a RECORD_ID")
            result = explain_table(platform, session, actor, table)
        else:
            result = explain_record(platform, session, actor, table, record_id, field_key)
    click.echo(json.dumps(result, indent=2, default=str) if as_json else describe(result))


@main.group()
def schema() -> None:
    """Apply, preview and export schema definition files (apps as files)."""


@schema.command("diff")
@click.argument("path", type=click.Path())
@click.option("--demo", is_flag=True, help="Count the demo records too.")
@click.option("--db", help="Database URL.")
@friendly
def schema_diff(path: str, demo: bool, db: str | None) -> None:
    """Print what applying PATH (an app folder or file) would change, in words."""
    from .schema_defs import load_app, plan_app

    app = load_app(path)
    platform = make_platform(db)
    click.echo(plan_app(platform, app, demo=demo).describe())


@schema.command("apply")
@click.argument("path", type=click.Path())
@click.option("--dry-run", is_flag=True, help="Apply, measure on the live data, roll back.")
@click.option("--confirm-data-loss", is_flag=True, help="Go ahead with steps that lose values.")
@click.option("--demo", is_flag=True, help="Also load the demo records into empty tables.")
@click.option("--db", help="Database URL.")
@friendly
def schema_apply(
    path: str, dry_run: bool, confirm_data_loss: bool, demo: bool, db: str | None
) -> None:
    """Apply the app files at PATH to the database, in one transaction."""
    from .schema_defs import apply_app, load_app

    app = load_app(path)
    platform = make_platform(db)
    result = apply_app(
        platform, app, confirm_data_loss=confirm_data_loss, dry_run=dry_run, demo=demo
    )
    click.echo(result.describe())
    if dry_run:
        click.echo("Dry run: nothing was changed.")
    elif result.applied:
        click.echo("Applied.")


@schema.command("export")
@click.option("--out", type=click.Path(), help="Folder to write (default: print the files).")
@click.option("--app", "app_key", help="Only this app's tables (default: every table).")
@click.option("--db", help="Database URL.")
@friendly
def schema_export(out: str | None, app_key: str | None, db: str | None) -> None:
    """Write the live schema back to app files."""
    from pathlib import Path

    from .schema_defs import app_files, live_app, write_app

    platform = make_platform(db)
    with platform.session() as session:
        app = live_app(platform.schema(session), session, app_key)
    if out:
        for path in write_app(app, Path(out)):
            click.echo(f"wrote {path}")
        return
    for name, text in app_files(app).items():
        click.echo(f"# --- {name}")
        click.echo(text, nl=False)


@main.group("app")
def app_group() -> None:
    """Install apps shipped with Cubebase."""


@app_group.command("install")
@click.argument("name")
@click.option("--demo", is_flag=True, help="Load the app's demo records too.")
@click.option("--confirm-data-loss", is_flag=True, help="Go ahead with steps that lose values.")
@click.option("--db", help="Database URL.")
@friendly
def app_install(name: str, demo: bool, confirm_data_loss: bool, db: str | None) -> None:
    """Install (or upgrade) the app NAME from cubebase/apps/NAME."""
    from .schema_defs import install_app

    platform = make_platform(db)
    result = install_app(platform, name, demo=demo, confirm_data_loss=confirm_data_loss)
    if result.plan.empty:
        click.echo(f"App {name} is installed and up to date; nothing to do.")
        return
    click.echo(result.describe())
    click.echo(f"App {name} installed.")


@main.group("automation")
def automation_group() -> None:
    """Automations (docs/automations.md)."""


@automation_group.command("list")
@click.option("--db", help="Database URL.")
@friendly
def automation_list(db: str | None) -> None:
    """Every automation: its trigger, table, next due time and last run."""
    from .workflows.automations import install as install_automations

    lines = install_automations(make_platform(db)).overview()
    click.echo("\n".join(lines) if lines else "No automations.")


@automation_group.command("run")
@click.argument("key")
@click.option("--db", help="Database URL.")
@friendly
def automation_run(key: str, db: str | None) -> None:
    """Run the scheduled automation KEY now (its next due time stays)."""
    from .workflows.automations import install as install_automations

    r = install_automations(make_platform(db)).run_now(key)
    click.echo(f"{r.key}: {r.done} done, {r.failed} failed, {r.skipped} already done")
    for message in r.messages:
        click.echo(f"  {message}")


# --- the web app ----------------------------------------------------------------------
DEMO_LOGIN_FILE = "demo-login.txt"


def _serve(app, host: str, port: int, threads: int = 8) -> None:
    """The WSGI server: waitress (threaded) when installed, else werkzeug's (threaded)."""
    try:
        from waitress import serve
    except ModuleNotFoundError:  # pragma: no cover - waitress is a dependency
        app.run(host=host, port=port, threaded=True, use_reloader=False, debug=False)
        return
    serve(app, host=host, port=port, threads=threads, ident="cubebase")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@click.option("--db", help="Database URL.")
@friendly
def serve_command(host: str, port: int, threads: int, db: str | None) -> None:
    """The web app (staff pages and the REST API)."""
    from .web import create_app
    from .workflows.jobs import start_in_process

    platform = make_platform(db)
    app = create_app(platform.config, platform)
    start_in_process(platform)  # without CUBEBASE_REDIS_URL, jobs run in this process
    click.echo(f"Cubebase on http://{host}:{port}/ (Ctrl+C stops it)")
    _serve(app, host, port, threads)


@main.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@friendly
def demo(host: str, port: int) -> None:
    """The one-command start: SQLite in ./cubebase-data/, jobs in-process, the CRM
    with its demo company (generated on the first start), the web server; prints the
    URL and the logins."""
    from pathlib import Path

    from .apps.crm import install_crm
    from .apps.crm.demo import DEMO_PASSWORD, DOMAIN
    from .platform.bootstrap import init_platform
    from .web import create_app
    from .workflows.jobs import start_in_process

    data_dir = Path("cubebase-data")
    data_dir.mkdir(parents=True, exist_ok=True)
    config = Config.from_env(
        database_url=f"sqlite:///{(data_dir / 'cubebase.sqlite').resolve()}",
        data_dir=data_dir,
    )
    config.redis_url = None  # in-process jobs
    platform = make_platform(config=config)
    click.echo(f"Database: {data_dir / 'cubebase.sqlite'} (SQLite)")
    result = init_platform(platform)
    login_file = data_dir / DEMO_LOGIN_FILE
    if result.admin_password:
        login_file.write_text(f"{result.admin_email}\n{result.admin_password}\n")
        login_file.chmod(0o600)
    click.echo("Installing the CRM (the first start generates the demo company: under a minute)")
    installed = install_crm(platform, demo=True)
    if installed["demo"] is not None and not installed["demo"].skipped:
        click.echo(installed["demo"].describe())
    click.echo("")
    click.echo(f"  Open      http://{host}:{port}/")
    if login_file.exists():
        email, password = login_file.read_text().split("\n")[:2]
        click.echo(f"  Admin     {email} / {password}")
    else:
        click.echo(
            f"  Admin     {result.admin_email} (password set earlier; "
            "`cubebase user add` can add another admin)"
        )
    for label, who in (
        ("Sales", "sales.north1"),
        ("Manager", "rm.north"),
        ("Director", "sales.director"),
        ("Finance", "finance1"),
        ("Office", "office1"),
        ("Dealer", "dealer.north"),
    ):
        click.echo(f"  {label:<9} {who}@{DOMAIN} / {DEMO_PASSWORD}")
    click.echo("")
    click.echo("Ctrl+C stops the server; the data stays in ./cubebase-data/.")
    app = create_app(config, platform)
    start_in_process(platform)  # reminders and escalations without Redis
    _serve(app, host, port)


@main.command("worker")
@click.option("--burst", is_flag=True, help="Run the jobs queued now, then stop.")
@click.option("--db", help="Database URL.")
@friendly
def worker(burst: bool, db: str | None) -> None:
    """Background jobs and schedules (rq on CUBEBASE_REDIS_URL, with its scheduler)."""
    from .workflows.jobs import run_worker

    run_worker(make_platform(db), burst=burst)


if __name__ == "__main__":  # pragma: no cover
    main()
