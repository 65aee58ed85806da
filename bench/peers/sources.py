"""The peers' source trees the user points to: where they are, and which commit they are.

Nothing here downloads. A tree that is a git checkout is recorded with its commit; a
tree that is not (an unpacked archive) is recorded as such. TFLM's third-party
folders must be the commits TFLM's own download scripts pin (read from the TFLM
tree itself, so a newer TFLM brings its own pins): a checkout at another commit is
an error, because the numbers would no longer describe that TFLM.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path


class PeerSourceError(Exception):
    """A peer's source tree is missing, incomplete or at the wrong commit."""


@dataclass(frozen=True)
class SourceTree:
    """One peer source tree."""

    name: str
    path: Path
    commit: str | None  # None: not a git checkout

    def to_dict(self) -> dict[str, str | None]:
        return {"path": str(self.path), "commit": self.commit}


def git_commit(path: Path) -> str | None:
    """The checked-out commit of ``path``, or None when it is not a git checkout."""
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        return None
    top = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"],
                         capture_output=True, text=True, check=False).stdout.strip()
    # a folder inside some other repository (e.g. an unpacked archive under a checkout)
    if top and Path(top).resolve() != path.resolve():
        return None
    return proc.stdout.strip()


def checkout_state(path: Path) -> dict[str, object]:
    """The commit of the git checkout at ``path`` and the tracked files changed since
    (elman's own tree, recorded with the numbers it produced)."""
    proc = subprocess.run(["git", "-C", str(path), "status", "--porcelain",
                           "--untracked-files=no"], capture_output=True, text=True, check=False)
    changed = sorted(line[3:] for line in proc.stdout.splitlines()) if proc.returncode == 0 else []
    return {"commit": git_commit(path), "changed_files": changed}


def _resolve(path: Path, rev: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--verify", "-q",
                           f"{rev}^{{commit}}"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or None


def source_tree(name: str, path: Path | str, must_contain: str) -> SourceTree:
    """Check that ``path`` is a directory holding ``must_contain``; record its commit."""
    p = Path(path).expanduser().resolve()
    if not p.is_dir():
        raise PeerSourceError(f"{name}: {p} is not a directory")
    if not (p / must_contain).exists():
        raise PeerSourceError(f"{name}: {p} does not look like the {name} sources "
                              f"({must_contain} is missing)")
    return SourceTree(name, p, git_commit(p))


# ---- TFLM's pins --------------------------------------------------------------------
MAKE_DIR = "tensorflow/lite/micro/tools/make"


@dataclass(frozen=True)
class Pin:
    """A third-party folder of TFLM: where TFLM puts it, the tree that provides it,
    the revision TFLM pins, and whether TFLM patches it."""

    download_name: str  # folder name under tools/make/downloads/
    repo: str  # GitHub owner/name
    rev: str  # commit or tag
    patch: str | None  # path of TFLM's patch inside the TFLM tree
    marker: str  # a file every checkout of it has
    needed_for: str  # why the build needs it


def tflm_pins(tflm: Path) -> dict[str, Pin]:
    """The third-party revisions pinned by the TFLM tree's own download scripts, keyed by
    the folder name the user provides (the repository's name)."""
    make = tflm / MAKE_DIR

    def grab(file: str, pattern: str) -> str:
        text = (make / file).read_text(encoding="utf-8")
        m = re.search(pattern, text)
        if m is None:
            raise PeerSourceError(f"TFLM: no pin matching {pattern!r} in {make / file}; "
                                  "this TFLM's download scripts changed shape")
        return m.group(1)

    cmsis = (make / "ext_libs/cmsis_download.sh").read_text(encoding="utf-8")
    cmsis_revs = re.findall(r'ZIP_PREFIX="([0-9a-f]{40})"', cmsis)
    if len(cmsis_revs) != 2:
        raise PeerSourceError(f"TFLM: expected the CMSIS_6 and Cortex_DFP pins in "
                              f"{make / 'ext_libs/cmsis_download.sh'}")
    return {
        "flatbuffers": Pin("flatbuffers", "google/flatbuffers",
                           grab("flatbuffers_download.sh", r'ZIP_PREFIX="([^"]+)"'),
                           f"{MAKE_DIR}/flatbuffers.patch", "include/flatbuffers/base.h",
                           "headers of the model schema"),
        "gemmlowp": Pin("gemmlowp", "google/gemmlowp",
                        grab("third_party_downloads.inc", r"gemmlowp/archive/([0-9a-f]{40})"),
                        None, "fixedpoint/fixedpoint.h", "fixed-point TANH"),
        "ruy": Pin("ruy", "google/ruy",
                   grab("third_party_downloads.inc", r"ruy/archive/([0-9a-f]{40})"),
                   None, "ruy/profiler/instrumentation.h", "headers"),
        "CMSIS-NN": Pin("cmsis_nn", "ARM-software/CMSIS-NN",
                        grab("ext_libs/cmsis_nn_download.sh", r'ZIP_PREFIX_NN="([0-9a-f]{40})"'),
                        None, "Include/arm_nnfunctions.h", "the CMSIS-NN kernels"),
        "CMSIS_6": Pin("cmsis", "ARM-software/CMSIS_6", cmsis_revs[0], None,
                       "CMSIS/Core/Include/cmsis_compiler.h", "core headers"),
        "Cortex_DFP": Pin("cmsis/Cortex_DFP", "ARM-software/Cortex_DFP", cmsis_revs[1], None,
                          "Device", "device headers"),
        "kissfft": Pin("kissfft", "mborgerding/kissfft",
                       grab("kissfft_download.sh", r"refs/tags/(v[0-9]+)\.zip"),
                       "third_party/kissfft/kissfft.patch", "kiss_fft.h",
                       "only a prerequisite of the Makefile"),
        "pigweed": Pin("pigweed", "google/pigweed",
                       grab("pigweed_download.sh", r"git checkout ([0-9a-f]{40})"),
                       f"{MAKE_DIR}/pigweed.patch", "pw_presubmit",
                       "only a prerequisite of the Makefile"),
    }


def tflm_third_party(tflm: Path, deps: Path) -> dict[str, tuple[Pin, SourceTree]]:
    """Each pinned third-party tree under ``deps`` (one folder per repository, named as the
    repository: flatbuffers, gemmlowp, ruy, CMSIS-NN, CMSIS_6, Cortex_DFP, kissfft,
    pigweed), checked against TFLM's pin. Collects every problem before raising."""
    out: dict[str, tuple[Pin, SourceTree]] = {}
    problems = []
    for name, pin in tflm_pins(tflm).items():
        try:
            tree = source_tree(name, deps / name, pin.marker)
        except PeerSourceError as exc:
            problems.append(f"{exc} (TFLM pins {pin.repo} at {pin.rev})")
            continue
        if tree.commit is not None:
            want = _resolve(tree.path, pin.rev)
            if want is None and not re.fullmatch(r"[0-9a-f]{40}", pin.rev):
                problems.append(f"{name}: {tree.path} has no tag {pin.rev} to compare with "
                                "(fetch tags, or check out that tag)")
            elif (want or pin.rev) != tree.commit:
                problems.append(f"{name}: {tree.path} is at {tree.commit[:12]}, TFLM pins "
                                f"{pin.repo} at {pin.rev}")
        out[name] = (pin, tree)
    if problems:
        raise PeerSourceError("TFLM third-party trees:\n  " + "\n  ".join(problems))
    return out
