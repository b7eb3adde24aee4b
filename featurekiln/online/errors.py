"""Errors of the online store; all derive from :class:`featurekiln.errors.OnlineStoreError`."""

from __future__ import annotations

from featurekiln.errors import OnlineStoreError, Problem


class OnlineConfigError(OnlineStoreError):
    """The online store setting (``KILN_ONLINE_STORE`` or ``kiln.yaml``) is invalid; carries every problem."""

    def __init__(self, problems: list[Problem] | list[str]) -> None:
        self.items = [str(p) for p in problems]
        super().__init__("\n".join(self.items))

    @property
    def problems(self) -> list[str]:
        return list(self.items)


class MissingClientError(OnlineStoreError):
    """The configured backend needs a Python package that is not installed."""


class StoreUnavailableError(OnlineStoreError):
    """The online store's server could not be reached (or went away during an operation)."""


class ViewNotOnlineError(OnlineStoreError):
    """A read named a view that no push has written to the online store."""


class OnlineKeyError(OnlineStoreError):
    """A key given to a read lacks a key column, has an unknown column or a value of the wrong kind."""
