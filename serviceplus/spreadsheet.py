"""Tables as files that German Excel opens correctly: CSV with semicolons,
decimal commas and a UTF-8 byte order mark, and XLSX (openpyxl) with real
numbers. Rows hold plain values; numbers stay numbers until written."""

import csv
import io

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOM = "\ufeff"  # without it Excel reads UTF-8 as Windows-1252 (Ã¼ for ü)


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".").replace(".", ",") or "0"
    return str(value)


def csv_bytes(headings: list[str], rows: list[tuple]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(headings)
    writer.writerows([_csv_cell(v) for v in row] for row in rows)
    return (BOM + out.getvalue()).encode("utf-8")


def xlsx_bytes(title: str, headings: list[str], rows: list[tuple]) -> bytes:
    from openpyxl import Workbook  # only needed for this download
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    # Excel's limits for a sheet name: 31 characters, none of \ / ? * [ ] :
    sheet.title = "".join(c for c in title if c not in "\\/?*[]:")[:31]
    sheet.append(headings)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
    for column in sheet.columns:
        width = max(len(str(c.value or "")) for c in column)
        sheet.column_dimensions[column[0].column_letter].width = min(60, width + 2)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
