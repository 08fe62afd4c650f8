"""Walking like a repository tool: what a folder walk skips besides dot-names.

- Always (in a folder walk; a path named explicitly is still scanned): `node_modules`,
  `__pycache__`, and virtual environments (a folder holding `pyvenv.cfg`, whatever its name).
  `.git`, `.venv` and other dot-names are skipped by `inputs` itself.
- Unless `--no-ignore`: what git ignores. Inside a git work tree (a folder with `.git` above
  the path), the `.gitignore` files from the top level down to the file's folder apply, and
  `.git/info/exclude`, with git's rules (gitignore(5)): `#` comments, `!` negation (the last
  matching pattern wins, deeper files after shallower ones), a trailing `/` matches folders
  only, a pattern with a `/` other than at its end is anchored to its file's folder, `*` and
  `?` never match `/`, `**` matches across folders, `[...]` classes, `\\` escapes. A file
  inside an ignored folder cannot be re-included (the folder is never entered), as in git.
  Outside a git work tree `.gitignore` files are not read (like git, ruff and ripgrep).

Patterns are compiled once per `.gitignore` file and cached by folder; a walk asks
`ignored(path, is_dir)` once per entry. Standard library only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

ALWAYS_SKIP = frozenset({"node_modules", "__pycache__"})


def is_virtualenv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def always_skipped_dir(path: str, name: str) -> bool:
    """Folders a walk never enters: node_modules, __pycache__, virtual environments."""
    return name in ALWAYS_SKIP or is_virtualenv(path)


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool
    anchored: bool  # matched against the path relative to the file's folder; else the name


def _translate(glob: str) -> str:
    """gitignore glob (already without leading/trailing slashes) -> regex source."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                before_ok = i == 0 or glob[i - 1] == "/"
                after = i + 2
                if before_ok and (after == n or glob[after] == "/"):
                    if after == n:  # trailing /**: everything inside
                        out.append(".*")
                        i = after
                    else:  # **/ : zero or more folders
                        out.append("(?:.*/)?")
                        i = after + 1
                    continue
                out.append("[^/]*")  # ** not between slashes acts like *
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and glob[j] in "!^":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : j]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def parse_line(line: str) -> _Pattern | None:
    """One .gitignore line -> pattern, or None for blanks and comments."""
    line = line.rstrip("\n").rstrip("\r")
    if not line or line.startswith("#"):
        return None
    # Trailing spaces are ignored unless escaped with a backslash.
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        stripped += " "
    line = stripped
    negate = line.startswith("!")
    if negate or line.startswith(("\\!", "\\#")):
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.lstrip("/")
    regex = re.compile(_translate(line) + r"\Z", re.DOTALL)
    return _Pattern(regex, negate, dir_only, anchored)


def parse(text: str) -> list[_Pattern]:
    return [p for p in map(parse_line, text.splitlines()) if p is not None]


def _read_patterns(path: str) -> list[_Pattern]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            return parse(fh.read())
    except OSError:
        return []


def find_git_root(path: str) -> str | None:
    """The work tree top level above `path` (a folder holding `.git`, folder or file), or None."""
    folder = os.path.abspath(path)
    if not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


class GitIgnore:
    """`ignored(path, is_dir)` by the .gitignore files of the work tree that holds `path`."""

    def __init__(self) -> None:
        self._dirs: dict[str, list[_Pattern]] = {}  # folder -> its .gitignore patterns
        self._roots: dict[str, str | None] = {}  # folder -> git top level (or None)

    def _root_of(self, folder: str) -> str | None:
        if folder not in self._roots:
            self._roots[folder] = find_git_root(folder)
        return self._roots[folder]

    def _patterns(self, folder: str, root: str) -> list[_Pattern]:
        got = self._dirs.get(folder)
        if got is None:
            got = _read_patterns(os.path.join(folder, ".gitignore"))
            if folder == root:
                got = _read_patterns(os.path.join(root, ".git", "info", "exclude")) + got
            self._dirs[folder] = got
        return got

    def ignored(self, path: str, is_dir: bool) -> bool:
        path = os.path.abspath(path)
        folder = os.path.dirname(path)
        root = self._root_of(folder)
        if root is None:
            return False
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        if rel == "." or rel.startswith("../"):
            return False
        parts = rel.split("/")
        name = parts[-1]
        decision = False
        base = root
        for depth in range(len(parts)):  # the .gitignore of root, then of each sub-folder
            if depth:
                base = os.path.join(base, parts[depth - 1])
            sub = "/".join(parts[depth:])  # the path relative to that .gitignore's folder
            for pattern in self._patterns(base, root):
                if pattern.dir_only and not is_dir:
                    continue
                target = sub if pattern.anchored else name
                if pattern.regex.match(target):
                    decision = not pattern.negate
        return decision

    def ignored_with_parents(self, path: str) -> bool:
        """`ignored` for `path` or any folder between it and the work tree's top level (for
        what a glob finds: git would never have walked into an ignored folder)."""
        path = os.path.abspath(path)
        root = self._root_of(os.path.dirname(path))
        if root is None:
            return False
        current, is_dir = path, os.path.isdir(path)
        while current != root and current.startswith(root + os.sep):
            if self.ignored(current, is_dir):
                return True
            current, is_dir = os.path.dirname(current), True
        return False


__all__ = ["GitIgnore", "always_skipped_dir", "find_git_root", "is_virtualenv", "parse"]
