"""Login and logout; the logged-in user; role checks."""

from functools import wraps

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired

from models import accounts
from models.tables import Organisation, Role, User
from serviceplus.settings import get_settings
from webui.db import get_db
from webui.extensions import limiter, login_manager
from webui.redirects import safe_next

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
    session = get_db()
    row = session.get(User, int(user_id)) if user_id.isdigit() else None
    if row is None or not row.active:
        return None
    return AppUser(row, session.get(Organisation, row.organisation_id))


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


def _login_key() -> str:
    return f"{request.remote_addr}|{request.form.get('username', '').strip().lower()}"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: get_settings().login_limit,
    methods=["POST"],
    key_func=_login_key,
    deduct_when=lambda response: response.status_code != 302,  # count failures only
)
def login():
    form = LoginForm()
    if form.validate_on_submit():
        row = accounts.authenticate(
            get_db(), username=form.username.data.strip(), password=form.password.data
        )
        if row is not None:
            login_user(load_user(str(row.id)))
            return redirect(safe_next(request.args.get("next"), url_for("index")))
        flash("Benutzername oder Passwort ist falsch.", "error")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash("Sie wurden abgemeldet.", "info")
    return redirect(url_for("auth.login"))
