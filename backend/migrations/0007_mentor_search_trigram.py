"""Mentor search (`?q=`, icontains on name and headline) through trigram indexes.

Django's icontains on PostgreSQL is `UPPER(col::text) LIKE UPPER('%q%')`: a leading
wildcard no b-tree can serve, but a pg_trgm GIN index on the same expression can.
PostgreSQL only; on SQLite the catalogue is small and scanned.
"""
from django.db import migrations

from backend.migrations._postgresql import postgresql_only

CREATE = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS mentor_name_trgm ON backend_mentor USING gin ((UPPER(name::text)) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS mentor_headline_trgm ON backend_mentor USING gin ((UPPER(headline::text)) gin_trgm_ops);
"""
DROP = "DROP INDEX IF EXISTS mentor_name_trgm; DROP INDEX IF EXISTS mentor_headline_trgm;"


class Migration(migrations.Migration):
    dependencies = [("backend", "0006_list_and_stats_indexes")]
    operations = [postgresql_only(CREATE, DROP)]
