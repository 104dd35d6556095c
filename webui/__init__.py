"""The web UI: an app factory and one blueprint per audience."""

from flask import Flask, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from serviceplus.models.tables import Role
from serviceplus.settings import apply_prefect_env, get_settings
from serviceplus.webui import formatting, labels
from serviceplus.webui.extensions import babel, csrf, login_manager


def create_app(config: dict | None = None) -> Flask:
    settings = get_settings()
    apply_prefect_env(settings)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # Room for a form with several documents of up to max_upload_bytes each.
        MAX_CONTENT_LENGTH=settings.max_upload_bytes * 10,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,
        # Validator messages from the wtforms catalogue of the request's locale.
        WTF_I18N_ENABLED=True,
    )
    app.config.update(config or {})

    csrf.init_app(app)
    # Times are stored in UTC and shown as the clerks' clocks read them.
    babel.init_app(
        app, default_locale="de", default_timezone="Europe/Berlin", locale_selector=_locale
    )
    login_manager.init_app(app)
    app.after_request(security_headers)
    app.add_template_global(labels.case_status)
    app.add_template_global(labels.case_state)
    app.add_template_global(labels.audit_action)
    app.add_template_global(labels.audit_actor)
    app.add_template_global(labels.audit_detail)
    app.add_template_global(labels.task_status)
    app.add_template_global(labels.run_state)
    app.add_template_global(labels.role, "role_label")
    app.add_template_global(list(labels.CASE_STATUS.items()), "case_status_choices")
    app.add_template_global(labels.decision, "decision_label")
    app.add_template_global(labels.step_title)
    app.add_template_global(labels.proposal, "proposal_label")
    app.add_template_global(full_name)
    app.add_template_filter(formatting.de_date)
    app.add_template_filter(formatting.de_datetime)
    app.add_template_filter(formatting.de_decimal)
    app.add_template_filter(formatting.file_size)

    from serviceplus.webui import admin, advice, auth, cases, db, inbox, monitor, network, status

    db.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(inbox.bp)
    app.register_blueprint(cases.bp)
    app.register_blueprint(monitor.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(advice.bp)
    app.register_blueprint(network.bp)
    app.register_blueprint(status.bp)

    @app.get("/")
    @login_required
    def index():
        home = {
            Role.clerk: "inbox.index",
            Role.coordinator: "monitor.index",
            Role.admin: "admin.index",
            Role.adviser: "advice.index",
            Role.network: "network.index",
        }
        return redirect(url_for(home.get(current_user.row.role, "inbox.index")))

    limit_mb = settings.max_upload_bytes // (1024 * 1024)
    for code, title, message in [
        (403, "Kein Zugriff", "Sie haben keinen Zugriff auf diese Seite."),
        (404, "Nicht gefunden", "Die angeforderte Seite gibt es nicht."),
        (413, "Datei zu groß", f"Eine Datei darf höchstens {limit_mb} MB groß sein."),
        (429, "Zu viele Anfragen", "Bitte warten Sie einen Moment und versuchen Sie es erneut."),
    ]:
        app.register_error_handler(code, _error_page(code, title, message))

    return app


def full_name(username: str | None) -> str:
    """A person's name instead of their login; system actors in German."""
    from serviceplus.models.services.accounts import get_user
    from serviceplus.webui.db import get_db

    if not username:
        return "–"
    user = get_user(get_db(), username)
    return user.full_name if user else labels.audit_actor(username)


def _locale() -> str:
    """German everywhere; the public status page may switch to English."""
    from serviceplus.webui.status import select_locale

    return select_locale() if request.blueprint == "status" else "de"


def _error_page(status: int, title: str, message: str):
    def handler(_error):
        return render_template("error.html", title=title, message=message), status

    return handler


# No inline scripts or styles anywhere; nothing may frame our pages except the
# document preview, which only our own pages embed.
CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# An uploaded PDF may carry JavaScript: the preview is a sandbox without
# allow-scripts (and without allow-same-origin, so it is a foreign origin).
PREVIEW_CSP = (
    "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"
)


def security_headers(response):
    preview = response.headers.get("X-ServicePLUS-Preview") == "1"
    response.headers.pop("X-ServicePLUS-Preview", None)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP if preview else CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN" if preview else "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"  # personal data: not in shared caches
    return response
