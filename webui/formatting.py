"""Numbers, shares and durations as German readers expect them:
1.234,5 and 95,0 % and "5 Std." where a figure in days would read 0,0."""

from babel.numbers import format_decimal

HOURS_UNTIL = 2  # below two days a duration reads in hours


def number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale="de_DE")


def percent(value: float | None) -> str:
    return "–" if value is None else f"{number(value, 1)} %"


def duration(days: float | None) -> str:
    """A duration given in days, in the unit that shows it best."""
    if days is None:
        return "–"
    hours = days * 24
    if hours < 1:
        return f"{number(hours * 60)} Min."
    if days < HOURS_UNTIL:
        return f"{number(hours, 1)} Std."
    return f"{number(days, 1)} Tage"


def week(iso_week: str) -> str:
    """'2026-W07' -> 'KW 7/2026'."""
    year, _, number_ = iso_week.partition("-W")
    return f"KW {int(number_)}/{year}"


# The clerks' pages: dates, times, numbers and file sizes through Babel, in
# the request's locale (German; the public status page may be English).
def de_date(value) -> str:
    from flask_babel import format_date

    return format_date(value, "dd.MM.yyyy") if value else "–"


def de_datetime(value) -> str:
    from flask_babel import format_datetime

    return format_datetime(value, "dd.MM.yyyy HH:mm") if value else "–"


def de_decimal(value, digits: int = 0) -> str:
    from flask_babel import format_decimal

    if value is None:
        return "–"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern)


def file_size(size: int | None) -> str:
    """Bytes as "0,4 KB" or "1,2 MB" (1 KB = 1,024 bytes)."""
    if size is None:
        return "–"
    if size < 1024 * 1024:
        return f"{de_decimal(size / 1024, 1)} KB"
    return f"{de_decimal(size / (1024 * 1024), 1)} MB"
