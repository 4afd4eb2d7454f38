"""The catalogue's rules: names that cannot collide, schemas that must be valid."""

from backend.mcp.connection import DiscoveredTool
from backend.mcp.registry import qualified_name, usable_schema


def test_qualified_names_are_safe_unique_and_short() -> None:
    assert qualified_name("files", "read file", set()) == "files__read_file"
    taken = {"files__read_file"}
    other = qualified_name("files", "read.file", taken)  # would be files__read_file too
    assert other != "files__read_file" and other.startswith("files__read_file_")
    long = qualified_name("s", "x" * 100, set())
    assert len(long) <= 64
    assert long != qualified_name("s", "x" * 99, set())


def test_only_valid_object_schemas_are_offered() -> None:
    def tool(schema: dict) -> DiscoveredTool:
        return DiscoveredTool("t", "", schema)

    assert usable_schema(tool({})) == {"type": "object", "properties": {}}
    ok = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert usable_schema(tool(ok)) == ok
    assert usable_schema(tool({"type": "string"})) is None
    assert usable_schema(tool({"type": "object", "properties": {"a": {"type": 5}}})) is None
