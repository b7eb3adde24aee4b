"""The ``kiln`` command line. Only parses and prints; renders errors: red, one line per problem, exit 1.

Usage errors (an unknown command or option, a bad value) print click's short
usage and the error, and exit 2. Neither prints a traceback without ``--debug``.
The common options (``--defs``, ``--warehouse``, ``--expectations``, ``--debug``)
go before or after the subcommand.
"""

from featurekiln.cli import definitions, maintain, materialize, serving, tables  # noqa: F401 - each registers its commands
from featurekiln.cli.app import app, main

__all__ = ["app", "main"]
