"""The QR file in WEBQQ_QR_DIR and the terminal rendering, round-tripped through a decoder."""

from __future__ import annotations

import io
import itertools
import os
import stat

import pytest
import segno
import zxingcpp
from PIL import Image

from webqq_scrapy import dirs, qr

PAYLOAD = "http://127.0.0.1:8000/phone/qr/3f2a9c1e7b"


def make_png(payload: str = PAYLOAD, *, scale: int = 5, border: int = 4, **kwargs) -> bytes:
    out = io.BytesIO()
    segno.make(payload, micro=False, **kwargs).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


def draw(matrix: list[list[bool]], scale: int = 8, border: int = 4) -> Image.Image:
    """What a phone sees: the module matrix drawn dark-on-light with a quiet zone."""
    side = len(matrix) + 2 * border
    image = Image.new("L", (side, side), 255)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                image.putpixel((x + border, y + border), 0)
    return image.resize((side * scale, side * scale), Image.NEAREST)


def decode(image: Image.Image) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


def segno_matrix(payload: str, **kwargs) -> list[list[bool]]:
    return [[bool(m) for m in row] for row in segno.make(payload, micro=False, **kwargs).matrix]


# --- terminal rendering ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "border"),
    [(1, 0), (1, 4), (2, 1), (3, 2), (5, 4), (7, 0), (10, 6), (4, 13)],
)
def test_rendering_decodes_to_the_payload(scale: int, border: int) -> None:
    png = make_png(scale=scale, border=border)
    text = qr.render_terminal(png)
    matrix = qr.parse_terminal(text)
    assert matrix == segno_matrix(PAYLOAD)
    assert decode(draw(matrix)) == [PAYLOAD]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ("x", "L"),  # version 1, 21x21
        (PAYLOAD, "H"),
        ("http://127.0.0.1:65535/phone/qr/" + "a" * 200, "Q"),  # a large symbol
    ],
)
def test_rendering_any_version(payload: str, error: str) -> None:
    png = make_png(payload, scale=3, border=2, error=error)
    matrix = qr.parse_terminal(qr.render_terminal(png))
    assert matrix == segno_matrix(payload, error=error)
    assert decode(draw(matrix)) == [payload]


def test_the_historical_165px_image() -> None:
    # The real ptqrshow answered 165x165 PNGs: a version-2 symbol (25 modules) at scale 5
    # with a 4-module quiet zone.
    payload = "http://qm.qq.com/s?k=0123456789"
    png = make_png(payload, scale=5, border=4, version=2, error="L")
    assert Image.open(io.BytesIO(png)).size == (165, 165)
    matrix = qr.parse_terminal(qr.render_terminal(png))
    assert len(matrix) == 25
    assert decode(draw(matrix)) == [payload]


def test_rgb_and_transparent_images() -> None:
    png = make_png(scale=4, border=3)
    base = Image.open(io.BytesIO(png)).convert("L")
    # Grey-on-cream RGB, like a JPEG-ish re-encode.
    rgb = Image.merge(
        "RGB",
        [base.point(lambda v: 40 if v < 128 else 250)] * 2
        + [base.point(lambda v: 60 if v < 128 else 230)],
    )
    # Dark modules on a transparent background: the light parts are alpha 0.
    alpha = base.point(lambda v: 255 if v < 128 else 0)
    rgba = Image.merge("RGBA", [base, base, base, alpha])
    for image in (rgb, rgba):
        out = io.BytesIO()
        image.save(out, format="PNG")
        assert qr.qr_matrix(out.getvalue()) == segno_matrix(PAYLOAD)


def test_rendering_shape_and_colours() -> None:
    png = make_png(scale=5, border=4)
    side = len(segno_matrix(PAYLOAD)) + 2 * qr.QUIET_ZONE
    plain = qr.render_terminal(png, ansi=False)
    lines = plain.splitlines()
    assert len(lines) == (side + 1) // 2  # two module rows per line
    assert all(len(line) == side for line in lines)
    assert set(plain) <= {" ", "▀", "▄", "█", "\n"}
    assert lines[0].strip() == lines[1].strip() == ""  # the quiet zone
    coloured = qr.render_terminal(png).splitlines()
    for line, text in zip(coloured, lines, strict=True):
        # explicit black on white, reset before the newline (no colour bleeding)
        assert line == f"\x1b[38;5;16;48;5;231m{text}\x1b[0m"
    assert qr.parse_terminal(plain) == qr.parse_terminal("\n".join(coloured))


def test_not_a_qr() -> None:
    blank = io.BytesIO()
    Image.new("L", (50, 50), 255).save(blank, format="PNG")
    with pytest.raises(ValueError, match="not a QR image"):
        qr.render_terminal(blank.getvalue())
    with pytest.raises(ValueError, match="half-block"):
        qr.parse_terminal("##\n")


def test_terminal_wanted() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert qr.terminal_wanted(True, io.StringIO()) is True
    assert qr.terminal_wanted(False, Tty()) is False
    assert qr.terminal_wanted(None, Tty()) is True
    assert qr.terminal_wanted(None, io.StringIO()) is False


# --- the PNG file ---------------------------------------------------------------------


def test_save_creates_private_directories_and_file(tmp_path) -> None:
    old_umask = os.umask(0o022)  # a common umask: would give 0755 / 0644 by default
    try:
        directory = tmp_path / "a" / "b" / "qr"
        png = make_png()
        path = qr.save_qr(directory, "alice", png)
    finally:
        os.umask(old_umask)
    assert path.parent == directory
    assert path.read_bytes() == png
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for created in (tmp_path / "a", tmp_path / "a" / "b", directory):
        assert stat.S_IMODE(created.stat().st_mode) == 0o700
    assert decode(Image.open(path)) == [PAYLOAD]
    assert os.listdir(directory) == [path.name]  # no temporary file left behind


def test_file_is_never_world_readable(tmp_path, monkeypatch) -> None:
    # Watch the mode the file is created with: os.open must already get 0600.
    modes = []
    real_open = os.open

    def spying_open(path, flags, mode=0o777, *args, **kwargs):
        if flags & os.O_CREAT:
            modes.append(mode)
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spying_open)
    qr.save_qr(tmp_path / "qr", "alice", b"png")
    assert modes == [0o600]


def test_new_qr_replaces_the_file_atomically(tmp_path) -> None:
    first = qr.save_qr(tmp_path, "alice", make_png("first"))
    inode = first.stat().st_ino
    second = qr.save_qr(tmp_path, "alice", make_png("second"))
    assert second == first
    assert decode(Image.open(second)) == ["second"]
    assert second.stat().st_ino != inode  # a new file renamed over the old one
    assert os.listdir(tmp_path) == [first.name]


@pytest.mark.parametrize(
    "account",
    ["../../etc/passwd", "/abs/path", "a/b", "..", ".", "", ".hidden", "C:\\x", "a\0b", "名字 ☃"],
)
def test_hostile_account_names_stay_in_the_directory(tmp_path, account: str) -> None:
    directory = tmp_path / "qr"
    path = qr.save_qr(directory, account, b"png")
    assert path.parent == directory
    assert path.name.startswith("qr-") and path.name.endswith(".png")
    assert "/" not in path.name and "\0" not in path.name
    assert sorted(os.listdir(tmp_path)) == ["qr"]
    assert os.listdir(directory) == [path.name]


def test_distinct_accounts_get_distinct_files(tmp_path) -> None:
    names = ["a/b", "a_b", "a b", "a\\b", "A/B", "x" * 100, "x" * 101]
    paths = {qr.save_qr(tmp_path, name, b"png") for name in names}
    assert len(paths) == len(names)
    assert qr.qr_path(tmp_path, "bob") == qr.qr_path(tmp_path, "bob")


def _predictable_temporary_names(monkeypatch) -> str:
    """Fix replace_private's per-process token and counter: the first temporary name of a
    save of ``NAME`` is then ``.NAME.PID-t-0.tmp``, the next ``…-t-1.tmp``."""
    monkeypatch.setattr(dirs, "_TMP_TOKEN", "t")
    monkeypatch.setattr(dirs, "_tmp_serial", itertools.count())
    return f"{os.getpid()}-t-"


def test_a_link_at_the_temporary_name_is_never_written_through(tmp_path, monkeypatch) -> None:
    directory = tmp_path / "qr"
    directory.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    name = qr.qr_path(directory, "alice").name
    stem = _predictable_temporary_names(monkeypatch)
    planted = directory / f".{name}.{stem}0.tmp"
    planted.symlink_to(victim)
    path = qr.save_qr(directory, "alice", b"png")
    assert path.read_bytes() == b"png"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert victim.read_bytes() == b"keep me"  # the link was refused, not followed
    assert planted.is_symlink()
    assert sorted(os.listdir(directory)) == sorted([name, planted.name])


def test_no_free_temporary_name_is_a_clear_error(tmp_path, monkeypatch) -> None:
    target = tmp_path / "list.txt"
    target.write_bytes(b"old")
    stem = _predictable_temporary_names(monkeypatch)
    for n in range(dirs._TMP_TRIES):
        (tmp_path / f".list.txt.{stem}{n}.tmp").write_bytes(b"")
    with pytest.raises(FileExistsError, match="no free temporary name after 100 tries"):
        dirs.replace_private(target, b"new")
    assert target.read_bytes() == b"old"


def test_a_failed_replace_leaves_no_temporary_file(tmp_path) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "inside").write_bytes(b"")
    with pytest.raises(OSError):  # a file cannot replace a non-empty directory
        dirs.replace_private(occupied, b"data" * 100_000)
    assert os.listdir(tmp_path) == ["occupied"]


def test_remove(tmp_path) -> None:
    path = qr.save_qr(tmp_path, "alice", b"png")
    qr.remove_qr(path)
    assert not path.exists()
    qr.remove_qr(path)  # twice: no error
    qr.remove_qr(None)


def test_unsafe_directories_are_refused(tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(PermissionError, match=r"WEBQQ_QR_DIR: .* writable by other users"):
        qr.save_qr(shared, "alice", b"png")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises((NotADirectoryError, FileExistsError)):
        qr.save_qr(not_a_dir, "alice", b"png")


def test_existing_private_directory_is_used_as_is(tmp_path) -> None:
    directory = tmp_path / "mine"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    path = qr.save_qr(directory, "alice", b"png")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755  # the user's choice, not changed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_directory_changed_between_two_saves_is_checked_again(tmp_path) -> None:
    # save_qr skips the check of the directories above for a moment, never the directory's.
    directory = tmp_path / "qr"
    first = qr.save_qr(directory, "alice", b"one")
    directory.chmod(0o777)
    with pytest.raises(PermissionError, match=r"WEBQQ_QR_DIR: .* writable by other users"):
        qr.save_qr(directory, "alice", b"two")
    directory.chmod(0o700)
    for name in os.listdir(directory):
        os.unlink(directory / name)
    directory.rmdir()  # removed by hand mid-crawl: made again, private
    second = qr.save_qr(directory, "alice", b"three")
    assert second == first and second.read_bytes() == b"three"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
