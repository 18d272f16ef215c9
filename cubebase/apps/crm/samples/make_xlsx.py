"""Write legacy_customers.xlsx from legacy_customers.csv (the CSV is the source):
the same rows as a spreadsheet a company keeps them in, with real date cells for
"Customer since" (a day that does not exist stays text, as Excel leaves it),
mobile numbers stored as numbers, postcodes as text, a bold frozen header.

    python cubebase/apps/crm/samples/make_xlsx.py [CSV] [XLSX]

The shipped .xlsx is this script's output; tests/apps/crm/test_import.py checks
that it reads back as the same rows as the CSV."""

from __future__ import annotations

import csv
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).parent


def _cell(column: str, text: str):
    """The value Excel would hold for what a person typed in this column."""
    if column == "Customer since" and text:
        try:
            return date.fromisoformat(text)
        except ValueError:
            return text  # "2019-02-30": Excel keeps a day that does not exist as text
    if column == "Phone" and text.isdigit() and len(text) == 11:
        return int(text)  # a mobile number typed without spaces becomes a number
    return text or None


def build(csv_path: Path = HERE / "legacy_customers.csv", xlsx_path: Path | None = None) -> Path:
    """Convert the CSV sample to an .xlsx file; returns its path."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    xlsx_path = xlsx_path or csv_path.with_suffix(".xlsx")
    with open(csv_path, encoding="utf-8-sig", newline="") as f:
        header, *rows = list(csv.reader(f))
    wb = Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(header)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append([_cell(c, t) for c, t in zip(header, row, strict=True)])
    for i, column in enumerate(header, start=1):
        letter = ws.cell(row=1, column=i).column_letter
        width = max(len(column), *(len(r[i - 1]) for r in rows))
        ws.column_dimensions[letter].width = min(max(10, width + 2), 48)
        for cell in ws[letter][1:]:
            if isinstance(cell.value, date):
                cell.number_format = "yyyy-mm-dd"
            elif column in ("Postcode", "Fax"):
                cell.number_format = "@"
    ws.freeze_panes = "A2"
    wb.properties.creator = "Cubebase CRM sample"
    wb.save(xlsx_path)
    return xlsx_path


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:3]]
    print(build(*args))
