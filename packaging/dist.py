"""`make dist`: the wheel and sdist, the desktop app frozen as one folder (PyInstaller) and
a Debian package made from that folder with dpkg-deb, all in dist/; then the build's size
and its start to the first window, timed from the frozen app under Xvfb.

Everything is built once per input and kept under .cache/dist/ (gitignored):

- `freeze-<hash>/`: PyInstaller's folder with Python, the third-party packages and the
  shared libraries. Its hash covers the interpreter, the installed packages (pip freeze),
  packaging/emodesk.spec and the set of modules EmoDesk imports: a few minutes, rebuilt
  only when one of those changes.
- `build-<hash>/`: that folder with EmoDesk's current sources put in (compiled), the
  wheel, the sdist and the .deb. Its hash adds EmoDesk's files and the packaging files:
  tens of seconds.

`--deb-path` builds what is missing and prints the .deb's path (the install test uses it).
Nothing here downloads anything, but PyInstaller and the build tools themselves (the
`dist` extra of pyproject.toml), from PyPI through pip, when they are missing.
"""

from __future__ import annotations

import argparse
import ast
import fcntl
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
CACHE = ROOT / ".cache" / "dist"
OUT = ROOT / "dist"
SPEC = PACKAGING / "emodesk.spec"
APP_ID = "io.github.emodesk.EmoDesk"
DESKTOP = PACKAGING / f"{APP_ID}.desktop"
METAINFO = PACKAGING / f"{APP_ID}.metainfo.xml"
ICON_SVG = ROOT / "emodesk" / "resources" / "emodesk.svg"
# The sizes desktops look up in the hicolor theme (plus the scalable SVG).
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
INSTALL_DIR = "/opt/emodesk"
MAINTAINER = "EmoDesk developers <emodesk@users.noreply.github.com>"
HOMEPAGE = "https://github.com/emodesk/emodesk"
# Loaded at run time, so no ELF file names them: PortAudio talks to ALSA, and ALSA reaches
# the PulseAudio (or PipeWire) server through its pulse plugin.
RUNTIME_DEPENDS = ("libasound2-plugins", "libpulse0")
RECOMMENDS = ("pulseaudio | pipewire-pulse", "gnome-keyring | kwalletmanager")
FIRST_WINDOW_GOAL_S = 1.5


def log(message: str) -> None:
    print(f"dist: {message}", flush=True)


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kwargs)  # type: ignore[call-overload,no-any-return]


# --- inputs and their hashes -------------------------------------------------------------


def version() -> str:
    text = (ROOT / "emodesk" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if match is None:
        raise SystemExit("dist: no __version__ in emodesk/__init__.py")
    return match.group(1)


def package_files() -> list[Path]:
    files = [
        path
        for path in (ROOT / "emodesk").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    return sorted(files)


def imported_modules() -> list[str]:
    """The top-level packages EmoDesk imports from outside itself (standard library
    included): when this set changes, the freeze may need packages it does not have. Top
    level only, so a new import of a module already frozen (most of them) costs no new
    freeze; a new submodule of a package the freeze lacks shows in the install test."""
    names: set[str] = set()
    for path in package_files():
        if path.suffix != ".py":
            continue
        tree = ast.parse(path.read_bytes(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return sorted(names - {"emodesk"})


def digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:16]


def freeze_key() -> str:
    frozen = run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        capture_output=True,
    ).stdout
    return digest(
        [
            sys.version.encode(),
            os.path.realpath(sys.executable).encode(),
            frozen.encode(),
            SPEC.read_bytes(),
            "\n".join(imported_modules()).encode(),
        ]
    )


def build_key(freeze: str) -> str:
    inputs = [*package_files(), ROOT / "pyproject.toml", ROOT / "README.md"]
    inputs += [DESKTOP, METAINFO, Path(__file__).resolve()]
    parts = [freeze.encode()]
    for path in inputs:
        parts += [str(path.relative_to(ROOT)).encode(), path.read_bytes()]
    return digest(parts)


# --- tools -------------------------------------------------------------------------------


def _build_tools_missing() -> bool:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        for name in ("pyinstaller", "build", "wheel"):
            installed(name)
        return int(installed("setuptools").split(".")[0]) < 68
    except PackageNotFoundError:
        return True


def ensure_build_tools() -> None:
    if _build_tools_missing():
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        wanted = pyproject["project"]["optional-dependencies"]["dist"]
        log(f"installing the build tools: {' '.join(wanted)}")
        run([sys.executable, "-m", "pip", "install", "-q", *wanted])
    for tool in ("dpkg-deb", "readelf", "ldconfig", "dpkg-query"):
        if shutil.which(tool) is None and not Path("/sbin", tool).exists():
            raise SystemExit(f"dist: {tool} is missing (make setup installs what is needed)")


def prune(prefix: str, keep: Path) -> None:
    for old in CACHE.glob(f"{prefix}-*"):
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


# --- the frozen folder -------------------------------------------------------------------


def freeze(key: str) -> Path:
    """PyInstaller's one-folder build of the dependencies (cached by `key`)."""
    folder = CACHE / f"freeze-{key}"
    if (folder / "emodesk" / "emodesk").is_file():
        log(f"frozen dependencies: cached ({folder.relative_to(ROOT)})")
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="freeze-tmp-", dir=CACHE))
    log("freezing with PyInstaller (a few minutes; cached afterwards)")
    start = time.monotonic()
    try:
        paths = ["--distpath", str(work / "dist"), "--workpath", str(work / "work")]
        pyinstaller = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN"]
        run([*pyinstaller, *paths, str(SPEC)], cwd=work)
        (work / "dist").rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"frozen in {time.monotonic() - start:.0f} s")
    prune("freeze", folder)
    return folder


def put_sources(app: Path) -> None:
    """EmoDesk's package, compiled, where the frozen app imports it from."""
    target = app / "_internal" / "emodesk"
    shutil.rmtree(target, ignore_errors=True)
    for path in package_files():
        dest = target / path.relative_to(ROOT / "emodesk")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    run([sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
         str(target)])  # fmt: skip


# --- Debian package ----------------------------------------------------------------------


def elf_files(folder: Path) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def needed_libraries(files: list[Path]) -> set[str]:
    needed: set[str] = set()
    for start in range(0, len(files), 200):
        out = run(
            ["readelf", "-d", "-W", *map(str, files[start : start + 200])], capture_output=True
        ).stdout
        needed.update(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))
    return needed


def system_library_paths() -> dict[str, str]:
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    out = run([ldconfig, "-p"], capture_output=True).stdout
    paths: dict[str, str] = {}
    for line in out.splitlines():
        match = re.match(r"\s+(\S+) \(([^)]*)\) => (\S+)", line)
        if match and "x86-64" in match.group(2):  # the amd64 build only
            paths.setdefault(match.group(1), match.group(3))
    return paths


def owning_package(path: str) -> str:
    candidates = [path, os.path.realpath(path)]
    candidates += ["/usr" + p for p in candidates if not p.startswith("/usr/")]
    for candidate in candidates:
        found = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True)
        if found.returncode == 0:
            return found.stdout.split(":")[0].split(",")[0].strip()
    raise SystemExit(f"dist: no Debian package owns {path}; bundle it or name its package")


def depends(app: Path) -> list[str]:
    """The Debian packages of the shared libraries the folder links but does not bundle
    (glibc, libxcb, the GL stack: left to the system on purpose, see PyInstaller's
    exclude list), and the libraries loaded at run time (RUNTIME_DEPENDS)."""
    files = elf_files(app)
    bundled = {path.name for path in app.rglob("*.so*")}
    missing = sorted(needed_libraries(files) - bundled - {"libpython3.11.so.1.0"})
    system = system_library_paths()
    packages = set(RUNTIME_DEPENDS)
    for soname in missing:
        if soname not in system:
            raise SystemExit(f"dist: {soname} is needed by the frozen app but not installed here")
        packages.add(owning_package(system[soname]))
    return sorted(packages)


def render_icons(share: Path) -> None:
    hicolor = share / "icons" / "hicolor"
    (hicolor / "scalable" / "apps").mkdir(parents=True)
    shutil.copy2(ICON_SVG, hicolor / "scalable" / "apps" / f"{APP_ID}.svg")
    script = (
        "import sys\n"
        "from PySide6.QtCore import Qt\n"
        "from PySide6.QtGui import QGuiApplication, QImage, QPainter\n"
        "from PySide6.QtSvg import QSvgRenderer\n"
        "app = QGuiApplication(['render'])\n"
        "svg, root, name = sys.argv[1], sys.argv[2], sys.argv[3]\n"
        "renderer = QSvgRenderer(svg)\n"
        "for size in map(int, sys.argv[4:]):\n"
        "    image = QImage(size, size, QImage.Format.Format_ARGB32)\n"
        "    image.fill(Qt.GlobalColor.transparent)\n"
        "    painter = QPainter(image)\n"
        "    renderer.render(painter)\n"
        "    painter.end()\n"
        "    assert image.save(f'{root}/{size}x{size}/apps/{name}.png')\n"
    )
    for size in ICON_SIZES:
        (hicolor / f"{size}x{size}" / "apps").mkdir(parents=True)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    run(
        [sys.executable, "-c", script, str(ICON_SVG), str(hicolor), APP_ID, *map(str, ICON_SIZES)],
        env=env,
    )


def control(version_: str, arch: str, installed_kib: int, deps: list[str]) -> str:
    summary = "voice conversations with Gemini Live that notice how you sound"
    return (
        f"Package: emodesk\n"
        f"Version: {version_}-1\n"
        f"Architecture: {arch}\n"
        f"Maintainer: {MAINTAINER}\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {', '.join(deps)}\n"
        f"Recommends: {', '.join(RECOMMENDS)}\n"
        f"Section: sound\n"
        f"Priority: optional\n"
        f"Homepage: {HOMEPAGE}\n"
        f"Description: {summary}\n"
        " EmoDesk is a desktop client for Google's Gemini Live API: hold the\n"
        " push-to-talk key, speak, and hear the reply. With your consent it also\n"
        " estimates your emotional expression each turn, from the model's judgment\n"
        " and a local acoustic estimator, on a timeline that exports as CSV.\n"
        " .\n"
        f" The app is a self-contained build in {INSTALL_DIR} (Python and its\n"
        " packages included); `emodesk` is on the PATH.\n"
    )


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: emodesk
Source: {homepage}

Files: *
Copyright: The EmoDesk developers
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
 The bundled third-party packages in {install} keep their own licenses; their
 metadata folders ({install}/_internal/*.dist-info) carry them.
"""


def make_deb(app: Path, work: Path) -> Path:
    root = work / "root"
    opt = root / INSTALL_DIR.lstrip("/")
    opt.parent.mkdir(parents=True)
    run(["cp", "-al", str(app), str(opt)])
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "emodesk").symlink_to(f"{INSTALL_DIR}/emodesk")
    share = root / "usr" / "share"
    (share / "applications").mkdir(parents=True)
    shutil.copy2(DESKTOP, share / "applications" / DESKTOP.name)
    (share / "metainfo").mkdir()
    shutil.copy2(METAINFO, share / "metainfo" / METAINFO.name)
    render_icons(share)
    doc = share / "doc" / "emodesk"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT.format(homepage=HOMEPAGE, install=INSTALL_DIR))
    run(["chmod", "-R", "u+rwX,go+rX,go-w", str(root)])

    arch = run(["dpkg", "--print-architecture"], capture_output=True).stdout.strip()
    installed = int(run(["du", "-sk", str(root)], capture_output=True).stdout.split()[0])
    (root / "DEBIAN").mkdir()
    deps = depends(opt)
    (root / "DEBIAN" / "control").write_text(control(version(), arch, installed, deps))
    deb = work / f"emodesk_{version()}-1_{arch}.deb"
    run(
        ["dpkg-deb", "--root-owner-group", "-Zzstd", "--build", str(root), str(deb)],
        stdout=subprocess.DEVNULL,
    )
    shutil.rmtree(root)
    return deb


# --- the whole build ---------------------------------------------------------------------


def python_dists(work: Path) -> list[Path]:
    """The sdist and wheel, built from a copy of the sources (nothing written in the tree)."""
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for path in package_files():
        dest = src / path.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    out = work / "python"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
         "--outdir", str(out), str(src)],
        capture_output=True, text=True,
    )  # fmt: skip
    if built.returncode != 0:
        raise SystemExit(f"dist: the wheel or sdist failed:\n{built.stdout}{built.stderr}")
    shutil.rmtree(src)
    return sorted(out.iterdir())


@contextmanager
def build_lock() -> Iterator[None]:
    """One build at a time on this machine (several test runs may ask at once)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build() -> Path:
    """The cached build folder for the current inputs (built when missing)."""
    with build_lock():
        return _build()


def _build() -> Path:
    ensure_build_tools()
    fkey = freeze_key()
    key = build_key(fkey)
    folder = CACHE / f"build-{key}"
    if (folder / "build.json").is_file():
        log(f"build: cached ({folder.relative_to(ROOT)})")
        return folder
    frozen = freeze(fkey)
    log("assembling the app, the wheel, the sdist and the .deb")
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="build-tmp-", dir=CACHE))
    try:
        app = work / "emodesk"
        run(["cp", "-al", str(frozen / "emodesk"), str(app)])
        put_sources(app)
        dists = python_dists(work)
        deb = make_deb(app, work)
        info = {
            "version": version(),
            "deb": deb.name,
            "python": [p.relative_to(work).as_posix() for p in dists],
            "freeze": frozen.name,
        }
        (work / "build.json").write_text(json.dumps(info, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        work.rename(folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log(f"assembled in {time.monotonic() - start:.0f} s")
    # keep this build and the one before (a test run may be unpacking it right now)
    builds = [p for p in CACHE.glob("build-*") if not p.name.startswith("build-tmp-")]
    builds.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in set(builds) - {folder, *builds[:2]}:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def deb_path(folder: Path) -> Path:
    return folder / json.loads((folder / "build.json").read_text())["deb"]


def publish(folder: Path) -> list[Path]:
    """Copies (hard links) the build's products into dist/."""
    info = json.loads((folder / "build.json").read_text())
    OUT.mkdir(exist_ok=True)
    shutil.rmtree(OUT / "emodesk", ignore_errors=True)
    run(["cp", "-al", str(folder / "emodesk"), str(OUT / "emodesk")])
    products = [OUT / "emodesk"]
    for name in [info["deb"], *info["python"]]:
        dest = OUT / Path(name).name
        dest.unlink(missing_ok=True)
        os.link(folder / name, dest)
        products.append(dest)
    return products


# --- size and first window ---------------------------------------------------------------


def size_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


@contextmanager
def xvfb() -> Iterator[str]:
    """A private X server (1280x800); yields its DISPLAY."""
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    try:
        if not number:
            raise SystemExit("dist: Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def clean_env(home: Path, display: str) -> dict[str, str]:
    """What a desktop session gives the app, and nothing of this repository or its venv."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "DISPLAY": display,
        "XDG_RUNTIME_DIR": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }


def first_window_s(executable: Path, display: str) -> tuple[float, float]:
    """Process start -> the app says its first window is shown (EMODESK_EXIT_AFTER_SHOW:
    after the window's show() and one turn of the event loop), from a fresh home; and the
    CPU time (user + system) of the whole run, quick exit included."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+") as err:
        env = {**clean_env(Path(tmp), display), "EMODESK_EXIT_AFTER_SHOW": "1"}
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        app = subprocess.Popen(
            [str(executable)], env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=err, text=True
        )
        assert app.stdout is not None
        shown = None
        for line in app.stdout:
            if line.strip() == "first-window-shown":
                shown = time.perf_counter() - start
        app.wait(60)
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        err.seek(0)
        if shown is None:
            raise SystemExit(f"dist: the frozen app showed no window: {err.read()[-800:]}")
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return shown, cpu


def report(folder: Path, products: list[Path], runs: int) -> None:
    for path in products:
        log(f"{human(size_bytes(path)):>10}  {path.relative_to(ROOT)}")
    if runs <= 0:
        return
    executable = folder / "emodesk" / "emodesk"
    load_before = os.getloadavg()[0]
    with xvfb() as display:
        first_run, _ = first_window_s(executable, display)  # may read the files from disk
        samples = [first_window_s(executable, display) for _ in range(runs)]
    times = sorted(wall for wall, _ in samples)
    cpus = sorted(cpu for _, cpu in samples)
    median = statistics.median(times)
    verdict = "PASS" if median < FIRST_WINDOW_GOAL_S else "FAIL"
    log(
        f"first window, frozen app under Xvfb ({runs} runs after one warm-up, process start "
        f"-> window shown): median {median:.2f} s, range {times[0]:.2f}-{times[-1]:.2f} s; "
        f"goal < {FIRST_WINDOW_GOAL_S} s: {verdict}"
    )
    log(f"  the warm-up run (the first after the build): {first_run:.2f} s")
    log(
        f"  its CPU time (user + system): median {statistics.median(cpus):.2f} s, range "
        f"{cpus[0]:.2f}-{cpus[-1]:.2f} s; load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deb-path", action="store_true", help="build if needed, print the .deb")
    parser.add_argument("--runs", type=int, default=7, help="first-window runs (0: none)")
    args = parser.parse_args()
    folder = build()
    if args.deb_path:
        print(deb_path(folder))
        return 0
    report(folder, publish(folder), args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
