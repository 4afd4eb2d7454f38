# SQLAlchemy's and Alembic's compliance suites take over a pytest session: they run
# as their own invocation (docs/COMPLIANCE.md), never inside the main run.
collect_ignore = ["deltadb_dialect/compliance"]
