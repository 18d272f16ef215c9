"""Sign-in, sign-out and the start page."""

from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from ...platform.users import authenticate_password
from . import bp
from .common import service, visible_tables


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class LogoutForm(FlaskForm):
    pass


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or a full URL) is followed after sign-in."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 for c in target)
    ):
        return url_for("pages.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if g.get("actor") is not None and request.method == "GET":
        return redirect(url_for("pages.home"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        platform = current_app.extensions["cubebase"]
        actor = authenticate_password(platform, g.db, form.email.data, form.password.data)
        if actor is None:
            error = "Wrong e-mail or password, or the account is inactive."
        else:
            session.clear()  # a new session on sign-in (no fixation)
            session["user_id"] = actor.user_id
            session.permanent = True
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        error = "Enter your e-mail and password."
    status = 200 if error is None else 401
    return render_template("pages/login.html", form=form, error=error), status


@bp.post("/logout")
def logout():
    form = LogoutForm()
    if form.validate_on_submit():
        session.clear()
        flash("You are signed out.", "info")
    return redirect(url_for("pages.login"))


@bp.get("/")
def home():
    svc = service()
    tables = []
    for t in visible_tables(svc):
        tables.append({"table": t, "count": svc.count(t.key, cap=10_000)})
    return render_template("pages/home.html", tables=tables)


@bp.get("/healthz")
def health():
    return {"status": "ok"}


@bp.app_context_processor
def _navigation():
    """The navigation: the tables the signed-in user may see."""
    actor = g.get("actor")
    if actor is None or "db" not in g:
        return {"nav_tables": [], "user": None, "logout_form": None, "nav_task_count": 0}
    try:
        tables = visible_tables(service())
        from .inbox import open_task_count

        count = open_task_count(current_app.extensions["cubebase"], g.db, actor)
    except Exception:  # noqa: BLE001 - the navigation never breaks a page (error pages)
        tables, count = [], 0
    return {
        "nav_tables": tables,
        "user": actor,
        "logout_form": LogoutForm(),
        "nav_task_count": count,
    }
