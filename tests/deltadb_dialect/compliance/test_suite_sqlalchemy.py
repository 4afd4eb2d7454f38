"""SQLAlchemy's dialect compliance suite against ``deltadb://`` (see docs/COMPLIANCE.md).

Three suite tests take a capability for granted instead of asking the
requirements; they are re-declared here behind the requirement they depend on
(the test bodies are SQLAlchemy's, unchanged).
"""

from sqlalchemy import testing
from sqlalchemy.testing import config
from sqlalchemy.testing.suite import *
from sqlalchemy.testing.suite.test_dialect import IsolationLevelTest as _IsolationLevelTest
from sqlalchemy.testing.suite.test_reflection import (
    ComponentReflectionTest as _ComponentReflectionTest,
)
from sqlalchemy.testing.suite.test_reflection import (
    ComponentReflectionTestExtra as _ComponentReflectionTestExtra,
)


class ComponentReflectionTest(_ComponentReflectionTest):
    # The suite runs test_metadata on config.test_schema without requiring schemas.
    @testing.combinations((True, testing.requires.schemas), False, argnames="use_schema")
    @testing.combinations((True, testing.requires.views), False, argnames="views")
    def test_metadata(self, connection, use_schema, views):
        # The inherited test takes its views exclusions as a last argument; they are
        # applied by the combinations above, hence none here.
        _ComponentReflectionTest.test_metadata(self, connection, use_schema, views, ())


class ComponentReflectionTestExtra(_ComponentReflectionTestExtra):
    # The suite's schema fixture uses config.test_schema without requiring schemas.
    @testing.fixture(params=[True, False])
    def use_schema_fixture(self, request):
        if not request.param:
            return None
        if not testing.requires.schemas.enabled:
            config.skip_test("requirement 'schemas' is closed")
        return config.test_schema


class IsolationLevelTest(_IsolationLevelTest):
    # The test switches to a second non-AUTOCOMMIT isolation level, assuming there is one.
    @testing.requires.independent_readonly_connections
    @testing.requires.second_isolation_level
    def test_dialect_user_setting_is_restored(self, testing_engine):
        _IsolationLevelTest.test_dialect_user_setting_is_restored(self, testing_engine)

