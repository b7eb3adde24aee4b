"""moto's DynamoDB-compatible server, applying one request at a time.

``python tests/online/moto_serialized.py HOST PORT`` runs the same WSGI app as
``moto_server -H HOST -p PORT``, behind a lock. moto's own server handles
requests in threads without locking items, so two concurrent conditional
writes of one item can both pass their condition; real DynamoDB applies
conditional writes atomically per item. Serializing the requests gives the
emulator that guarantee, which the newer-wins tests rely on; clients still
talk to it over real HTTP with ``endpoint_url``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def serialized_app() -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    """moto's dispatcher app, one request at a time (the response body is read inside the lock)."""
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def call(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with lock:
            return list(app(environ, start_response))

    return call


def main(host: str, port: int) -> None:
    os.environ.setdefault("MOTO_PORT", str(port))
    run_simple(host, port, serialized_app(), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
