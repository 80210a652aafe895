"""How a spreadsheet export is written: text encoding, delimiter, decimal mark, thousands groups.

Detected from the file unless given (``--encoding``, ``--decimal``): UTF-8 with or without a
byte-order mark, UTF-16 with one (Excel's "Unicode text"), otherwise Windows-1252 / Latin-1;
the delimiter that splits every line into the same number of fields (``,`` ``;`` tab ``|``,
or Excel's ``sep=;`` first line); a decimal comma when the numbers are written ``14,23`` (what
Excel writes in much of Europe). Thousands groups (``1.234,5``, ``1,234.5``, ``1 234,5``,
``1'234.5``) are read whatever the decimal mark.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from vaelab.errors import DataError

DELIMITERS = (",", ";", "\t", "|")
ENCODINGS = ("auto", "utf-8", "utf-16", "cp1252", "latin-1")
DECIMALS = ("auto", ".", ",")
MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a", "missing"}
"""Cells read as missing (compared lower-case, after stripping spaces)."""

_GROUP_SPACES = " \u00a0\u202f'"  # space, no-break space, narrow no-break space, apostrophe
_EXP = r"(?:[eE][+-]?\d+)?"


@dataclass(frozen=True)
class Dialect:
    """What :func:`detect` found (or was told); kept with the data so files written back from a
    run (imputed tables, synthetic rows) use the same conventions."""

    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."
    bom: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"encoding": self.encoding, "delimiter": self.delimiter, "decimal": self.decimal,
                "bom": self.bom}

    @classmethod
    def from_dict(cls, d: dict[str, object] | None) -> Dialect:
        d = d or {}
        return cls(encoding=str(d.get("encoding", "utf-8")), delimiter=str(d.get("delimiter", ",")),
                   decimal=str(d.get("decimal", ".")), bom=bool(d.get("bom", False)))


def decode_text(raw: bytes, path: Path, encoding: str = "auto") -> tuple[str, str, bool]:
    """The file's text, the encoding used and whether it began with a byte-order mark."""
    if encoding not in ENCODINGS:
        raise DataError(f"--encoding got {encoding!r}; choose one of {', '.join(ENCODINGS)}.")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) and encoding in ("auto", "utf-16"):
        try:
            return raw.decode("utf-16"), "utf-16", True
        except UnicodeDecodeError:
            raise DataError(f"{path} starts with a UTF-16 byte-order mark but is not valid "
                            "UTF-16; save it again as CSV (UTF-8).") from None
    bom = raw.startswith(b"\xef\xbb\xbf")
    if encoding in ("auto", "utf-8"):
        try:
            return raw.decode("utf-8-sig"), "utf-8", bom
        except UnicodeDecodeError as exc:
            if encoding == "utf-8":
                raise DataError(f"{path} is not UTF-8 text (byte {exc.start}); pass --encoding "
                                "cp1252 or latin-1 for a file saved by older Excel.") from None
    if encoding == "utf-16":
        raise DataError(f"{path} has no UTF-16 byte-order mark; pass --encoding auto.")
    if encoding in ("auto", "cp1252"):
        try:
            return raw.decode("cp1252"), "cp1252", False
        except UnicodeDecodeError:
            if encoding == "cp1252":
                raise DataError(f"{path} is not Windows-1252 text; pass --encoding latin-1."
                                ) from None
    return raw.decode("latin-1"), "latin-1", False


def _unquoted_count(line: str, ch: str) -> int:
    n, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == ch and not quoted:
            n += 1
    return n


def sniff_delimiter(lines: list[str], suffix: str = "") -> str:
    """The delimiter giving every sampled line the same (non-zero) number of fields."""
    if suffix in (".tsv", ".tab"):
        return "\t"
    sample = lines[:50]
    best, best_key = ",", (0.0, 0)
    for rank, d in enumerate(("\t", ";", ",", "|")):
        counts = [_unquoted_count(ln, d) for ln in sample]
        if not any(counts):
            continue
        mode = max(set(counts), key=counts.count)
        share = counts.count(mode) / len(counts) if mode else 0.0
        key = (share, -rank)
        if mode and key > best_key:
            best, best_key = d, key
    return best


def split_rows(text: str, path: Path, suffix: str = "") -> tuple[list[list[str]], str]:
    """Rows of stripped cells (blank lines skipped) and the delimiter used."""
    lines = text.splitlines()
    delim = None
    if lines and re.fullmatch(r'"?sep=(.)"?', lines[0].strip()):  # Excel's separator hint
        delim = re.fullmatch(r'"?sep=(.)"?', lines[0].strip()).group(1)
        text = text.split("\n", 1)[1] if "\n" in text else ""
        lines = lines[1:]
    nonblank = [ln for ln in lines if ln.strip()]
    if not nonblank:
        raise DataError(f"{path} is empty; give a CSV with one example per row.")
    delim = delim or sniff_delimiter(nonblank, suffix)
    try:
        rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text), delimiter=delim)]
    except csv.Error as exc:
        raise DataError(f"{path} is not valid CSV ({exc}); check its quotes.") from None
    return [r for r in rows if any(c for c in r)], delim


_DOT_GROUPS = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+")
_COMMA_GROUPS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")


def _vote(cell: str) -> str | None:
    """Which decimal mark one cell implies: '.', ',' or None (no sign, or ambiguous)."""
    s = cell.strip().strip(_GROUP_SPACES)
    for ch in _GROUP_SPACES:
        s = s.replace(ch, "")
    if not s or not re.fullmatch(r"[+-]?[\d.,]+" + _EXP, s) or not any(c.isdigit() for c in s):
        return None
    if "." in s and "," in s:
        return "," if s.rfind(",") > s.rfind(".") else "."
    if "," in s:
        if s.count(",") > 1:
            return "." if _COMMA_GROUPS.fullmatch(s) else None
        return None if re.fullmatch(r"[+-]?\d{1,3},\d{3}", s) else ","
    if "." in s:
        if s.count(".") > 1:
            return "," if _DOT_GROUPS.fullmatch(s) else None
        return None if re.fullmatch(r"[+-]?\d{1,3}\.\d{3}", s) else "."
    return None


def detect_decimal(rows: list[list[str]], delimiter: str) -> str:
    """',' when the numbers are written with a decimal comma, '.' otherwise."""
    votes = {".": 0, ",": 0}
    for r in rows[:2000]:
        for c in r:
            v = _vote(c)
            if v:
                votes[v] += 1
    if votes[","] > votes["."]:
        return ","
    if votes["."] > votes[","]:
        return "."
    return "," if delimiter == ";" else "."


def parse_number(cell: str, decimal: str = ".") -> float | None:
    """The number a cell holds (None when it holds none), honouring the decimal mark and
    thousands groups; missing cells are not numbers (check :func:`is_missing` first).

    With a decimal comma, ``1.234`` is a thousands group (1234) but ``1.5`` still reads 1.5.
    """
    s = cell.strip()
    if not s:
        return None
    if s[-1].isdigit() and "_" not in s and (decimal == "." or ("," not in s and "." not in s)):
        try:  # the common case, fast
            return float(s)
        except ValueError:
            pass
    for ch in _GROUP_SPACES:  # "1 234,5", "1'234.5"
        if ch in s:
            if not re.fullmatch(r"[+-]?\d{1,3}(?:" + re.escape(ch) + r"\d{3})+(?:[.,]\d*)?" + _EXP,
                                s):
                return None
            s = s.replace(ch, "")
    thousands = "." if decimal == "," else ","
    m = re.fullmatch(r"([+-]?\d{1,3}(?:" + re.escape(thousands) + r"\d{3})+)((?:"
                     + re.escape(decimal) + r"\d*)?" + _EXP + ")", s)
    if m:
        s = m.group(1).replace(thousands, "") + m.group(2)
    if decimal == ",":
        if "," in s:
            if s.count(",") > 1 or "." in s:
                return None
            s = s.replace(",", ".")
    elif "," in s:
        return None
    if not re.fullmatch(r"[+-]?(?:\d+\.?\d*|\.\d+)" + _EXP + r"|[+-]?inf(?:inity)?", s,
                        flags=re.IGNORECASE):
        return None
    return float(s)


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def format_number(value: float, decimals: int, decimal: str = ".") -> str:
    """``value`` with ``decimals`` digits after the mark (an integer when 0), no groups."""
    text = f"{value:.{decimals}f}" if decimals > 0 else str(round(value))
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text.replace(".", decimal) if decimal != "." else text


def decimals_of(cell: str, decimal: str = ".") -> int:
    """Digits after the decimal mark in a cell as written (0 for integers, capped at 8)."""
    s = cell.strip().lower()
    if "e" in s:
        return 6
    if decimal in s:
        tail = s.rsplit(decimal, 1)[1]
        if tail.isdigit():
            return min(len(tail), 8)
    return 0
