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

# The terminal escaping lives in one place for reports and the CLI's own messages alike.
from imgcheck.terminal import printable as printable
from imgcheck.terminal import safe_text as safe_text

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_path(path: str) -> str:
    """A relative path that a spreadsheet would run as a formula (``-x.jpg``, ``=1+1.png``) as
    ``./-x.jpg``: still the same file for a shell or a script, and text for a spreadsheet."""
    text = safe_text(path)
    return "./" + text if text.startswith(_FORMULA_START) else text


def csv_text(text: str) -> str:
    """`safe_text` plus the OWASP formula-injection guard (a leading ``'``)."""
    text = safe_text(text)
    return "'" + text if text.startswith(_FORMULA_START) else text
