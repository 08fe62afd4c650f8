"""iter_inputs(): folders, globs, stdin, filters, symlink loops, odd names; errors as items."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from imgcheck import inputs
from imgcheck.inputs import InputItem, display_path, iter_inputs, sniff


def _img(path: Path, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path, fmt)
    return path


def _paths(items: list[InputItem], base: Path) -> list[str]:
    return [os.path.relpath(i.path, base) for i in items]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    _img(tmp_path / "b.png")
    _img(tmp_path / "a.jpg", "JPEG")
    _img(tmp_path / "sub" / "c.webp", "WEBP")
    _img(tmp_path / "sub" / "deeper" / "d.png")
    _img(tmp_path / "noext", "JPEG")  # found by its content
    (tmp_path / "readme.txt").write_text("not an image")
    (tmp_path / "data.bin").write_bytes(b"\x00" * 64)
    _img(tmp_path / ".hidden" / "e.png")
    _img(tmp_path / "._a.jpg")  # macOS resource fork twin: skipped with other dot names
    return tmp_path


def test_folder_recursive_sorted_and_by_content(tree: Path) -> None:
    items = list(iter_inputs([str(tree)]))
    assert all(i.error is None for i in items)
    assert _paths(items, tree) == ["a.jpg", "b.png", "noext", "sub/c.webp", "sub/deeper/d.png"]


def test_no_recursive(tree: Path) -> None:
    items = list(iter_inputs([tree], recursive=False))
    assert _paths(items, tree) == ["a.jpg", "b.png", "noext"]


def test_include_exclude(tree: Path) -> None:
    got = _paths(list(iter_inputs([tree], include=["*.png"])), tree)
    assert got == ["b.png", "sub/deeper/d.png"]
    got = _paths(list(iter_inputs([tree], exclude=["deeper", "*.jpg"])), tree)
    assert got == ["b.png", "noext", "sub/c.webp"]
    got = _paths(list(iter_inputs([tree], exclude=["sub/*"])), tree)
    assert got == ["a.jpg", "b.png", "noext"]


def test_explicit_files_always_yielded(tree: Path) -> None:
    items = list(iter_inputs([tree / "readme.txt", tree / "missing.png"], include=["*.png"]))
    assert items[0] == InputItem(str(tree / "readme.txt"))  # decode will give it its error row
    assert items[1].error == "no such file or directory"


def test_glob_patterns(tree: Path) -> None:
    items = list(iter_inputs([str(tree / "**" / "*.png")]))
    assert _paths(items, tree) == ["b.png", "sub/deeper/d.png"]
    missing = list(iter_inputs([str(tree / "*.gif")]))
    assert missing[0].error == "no files match this pattern"


def test_literal_path_wins_over_glob(tmp_path: Path) -> None:
    _img(tmp_path / "[1].png")
    items = list(iter_inputs([str(tmp_path / "[1].png")]))
    assert items == [InputItem(str(tmp_path / "[1].png"))]


def test_stdin_paths_with_non_utf8_name(tree: Path) -> None:
    raw = os.fsencode(str(tree)) + b"/caf\xe9.png"
    with open(raw, "wb") as fh:
        Image.new("RGB", (4, 4)).save(fh, "PNG")
    stdin = io.BytesIO(os.fsencode(str(tree / "a.jpg")) + b"\n\n" + raw + b"\n")
    items = list(iter_inputs(["-"], stdin=stdin))
    assert [i.error for i in items] == [None, None]
    assert os.path.exists(items[1].path)  # the surrogate-escaped str opens the right file
    assert items[1].display.endswith("caf\\xe9.png")


def test_stdin_text_stream_and_folder_line(tree: Path) -> None:
    items = list(iter_inputs(["-"], stdin=io.StringIO(f"{tree / 'sub'}\r\n")))
    assert _paths(items, tree) == ["sub/c.webp", "sub/deeper/d.png"]


def test_symlink_loop_walked_once(tmp_path: Path) -> None:
    _img(tmp_path / "root" / "a.png")
    (tmp_path / "root" / "loop").symlink_to(tmp_path / "root")
    (tmp_path / "root" / "again").symlink_to(tmp_path / "root")
    items = list(iter_inputs([tmp_path / "root", tmp_path / "root"]))
    assert _paths(items, tmp_path) == ["root/a.png"]


def test_broken_symlink_and_directory_named_like_image(tmp_path: Path) -> None:
    (tmp_path / "dead.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (tmp_path / "dead.txt").symlink_to(tmp_path / "nowhere.txt")
    _img(tmp_path / "x.jpg" / "inside.png")
    items = list(iter_inputs([tmp_path]))
    assert [(os.path.relpath(i.path, tmp_path), i.error) for i in items] == [
        ("dead.jpg", "broken symlink"),
        ("x.jpg/inside.png", None),
    ]
    [dead] = iter_inputs([tmp_path / "dead.jpg"])
    assert dead.error == "broken symlink"
    [inside] = iter_inputs([tmp_path / "x.jpg"], recursive=False)
    assert inside.path.endswith("inside.png")


def test_fifo_skipped_in_walk_reported_when_named(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    assert list(iter_inputs([tmp_path])) == []
    [pipe] = iter_inputs([tmp_path / "pipe.jpg"])
    assert pipe.error == "not a regular file"


def test_unreadable_folder_is_an_item(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _img(tmp_path / "locked" / "a.png")

    def denied(path: str) -> None:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(inputs.os, "scandir", denied)  # root can read anything: simulate
    assert list(iter_inputs([tmp_path / "locked"])) == [
        InputItem(str(tmp_path / "locked"), "permission denied")
    ]


def test_streams_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "SORT_LIMIT", 3)
    for i in range(10):
        (tmp_path / f"{i}.png").write_bytes(b"")
    it = iter_inputs([tmp_path])
    assert next(it).path.endswith(".png")  # a big folder starts yielding without a full listing
    assert len(list(it)) == 9


def test_sniff_and_display() -> None:
    assert sniff(b"\xff\xd8\xff\xe0") == "JPEG"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff(b"hello world") is None
    assert display_path("a\udcffb") == "a\\xffb"
