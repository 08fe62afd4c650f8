"""Optional Pillow plugins for the formats phones and new cameras write: HEIC/HEIF and AVIF.

- HEIC/HEIF (iPhone photos) through `pillow-heif`: `pip install 'imgcheck-colorize[heif]'`.
- AVIF through Pillow itself (its wheels read AVIF since Pillow 11.2), else through
  `pillow-avif-plugin` or `pillow-heif` when one is installed.

`register()` loads whichever plugins are installed, once (thread-safe; `decode` calls it before
opening a file). `missing_message(head)` turns "Pillow cannot identify this file" into a row
that names the extra to install, when the file's first bytes say it is HEIF or AVIF.
"""

from __future__ import annotations

import threading

HEIF_EXTRA = "pip install 'imgcheck-colorize[heif]'"
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
_AVIF_BRANDS = (b"avif", b"avis")

_lock = threading.Lock()
_done = False
loaded: list[str] = []  # names of the plugins that registered


def register() -> None:
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        try:
            import pillow_heif  # type: ignore[import-not-found]

            pillow_heif.register_heif_opener()
            loaded.append("pillow-heif")
            if hasattr(pillow_heif, "register_avif_opener") and not _pillow_reads_avif():
                pillow_heif.register_avif_opener()
        except Exception:  # not installed, or broken: HEIF files get a clear error row
            pass
        if not _pillow_reads_avif():
            try:
                import pillow_avif  # type: ignore[import-not-found]  # noqa: F401

                loaded.append("pillow-avif-plugin")
            except Exception:
                pass
        _done = True


def _pillow_reads_avif() -> bool:
    try:
        from PIL import features

        return bool(features.check("avif"))
    except Exception:
        return False


def brand(head: bytes) -> str | None:
    """'heif' or 'avif' from an ISO-BMFF `ftyp` box at the start of a file, else None."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    major = head[8:12]
    if major in _AVIF_BRANDS:
        return "avif"
    if major in _HEIF_BRANDS:
        return "heif"
    return None


def missing_message(head: bytes) -> str | None:
    """The error row for a HEIF/AVIF file no installed plugin could read, or None."""
    kind = brand(head)
    if kind == "heif":
        return f"HEIC/HEIF image, but no HEIF plugin is installed: {HEIF_EXTRA}"
    if kind == "avif":
        return (
            "AVIF image, but this Pillow cannot read AVIF: upgrade Pillow to 11.2 or newer "
            "(its wheels read AVIF), or pip install pillow-avif-plugin"
        )
    return None
