"""Completeness rules: which documents a residence purpose needs, and
whether each given file is a readable PDF, JPEG or PNG."""

import io
from dataclasses import dataclass, field

MEDIA_TYPES = {
    b"%PDF-": "application/pdf",
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
}


def sniff_media_type(data: bytes) -> str | None:
    """The media type from the file's first bytes (never from its name)."""
    for magic, media_type in MEDIA_TYPES.items():
        if data.startswith(magic):
            return media_type
    return None


def is_readable(data: bytes) -> bool:
    # Imported here: the flow module is imported on every flow run's start.
    from PIL import Image
    from pypdf import PdfReader

    media_type = sniff_media_type(data)
    if media_type is None:
        return False
    try:
        if media_type == "application/pdf":
            return len(PdfReader(io.BytesIO(data)).pages) > 0
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        return True
    except Exception:  # any parser error means: not a readable file
        return False


@dataclass
class CompletenessResult:
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # rule messages, German

    @property
    def complete(self) -> bool:
        return not self.missing and not self.unreadable and not self.problems


def check_documents(required: list[str], documents: list[tuple[str, bytes]]) -> CompletenessResult:
    """Compare the documents given (kind, content) with the kinds required.

    A kind counts as present when at least one readable file of it exists;
    a kind whose files are all unreadable is reported as unreadable.
    """
    result = CompletenessResult()
    for kind in required:
        files = [data for doc_kind, data in documents if doc_kind == kind]
        if not files:
            result.missing.append(kind)
        elif not any(is_readable(data) for data in files):
            result.unreadable.append(kind)
    return result
