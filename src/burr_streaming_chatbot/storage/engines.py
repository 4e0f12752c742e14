"""``open_store``: the store the settings ask for (nothing in the package imports this module)."""

from ..settings import Settings
from .interface import Store, machine_name, new_owner_id
from .postgres import PostgresStore
from .sqlite import SQLiteStore


def open_store(settings: Settings) -> Store:
    """The store for ``settings``: PostgreSQL when ``database_url`` is set, else SQLite."""
    owner = new_owner_id(settings.worker_name or machine_name())
    if settings.postgres_url:
        return PostgresStore(settings.postgres_url, owner, settings.database_pool_size)
    return SQLiteStore(settings.storage_dir, owner, settings.max_open_projects)
