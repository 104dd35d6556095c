"""The web UI: an app factory and one blueprint per audience."""

from flask import Flask, redirect, render_template, url_for
from flask_login import current_user, login_required

from serviceplus.settings import apply_prefect_env, get_settings
from webui.extensions import csrf, login_manager


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
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.config.update(config or {})

    csrf.init_app(app)
    login_manager.init_app(app)

    from webui import auth, cases, db, inbox

    db.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(inbox.bp)
    app.register_blueprint(cases.bp)

    @app.get("/")
    @login_required
    def index():
        return redirect(url_for("inbox.index" if current_user.is_clerk else "cases.index"))

    @app.errorhandler(403)
    def forbidden(_error):
        return render_template(
            "error.html", title="Kein Zugriff", message="Sie haben keinen Zugriff auf diese Seite."
        ), 403

    @app.errorhandler(404)
    def not_found(_error):
        return render_template(
            "error.html", title="Nicht gefunden", message="Die angeforderte Seite gibt es nicht."
        ), 404

    @app.errorhandler(413)
    def too_large(_error):
        limit = settings.max_upload_bytes // (1024 * 1024)
        return render_template(
            "error.html",
            title="Datei zu groß",
            message=f"Eine Datei darf höchstens {limit} MB groß sein.",
        ), 413

    return app
