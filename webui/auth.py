"""Login and logout; the logged-in user; role checks."""

import math
import time
from datetime import timedelta
from functools import wraps

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired

from serviceplus.models import clock
from serviceplus.models.services import accounts, mail, throttle
from serviceplus.models.tables import Organisation, Role, User
from serviceplus.settings import get_settings
from serviceplus.webui.db import get_db
from serviceplus.webui.extensions import login_manager
from serviceplus.webui.redirects import safe_next

bp = Blueprint("auth", __name__)


class AppUser(UserMixin):
    """The logged-in user: the User row and their organisation."""

    def __init__(self, row: User, organisation: Organisation):
        self.row = row
        self.organisation = organisation

    def get_id(self) -> str:
        return str(self.row.id)

    @property
    def is_clerk(self) -> bool:
        return self.row.role == Role.clerk


@login_manager.user_loader
def load_user(user_id: str) -> AppUser | None:
    db = get_db()
    row = db.get(User, int(user_id)) if user_id.isdigit() else None
    if row is None or not row.active:
        return None
    # Logout, a password or a role change bump the generation: a session
    # from before (even a copied cookie) no longer logs anyone in.
    if session.get("generation") != row.session_generation:
        return None
    return AppUser(row, db.get(Organisation, row.organisation_id))


@bp.before_app_request
def end_old_sessions() -> None:
    """Log out a session idle too long or begun too long ago; the session
    cookie is signed, so its times cannot be forged."""
    if "_user_id" not in session:
        return
    settings = get_settings()
    now = clock.now().timestamp()
    too_old = now - session.get("login_at", 0) > settings.session_absolute_timeout.total_seconds()
    too_idle = now - session.get("seen_at", 0) > settings.session_idle_timeout.total_seconds()
    if too_old or too_idle:
        logout_user()
        for name in SESSION_KEYS:
            session.pop(name, None)
        flash("Ihre Sitzung ist abgelaufen.", "info")
        return
    if request.headers.get("HX-Request"):
        return  # a live page polling by itself is not the user at work
    session["seen_at"] = now


SESSION_KEYS = ("generation", "login_at", "seen_at")


def roles_required(*roles: Role):
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.row.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


class LoginForm(FlaskForm):
    username = StringField(
        "Benutzername", validators=[InputRequired("Bitte Benutzernamen angeben.")]
    )
    password = PasswordField("Passwort", validators=[InputRequired("Bitte Passwort angeben.")])


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        db = get_db()
        username, address = form.username.data.strip(), request.remote_addr or "unbekannt"
        wait = throttle.wait_for(db, username, address)
        if wait:
            return _too_many_attempts(wait)
        # Many addresses guessing at one account: slow, never refuse the owner.
        time.sleep(throttle.slowdown(db, username).total_seconds())
        row = accounts.authenticate(db, username=username, password=form.password.data)
        if row is None:
            throttle.record_failure(db, username, address)
            db.commit()
            flash("Benutzername oder Passwort ist falsch.", "error")
            return render_template("auth/login.html", form=form)
        if accounts.temporary_password_expired(row):
            # Counted as a failed attempt: an expired password opens nothing,
            # nor does it reset the throttle.
            throttle.record_failure(db, username, address)
            db.commit()
            flash(
                "Ihr vorläufiges Passwort ist abgelaufen. Bitte lassen Sie es von der "
                "Verwaltung Ihrer Organisation neu setzen.",
                "error",
            )
            return render_template("auth/login.html", form=form)
        throttle.clear(db, username, address)
        db.commit()
        _start_session(row)
        return redirect(safe_next(request.args.get("next"), url_for("index")))
    return render_template("auth/login.html", form=form)


def _start_session(row: User) -> None:
    session.clear()  # nothing from before the login carries over
    login_user(AppUser(row, get_db().get(Organisation, row.organisation_id)))
    now = clock.now().timestamp()
    session.update(generation=row.session_generation, login_at=now, seen_at=now)


def _too_many_attempts(wait: timedelta):
    minutes = math.ceil(wait.total_seconds() / 60)
    message = (
        "Zu viele fehlgeschlagene Anmeldeversuche. Bitte warten Sie "
        f"{minutes} Minute{'n' if minutes != 1 else ''} und versuchen Sie es dann erneut."
    )
    page = render_template("error.html", title="Zu viele Versuche", message=message)
    return page, 429, {"Retry-After": str(math.ceil(wait.total_seconds()))}


@bp.post("/logout")
@login_required
def logout():
    db = get_db()
    # Ends every session of the user, also copies of this cookie.
    accounts.end_sessions(db, current_user.row)
    db.commit()
    logout_user()
    session.clear()
    flash("Sie wurden abgemeldet.", "info")
    return redirect(url_for("auth.login"))


class PasswordForm(FlaskForm):
    current = PasswordField(
        "Bisheriges Passwort", validators=[InputRequired("Bitte bisheriges Passwort angeben.")]
    )
    new = PasswordField(
        "Neues Passwort (mindestens 12 Zeichen)",
        validators=[InputRequired("Bitte neues Passwort angeben.")],
    )
    repeat = PasswordField(
        "Neues Passwort wiederholen",
        validators=[
            InputRequired("Bitte neues Passwort wiederholen."),
            EqualTo("new", "Die beiden neuen Passwörter stimmen nicht überein."),
        ],
    )


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    """Every user changes their own password; it ends all their sessions."""
    form = PasswordForm()
    if form.validate_on_submit():
        db = get_db()
        try:
            accounts.change_own_password(
                db,
                user=current_user.row,
                current=form.current.data,
                new=form.new.data,
                repeat=form.repeat.data,
            )
        except accounts.AccountError as exc:
            db.rollback()
            wrong_current = "bisherige Passwort ist falsch" in str(exc)
            (form.current if wrong_current else form.new).errors.append(str(exc))
        else:
            db.commit()
            logout_user()
            session.clear()
            flash("Ihr Passwort wurde geändert. Bitte melden Sie sich neu an.", "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/password.html", form=form, user=current_user.row)


# What a user with a temporary password may still reach: the change itself
# and the way out.
_WHILE_TEMPORARY = {"auth.password", "auth.logout", "static"}


@bp.before_app_request
def temporary_password_first():
    """After an admin's reset the user must choose their own password first."""
    if (
        current_user.is_authenticated
        and current_user.row.must_change_password
        and request.endpoint not in _WHILE_TEMPORARY
    ):
        flash("Bitte wählen Sie zuerst ein eigenes Passwort.", "info")
        return redirect(url_for("auth.password"))
    return None


@bp.post("/account/notifications")
@login_required
def notifications():
    """The user's own address and the daily digest switch."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    db = get_db()
    try:
        mail.set_notifications(
            db,
            user=current_user.row,
            email=request.form.get("email", ""),
            digest=request.form.get("digest") == "on",
        )
    except mail.MailError as exc:
        db.rollback()
        flash(str(exc), "error")
    else:
        db.commit()
        flash("Ihre Benachrichtigungen sind gespeichert.", "success")
    return redirect(url_for("auth.password"))
