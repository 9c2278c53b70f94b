"""File names that arrive over the network, made safe to create on any OS; sizes for humans.
Pure: no file system access (the caller checks what exists).

A shared file's name is chosen by whoever shared it, and passes through a server nobody has
to trust, so the receiving side treats it as hostile (IRC DCC clients were broken by names
like ``../../.bashrc``; terminals by names that carry escape sequences). :func:`safe_file_name`
keeps a plain base name:

* only what follows the last ``/`` or ``\\`` (both separators, whatever this OS uses), so no
  directory, no ``..``, no absolute path; a drive (``C:``) or an NTFS stream (``a:b``) cannot
  survive either, since ``:`` is replaced;
* no control or format characters (C0, C1, DEL, bidi overrides, zero-width characters): an
  ESC is removed, so ``a\\x1b[2Jb`` becomes the harmless ``a[2Jb``; the control pictures the
  chat protocol shows instead of them (U+2400 block) are removed too;
* none of the characters Windows refuses (``< > : " | ? *``), replaced by ``_``;
* no leading dots (no hidden file, no ``..``) and no leading or trailing spaces and dots
  (Windows drops trailing ones: ``evil.exe.`` would be ``evil.exe``);
* no leading ``-`` (``-rf``, ``--json``: a name a shell command would read as an option): an
  ``_`` goes in front;
* not a reserved Windows device name (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM1``-``COM9``,
  ``LPT1``-``LPT9``, with any extension: ``con.txt``): an ``_`` goes in front;
* at most :data:`MAX_NAME_BYTES` bytes of UTF-8, the extension kept (and so is a name with
  its de-duplication suffix, :func:`numbered`);
* an empty result is replaced by a generated name.
"""

from __future__ import annotations

import re
import unicodedata

#: the longest name kept, in UTF-8 bytes: file systems allow 255, and ``name (9999).ext`` and
#: the temporary ``.richchat-....part`` files need room beside it
MAX_NAME_BYTES = 200
#: the longest extension kept as one (``.tar.gz``): a longer "extension" is part of the name
MAX_EXT_CHARS = 16

_WINDOWS_FORBIDDEN = set('<>:"/\\|?*')
_RESERVED = {"con", "prn", "aux", "nul", "conin$", "conout$", "clock$"} | {
    f"{dev}{n}" for dev in ("com", "lpt") for n in (*"123456789", "¹", "²", "³")
}
_DOUBLE_EXT = re.compile(r"\.tar\.[A-Za-z0-9]{1,4}$", re.IGNORECASE)


def _dropped(ch: str) -> bool:
    """Control and format characters, line/paragraph separators, and the visible pictures of
    controls the chat protocol substitutes (U+2400-U+2426, U+FFFD)."""
    if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        return True
    return "\u2400" <= ch <= "\u2426" or ch == "\ufffd"


def split_ext(name: str) -> tuple[str, str]:
    """``report.pdf`` -> (``report``, ``.pdf``); ``a.tar.gz`` -> (``a``, ``.tar.gz``);
    ``README`` -> (``README``, ``""``); an "extension" longer than :data:`MAX_EXT_CHARS`
    characters is part of the name."""
    m = _DOUBLE_EXT.search(name)
    if m and m.start() > 0:
        return name[: m.start()], name[m.start() :]
    dot = name.rfind(".")
    if dot <= 0 or len(name) - dot > MAX_EXT_CHARS:
        return name, ""
    return name[:dot], name[dot:]


def _fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def safe_file_name(name: str, fallback: str = "file") -> str:
    """A name safe to create in a download directory (see the module text); ``fallback``
    (itself cleaned) when nothing is left."""
    name = unicodedata.normalize("NFC", name)
    # only the last component, whichever separator the sender's OS uses
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if not _dropped(ch))
    name = "".join("_" if ch in _WINDOWS_FORBIDDEN else ch for ch in name)
    name = name.strip(" .").lstrip(".").strip(" ")
    if not name:
        return _fallback(fallback)
    stem, ext = split_ext(name)
    device = stem.split(".", 1)[0].rstrip(" ").casefold()
    if device in _RESERVED or stem.startswith("-"):
        stem = "_" + stem
    ext = _fit(ext, MAX_EXT_CHARS * 4)
    stem = _fit(stem, MAX_NAME_BYTES - len(ext.encode("utf-8"))).rstrip(" .")
    if not stem:
        return _fallback(fallback)
    return stem + ext


def _fallback(fallback: str) -> str:
    return safe_file_name(fallback, "") if fallback else "file"


def numbered(name: str, n: int) -> str:
    """The ``n``-th alternative to an existing ``name``: ``report (1).pdf``, ``a (2).tar.gz``;
    never longer than :data:`MAX_NAME_BYTES` (a name that long already loses the end of its
    stem to the `` (n)``, its extension kept)."""
    if n <= 0:
        return name
    stem, ext = split_ext(name)
    suffix = f" ({n}){ext}"
    room = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    if len(stem.encode("utf-8")) > room:
        stem = _fit(stem, room).rstrip(" .") or "file"
    return stem + suffix


def human_size(size: int) -> str:
    """``1234567`` -> ``1.2 MB`` (powers of 1000, as file managers show them); ``999 B``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``100MiB``, ``100M`` (binary: MiB), ``1G``, ``1.5GB``, ``512k``, ``1000000`` -> bytes.

    A letter alone means the binary unit (``100M`` = 100 MiB, as ``dd`` and ``ulimit`` read
    it); ``kB``/``MB``/``GB`` written with their ``B`` and no ``i`` are decimal. Raises
    ValueError for anything else."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (say 100M, 1G, 1048576)")
    number, unit, binary = m.groups()
    power = " kmgt".index(unit.lower() or " ")
    base = 1024 if (binary or not text.strip().lower().endswith("b") or not unit) else 1000
    return int(float(number) * base**power)


def size_above_zero(text: str) -> bool:
    """Whether the size ``text`` names more than 0 bytes: :func:`parse_size` rounds a size
    under 1 byte (``0.5``) down to 0."""
    m = _SIZE_RE.match(text)
    return m is not None and float(m.group(1)) > 0


def short_sha(sha256: str) -> str:
    """The first 12 hex digits of a SHA-256: what the chat shows beside a file."""
    return sha256[:12]
