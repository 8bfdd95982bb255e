"""Former home of the store, kept so code written against it still imports: use shared.store."""

from shared.store import SqlStore, blob_key, connect, driver_for, is_transient, store_for

__all__ = ["SqlStore", "blob_key", "connect", "driver_for", "is_transient", "store_for"]
