"""The throwaway PostgreSQL server of tests/postgres.py: databases of its own, reachable by URL,
and nothing left behind by the stop."""

import socket
import subprocess

import pytest
from postgres import postgres_or_skip

pytestmark = pytest.mark.e2e  # a PostgreSQL server in a subprocess


def select_one(psql: str, url: str) -> str:
    done = subprocess.run(
        [
            psql,
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            "SELECT 1, current_database()",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_cluster_serves_fresh_databases_and_stop_removes_it():
    cluster = postgres_or_skip()
    try:
        root, port = cluster.root, cluster.port
        assert root.is_dir()
        assert cluster.url == f"postgresql://postgres@127.0.0.1:{port}/chatbot"
        first = cluster.create_database("first_db")
        second = cluster.create_database()
        assert first != second
        psql = cluster.psql_binary()
        assert select_one(psql, first) == "1|first_db"
        assert select_one(psql, second) == f"1|{second.rsplit('/', 1)[1]}"
        assert select_one(psql, cluster.url) == "1|chatbot"
    finally:
        cluster.stop()
    assert not root.exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the server still listens"
    cluster.stop()  # a second stop is harmless
