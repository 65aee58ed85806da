"""Text corpora for character-level language modelling: fortunes and user text files.

``text:fortunes`` reads every plain quotation file of Debian's ``fortunes``
package (``/usr/share/games/fortunes/<name>``; not the ``.dat`` indexes, not the
``.u8`` links, not the ``off/`` directory), splits them into quotations at the
``%`` lines, and assigns each quotation to validation when the CRC-32 of its
text is ``0 mod 10`` (about 10%): deterministic, independent of file order, and
identical quotations always land on the same side, so validation text is unseen.
Each quotation is written to the stream followed by ``%\\n``, as in the files.

Cleaning (both corpora): overstrike sequences ``X\\bY`` become ``Y``; control
characters (C0 other than newline and tab, DEL, C1) are dropped; ``\\r\\n`` becomes ``\\n``.

``text:PATH`` (UTF-8): paragraphs (separated by blank lines) are split with the
same CRC-32 rule when there are at least 20 of them and both sides are
non-empty; otherwise the last 10% of the characters (from a line start) are
the validation text.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

from elman.errors import DataError

FORTUNES_DIR = Path("/usr/share/games/fortunes")
VAL_MODULUS = 10  # one quotation in ten (by CRC-32) is validation

_OVERSTRIKE = re.compile(r".\x08")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n")
    text = _OVERSTRIKE.sub("", text)
    return _CONTROL.sub("", text)


def fortunes_files(directory: Path = FORTUNES_DIR) -> list[Path]:
    if not directory.is_dir():
        raise DataError(
            f"{directory} not found: install Debian's fortunes package "
            "(apt-get install -y --no-install-recommends fortunes)"
        )
    files = [
        p
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8")
    ]
    if not files:
        raise DataError(f"{directory} holds no fortune files")
    return files


def split_quotations(text: str) -> list[str]:
    """Quotations of a fortune file (separated by lines holding only ``%``), cleaned."""
    quotes, current = [], []
    for line in clean_text(text).split("\n"):
        if line.strip() == "%":
            quotes.append("\n".join(current))
            current = []
        else:
            current.append(line)
    quotes.append("\n".join(current))
    return [q.strip("\n") + "\n" for q in quotes if q.strip()]


def is_validation(piece: str) -> bool:
    return zlib.crc32(piece.encode("utf-8")) % VAL_MODULUS == 0


def fortunes_split(directory: Path = FORTUNES_DIR) -> tuple[str, str]:
    """(train text, validation text) of the fortunes corpus."""
    train, val = [], []
    for path in fortunes_files(directory):
        for q in split_quotations(path.read_bytes().decode("utf-8", errors="replace")):
            (val if is_validation(q) else train).append(q + "%\n")
    return "".join(train), "".join(val)


def read_text_file(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    text = clean_text(text)
    if not text.strip():
        raise DataError(f"{path}: empty text")
    return text


def text_file_split(path: Path) -> tuple[str, str, str]:
    """(train text, validation text, split method) of a user text file."""
    text = read_text_file(path)
    paragraphs = [p + "\n\n" for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(paragraphs) >= 20:
        val = [p for p in paragraphs if is_validation(p)]
        train = [p for p in paragraphs if not is_validation(p)]
        if val and train:
            return "".join(train), "".join(val), "paragraph-crc32"
    cut = int(len(text) * 0.9)
    line_start = text.rfind("\n", 0, cut) + 1
    if line_start > len(text) // 2:
        cut = line_start
    if cut < 2 or len(text) - cut < 2:
        raise DataError(f"{path}: too little text to split into training and validation")
    return text[:cut], text[cut:], "last-10-percent"
