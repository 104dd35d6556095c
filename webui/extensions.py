"""Extensions, created unbound and bound in create_app()."""

from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf import CSRFProtect

# German on every page (dates, numbers, file sizes, validator messages);
# the public status page may switch to English.
babel = Babel()
csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Bitte melden Sie sich an."
login_manager.login_message_category = "info"
