"""Text hygiene shared by every report: file names are hostile input.

Three different hazards, three small functions:

- `safe_text`: paths arrive as `str` decoded with `os.fsdecode`, so bytes that are not valid
  UTF-8 are lone surrogates (U+DC80..U+DCFF, PEP 383). Writing those with a strict UTF-8 codec
  raises, and writing them with `surrogatepass` produces invalid UTF-8 that breaks the reader
  instead. We render each such byte as the four characters ``\\xNN`` (like Python's
  ``backslashreplace``), any other lone surrogate as ``\\uNNNN``. The output is valid UTF-8 and a
  human or `grep` still finds the file. The mapping is not reversible when the name also holds a
  literal backslash; reports are for reading, the scan itself always used the real bytes.
- `printable`: for terminals, control characters (newline, ESC of an ANSI sequence, ...) are
  shown as escapes so a file name can neither break the table layout nor drive the terminal.
- `csv_path`: the same guard for the path column, as ``./-x.jpg`` (still a path that opens).
- `csv_text`: spreadsheet formula injection (OWASP "CSV Injection"): a text cell starting with
  ``=``, ``+``, ``-``, ``@``, tab or carriage return is prefixed with a single quote ``'`` so
  Excel/LibreOffice/Sheets show it as text instead of evaluating it.
"""

from __future__ import annotations

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """`text` with every lone surrogate replaced by a backslash escape (valid UTF-8 out)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte smuggled through by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:  # any other lone surrogate (e.g. from a Windows name)
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def printable(text: str) -> str:
    """`safe_text` plus C0/C1 control characters and DEL shown as escapes, for terminals."""
    text = safe_text(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def csv_path(path: str) -> str:
    """A relative path that a spreadsheet would run as a formula (``-x.jpg``, ``=1+1.png``) as
    ``./-x.jpg``: still the same file for a shell or a script, and text for a spreadsheet."""
    text = safe_text(path)
    return "./" + text if text.startswith(_FORMULA_START) else text


def csv_text(text: str) -> str:
    """`safe_text` plus the OWASP formula-injection guard (a leading ``'``)."""
    text = safe_text(text)
    return "'" + text if text.startswith(_FORMULA_START) else text
