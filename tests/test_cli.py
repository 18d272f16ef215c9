"""The command line: what an admin types and reads."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cubebase.cli import main


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CUBEBASE_DATABASE_URL", db_url)
    monkeypatch.setenv("CUBEBASE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_init_prints_admin_login_once(run):
    first = run("init")
    assert first.exit_code == 0, first.output
    assert "Admin login: admin@example.com / " in first.output
    again = run("init")
    assert again.exit_code == 0
    assert "already exists; nothing changed" in again.output


def test_user_add_generates_password_and_refuses_duplicates(run):
    run("init")
    added = run("user", "add", "Li.Wei@Example.com", "--role", "admin")
    assert added.exit_code == 0
    assert "Added li.wei@example.com with roles admin" in added.output
    assert "Password: " in added.output
    dup = run("user", "add", "li.wei@example.com")
    assert dup.exit_code == 1
    assert dup.output.strip() == "Error: A user with e-mail li.wei@example.com already exists"


def test_user_add_unknown_role_is_one_line(run):
    run("init")
    result = run("user", "add", "x@example.com", "--role", "wizard")
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: Unknown role: wizard")


def test_user_token_alone_on_last_line(run):
    run("init")
    result = run("user", "token", "admin@example.com")
    assert result.exit_code == 0
    assert result.stdout.strip().splitlines()[-1].startswith("cb_")
    missing = run("user", "token", "nobody@example.com")
    assert missing.exit_code == 1
    assert "No user with e-mail nobody@example.com" in missing.output


def test_status_lists_tables(run):
    run("init")
    result = run("status")
    assert result.exit_code == 0
    assert "users" in result.output and "1 records" in result.output


def test_status_before_init_says_what_to_do(run):
    result = run("status")
    assert result.exit_code == 1
    assert "run `cubebase init` first" in result.output


def test_bad_database_url_is_one_clear_line(monkeypatch, tmp_path):
    runner = CliRunner()
    monkeypatch.setenv("CUBEBASE_DATABASE_URL", "not a url")
    result = runner.invoke(main, ["status"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: The database URL 'not a url' is not valid (expected e.g. "
        "sqlite:///path/to/file.sqlite or postgresql://host/dbname)"
    )
    assert "Traceback" not in result.output


def test_unsupported_database_is_named(monkeypatch):
    monkeypatch.setenv("CUBEBASE_DATABASE_URL", "mysql://localhost/x")
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 1
    assert "supports sqlite and postgresql" in result.output


def test_unreachable_server_is_one_line():
    result = CliRunner().invoke(main, ["init", "--db", "postgresql://127.0.0.1:1/nothing"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot reach the database:")
    assert len(result.output.strip().splitlines()) == 1


def test_formula_check_prints_the_type(run):
    run("init")
    result = run("formula", "check", "users", 'IF(active, "yes", "no") & " " & name')
    assert result.exit_code == 0
    assert result.output.strip() == "Text"


def test_formula_check_points_at_the_mistake(run):
    run("init")
    result = run("formula", "check", "users", "LEN(nmae) + 1")
    assert result.exit_code == 1
    assert "line 1, column 5: unknown field `nmae` — did you mean `name`?" in result.output
    assert "LEN(nmae) + 1" in result.output
    assert "    ^^^^" in result.output


def test_formula_check_unknown_table(run):
    run("init")
    result = run("formula", "check", "nope", "1 + 1")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: There is no table `nope`"
