"""The uploaded export on disk while it is imported, never in plaintext.

An upload is written as AES-256-GCM segments of `SEGMENT` bytes, each sealed with its index
and whether it is the last (so a reordered, cut or altered file fails to open rather than
importing something else). The key is derived from the server's SECRET_KEY and a random
per-job salt kept in the job's row: it is never written anywhere, and a server restarted with
the same SECRET_KEY can resume the job, while the file alone (or with the database) opens to
nobody. The file is deleted when its job ends, whatever the outcome.

Fixed-size segments make the file seekable: a zip's directory sits at its end, and `zipfile`
seeks there first, then back to the members.
"""

import io
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backend.core.config import settings

SEGMENT = 1 << 20
TAG = 16
_INFO = b"openchat import spool v1"


class SpoolUnreadable(Exception):
    """The file does not open with this job's key (altered, cut, or another SECRET_KEY)."""


def spool_dir() -> Path:
    """Where uploads wait (created 0700): IMPORT_SPOOL_DIR, else a folder in the temp dir."""
    directory = Path(settings.IMPORT_SPOOL_DIR or Path(tempfile.gettempdir()) / "openchat-imports")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def new_salt() -> str:
    return secrets.token_hex(32)


def job_key(salt: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes.fromhex(salt), info=_INFO)
    return hkdf.derive(settings.SECRET_KEY.encode())


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")  # unique per segment; the key is unique per job


def _aad(index: int, *, last: bool) -> bytes:
    return b"%d:%d" % (index, last)


class SpoolWriter:
    """Seals what it is given segment by segment; `close()` writes the last one."""

    def __init__(self, path: Path, *, key: bytes) -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(descriptor, "wb")
        self._cipher = AESGCM(key)
        self._pending = bytearray()
        self._index = 0
        self.size = 0

    def write(self, data: bytes) -> None:
        self._pending += data
        self.size += len(data)
        while len(self._pending) >= SEGMENT:
            self._seal(bytes(self._pending[:SEGMENT]), last=False)
            del self._pending[:SEGMENT]

    def _seal(self, plain: bytes, *, last: bool) -> None:
        aad = _aad(self._index, last=last)
        self._file.write(self._cipher.encrypt(_nonce(self._index), plain, aad))
        self._index += 1

    def close(self) -> None:
        """Seal the rest (possibly nothing) as the last segment and make it durable."""
        self._seal(bytes(self._pending), last=True)
        self._pending.clear()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        self._pending.clear()
        self._file.close()


class SpoolReader(io.RawIOBase):
    """The plaintext of a spool, `size` bytes, read and seeked like a file."""

    def __init__(self, path: Path, *, key: bytes, size: int) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed with the reader
        self._cipher = AESGCM(key)
        self._size = size
        self._segments = size // SEGMENT + 1
        expected = size + self._segments * TAG
        if os.fstat(self._file.fileno()).st_size != expected:
            self._file.close()
            raise SpoolUnreadable("the uploaded file on disk is incomplete")
        self._position = 0
        self._cached: tuple[int, bytes] = (-1, b"")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def _segment(self, index: int) -> bytes:
        if self._cached[0] != index:
            self._file.seek(index * (SEGMENT + TAG))
            sealed = self._file.read(SEGMENT + TAG)
            last = index == self._segments - 1
            try:
                plain = self._cipher.decrypt(_nonce(index), sealed, _aad(index, last=last))
            except Exception as error:  # InvalidTag: wrong key, or the file was altered
                raise SpoolUnreadable("the uploaded file on disk does not open") from error
            self._cached = (index, plain)
        return self._cached[1]

    def readinto(self, buffer: "bytearray | memoryview") -> int:  # type: ignore[override]
        """Fill `buffer` across segments: a short read before the end would look like a cut
        file to `zipfile` (a header read in one call)."""
        done = 0
        while done < len(buffer) and self._position < self._size:
            index, start = divmod(self._position, SEGMENT)
            chunk = self._segment(index)[start : start + len(buffer) - done]
            buffer[done : done + len(chunk)] = chunk
            self._position += len(chunk)
            done += len(chunk)
        return done

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            self._cached = (-1, b"")
        super().close()
