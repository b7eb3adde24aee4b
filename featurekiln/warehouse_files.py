"""Plain files below the warehouse root, on a local disk or in an object store.

Delta tables go through Spark. The few plain files that featurekiln keeps next
to them (run reports, the sample sources) go through this module: a local path
or ``file://`` URI is a file on disk, an ``s3a://`` (or ``s3://``) URI an object
read and written with boto3 (:mod:`featurekiln.s3`).

boto3 rather than Hadoop's FileSystem through Spark: ``kiln report --run`` reads
a report without starting a JVM, from any machine that can reach the store;
a PUT replaces an object atomically, as the local writer does with a rename, so
a reader never sees half a file; and objects get a content type, so a report
opened through a presigned URL or the store's console renders as HTML.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from featurekiln.s3 import ObjectStoreError, client, is_s3, split
from featurekiln.settings import Settings


@dataclass(frozen=True)
class Entry:
    """A file of a folder listing: its name (no folder) and when it was last written (epoch seconds)."""

    name: str
    modified: float


class Files(Protocol):
    """Whole-file reads and writes; paths are absolute (a local path, ``file://`` or ``s3a://`` URI)."""

    def write(self, path: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Create or replace ``path`` with ``data`` atomically (creating folders as needed)."""

    def read(self, path: str) -> bytes:
        """The content of ``path``; FileNotFoundError when it does not exist."""

    def listing(self, folder: str) -> list[Entry]:
        """The files directly in ``folder`` (none when it does not exist)."""

    def folders(self, folder: str) -> list[str]:
        """The names of the folders directly in ``folder`` (none when it does not exist)."""

    def remove_tree(self, folder: str) -> None:
        """Delete ``folder`` and everything below it; a missing folder is fine."""

    def remove(self, path: str) -> None:
        """Delete the file ``path``; a missing file is fine."""


def local_path(path: str) -> str:
    """``file:///a/b`` -> ``/a/b``; other local paths unchanged."""
    return unquote(urlparse(path).path) if path.startswith("file://") else path


class LocalFiles:
    """Files on the local disk; writes go through a temporary file and a rename."""

    def write(self, path: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        target = Path(local_path(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.chmod(temporary, 0o644)  # mkstemp creates 0600; these files are meant to be read by others
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def read(self, path: str) -> bytes:
        return Path(local_path(path)).read_bytes()

    def listing(self, folder: str) -> list[Entry]:
        root = Path(local_path(folder))
        if not root.is_dir():
            return []
        return [Entry(p.name, p.stat().st_mtime) for p in root.iterdir() if p.is_file()]

    def folders(self, folder: str) -> list[str]:
        root = Path(local_path(folder))
        return [p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else []

    def remove_tree(self, folder: str) -> None:
        import shutil

        if Path(local_path(folder)).exists():
            shutil.rmtree(local_path(folder))

    def remove(self, path: str) -> None:
        Path(local_path(path)).unlink(missing_ok=True)


class S3Files:
    """Objects in an S3-compatible store; a folder is a key prefix ending in ``/``."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def _call(self, what: str, uri: str, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.s3, method)(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(uri) from None
            raise ObjectStoreError(f"cannot {what} {uri}: {error}") from error
        except BotoCoreError as error:
            raise ObjectStoreError(f"cannot {what} {uri}: {error}") from error

    def write(self, path: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        bucket, key = split(path)
        self._call("write", path, "put_object", Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def read(self, path: str) -> bytes:
        bucket, key = split(path)
        return self._call("read", path, "get_object", Bucket=bucket, Key=key)["Body"].read()

    def _pages(self, folder: str, delimiter: bool) -> list[dict[str, Any]]:
        bucket, key = split(folder)
        prefix = key.rstrip("/") + "/" if key else ""
        pages: list[dict[str, Any]] = []
        token: dict[str, str] = {}
        while True:
            extra = {"Delimiter": "/"} if delimiter else {}
            pages.append(self._call("list", folder, "list_objects_v2", Bucket=bucket, Prefix=prefix, **extra, **token))
            if not pages[-1].get("IsTruncated"):
                return pages
            token = {"ContinuationToken": pages[-1]["NextContinuationToken"]}

    def _objects(self, folder: str, delimiter: bool) -> list[dict[str, Any]]:
        return [o for page in self._pages(folder, delimiter) for o in page.get("Contents", [])]

    def folders(self, folder: str) -> list[str]:
        prefixes = [p["Prefix"] for page in self._pages(folder, True) for p in page.get("CommonPrefixes", [])]
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in prefixes]

    def listing(self, folder: str) -> list[Entry]:
        return [Entry(o["Key"].rsplit("/", 1)[-1], o["LastModified"].timestamp()) for o in self._objects(folder, True)]

    def remove_tree(self, folder: str) -> None:
        bucket, _ = split(folder)
        keys = [{"Key": o["Key"]} for o in self._objects(folder, False)]
        for start in range(0, len(keys), 1000):  # at most 1000 keys per DeleteObjects request
            self._call("delete", folder, "delete_objects", Bucket=bucket, Delete={"Objects": keys[start : start + 1000]})

    def remove(self, path: str) -> None:
        bucket, key = split(path)
        self._call("delete", path, "delete_object", Bucket=bucket, Key=key)


def files_for(path: str, settings: Settings) -> Files:
    """The files of ``path``'s kind: :class:`S3Files` for ``s3a://``/``s3://`` URIs, else :class:`LocalFiles`.

    Raises:
        ObjectStoreError: an object-store path, and boto3 is missing or finds no credentials.
    """
    return S3Files(client(settings)) if is_s3(path) else LocalFiles()
