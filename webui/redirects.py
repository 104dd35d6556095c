"""Where to go after a form: only to a page of this site (no open redirect)."""

from urllib.parse import urlsplit


def safe_next(target: str | None, fallback: str) -> str:
    """`target` if it is a path on this site, else `fallback`.

    Judged on what a browser will make of it: browsers (and werkzeug) drop
    tabs and newlines and read a backslash as a slash, so "/\\t/evil.example"
    and "/\\\\evil.example" both lead to another host. Those characters go
    first; what remains must be a bare path: no scheme, no host, and no
    second slash or backslash that would start one."""
    if not target:
        return fallback
    cleaned = "".join(ch for ch in target if ch.isprintable() and not ch.isspace())
    parts = urlsplit(cleaned)
    if (
        parts.scheme
        or parts.netloc
        or not cleaned.startswith("/")
        or cleaned.startswith(("//", "/\\"))
        or "\\" in cleaned
    ):
        return fallback
    return cleaned
