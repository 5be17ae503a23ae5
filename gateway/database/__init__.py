"""The gateway database, shared by every actor of a process and by every process of a site.

- ``engine``: engine creation for a SQLAlchemy URL (SQLite pragmas, PostgreSQL pool) and
  transactions;
- ``migrate``: the one Alembic environment (``migrations/``) for every room's tables;
- ``leases``: one row per running process, kept alive by a heartbeat; another process's pending
  work may only be taken over once its lease has expired;
- ``exclusive``: the embedded SQLite database serves one process: a second one is refused.

Each room keeps its own table definitions (``registry/schema.py``, ``repository/schema.py``,
``imaging/schema.py``); only the migrations name them all.
"""
