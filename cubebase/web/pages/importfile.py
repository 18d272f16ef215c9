"""Reading an import's file: a CSV (its delimiter sniffed, the encoding chosen by
the uploader) or the first sheet of an XLSX (cached values only: formulas never
run) into a header and rows of text, with a message for the person who uploaded
it when the file cannot be imported (see docs/web.md, "Import")."""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 10 * 1024 * 1024  # a file larger than this is refused, unread
MAX_ROWS = 50_000
MAX_COLUMNS = 200
ENCODINGS = [
    ("utf-8", "UTF-8 (CSV UTF-8)"),
    ("cp1252", "Windows Western European (Excel's CSV)"),
    ("latin-1", "ISO-8859-1 (Latin-1)"),
]


class ImportFileError(Exception):
    """A file that cannot be imported, with what to do about it."""


def read_file(
    filename: str, data: bytes, encoding: str = "utf-8"
) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV or XLSX file, every cell as text.
    Raises ImportFileError with a message for the person who uploaded it."""
    name = (filename or "").lower()
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(
            f"The file is {len(data) / 1024 / 1024:.1f} MB; files up to "
            f"{MAX_FILE_BYTES // 1024 // 1024} MB can be imported. Split it into smaller files."
        )
    if not data.strip():
        raise ImportFileError("The file is empty.")
    if name.endswith(".xls") or data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise ImportFileError(
            "This is an old Excel file (.xls). Open it in Excel and save it as .xlsx or CSV."
        )
    if data[:4] == b"PK\x03\x04" or name.endswith((".xlsx", ".xlsm")):
        header, rows = _read_xlsx(data)
    elif name.endswith((".csv", ".txt", ".tsv")) or "." not in name:
        header, rows = _read_csv(data, encoding)
    else:
        raise ImportFileError(
            "Only CSV (.csv) and Excel (.xlsx) files can be imported; this file is neither."
        )
    return _tidy(header, rows)


def _read_csv(data: bytes, encoding: str) -> tuple[list[Any], list[list[Any]]]:
    if encoding not in dict(ENCODINGS):
        encoding = "utf-8"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        raise ImportFileError(
            "This is not a CSV text file: it holds binary data (or UTF-16 text). "
            "Save it as CSV UTF-8 or as .xlsx."
        )
    try:
        text = data.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"The file is not {dict(ENCODINGS)[encoding].split(' (')[0]} text: line {line} "
            f"holds a byte that cannot be read (0x{data[exc.start]:02x}). Choose the file's "
            "encoding below (Excel on Windows usually saves Windows Western European), or "
            "save it as CSV UTF-8."
        ) from None
    sample = text[:20_000]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    out: list[list[Any]] = []
    try:
        for row in reader:
            if len(out) > MAX_ROWS + 1:
                raise ImportFileError(
                    f"The file has more than {MAX_ROWS:,} rows; import it in parts."
                )
            out.append(row)
    except csv.Error as exc:
        raise ImportFileError(f"Line {reader.line_num} of the CSV file: {exc}") from None
    if not out:
        raise ImportFileError("The file is empty.")
    return out[0], out[1:]


def _read_xlsx(data: bytes) -> tuple[list[Any], list[list[Any]]]:
    from openpyxl import load_workbook

    try:
        # read_only streams the sheet; data_only takes cached values: formulas never run
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        log.info("unreadable xlsx: %s", exc)
        raise ImportFileError(
            "This is not an Excel .xlsx file, or it is damaged. Save it again from Excel "
            "as .xlsx or CSV."
        ) from None
    except Exception as exc:  # openpyxl raises many kinds for broken files
        log.info("unreadable xlsx: %r", exc)
        raise ImportFileError("The Excel file could not be read; save it again as .xlsx.") from None
    try:
        if not wb.worksheets:
            raise ImportFileError("The Excel file has no sheet.")
        ws = wb.worksheets[0]
        rows: list[list[Any]] = []
        for row in ws.iter_rows(values_only=True):
            if len(rows) > MAX_ROWS + 1:
                raise ImportFileError(
                    f"The first sheet has more than {MAX_ROWS:,} rows; import it in parts."
                )
            rows.append([_cell_text(v) for v in row[: MAX_COLUMNS + 1]])
    finally:
        wb.close()
    if not rows:
        raise ImportFileError("The first sheet of the Excel file is empty.")
    return rows[0], rows[1:]


def _cell_text(v: Any) -> str:
    """An Excel cell as the text a person would type for it."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == time(0) else v.isoformat(sep=" ")
    if isinstance(v, date | time):
        return v.isoformat()
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, int | Decimal):
        return str(v)
    return str(v)


def _tidy(header: list[Any], rows: list[list[Any]]) -> tuple[list[str], list[list[str]]]:
    """Names for every column, rows as long as the header, blank rows left out."""
    header = [str(h or "").strip() for h in header]
    while header and not header[-1]:
        header.pop()
    if not header:
        raise ImportFileError("The first row must name the columns; it is blank.")
    if len(header) > MAX_COLUMNS:
        raise ImportFileError(f"The file has {len(header)} columns; at most {MAX_COLUMNS}.")
    names: list[str] = []
    for i, h in enumerate(header):
        name = h or f"Column {i + 1}"
        base, n = name, 2
        while name in names:
            name, n = f"{base} ({n})", n + 1
        names.append(name)
    width = len(names)
    out: list[list[str]] = []
    lines: list[int] = []
    for i, row in enumerate(rows):
        cells = [str(c) if c is not None else "" for c in row[:width]]
        if not any(c.strip() for c in cells):
            continue
        out.append(cells + [""] * (width - len(cells)))
        lines.append(i + 2)
    if not out:
        raise ImportFileError("The file has a header row but no records under it.")
    if len(out) > MAX_ROWS:
        raise ImportFileError(f"The file has {len(out):,} rows; at most {MAX_ROWS:,} at once.")
    return names, [[str(n), *r] for n, r in zip(lines, out, strict=True)]
