"""The completeness rules, on real bytes."""

import io

from PIL import Image

from serviceplus.demo import blank_pdf
from serviceplus.models.services.completeness import check_documents, is_readable, sniff_media_type


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, format="JPEG")
    return buffer.getvalue()


def test_media_type_comes_from_bytes_not_name():
    assert sniff_media_type(blank_pdf()) == "application/pdf"
    assert sniff_media_type(png()) == "image/png"
    assert sniff_media_type(jpeg()) == "image/jpeg"
    assert sniff_media_type(b"GIF89a....") is None
    assert sniff_media_type(b"") is None


def test_readable_files():
    assert is_readable(blank_pdf())
    assert is_readable(png())
    assert is_readable(jpeg())


def test_unreadable_files():
    assert not is_readable(b"")
    assert not is_readable(b"%PDF-1.7\nnothing else")
    assert not is_readable(png()[:20])  # a truncated image
    assert not is_readable(b"hello")


def test_all_required_present_and_readable_is_complete():
    result = check_documents(["passport", "cv"], [("passport", blank_pdf()), ("cv", png())])
    assert result.complete
    assert (result.missing, result.unreadable) == ([], [])


def test_missing_and_unreadable_are_named():
    result = check_documents(
        ["passport", "cv", "qualification"],
        [("passport", blank_pdf()), ("cv", b"%PDF-broken"), ("other", blank_pdf())],
    )
    assert not result.complete
    assert result.missing == ["qualification"]
    assert result.unreadable == ["cv"]


def test_one_readable_file_of_a_kind_is_enough():
    result = check_documents(["cv"], [("cv", b""), ("cv", jpeg())])
    assert result.complete
