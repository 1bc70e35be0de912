"""Alembic environment: the archive opens a connection (inside one write transaction) and passes it in."""

from alembic import context

from toolkit.archive.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
