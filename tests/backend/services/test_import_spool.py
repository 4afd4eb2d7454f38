"""The upload's encrypted spool: what is written is ciphertext, reads and seeks anywhere give
the plaintext back, and a cut, altered or foreign file does not open."""

import io
import os
import zipfile
from pathlib import Path

import pytest

from backend.services.import_spool import (
    SEGMENT,
    SpoolReader,
    SpoolUnreadable,
    SpoolWriter,
    job_key,
    new_salt,
)


def _spool(path: Path, data: bytes, *, chunk: int = 65_536) -> bytes:
    key = job_key(new_salt())
    writer = SpoolWriter(path, key=key)
    for start in range(0, len(data), chunk):
        writer.write(data[start : start + chunk])
    writer.close()
    assert writer.size == len(data)
    return key


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 12345])
def test_what_is_written_reads_back_from_anywhere(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    key = _spool(tmp_path / "s", data)
    assert oct((tmp_path / "s").stat().st_mode & 0o777) == "0o600"
    with SpoolReader(tmp_path / "s", key=key, size=size) as reader:
        assert reader.read() == data
        for offset in (0, size // 2, max(size - 7, 0)):
            reader.seek(offset)
            assert reader.read(10) == data[offset : offset + 10]
        reader.seek(-3, io.SEEK_END)
        assert reader.read() == data[-3:] if size >= 3 else True


def test_the_file_holds_no_plaintext(tmp_path: Path) -> None:
    text = b'[{"title": "My secret plans", "mapping": {}}]' * 50_000
    _spool(tmp_path / "s", text)
    sealed = (tmp_path / "s").read_bytes()
    assert b"secret plans" not in sealed and b"mapping" not in sealed


def test_a_zip_opens_through_the_spool(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/conversations.json", b"[]" + b" " * 3 * SEGMENT)
    key = _spool(tmp_path / "s", buffer.getvalue())
    with SpoolReader(tmp_path / "s", key=key, size=len(buffer.getvalue())) as reader:
        with zipfile.ZipFile(reader) as archive:  # type: ignore[arg-type]
            assert archive.read("a/conversations.json").startswith(b"[]")


def test_altered_cut_or_foreign_files_do_not_open(tmp_path: Path) -> None:
    data = os.urandom(2 * SEGMENT + 100)
    key = _spool(tmp_path / "s", data)
    sealed = bytearray((tmp_path / "s").read_bytes())
    with pytest.raises(SpoolUnreadable):
        SpoolReader(tmp_path / "s", key=job_key(new_salt()), size=len(data)).read()
    # The last segment dropped and the size claimed accordingly: the last one must say so.
    (tmp_path / "cut").write_bytes(sealed[: 2 * (SEGMENT + 16)])
    with pytest.raises(SpoolUnreadable):
        SpoolReader(tmp_path / "cut", key=key, size=2 * SEGMENT).read()
    with pytest.raises(SpoolUnreadable, match="incomplete"):
        SpoolReader(tmp_path / "cut", key=key, size=len(data))
    sealed[SEGMENT + 50] ^= 1
    (tmp_path / "bit").write_bytes(sealed)
    reader = SpoolReader(tmp_path / "bit", key=key, size=len(data))
    assert reader.read(10) == data[:10]  # the first segment is intact
    with pytest.raises(SpoolUnreadable):
        reader.read()
