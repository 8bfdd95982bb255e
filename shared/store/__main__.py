"""`make migrate`: run the pending schema migrations against SqlConnectionString (from the
environment, else local.settings.json), with the rights of the identity it names (DDL needed)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from shared.errors import PipelineError
from shared.settings import sql_connection_string
from shared.store import migrations
from shared.store.classify import error_types
from shared.store.store import SqlStore


def _connection_string() -> str:
    if not os.environ.get("SqlConnectionString"):
        settings = Path("local.settings.json")
        if settings.is_file():
            value = json.loads(settings.read_text()).get("Values", {}).get("SqlConnectionString", "")
            if value:
                os.environ["SqlConnectionString"] = value
    return sql_connection_string()


def main() -> int:
    try:
        store = SqlStore(_connection_string())
        before = store.schema_version()
        done = store.migrate()
    except (PipelineError, *error_types()) as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    if done:
        print(f"migrate: schema {before} -> {done[-1]} (applied {', '.join(map(str, done))})")
    else:
        print(f"migrate: schema is current (version {max(before, migrations.LATEST)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
