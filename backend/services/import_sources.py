"""The conversations of an uploaded export, one at a time, whatever its size.

An upload is ChatGPT's `.zip` (its `conversations.json` member is decompressed as a stream),
ChatGPT's `conversations.json` itself (a list), or an Open Chat export (an object whose
`conversations` list is read the same way). `ijson` parses it incrementally (its C backend,
yajl2_c, when the wheel has it), so memory holds one conversation at a time, never the file.
"""

import re
import zipfile
from collections.abc import Iterator
from typing import IO, Any, Literal

import ijson

Source = Literal["chatgpt", "openchat"]
_CONVERSATIONS_MEMBER = re.compile(r"(?:^|/)conversations(?:-\d+)?\.json$")
_ZIP_MAGIC = b"PK\x03\x04"


class UnreadableExport(ValueError):
    """The upload is not an export this server reads; the message says what it is instead."""


def is_zip(head: bytes) -> bool:
    return head.startswith(_ZIP_MAGIC)


def check_head(head: bytes) -> None:
    """Refuse at once what is neither a zip nor a JSON document (the first bytes tell)."""
    if is_zip(head):
        return
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] not in (b"[", b"{"):
        raise UnreadableExport(
            "This is neither ChatGPT's export (.zip or conversations.json) nor an Open Chat "
            "export: a JSON file starts with [ or {."
        )


def conversation_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = sorted(
        (info for info in archive.infolist() if _CONVERSATIONS_MEMBER.search(info.filename)),
        key=lambda info: info.filename,
    )
    if not members:
        raise UnreadableExport(
            "The zip holds no conversations.json: is it the export ChatGPT sent "
            "(Settings › Data controls › Export data)?"
        )
    return members


def open_zip(stream: IO[bytes]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise UnreadableExport(f"The zip file cannot be read ({error}).") from error


def _source_of(stream: IO[bytes]) -> Source:
    """ChatGPT's list or our object, from the first byte of the document."""
    head = b""
    while not head.strip(b"\xef\xbb\xbf \t\r\n") and (chunk := stream.read(1)):
        head += chunk
    if head.strip(b"\xef\xbb\xbf \t\r\n") == b"[":
        return "chatgpt"
    if head.strip(b"\xef\xbb\xbf \t\r\n") == b"{":
        return "openchat"
    raise UnreadableExport("The file is not a JSON list of conversations nor an Open Chat export.")


def items(stream: IO[bytes]) -> tuple[Source, Iterator[Any]]:
    """The export's source and its conversations (raw JSON values), read incrementally.
    `stream` must seek (back to where it was, after its first bytes tell the format)."""
    position = stream.tell()
    source = _source_of(stream)
    stream.seek(position)
    prefix = "item" if source == "chatgpt" else "conversations.item"
    return source, _parsed(ijson.items(stream, prefix, use_float=True))


def _parsed(values: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from values
    except ijson.common.IncompleteJSONError as error:
        raise UnreadableExport(f"The file is not valid JSON ({_reason(error)}).") from error
    except ijson.common.JSONError as error:
        raise UnreadableExport(f"The file is not valid JSON ({_reason(error)}).") from error


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]
