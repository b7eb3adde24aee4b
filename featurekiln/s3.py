"""The object store of an ``s3a://`` warehouse: one set of AWS settings for Spark's s3a and for boto3.

Spark (Delta tables, staging, quarantine, run history) reaches the warehouse
through Hadoop's s3a connector; reports and sample sources go through boto3.
Both get the same values, resolved once per process from the standard AWS
settings:

- endpoint: ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL`` (``Settings.s3_endpoint``);
  none means AWS's own endpoint for the region;
- region: ``AWS_REGION``, else ``AWS_DEFAULT_REGION`` (``Settings.aws_region``), else
  the profile's region;
- credentials: boto3's credential chain (environment, shared credentials and
  config files with ``AWS_PROFILE``, SSO, web identity, container and instance
  roles). Spark gets the resolved keys, except for container and instance roles,
  whose short-lived keys s3a fetches and refreshes itself from the same source;
- path-style access (``bucket`` in the path, not in the host name): the
  profile's ``s3 = addressing_style = path|virtual``; without it, path style when
  an endpoint is set (MinIO, Ceph, moto), virtual-host style on AWS.

Delta's commits to the warehouse are put-if-absent requests (``If-None-Match: *``,
see featurekiln/internals/ConditionalPutLogStore.java); :func:`check_conditional_writes`
asks the store once per process whether it honours them.

boto3 is imported on first use, so local warehouses never need it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from featurekiln.errors import KilnError
from featurekiln.settings import Settings

SCHEMES = ("s3a://", "s3://")
# Credentials that s3a refreshes itself: EC2/ECS/EKS roles (boto3's credential methods of the same source).
INSTANCE_ROLES = frozenset({"iam-role", "container-role"})
_S3A = "spark.hadoop.fs.s3a."


class ObjectStoreError(KilnError):
    """The warehouse's object store cannot be reached or refused a request."""


class CommitSafetyError(ObjectStoreError):
    """Delta's commits to the warehouse cannot be made safe for concurrent writers here."""


def is_s3(path: str) -> bool:
    """Whether ``path`` is an object-store URI (``s3a://bucket/key`` or ``s3://bucket/key``)."""
    return path.startswith(SCHEMES)


def split(uri: str) -> tuple[str, str]:
    """``s3a://bucket/some/key`` -> ``("bucket", "some/key")`` (the key without a leading ``/``)."""
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ObjectStoreError(f"{uri}: no bucket in the URI (expected s3a://bucket/prefix)")
    return bucket, key.lstrip("/")


@dataclass(frozen=True)
class Connection:
    """Where the object store is and who we are there; ``credentials`` is None for instance roles."""

    endpoint_url: str | None
    region: str | None
    path_style: bool
    credentials: tuple[str, str, str | None] | None


def _path_style(session: Any, endpoint_url: str | None) -> bool:
    style = (session._session.get_config_variable("s3") or {}).get("addressing_style")  # noqa: SLF001 - botocore session
    if style in ("path", "virtual"):
        return style == "path"
    return endpoint_url is not None


def _resolve(endpoint_url: str | None, region: str | None) -> tuple[Any, Connection]:
    try:
        import boto3
    except ImportError:
        raise ObjectStoreError("an s3a:// warehouse needs boto3: pip install 'boto3==1.44.8'") from None
    session = boto3.session.Session(region_name=region)
    found = session.get_credentials()
    if found is None:
        raise ObjectStoreError(
            "no AWS credentials for the s3a:// warehouse: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE (boto3's credential chain found none)"
        )
    credentials = None
    if found.method not in INSTANCE_ROLES:
        frozen = found.get_frozen_credentials()
        credentials = (frozen.access_key, frozen.secret_key, frozen.token)
    connection = Connection(endpoint_url, session.region_name, _path_style(session, endpoint_url), credentials)
    return session, connection


def connection(settings: Settings) -> Connection:
    """The object store of ``settings``, as boto3's chain resolves it now.

    Raises:
        ObjectStoreError: boto3 is missing or finds no credentials.
    """
    return _resolve(settings.s3_endpoint, settings.aws_region)[1]


@lru_cache(maxsize=8)
def _client(endpoint_url: str | None, region: str | None) -> Any:
    from botocore.config import Config

    session, found = _resolve(endpoint_url, region)
    config = Config(
        s3={"addressing_style": "path" if found.path_style else "virtual"},
        retries={"max_attempts": 5, "mode": "standard"},
    )
    return session.client("s3", endpoint_url=endpoint_url, config=config)


def client(settings: Settings) -> Any:
    """A boto3 S3 client of the object store of ``settings``.

    One per endpoint and region and process: boto3 clients are thread-safe, and
    the client refreshes expiring credentials itself.
    """
    return _client(settings.s3_endpoint, settings.aws_region)


def s3a_conf(settings: Settings) -> dict[str, str]:
    """Spark settings (``spark.hadoop.fs.s3a.*``) that point s3a at the same store, as boto3 sees it.

    Secrets go in keys that Spark redacts in its UI and logs (``*secret*``, ``*token*``).
    """
    found = connection(settings)
    conf = {
        f"{_S3A}path.style.access": str(found.path_style).lower(),
        f"{_S3A}impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
    }
    if found.endpoint_url:
        conf[f"{_S3A}endpoint"] = found.endpoint_url
    if found.region:
        conf[f"{_S3A}endpoint.region"] = found.region
    if found.credentials is None:
        conf[f"{_S3A}aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider"
        return conf
    access_key, secret_key, token = found.credentials
    conf[f"{_S3A}access.key"] = access_key
    conf[f"{_S3A}secret.key"] = secret_key
    if token:
        conf[f"{_S3A}session.token"] = token
        conf[f"{_S3A}aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
    else:
        conf[f"{_S3A}aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    return conf


def _refused(error: Exception) -> bool:
    response = getattr(error, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 412 or response.get("Error", {}).get("Code") in ("PreconditionFailed", "412")


def check_conditional_writes(settings: Settings) -> None:
    """Check that the warehouse's store refuses a put-if-absent (``If-None-Match: *``) of an existing key.

    Writes one empty probe object below ``<warehouse>/_kiln/commit-probes/`` twice
    with ``If-None-Match: *`` and removes it; the second write must be refused
    (HTTP 412). A store that accepts it would let one Delta commit silently
    replace another's. Asked once per process and warehouse.

    Raises:
        CommitSafetyError: the store ignores or does not implement conditional writes.
        ObjectStoreError: the store cannot be reached or refused the probe otherwise.
    """
    _check_conditional_writes(settings.s3_endpoint, settings.aws_region, settings.warehouse.rstrip("/"))


@lru_cache(maxsize=8)
def _check_conditional_writes(endpoint_url: str | None, region: str | None, warehouse: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split(warehouse)
    key = "/".join(part for part in (prefix, "_kiln", "commit-probes", uuid.uuid4().hex) if part)
    s3 = _client(endpoint_url, region)
    unsafe = (
        f"the object store of {warehouse} does not refuse a second put-if-absent (If-None-Match: *) of one "
        "key, so concurrent Delta commits could silently replace each other: use a store with S3 conditional "
        "writes (AWS S3, MinIO since 2024, moto 5), or set KILN_OBJECT_STORE_COMMITS=single-driver and run one "
        "writer at a time (docs/object-store.md)"
    )
    try:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=b"", IfNoneMatch="*")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NotImplemented", "501"):
                raise CommitSafetyError(f"{unsafe} (it does not implement If-None-Match)") from error
            raise
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=b"", IfNoneMatch="*")
        except ClientError as error:
            if not _refused(error):
                code = error.response.get("Error", {}).get("Code", "")
                raise CommitSafetyError(f"{unsafe} (it answered {code or error})") from error
        else:
            raise CommitSafetyError(unsafe)
        finally:
            s3.delete_object(Bucket=bucket, Key=key)
    except (BotoCoreError, ClientError) as error:
        raise ObjectStoreError(f"{warehouse}: could not probe the store's conditional writes: {error}") from error
