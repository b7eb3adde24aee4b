"""Which online store to use: ``KILN_ONLINE_STORE`` (a URL) > ``kiln.yaml`` > SQLite under the warehouse.

URLs: ``sqlite:///relative/online.db`` or ``sqlite:////absolute/online.db``;
``redis://[user:password@]host:port/db`` (``rediss://`` for TLS);
``dynamodb://?region=eu-west-1&endpoint_url=http://127.0.0.1:5000&prefix=kiln_``.
Any other field of the backend's config is a query parameter
(``redis://host:6379/0?key_prefix=features``).

``kiln.yaml`` at the project root (the parent of the definitions directory, or
the working directory) may hold ``online_store:`` as a URL or as a mapping of
the config's fields, e.g. ``{type: redis, host: cache, port: 6379}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import Field, TypeAdapter, ValidationError

from featurekiln.errors import Problem
from featurekiln.online.dynamodb import DynamoDBConfig
from featurekiln.online.errors import OnlineConfigError
from featurekiln.online.protocol import OnlineStore, StoreConfig
from featurekiln.online.redis import RedisConfig
from featurekiln.online.sqlite import SqliteConfig
from featurekiln.settings import Settings

OnlineStoreConfig = Annotated[SqliteConfig | RedisConfig | DynamoDBConfig, Field(discriminator="type")]
ENV = "KILN_ONLINE_STORE"
PROJECT_FILE = "kiln.yaml"
SECTION = "online_store"
_ADAPTER: TypeAdapter[StoreConfig] = TypeAdapter(OnlineStoreConfig)
_SCHEMES = {"sqlite": "sqlite", "redis": "redis", "rediss": "redis", "dynamodb": "dynamodb"}


def _message(error: dict[str, Any]) -> tuple[str, str]:
    field = ".".join(str(p) for p in error["loc"] if p not in ("sqlite", "redis", "dynamodb"))
    if error["type"] == "extra_forbidden":
        return field, "unknown option"
    if error["type"] == "union_tag_invalid":
        return "type", f"unknown store type {error['input'].get('type')!r}; use sqlite, redis or dynamodb"
    if error["type"] == "union_tag_not_found":
        return "type", "is required: sqlite, redis or dynamodb"
    return field, str(error["msg"])


def _validate(fields: dict[str, Any], origin: str, where: Any = None) -> StoreConfig:
    """Validate ``fields`` into a config; ``where(field) -> Problem prefix`` names the place of each problem."""
    try:
        config = _ADAPTER.validate_python(fields)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field, message = _message(item)
            problems.append(where(field, message) if where else f"{origin}: {field}: {message}" if field else f"{origin}: {message}")
        allowed = _allowed(fields.get("type"))
        if allowed and any("unknown option" in str(p) for p in problems):
            problems.append(f"{origin}: options of {fields.get('type')}: {', '.join(allowed)}")
        raise OnlineConfigError(problems) from None
    return config.with_origin(origin)


def _allowed(kind: object) -> list[str]:
    for model in (SqliteConfig, RedisConfig, DynamoDBConfig):
        if model.model_fields["type"].default == kind:
            return [name for name in model.model_fields if name != "type"]
    return []


def parse_store_url(url: str, origin: str = ENV, base: Path | None = None) -> StoreConfig:
    """Parse an online store URL into its backend's config.

    A relative SQLite path resolves against ``base`` (default: the working directory).

    Raises:
        OnlineConfigError: unknown scheme, unparsable URL or invalid option; the message names ``origin``.
    """
    text = url.strip()
    label = f"{origin}={_hide_password(text)}"
    parts = urlsplit(text)
    kind = _SCHEMES.get(parts.scheme)
    if kind is None:
        raise OnlineConfigError([f"{label}: unknown scheme {parts.scheme!r}; use sqlite:///, redis:// or dynamodb://"])
    fields: dict[str, Any] = {"type": kind}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in fields:
            raise OnlineConfigError([f"{label}: option {name} is given twice"])
        fields[name] = value
    try:
        if kind == "sqlite":
            if parts.netloc or not parts.path[1:]:
                raise ValueError("write sqlite:///relative/path.db or sqlite:////absolute/path.db")
            fields["path"] = str((base or Path.cwd()) / unquote(parts.path[1:]))
        elif kind == "redis":
            fields.update(
                {"host": parts.hostname or "127.0.0.1", "port": parts.port or 6379, "ssl": parts.scheme == "rediss"}
            )
            if parts.path.strip("/"):
                fields["db"] = parts.path.strip("/")
            if parts.username:
                fields["username"] = unquote(parts.username)
            if parts.password:
                fields["password"] = unquote(parts.password)
        elif parts.netloc or parts.path.strip("/"):
            raise ValueError("give the options as query parameters: dynamodb://?region=...&endpoint_url=...")
    except ValueError as error:
        raise OnlineConfigError([f"{label}: {error}"]) from None
    return _validate(fields, label)


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def project_file(settings: Settings) -> Path | None:
    """The project's ``kiln.yaml``: next to the definitions directory, else in the working directory."""
    candidates = [settings.defs_dir.resolve().parent / PROJECT_FILE, Path.cwd() / PROJECT_FILE]
    return next((path for path in candidates if path.is_file()), None)


def load_project_config(path: Path) -> StoreConfig | None:
    """The ``online_store`` of a ``kiln.yaml``, or None when the file does not set it.

    Raises:
        OnlineConfigError: the file is not valid YAML or the section is invalid; each problem
            names the file, the line and the field.
    """
    from featurekiln.definitions.loader import display_name, read_document

    file = display_name(path)
    document, problems = read_document(path.read_text(encoding="utf-8"), file)
    if document is None:
        if any("must be a YAML mapping" in p.message for p in problems):
            problems = [Problem(file, 1, "", "must be a YAML mapping of settings, e.g. `online_store: sqlite:///online.db`")]
        raise OnlineConfigError(problems)
    if problems:
        raise OnlineConfigError(problems)
    data = document.data
    if not isinstance(data, dict) or data.get(SECTION) is None:
        return None
    section = data[SECTION]
    line = document.line_of((SECTION,))
    if isinstance(section, str):
        return parse_store_url(section, origin=f"{file}:{line}: {SECTION}", base=path.parent)
    if not isinstance(section, dict):
        raise OnlineConfigError([Problem(file, line, SECTION, "must be a URL or a mapping with a type")])

    def where(field: str, message: str) -> Problem:
        path = (SECTION, *field.split(".")) if field else (SECTION,)
        return Problem(file, document.line_of(path), ".".join(path), message)

    config = _validate(dict(section), f"{file}:{line}: {SECTION}", where)
    if isinstance(config, SqliteConfig) and not Path(config.path).is_absolute():
        config = config.model_copy(update={"path": str(path.parent / config.path)})
    return config


def default_store_path(settings: Settings) -> str:
    """``<warehouse>/_online/online.db``; the default store needs a local warehouse.

    Raises:
        OnlineConfigError: the warehouse is a URI (s3a://...), where SQLite cannot live.
    """
    if "://" in settings.warehouse:
        raise OnlineConfigError(
            [f"the warehouse {settings.warehouse} is not local, so the default SQLite online store cannot live in it; "
             f"set {ENV} (e.g. redis://host:6379/0) or {SECTION} in {PROJECT_FILE}"]
        )
    return settings.warehouse_path("_online", "online.db")


def online_store_config(settings: Settings) -> StoreConfig:
    """The online store config: ``settings.online_store`` (env ``KILN_ONLINE_STORE``) > ``kiln.yaml`` > default.

    Raises:
        OnlineConfigError: the chosen setting is invalid.
    """
    if settings.online_store:
        return parse_store_url(settings.online_store)
    path = project_file(settings)
    if path is not None:
        config = load_project_config(path)
        if config is not None:
            return config
    return SqliteConfig(path=default_store_path(settings)).with_origin(
        f"the default online store; set {ENV} or {SECTION} in {PROJECT_FILE} to choose another"
    )


def open_store(config: StoreConfig) -> OnlineStore:
    """A store for ``config`` (clients are created here; connections on first use)."""
    if isinstance(config, SqliteConfig):
        from featurekiln.online.sqlite import SqliteStore

        return SqliteStore(config)
    if isinstance(config, RedisConfig):
        from featurekiln.online.redis import RedisStore

        return RedisStore(config)
    if isinstance(config, DynamoDBConfig):
        from featurekiln.online.dynamodb import DynamoDBStore

        return DynamoDBStore(config)
    raise TypeError(f"not an online store config: {config!r}")
