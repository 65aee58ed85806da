"""Validate the user's C prefix: every generated symbol starts with it.

A prefix must be a C identifier that stays one after ``_model`` / ``_step`` /
``_state_t`` are appended and after it is upper-cased for macros, and it must
not be (or upper-case to) a C99 keyword, a name the C standard reserves, or a
macro that common toolchains predefine.
"""

from __future__ import annotations

import re

from elman.errors import ElmanError


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


MAX_PREFIX_LENGTH = 24  # room for the longest suffix within C99's 63 significant characters

C99_KEYWORDS = _words(
    """auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while _Bool _Complex _Imaginary"""
)

# Names a prefix must not equal: macros and identifiers from <stdint.h>/<stddef.h>, the
# C library, and the predefined macros of GCC, Clang, IAR, Keil and the ARM CMSIS headers.
COMMON_MACROS = _words(
    """bool true false NULL offsetof size_t ptrdiff_t wchar_t max_align_t main errno assert
    int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t intptr_t uintptr_t
    intmax_t uintmax_t unix linux arm thumb i386 asm fortran complex imaginary static_assert
    alignas alignof noreturn thread_local min max abs stdin stdout stderr printf malloc free
    memcpy memset strlen exit abort"""
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_STDINT_NAME = re.compile(r"u?int(_least|_fast|ptr|max)?\d*_(t|max|min|c)\Z")


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start every generated C name, else raise ElmanError."""
    if not isinstance(prefix, str) or prefix == "":
        raise ElmanError("the C prefix must not be empty")
    if not _IDENTIFIER.match(prefix):
        if prefix[0].isdigit():
            raise ElmanError(f"C prefix {prefix!r} starts with a digit; a C identifier cannot")
        raise ElmanError(
            f"C prefix {prefix!r} is not a C identifier: use letters, digits and '_' only"
        )
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise ElmanError(f"C prefix {prefix!r} is longer than {MAX_PREFIX_LENGTH} characters")
    if prefix in C99_KEYWORDS or prefix.upper() in C99_KEYWORDS:
        raise ElmanError(f"C prefix {prefix!r} is a reserved word of C99")
    if prefix.startswith("__") or (prefix[0] == "_" and prefix[1:2].isupper()):
        raise ElmanError(
            f"C prefix {prefix!r} is reserved for the compiler and C library "
            "(names starting with '__' or '_' and a capital letter)"
        )
    if prefix.startswith("_"):
        raise ElmanError(f"C prefix {prefix!r} starts with '_': file-scope names like it are "
                         "reserved by the C standard")
    if prefix.endswith("_") or "__" in prefix:
        raise ElmanError(f"C prefix {prefix!r} would put '__' into generated names, which C++ "
                         "reserves; drop the trailing or double underscore")
    if prefix in COMMON_MACROS or prefix.lower() in COMMON_MACROS:
        raise ElmanError(f"C prefix {prefix!r} is a standard library name or a common "
                         "predefined macro; choose a more specific prefix")
    if _STDINT_NAME.match(prefix.lower()):
        raise ElmanError(f"C prefix {prefix!r} looks like a <stdint.h> type or limit macro")
    return prefix
