"""Numbers, shares and durations as German readers expect them:
1.234,5 and 95,0 % and "5 Std." where a figure in days would read 0,0."""

HOURS_UNTIL = 2  # below two days a duration reads in hours


def number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}"  # 1,234.5
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


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
