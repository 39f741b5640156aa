"""Every row belongs to a model: model_name on the seven tables that lacked it

Several models may now share one database (issue 30), so batches, their validations,
reference profiles, drift checks, retrain runs, feedback and approvals carry the model's name,
and a batch's digest and a feedback's record id are unique per model, not across all.

The rows already stored belong to the one model the database served. Which model that is:

1. the name driftloop hands over (``driftloop db upgrade`` passes ``model.name`` of the
   settings, as ``config.attributes["model_name"]``; plain Alembic takes ``-x model=NAME``);
2. else the one name the seven tables that already carry ``model_name`` agree on (traffic
   splits, prediction log, A/B tests, audit log, performance rows).

A database with rows to fill and no name, or whose rows name another model than the one
handed over (or several), is refused with a sentence: guessing would file the history under
the wrong model. An empty database needs no name.

The downgrade drops the columns again, and refuses a database that holds rows of more than
one model: the old schema cannot keep them apart (and feedback record ids may repeat).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# the tables that gain model_name, and whether reads filter on it (an index)
TABLES = {
    "batches": True,
    "batch_validations": False,
    "reference_profiles": True,
    "drift_checks": True,
    "retrain_runs": True,
    "feedback": False,  # its unique (model_name, record_id) serves the reads
    "approvals": True,
}
# the tables that carried model_name before: the model their rows belong to
NAMED = (
    "traffic_splits",
    "traffic_split_versions",
    "predictions",
    "ab_tests",
    "audit_log",
    "performance_references",
    "performance_checks",
)
# unique before -> unique per model
UNIQUE = {
    "batches": ("uq_batches_digest", "digest", "uq_batches_model_digest"),
    "feedback": ("uq_feedback_record_id", "record_id", "uq_feedback_model_record"),
}


def upgrade() -> None:
    connection = op.get_bind()
    model = _owner(connection)
    for table, indexed in TABLES.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("model_name", sa.String(255), nullable=True))
        if model is not None:
            connection.execute(
                sa.table(table, sa.column("model_name")).update().values(model_name=model)
            )
        with op.batch_alter_table(table) as batch:
            batch.alter_column("model_name", existing_type=sa.String(255), nullable=False)
            if table in UNIQUE:
                old, column, new = UNIQUE[table]
                batch.drop_constraint(old, type_="unique")
                batch.create_unique_constraint(new, ["model_name", column])
            if indexed:
                batch.create_index(f"ix_{table}_model_name", ["model_name"])


def downgrade() -> None:
    connection = op.get_bind()
    names = _names(connection, tuple(TABLES))
    if len(names) > 1:
        raise RuntimeError(
            f"the database holds rows of models {', '.join(sorted(names))}: revision 0015 "
            "cannot keep them apart; move each model to a database of its own first"
        )
    for table, indexed in TABLES.items():
        with op.batch_alter_table(table) as batch:
            if indexed:
                batch.drop_index(f"ix_{table}_model_name")
            if table in UNIQUE:
                old, column, new = UNIQUE[table]
                batch.drop_constraint(new, type_="unique")
                batch.create_unique_constraint(old, [column])
            batch.drop_column("model_name")


def _owner(connection: sa.Connection) -> str | None:
    """The model the stored rows belong to (module docstring); None when nothing needs one."""
    given = context.config.attributes.get("model_name") or context.get_x_argument(
        as_dictionary=True
    ).get("model")
    found = _names(connection, NAMED)
    if given is not None:
        if found - {given}:
            raise RuntimeError(
                f"the database's rows belong to model {', '.join(sorted(found))}, not "
                f"{given!r}: upgrade it with that model's name (for example "
                f"DRIFTLOOP_MODEL__NAME={sorted(found)[0]} driftloop db upgrade)"
            )
        return given
    if len(found) == 1:
        return found.pop()
    if len(found) > 1:
        raise RuntimeError(
            f"the database's rows name models {', '.join(sorted(found))}: say which model "
            "the rows without a name belong to (driftloop db upgrade, or alembic -x model=NAME)"
        )
    if any(_count(connection, table) for table in TABLES):
        raise RuntimeError(
            "the database holds rows but names no model: upgrade it with `driftloop db upgrade` "
            "(which gives model.name) or alembic -x model=NAME"
        )
    return None


def _names(connection: sa.Connection, tables: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for table in tables:
        column = sa.column("model_name")
        query = sa.select(column).select_from(sa.table(table, column)).distinct()
        names.update(connection.scalars(query))
    return names


def _count(connection: sa.Connection, table: str) -> int:
    return connection.scalar(sa.select(sa.func.count()).select_from(sa.table(table))) or 0
