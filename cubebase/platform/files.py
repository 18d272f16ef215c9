"""The file store: the bytes of `file` fields, kept by their SHA-256 under the data
directory (`CUBEBASE_DATA_DIR/files/ab/cd/<sha256>`).

A file field holds a descriptor (`key`, `name`, `size`, `content_type`); the key is
the content's hash, so the same bytes are stored once and a key cannot be guessed
without the content. Writes go to a temporary file first and are renamed into
place, so a reader never sees half a file and concurrent uploads of the same bytes
are harmless. Several machines share files through a shared data directory (see
docs/deployment.md). Who may download a file is decided by the records service:
the file's record and field must be readable.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any

from .errors import BadRequest, NotFound

CHUNK = 1024 * 1024
KEY_RE = re.compile(r"[0-9a-f]{64}")
NAME_BAD = re.compile(r'[\x00-\x1f\x7f/\\:"<>|?*]')
SAFE_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")
OCTET = "application/octet-stream"


class FileStore:
    def __init__(self, root: Path, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes

    def put(self, stream: IO[bytes], name: str, content_type: str | None) -> dict[str, Any]:
        """Store an upload; its descriptor for a file field."""
        name = _clean_name(name)
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise BadRequest(
                            f"The file is too large (at most {self.max_bytes // (1024 * 1024)} MB)"
                        )
                    digest.update(chunk)
                    out.write(chunk)
            key = digest.hexdigest()
            target = self.path(key, must_exist=False)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return {
            "key": key,
            "name": name,
            "size": size,
            "content_type": clean_content_type(content_type),
        }

    def path(self, key: str, *, must_exist: bool = True) -> Path:
        if not isinstance(key, str) or not KEY_RE.fullmatch(key):
            raise NotFound("No such file")
        p = self.root / key[:2] / key[2:4] / key
        if must_exist and not p.is_file():
            raise NotFound("The file is missing from the file store")
        return p


def clean_content_type(value: str | None) -> str:
    """The declared type as a bare ``type/subtype`` (lower case, no parameters), or
    ``application/octet-stream`` when it is not one: a label for a download, never
    a reason to render it (downloads are attachments, see docs/api.md, "Files")."""
    kind = (value or "").split(";", 1)[0].strip().lower()
    return kind if SAFE_TYPE.fullmatch(kind) else OCTET


def _clean_name(name: str | None) -> str:
    name = NAME_BAD.sub("_", os.path.basename(name or "")).strip(" .")
    return (name or "file")[-255:]


def file_store(platform) -> FileStore:
    config = platform.config
    return FileStore(Path(config.data_dir) / "files", config.max_request_bytes)
