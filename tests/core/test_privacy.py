"""The app's folders and files are its owner's only: the umask for what is created, and
`make_private` for what an older version left open, without reaching outside them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from emodesk.core.privacy import PRIVATE_UMASK, make_private, use_private_umask


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_the_private_umask_makes_new_files_0600_and_folders_0700(tmp_path: Path) -> None:
    os.umask(0o022)  # the usual default; the conftest fixture restores the test's umask
    previous = use_private_umask()
    assert previous == 0o022
    assert os.umask(PRIVATE_UMASK) == PRIVATE_UMASK
    (tmp_path / "made").mkdir()
    (tmp_path / "made" / "file.txt").write_text("personal")
    assert mode(tmp_path / "made") == 0o700
    assert mode(tmp_path / "made" / "file.txt") == 0o600


def test_open_folders_and_files_are_tightened_and_reported(tmp_path: Path) -> None:
    app = tmp_path / "emodesk"
    (app / "sub").mkdir(parents=True)
    for path, bits in (
        (app / "history.sqlite3", 0o644),
        (app / "history.sqlite3-wal", 0o664),
        (app / "run.sh", 0o755),
        (app / "sub" / "deep.txt", 0o604),
        (app / "already.txt", 0o600),
    ):
        path.write_text("x")
        path.chmod(bits)
    app.chmod(0o755)
    (app / "sub").chmod(0o750)

    changed = make_private([app])

    assert mode(app) == 0o700
    assert mode(app / "sub") == 0o700
    assert mode(app / "history.sqlite3") == 0o600
    assert mode(app / "history.sqlite3-wal") == 0o600
    assert mode(app / "run.sh") == 0o700  # the owner keeps what the owner had
    assert mode(app / "sub" / "deep.txt") == 0o600
    assert set(changed) == {
        app,
        app / "sub",
        app / "history.sqlite3",
        app / "history.sqlite3-wal",
        app / "run.sh",
        app / "sub" / "deep.txt",
    }
    assert make_private([app]) == []  # a second start has nothing to do


def test_links_out_of_the_folder_are_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "shared.txt").write_text("not ours")
    (elsewhere / "shared.txt").chmod(0o644)
    elsewhere.chmod(0o755)
    app = tmp_path / "emodesk"
    app.mkdir(mode=0o700)
    (app / "link-to-folder").symlink_to(elsewhere)
    (app / "link-to-file").symlink_to(elsewhere / "shared.txt")

    assert make_private([app]) == []
    assert mode(elsewhere) == 0o755
    assert mode(elsewhere / "shared.txt") == 0o644


def test_missing_folders_and_files_are_skipped(tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    a_file.chmod(0o644)
    assert make_private([tmp_path / "missing", a_file]) == []
    assert mode(a_file) == 0o644  # only folders are given; a file in their place is left


@pytest.mark.skipif(os.geteuid() == 0, reason="root may change any file's mode")
def test_a_folder_of_another_owner_is_left_without_an_error() -> None:
    assert make_private([Path("/etc")]) == []
