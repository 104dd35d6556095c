"""Forms every blueprint uses."""

from flask_wtf import FlaskForm


class CsrfForm(FlaskForm):
    """Only the CSRF token, for buttons that post."""
