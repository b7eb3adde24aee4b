"""Real servers on loopback for the online-store tests: redis-server and moto in server mode."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REDIS_SERVER = "/usr/bin/redis-server"
MOTO_SERVER = Path(sys.executable).parent / "moto_server"
MOTO_SERIALIZED = Path(__file__).with_name("moto_serialized.py")
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(ready, what: str, process: subprocess.Popen, seconds: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it answered")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer within {seconds}s")


class Server:
    """A server process that can be started, killed (SIGKILL) and started again on the same port."""

    def __init__(self, name: str, port: int, workdir: Path) -> None:
        self.name = name
        self.host = "127.0.0.1"
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(self.command(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        _wait(self.answers, f"{self.name} on port {self.port}", self.process)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None


def serve(server: Server) -> Iterator[Server]:
    """Start ``server``, yield it, kill it (the body of a fixture)."""
    server.start()
    yield server
    server.kill()


class RedisServer(Server):
    """``redis-server`` without persistence, or with an append-only file (``durable=True``)."""

    def __init__(self, port: int, workdir: Path, durable: bool = False) -> None:
        if not os.access(REDIS_SERVER, os.X_OK):
            raise RuntimeError(f"{REDIS_SERVER} is missing: run `bash scripts/system_packages.sh` (Debian redis-server)")
        super().__init__("redis-server", port, workdir)
        self.durable = durable

    def command(self) -> list[str]:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else ["--appendonly", "no"]
        return [REDIS_SERVER, "--bind", self.host, "--port", str(self.port), "--save", "", *persistence,
                "--dir", str(self.workdir)]

    def answers(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


class MotoServer(Server):
    """moto in server mode: DynamoDB- and S3-compatible endpoints over real HTTP (state in memory).

    Runs moto's server app through :mod:`tests.online.moto_serialized` (one request at a
    time, for DynamoDB's atomic conditional writes); ``serialized=False`` runs the stock
    ``moto_server`` command.
    """

    serialized = True

    def __init__(self, port: int, workdir: Path) -> None:
        if not MOTO_SERVER.exists():
            raise RuntimeError(f"{MOTO_SERVER} is missing: pip install -r requirements.txt (moto[server])")
        super().__init__("moto_server", port, workdir)

    def command(self) -> list[str]:
        if self.serialized:
            return [sys.executable, str(MOTO_SERIALIZED), self.host, str(self.port)]
        return [str(MOTO_SERVER), "-H", self.host, "-p", str(self.port)]

    def answers(self) -> bool:
        with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1) as response:
            return response.status == 200

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"
