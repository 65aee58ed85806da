"""TFLite Micro built from source for a bare-metal Cortex-M, by its own Makefile.

The user's TFLM tree is never written to: it is copied once into the work folder
(per TFLM commit), and its ``tools/make/downloads/`` folder is filled from the
third-party trees the user points to, exactly as TFLM's download scripts would
leave it (flatbuffers, kissfft and pigweed with TFLM's patches applied; CMSIS_6
with Cortex_DFP inside it). The download scripts then find every folder present
and download nothing. ``libtensorflow-microlite.a`` is built with TFLM's own rules
and flags for ``TARGET=cortex_m_generic BUILD_TYPE=release`` (the host's
``arm-none-eabi-gcc``), reference or CMSIS-NN kernels, with one optimization level
for the framework, its kernels and third-party kernels alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sources import MAKE_DIR, PeerSourceError, SourceTree, tflm_third_party

KERNELS = ("reference", "cmsis_nn")
STAMP = ".elman-peers-prepared"


@dataclass(frozen=True)
class TflmConfig:
    cpu: str  # cortex-m4 | cortex-m0plus (TFLM's TARGET_ARCH)
    kernels: str  # reference | cmsis_nn
    opt: str  # O2 | Os

    @property
    def name(self) -> str:
        return f"{self.cpu}_{self.kernels}_{self.opt}"


@dataclass(frozen=True)
class TflmLibrary:
    """A built ``libtensorflow-microlite.a`` and what compiling against it needs."""

    config: TflmConfig
    tree: Path  # the prepared copy of TFLM
    archive: Path
    cxx: list[str]  # the compiler command for C++ of this configuration, with flags
    ld_flags: list[str]  # TFLM's LDFLAGS (with the cpu flags)
    libs: list[str]  # TFLM's MICROLITE_LIBS


def prepare_tree(tflm: SourceTree, deps: Path, work: Path, log=print) -> Path:
    """A copy of TFLM with its downloads folder filled from ``deps``; reused when the
    TFLM commit (or, for a tree that is not a checkout, its path) and the third-party
    commits are the same."""
    third = tflm_third_party(tflm.path, deps)
    key_text = "\n".join([tflm.commit or str(tflm.path)] +
                         [f"{n}={t.commit or t.path}" for n, (_, t) in sorted(third.items())])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:12]
    dest = work / f"tflm-{(tflm.commit or 'tree')[:12]}-{key}"
    if (dest / STAMP).exists():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    log(f"  copying TFLM {tflm.path} -> {dest}")
    shutil.copytree(tflm.path, dest, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", "downloads", "gen"))
    downloads = dest / MAKE_DIR / "downloads"
    downloads.mkdir(parents=True)
    # Cortex_DFP lives inside CMSIS_6's folder; CMSIS_6 must come first
    for name in sorted(third, key=lambda n: n == "Cortex_DFP"):
        pin, tree = third[name]
        target = downloads / pin.download_name
        if pin.patch is None and name != "CMSIS_6":
            target.symlink_to(tree.path, target_is_directory=True)
        elif name == "CMSIS_6":
            target.mkdir()
            for entry in tree.path.iterdir():
                if entry.name != ".git":
                    (target / entry.name).symlink_to(entry)
        else:
            shutil.copytree(tree.path, target, symlinks=True,
                            ignore=shutil.ignore_patterns(".git"))
            _remove_build_files(target)
            _apply_patch(dest / pin.patch, target)
    (dest / STAMP).write_text(key_text + "\n", encoding="utf-8")
    return dest


def _remove_build_files(folder: Path) -> None:
    # TFLM's scripts delete Bazel BUILD files from downloads (they would shadow its own)
    for p in folder.rglob("*"):
        if p.name in ("BUILD", "BUILD.bazel") and p.is_file():
            p.unlink()


def _apply_patch(patch: Path, folder: Path) -> None:
    # the same `git apply` TFLM's apply_patch_to_folder runs, in a throwaway repository
    # of the folder (as its create_git_repo does), so no enclosing repository interferes
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(folder.parent)}
    for cmd in (["git", "init", "-q"],
                ["git", "apply", "--ignore-space-change", "--ignore-whitespace", str(patch)]):
        proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, env=env,
                              check=False)
        if proc.returncode != 0:
            raise PeerSourceError(f"applying {patch} to {folder} failed: {proc.stderr.strip()}")
    shutil.rmtree(folder / ".git")


def check_cxx_headers() -> None:
    """TFLM is C++: the Arm compiler needs its C++ library headers (Debian ships them apart)."""
    gxx = shutil.which("arm-none-eabi-g++")
    proc = None if gxx is None else subprocess.run(
        [gxx, "-E", "-x", "c++", "-", "-o", os.devnull], input="#include <new>\n",
        capture_output=True, text=True, check=False)
    if proc is None or proc.returncode != 0:
        raise PeerSourceError("TFLM needs arm-none-eabi-g++ with its C++ headers; install them "
                              "with `bash scripts/system-deps.sh --with-peers` (Debian package "
                              "libstdc++-arm-none-eabi-newlib)")


def make_args(config: TflmConfig) -> list[str]:
    """The make variables of one configuration (TFLM's own Makefile)."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise PeerSourceError("arm-none-eabi-gcc is not on PATH")
    level = f"-{config.opt}"
    args = [f"-f{MAKE_DIR}/Makefile", "TARGET=cortex_m_generic", f"TARGET_ARCH={config.cpu}",
            "TOOLCHAIN=gcc", f"TARGET_TOOLCHAIN_ROOT={Path(gcc).parent}/",
            "BUILD_TYPE=release", f"GENDIR=gen/{config.name}/",
            f"CORE_OPTIMIZATION_LEVEL={level}", f"KERNEL_OPTIMIZATION_LEVEL={level}",
            f"THIRD_PARTY_KERNEL_OPTIMIZATION_LEVEL={level}"]
    if config.kernels == "cmsis_nn":
        args.append("OPTIMIZED_KERNEL_DIR=cmsis_nn")
    return args


def make_env() -> dict[str, str]:
    """TFLM's Makefile runs ``python3`` while it reads itself (its examples turn images and
    sounds into arrays with numpy and Pillow): use this interpreter, whose environment
    (elman's) has both."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
            f"{os.environ.get('PATH', '')}"}


OBJECT_LISTS = ("MICROLITE_LIB_OBJS", "MICROLITE_KERNEL_OBJS", "MICROLITE_THIRD_PARTY_OBJS",
                "MICROLITE_THIRD_PARTY_KERNEL_OBJS")


def library_for(tree: Path, config: TflmConfig) -> TflmLibrary:
    """The compiler, flags and libraries of one configuration (from TFLM's Makefile)."""
    v = config_vars(tree, config)
    # paths in TFLM's INCLUDES are relative to the tree (make runs there)
    includes = [f"-I{(tree / i[2:]).resolve()}" if i.startswith("-I") and not
                os.path.isabs(i[2:]) else i for i in v["INCLUDES"].split()]
    # make hands these to a shell: split them as the shell would
    cxx = [*shlex.split(v["CXX"]), *shlex.split(v["CXXFLAGS"]),
           *shlex.split(v["CORE_OPTIMIZATION_LEVEL"]), *includes]
    cpu_flags = [f for f in shlex.split(v["CXXFLAGS"]) if f.startswith(("-mcpu", "-mfpu", "-mthumb",
                                                                     "-mfloat-abi"))]
    return TflmLibrary(config=config, tree=tree,
                       archive=tree / "gen" / config.name / "lib" / "libtflm-closure.a",
                       cxx=cxx, ld_flags=[*cpu_flags, *shlex.split(v["LDFLAGS"])],
                       libs=shlex.split(v["MICROLITE_LIBS"]))


def library_objects(tree: Path, config: TflmConfig) -> dict[str, list[str]]:
    """The object files TFLM's ``microlite`` target would archive, by make list."""
    v = config_vars(tree, config)
    return {k: v[k].split() for k in OBJECT_LISTS}


FLAG_VARS = ("CXX", "CXXFLAGS", "INCLUDES", "CORE_OPTIMIZATION_LEVEL", "LDFLAGS", "MICROLITE_LIBS")


def config_vars(tree: Path, config: TflmConfig) -> dict[str, str]:
    """The Makefile's variables for one configuration, asked once (reading TFLM's Makefile
    takes a while: it runs Python for every example) and kept next to the objects."""
    cache = tree / "gen" / f"{config.name}.vars.json"
    args = make_args(config)
    if cache.exists():
        stored = json.loads(cache.read_text())
        if stored.get("args") == args:
            return stored["vars"]
    v = make_vars(tree, args, [*FLAG_VARS, *OBJECT_LISTS])
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"args": args, "vars": v}, indent=1))
    return v


def source_of(tree: Path, obj: str) -> Path | None:
    """The source file TFLM's pattern rules compile into ``obj``."""
    rel = obj.split("/obj/", 1)[1].split("/", 1)[1]  # drop gen/<cfg>/obj/<kind>/
    stem = rel[: -len(".o")]
    for ext in (".cc", ".c", ".S", ".cpp"):
        if (tree / (stem + ext)).exists():
            return tree / (stem + ext)
    return None


def make_objects(tree: Path, config: TflmConfig, objects: list[str], jobs: int,
                 log=print) -> None:
    """Compile ``objects`` with TFLM's own pattern rules (``make <object>``)."""
    todo = [o for o in objects if not (tree / o).exists()]
    if not todo:
        return
    logfile = tree / "gen" / f"{config.name}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    log(f"  compiling {len(todo)} TFLM objects for {config.name} (make -j{jobs}, log {logfile})")
    with open(logfile, "a") as out:
        proc = subprocess.run(["nice", "-n", "10", "make", f"-j{jobs}", *make_args(config),
                               *todo], cwd=tree, stdout=out, stderr=subprocess.STDOUT,
                              env=make_env(), check=False)
    if proc.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-15:]
        raise PeerSourceError(f"TFLM build {config.name} failed (see {logfile}):\n"
                              + "\n".join(tail))


def member_name(obj: str) -> str:
    """The archive member name of a library object: its make list's folder and its path,
    so that two objects of the same file name (``kernel_util.o`` of the framework and of
    the kernels) stay apart in the linker map: ``core__tensorflow_lite_..._kernel_util.o``."""
    kind, rel = obj.split("/obj/", 1)[1].split("/", 1)
    return f"{kind}__{rel.replace('/', '_')}"


def archive(tree: Path, lib: TflmLibrary, objects: list[str]) -> None:
    """``ar`` the chosen objects under their member names."""
    ar = shutil.which("arm-none-eabi-ar") or "arm-none-eabi-ar"
    stage = lib.archive.parent / "members"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for o in objects:
        (stage / member_name(o)).symlink_to((tree / o).resolve())
    lib.archive.unlink(missing_ok=True)
    proc = subprocess.run([ar, "rcs", str(lib.archive),
                           *[str(stage / member_name(o)) for o in objects]],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PeerSourceError(f"ar failed: {proc.stderr.strip()}")


_UNDEFINED = re.compile(r"undefined reference to `([^']+)'")


def identifier(symbol: str) -> str | None:
    """The bare name a definition of a (demangled) symbol contains:
    ``tflite::Register_TANH()`` -> ``Register_TANH``; ``vtable for tflite::X`` -> ``X``."""
    s = symbol.split("(", 1)[0]
    s = re.sub(r"<.*>", "", s)
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", s.split("::")[-1])
    return names[-1] if names else None


def _relative(obj: str) -> str:
    """An object's path below its configuration's ``obj/`` folder."""
    return obj.split("/obj/", 1)[1]


def defines_name(text: str, name: str) -> bool:
    """Whether C/C++ source ``text`` seems to define function ``name``: the name on a line
    that starts at column 0 (TFLM and CMSIS-NN define functions at namespace scope,
    unindented; calls are indented) and is not a declaration ending in ``;``."""
    pattern = rf"^(?![ \t#/])(?!return\b)[^;=(){{}}\n]*\b{re.escape(name)}\s*\([^;]*?$"
    return re.search(pattern, text, re.MULTILINE) is not None


def build_closure(tree: Path, config: TflmConfig, seeds: tuple[str, ...],
                  probe, jobs: int = 2, log=print) -> TflmLibrary:
    """Compile the part of ``libtensorflow-microlite.a`` a program needs, with TFLM's own
    rules and flags. Start from the framework's object list, the kernel objects named in
    ``seeds`` and those earlier configurations of the same kernels needed; then, while
    ``probe(lib)`` (a link of the program) reports undefined symbols, add the library
    objects whose source defines each one (the ones that merely name it when none
    plainly does). The program linked against this archive is the program linked
    against the full library: an archive member is linked only when it defines a
    symbol the program still needs. Raises when no library source names a symbol."""
    lib = library_for(tree, config)
    lists = library_objects(tree, config)
    every = [o for k in OBJECT_LISTS for o in lists[k]]
    # what other configurations of the same kernels needed, to compile it in one round
    known = tree / "gen" / f"closure-{config.kernels}.json"
    before = set(json.loads(known.read_text())) if known.exists() else set()
    chosen = list(lists["MICROLITE_LIB_OBJS"]) + [
        o for o in every if o not in lists["MICROLITE_LIB_OBJS"] and
        (Path(o).stem in seeds or _relative(o) in before)]
    sources = {o: source_of(tree, o) for o in every}
    texts: dict[str, str] = {}
    for _round in range(20):
        make_objects(tree, config, chosen, jobs, log)
        archive(tree, lib, chosen)
        missing = sorted(set(_UNDEFINED.findall(probe(lib))))
        if not missing:
            known.write_text(json.dumps(sorted(before | {_relative(o) for o in chosen})))
            return lib
        added = []
        for sym in missing:
            name = identifier(sym)
            mentions, defines = [], []
            for o in every:
                if o in chosen or sources[o] is None or not name:
                    continue
                if o not in texts:
                    texts[o] = sources[o].read_text(errors="replace")
                if re.search(rf"\b{re.escape(name)}\b", texts[o]):
                    mentions.append(o)
                    if defines_name(texts[o], name):
                        defines.append(o)
            if not mentions:
                raise PeerSourceError(f"TFLM {config.name}: {sym} is undefined and no source of "
                                      "the library names it")
            added += [o for o in (defines or mentions) if o not in added]
            if not defines:
                log(f"    {sym}: no source defines it plainly; taking the {len(mentions)} that "
                    "name it")
        chosen += added
    raise PeerSourceError(f"TFLM {config.name}: the object closure did not converge")


def make_vars(tree: Path, args: list[str], names: list[str]) -> dict[str, str]:
    proc = subprocess.run(["make", "-s", *args, *[f"print-{n}" for n in names]], cwd=tree,
                          capture_output=True, text=True, env=make_env(), check=False)
    if proc.returncode != 0:
        raise PeerSourceError(f"TFLM's Makefile did not print its flags: {proc.stderr[-2000:]}")
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep and name in names and name not in out:
            out[name] = value.strip()
    missing = [n for n in names if n not in out]
    if missing:
        raise PeerSourceError(f"TFLM's Makefile printed no {', '.join(missing)}")
    return out
