"""Real servers on loopback for the tests: redis-server, moto in server mode, and PostgreSQL (Airflow's database)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REDIS_SERVER = "/usr/bin/redis-server"
MOTO_SERVER = Path(sys.executable).parent / "moto_server"
MOTO_SERIALIZED = Path(__file__).with_name("moto_serialized.py")
POSTGRES_BINARIES = "/usr/lib/postgresql/*/bin"
# PostgreSQL refuses to run as root; a root test runs it as the system user of Debian's package.
POSTGRES_SYSTEM_USER = "postgres"
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


class PostgresServer(Server):
    """PostgreSQL from Debian's ``postgresql`` package: a fresh cluster (``initdb``) listening on loopback
    only, with one database ``airflow`` owned by the superuser ``kiln`` (trust authentication: the port
    is on 127.0.0.1 and lives as long as the test).

    PostgreSQL refuses to run as root: when the tests run as root, ``initdb`` and the server run as the
    ``postgres`` system user (the server process itself, so that :meth:`kill` reaches it), and the
    cluster lives in its own temporary directory, which that user owns (it cannot enter pytest's private
    ones); ``workdir`` keeps the log. Durability is off (``fsync``): the data dies with the test.
    """

    user = "kiln"
    database = "airflow"

    def __init__(self, port: int, workdir: Path) -> None:
        found = sorted(glob.glob(POSTGRES_BINARIES), key=lambda p: int(Path(p).parent.name))
        if not found:
            raise RuntimeError(f"no {POSTGRES_BINARIES}: run `bash scripts/system_packages.sh` (Debian postgresql)")
        super().__init__("postgres", port, workdir)
        self.bin = Path(found[-1])
        self.owner = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="kiln-postgres-"))
        self.data = self.root / "data"

    def _initdb(self) -> None:
        if self.owner:
            shutil.chown(self.root, self.owner, self.owner)
        done = subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "--encoding=UTF8",
             "--no-sync"],
            capture_output=True, text=True, cwd=self.root, user=self.owner, group=self.owner,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")

    def command(self) -> list[str]:
        return [
            str(self.bin / "postgres"), "-D", str(self.data), "-h", self.host, "-p", str(self.port),
            "-k", str(self.root), "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]

    def answers(self) -> bool:
        ready = subprocess.run(
            [str(self.bin / "pg_isready"), "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", "postgres"],
            capture_output=True,
        )
        return ready.returncode == 0

    def start(self) -> None:
        """Start the server (creating the cluster and the ``airflow`` database the first time)."""
        first = not self.data.exists()
        if first:
            self._initdb()
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            self.command(), cwd=self.root, stdout=log, stderr=subprocess.STDOUT, user=self.owner, group=self.owner
        )
        log.close()
        _wait(self.answers, f"{self.name} on port {self.port}", self.process)
        if first:
            created = subprocess.run(
                [str(self.bin / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, self.database],
                capture_output=True, text=True,
            )
            if created.returncode != 0:
                raise RuntimeError(f"createdb {self.database} failed:\n{created.stderr}")

    def remove(self) -> None:
        """Stop the server and delete its cluster."""
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``airflow`` database (psycopg2: Airflow's sync driver for PostgreSQL)."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.database}"
