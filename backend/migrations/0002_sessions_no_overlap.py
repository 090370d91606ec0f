"""No two scheduled sessions of one mentor overlap: a PostgreSQL exclusion constraint.

It needs btree_gist (to mix `=` on mentor_id with `&&` on a range in one GiST index).
SQLite has no equivalent, so there the operation does nothing and the booking
service's row lock is the only guard. Kept out of the model state on purpose: the
ORM would otherwise try to validate it on SQLite.
"""
from django.db import migrations

from backend.migrations._postgresql import postgresql_only

CREATE = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE sessions ADD CONSTRAINT sessions_mentor_no_overlap
    EXCLUDE USING gist (mentor_id WITH =, tstzrange(scheduled_at, ends_at) WITH &&)
    WHERE (status = 'scheduled');
"""
DROP = "ALTER TABLE sessions DROP CONSTRAINT IF EXISTS sessions_mentor_no_overlap;"


class Migration(migrations.Migration):
    dependencies = [("backend", "0001_initial")]
    operations = [postgresql_only(CREATE, DROP)]
