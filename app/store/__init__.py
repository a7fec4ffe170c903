"""The store: SQLAlchemy models, sessions, migrations and the repositories that hold every query."""
