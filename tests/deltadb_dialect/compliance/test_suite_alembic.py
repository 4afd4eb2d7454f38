"""Alembic's dialect compliance suite against ``deltadb://`` (see docs/COMPLIANCE.md).

BackendAlterColumnTest alters columns in place, which SQLite does only for
renames and (since 3.53) NOT NULL; its other tests are re-declared here behind
requirements saying so (the test bodies are Alembic's, unchanged).
"""

from alembic.testing import config
from alembic.testing.suite import *
from alembic.testing.suite.test_op import BackendAlterColumnTest as _BackendAlterColumnTest

requires = config.requirements


class BackendAlterColumnTest(_BackendAlterColumnTest):
    @requires.alter_column_type_in_place
    def test_modify_type_int_str(self):
        super().test_modify_type_int_str()

    @requires.alter_column_server_default_in_place
    def test_add_server_default_int(self):
        super().test_add_server_default_int()

    @requires.alter_column_server_default_in_place
    def test_modify_server_default_int(self):
        super().test_modify_server_default_int()

    @requires.alter_column_nullable_in_place
    def test_modify_nullable_to_non(self):
        super().test_modify_nullable_to_non()

    @requires.alter_column_nullable_in_place
    def test_modify_non_nullable_to_nullable(self):
        super().test_modify_non_nullable_to_nullable()
