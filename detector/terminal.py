"""The one escaping function for text shown on a terminal: file names are hostile input.

A file name may hold an ESC sequence (recolour the terminal, move the cursor, set the window
title, on some terminals worse) or a newline that forges a second message line. Everything a
command prints to a terminal that came from outside (paths in error lines, warnings, the
colorize failure list, a machine report written to a tty) goes through `printable`:

- bytes that are not valid UTF-8 arrive as lone surrogates (`os.fsdecode`, PEP 383) and are
  shown as ``\\xNN`` (other lone surrogates as ``\\uNNNN``) so the output is valid UTF-8;
- C0/C1 control characters and DEL are shown as their Python escapes (``\\x1b``, ``\\n``).

`printable_lines` keeps line ends (for a report stream on a tty). Standard library only: the
CLI modules import this at top level.
"""

from __future__ import annotations


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


def printable_lines(text: str) -> str:
    """`printable` for each line of `text`, keeping its line ends (\\n, \\r\\n) as they are."""
    return "".join(
        printable(line.rstrip("\r\n")) + line[len(line.rstrip("\r\n")) :]
        for line in text.splitlines(keepends=True)
    )
