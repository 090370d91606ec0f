"""For migrations whose SQL only PostgreSQL understands (extensions, GiST/GIN indexes).

On SQLite (`make run`) such an operation does nothing: the services still enforce the
rule, only the database-level guard or speed-up is missing. The loader skips modules
starting with "_", so this is not a migration itself.
"""
from django.db import migrations


def postgresql_only(forward_sql: str, backward_sql: str) -> migrations.RunPython:
    def forward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(forward_sql)

    def backward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(backward_sql)

    return migrations.RunPython(forward, backward)
