"""Live regions: parts of a page that refresh themselves without a reload.

A region polls its fragment URL with htmx every few seconds and sends the
stamp (a hash) of what it shows; the fragment endpoint answers 204 (htmx
then swaps nothing) while the stamp is the same, and the new HTML when the
case moved. Each fragment endpoint checks who is asking exactly like its
full page, because it serves the same personal data."""

import hashlib
import re

from flask import current_app, render_template, request
from markupsafe import Markup

DEFAULT_POLL_SECONDS = 10


# A CSRF token is signed anew on every request; it must not count as a change.
CSRF_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]*"')


def stamp_of(html: str) -> str:
    return hashlib.sha256(CSRF_VALUE.sub(r"\1", html).encode()).hexdigest()[:20]


def region(region_id: str, url: str, template: str, **context) -> Markup:
    """The region's HTML: a container that polls `url` with the stamp of its
    content, which is `template` rendered with `context`."""
    inner = render_template(template, **context)
    return Markup(
        render_template(
            "_live.html",
            region_id=region_id,
            url=url,
            stamp=stamp_of(inner),
            inner=Markup(inner),
            seconds=current_app.config.get("LIVE_POLL_SECONDS", DEFAULT_POLL_SECONDS),
        )
    )


def fragment(template: str, **context):
    """The response to a region's poll: 204 when nothing changed (no swap),
    else the region's new content with its new stamp."""
    inner = render_template(template, **context)
    stamp = stamp_of(inner)
    if request.args.get("since") == stamp:
        return "", 204
    return render_template("_live_inner.html", stamp=stamp, inner=Markup(inner))
