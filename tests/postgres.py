"""A throwaway PostgreSQL server for the tests: ``initdb`` in a fresh temporary folder, the
server on 127.0.0.1 on a free port, trust authentication, ``fsync=off``; ``stop()`` removes it all.

The server binaries come from Debian's ``postgresql`` package (``/usr/lib/postgresql/<N>/bin``).
``initdb`` and ``postgres`` refuse to run as root: as root they run as the ``postgres`` system
user that the package creates. The superuser is always ``postgres`` (``initdb -U postgres``).

    with PostgresCluster() as cluster:
        url = cluster.create_database("test_one")   # postgresql://postgres@127.0.0.1:PORT/test_one

The server's log goes to ``artifacts/logs/postgres-<port>.log`` (kept after the stop), or into the
temporary folder when that cannot be written.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional
from urllib.parse import quote

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
SERVER_USER = "postgres"  # the system user Debian's package creates; initdb's superuser too
SKIP_REASON = "PostgreSQL server binaries not installed (Debian package postgresql)"

_names = itertools.count(1)


def _has_server(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in SERVER_BINARIES)


def _version_key(folder: Path) -> tuple:
    """``/usr/lib/postgresql/15/bin`` -> (15,); "9.6" -> (9, 6); newest sorts last."""
    return tuple(int(part) for part in re.findall(r"\d+", folder.parent.name))


def find_pg_bin() -> Optional[Path]:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or None when not installed.

    Looks at ``pg_config --bindir``, then ``/usr/lib/postgresql/*/bin`` (newest version first),
    then PATH (following a symlinked ``initdb`` to its real folder)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates += [Path(initdb).resolve().parent, Path(initdb).parent]
    return next((folder for folder in candidates if _has_server(folder)), None)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresError(RuntimeError):
    pass


class PostgresCluster:
    """A PostgreSQL server of its own in a temporary folder; a context manager.

    Attributes once started: ``url`` (the ``chatbot`` database), ``host``, ``port``, ``user``,
    ``password``, ``root`` (the temporary folder), ``data_dir``, ``socket_dir``, ``log_path``,
    ``bin``."""

    def __init__(
        self,
        database: str = "chatbot",
        password: Optional[str] = None,
        max_connections: int = 200,
        bin_dir: Optional[Path] = None,
        start_timeout: float = 60.0,
        durable: bool = False,
    ) -> None:
        self.database = database
        self.password = password
        self.max_connections = max_connections
        self.bin = Path(bin_dir) if bin_dir else find_pg_bin()
        self.start_timeout = start_timeout
        self.durable = durable
        """Keep ``synchronous_commit`` on: a commit is in the WAL before it returns, so it
        survives :meth:`pause` (the server killed). Off by default, for speed."""
        self.host = "127.0.0.1"
        self.user = SERVER_USER
        self.port: Optional[int] = None
        self.root: Optional[Path] = None
        self.log_path: Optional[Path] = None
        self.url: Optional[str] = None
        self._as_root = os.geteuid() == 0
        self._running = False

    # -- paths and commands ------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None
        return self.root / "socket"

    def url_for(self, database: str) -> str:
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"

    def _env(self) -> dict[str, str]:
        """The environment without PG* variables (PGDATA, PGPORT... would steer the tools)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def _server_command(self, argv: list[str]) -> list[str]:
        """``argv`` run as the server's user: as is, or as ``postgres`` when we are root."""
        if not self._as_root:
            return argv
        if shutil.which("runuser"):
            return ["runuser", "-u", SERVER_USER, "--", *argv]
        return ["su", SERVER_USER, "-s", "/bin/sh", "-c", shlex.join(argv)]

    def _run(self, argv: list[str], timeout: float, as_server: bool = True, **kwargs):
        command = self._server_command(argv) if as_server else argv
        kwargs.setdefault("capture_output", True)
        return subprocess.run(
            command,
            cwd=self.root,  # the postgres user may not be able to enter the caller's folder
            env=self._env(),
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
            **kwargs,
        )

    def psql_binary(self) -> str:
        """The `psql` to use: the one beside the server binaries, else the one on PATH."""
        assert self.bin is not None
        psql = self.bin / "psql"
        if os.access(psql, os.X_OK):
            return str(psql)
        found = shutil.which("psql")
        if not found:
            raise PostgresError("psql not found (Debian package postgresql-client)")
        return found

    # -- start -------------------------------------------------------------------------------

    def start(self) -> PostgresCluster:
        if self._running:
            return self
        if self.bin is None:
            raise PostgresError(SKIP_REASON)
        self.root = Path(tempfile.mkdtemp(prefix="pgtest-"))
        atexit.register(self.stop)
        try:
            if self._as_root:
                try:
                    shutil.chown(self.root, SERVER_USER, SERVER_USER)
                except LookupError as error:
                    raise PostgresError(
                        f"running as root, and there is no {SERVER_USER!r} user to run the "
                        "server as (Debian's postgresql package creates it)"
                    ) from error
            os.chmod(self.root, 0o700)
            self._initdb()
            for _ in range(5):  # a free port can be taken between the check and the bind
                if self._start_on(free_port()):
                    break
            else:
                raise PostgresError(f"PostgreSQL did not start; see {self.log_path}")
            self._running = True
            self.create_database(self.database)
            self.url = self.url_for(self.database)
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self) -> None:
        argv = [
            str(self.bin / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SERVER_USER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--auth-local=trust",
        ]
        if self.password:
            pwfile = self.root / "pwfile"
            pwfile.write_text(self.password + "\n")
            if self._as_root:
                shutil.chown(pwfile, SERVER_USER, SERVER_USER)
            argv += ["--pwfile", str(pwfile), "--auth-host=scram-sha-256"]
        else:
            argv += ["--auth-host=trust"]
        self.socket_dir.mkdir(mode=0o700)
        if self._as_root:
            shutil.chown(self.socket_dir, SERVER_USER, SERVER_USER)
        done = self._run(argv, timeout=120)
        if done.returncode != 0:
            raise PostgresError(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\ninclude 'throwaway.conf'\n")

    def _configure(self, port: int) -> None:
        def literal(value: object) -> str:
            return "'" + str(value).replace("'", "''") + "'"

        settings = {
            "listen_addresses": literal(self.host),
            "port": port,
            "unix_socket_directories": literal(self.socket_dir),
            "max_connections": self.max_connections,
            "fsync": "off",
            "synchronous_commit": "on" if self.durable else "off",
            "full_page_writes": "off",
            "logging_collector": "off",
        }
        path = self.data_dir / "throwaway.conf"
        path.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
        if self._as_root:
            shutil.chown(path, SERVER_USER, SERVER_USER)

    def _log_file(self, port: int) -> Path:
        try:
            folder = ARTIFACTS / "logs"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"postgres-{port}.log"
            path.open("w").close()
            return path
        except OSError:
            return self.root / f"postgres-{port}.log"

    def _start_on(self, port: int) -> bool:
        """Start the server on ``port``; False when it did not come up (the port was taken...)."""
        self.port = port
        self._configure(port)
        self.log_path = self._log_file(port)
        # No ``pg_ctl -l``: the server inherits this descriptor, opened by us, so the log can be
        # anywhere we can write even when the server runs as another user; nor is it a pipe
        # that would keep ``subprocess.run`` waiting for the server to exit.
        with open(self.log_path, "a") as log:
            try:
                done = self._run(
                    [
                        str(self.bin / "pg_ctl"),
                        "start",
                        "-D",
                        str(self.data_dir),
                        "-w",
                        "-t",
                        str(int(self.start_timeout)),
                    ],
                    timeout=self.start_timeout + 30,
                    capture_output=False,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            except subprocess.TimeoutExpired:
                self._kill_server()
                return False
        if done.returncode == 0:
            return True
        self._kill_server()
        return False

    # -- use ---------------------------------------------------------------------------------

    def psql(self, sql: str, database: str = "postgres", timeout: float = 60) -> str:
        """Run ``sql`` with ``psql`` over TCP; its unaligned, tuples-only output."""
        done = self._run(
            [
                self.psql_binary(),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.url_for(database),
                "-c",
                sql,
            ],
            timeout=timeout,
            as_server=False,
        )
        if done.returncode != 0:
            raise PostgresError(f"psql failed ({done.returncode}) on {sql!r}:\n{done.stderr}")
        return done.stdout

    def create_database(self, name: Optional[str] = None) -> str:
        """Create a fresh database (a generated name when none is given); its URL."""
        if name is None:
            name = f"test_{os.getpid()}_{next(_names)}"
        self.psql(f"CREATE DATABASE {_quote_ident(name)}")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")

    # -- stop --------------------------------------------------------------------------------

    def _postmaster_pid(self) -> Optional[int]:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError, AssertionError):
            return None

    def _kill_server(self) -> None:
        """SIGKILL the postmaster if it is still there (its children exit when it is gone)."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def pause(self) -> None:
        """Stop the server at once (``-m immediate``: connections drop, as in a crash), keeping
        its data for :meth:`resume`."""
        done = self._run(
            [
                str(self.bin / "pg_ctl"),
                "stop",
                "-D",
                str(self.data_dir),
                "-m",
                "immediate",
                "-w",
                "-t",
                "15",
            ],
            timeout=30,
        )
        if done.returncode != 0:
            self._kill_server()
        self._running = False

    def resume(self) -> None:
        """Start the server again on the same port, with its data."""
        assert self.port is not None
        if not self._start_on(self.port):
            raise PostgresError(f"PostgreSQL did not start again; see {self.log_path}")
        self._running = True

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m immediate``; SIGKILL if that fails) and remove the
        temporary folder. Safe to call more than once."""
        atexit.unregister(self.stop)
        if self.root is None:
            return
        if self._running or self._postmaster_pid() is not None:
            try:
                done = self._run(
                    [
                        str(self.bin / "pg_ctl"),
                        "stop",
                        "-D",
                        str(self.data_dir),
                        "-m",
                        "immediate",
                        "-w",
                        "-t",
                        "15",
                    ],
                    timeout=30,
                )
                if done.returncode != 0:
                    self._kill_server()
            except (OSError, subprocess.SubprocessError):
                self._kill_server()
        self._running = False
        root, self.root = self.root, None
        for _ in range(20):
            shutil.rmtree(root, ignore_errors=True)
            if not root.exists():
                break
            time.sleep(0.1)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"{self.url} in {self.root}" if self._running else "stopped"
        return f"<PostgresCluster {state}>"


def postgres_or_skip(**kwargs) -> PostgresCluster:
    """A started ``PostgresCluster`` (the caller stops it); the test is skipped when the server
    binaries are not installed, or fails when ``CI=true`` (CI must run these tests)."""
    import pytest

    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(SKIP_REASON + ", and CI=true: .ci/run should have installed it")
        pytest.skip(SKIP_REASON)
    kwargs.setdefault("bin_dir", bin_dir)
    return PostgresCluster(**kwargs).start()
