"""The message tree's queries on a tree built by hand: paths, subtrees, versions, linking."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from backend.core.db import SessionLocal
from backend.models import Conversation, Message, User, utcnow
from backend.services import message_tree

#        q1
#      /    \
#    a1      a1'        (a regenerated answer)
#    |
#    q2 ---- q2'        (an edited question, answered)
#    |       |
#    a2      a2'
SHAPE = [
    ("q1", None),
    ("a1", "q1"),
    ("q2", "a1"),
    ("a2", "q2"),
    ("a1'", "q1"),
    ("q2'", "a1"),
    ("a2'", "q2'"),
]


@pytest.fixture
def tree(client: TestClient) -> tuple[int, dict[str, int]]:
    """A conversation shaped as SHAPE; the ids of its messages by name."""
    with SessionLocal() as session:
        user = User(
            username=f"tree{utcnow().timestamp()}",
            email=f"t{utcnow().timestamp()}@x.org",
            hashed_password="x",
        )
        session.add(user)
        session.flush()
        conversation = Conversation(user_id=user.id, title="Tree")
        session.add(conversation)
        session.flush()
        ids: dict[str, int] = {}
        for position, (name, parent) in enumerate(SHAPE):
            row = session.execute(
                insert(Message).returning(Message.id),
                {
                    "uuid": f"{conversation.id}-{name}",
                    "conversation_id": conversation.id,
                    "parent_id": ids[parent] if parent else None,
                    "role": "user" if name.startswith("q") else "assistant",
                    "content": name,
                    "position": position,
                    "created_at": utcnow(),
                },
            ).scalar_one()
            ids[name] = row
        session.commit()
        return conversation.id, ids


def test_paths_run_from_the_root_and_keep_the_last_ones(tree: tuple[int, dict[str, int]]) -> None:
    _, ids = tree
    with SessionLocal() as session:
        connection = session.connection()
        assert message_tree.path_ids(connection=connection, leaf_id=ids["a2'"]) == [
            ids["q1"],
            ids["a1"],
            ids["q2'"],
            ids["a2'"],
        ]
        assert message_tree.path_ids(connection=connection, leaf_id=ids["a2"], limit=2) == [
            ids["q2"],
            ids["a2"],
        ]
        context = message_tree.read_context(connection=connection, leaf_id=ids["a1'"])
        assert context == [
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1'"},
        ]


def test_a_branch_opens_at_its_newest_message(tree: tuple[int, dict[str, int]]) -> None:
    conversation_id, ids = tree
    with SessionLocal() as session:
        connection = session.connection()
        newest = message_tree.newest_leaf_below(connection=connection, message_id=ids["a1"])
        assert newest == f"{conversation_id}-a2'"  # of q2's and q2''s branches, the newer
        assert message_tree.newest_leaf_below(connection=connection, message_id=ids["q2"]) == (
            f"{conversation_id}-a2"
        )
        leaf = message_tree.newest_leaf_below(connection=connection, message_id=ids["a1'"])
        assert leaf == f"{conversation_id}-a1'"


def test_versions_are_siblings_oldest_first(tree: tuple[int, dict[str, int]]) -> None:
    conversation_id, ids = tree
    with SessionLocal() as session:
        found = message_tree.versions(
            connection=session.connection(),
            conversation_id=conversation_id,
            parent_ids=[None, ids["q1"], ids["a1"], ids["a2"]],
        )
    c = conversation_id
    assert found == {
        None: [f"{c}-q1"],
        ids["q1"]: [f"{c}-a1", f"{c}-a1'"],
        ids["a1"]: [f"{c}-q2", f"{c}-q2'"],
        ids["a2"]: [],
    }


def test_a_shown_message_that_is_gone_falls_back_to_the_newest(
    tree: tuple[int, dict[str, int]],
) -> None:
    conversation_id, _ = tree
    with SessionLocal() as session:
        connection = session.connection()
        shown = message_tree.shown(
            connection=connection, conversation_id=conversation_id, current_uuid="gone"
        )
        assert shown is not None and shown.uuid == f"{conversation_id}-a2'"
        remembered = message_tree.shown(
            connection=connection,
            conversation_id=conversation_id,
            current_uuid=f"{conversation_id}-a2",
        )
        assert remembered is not None and remembered.uuid == f"{conversation_id}-a2"


@pytest.mark.parametrize(
    ("uuids", "parents", "linked"),
    [
        (["a", "b", "c"], [None, "a", "a"], [None, 0, 0]),  # a tree
        (["a", "b", "c"], [None, "x", "b"], [None, 0, 1]),  # a parent not in the file
        (["a", "b", "c"], [None, "c", "a"], [None, 0, 0]),  # a parent that comes later
        ([None, None], [None, None], [None, None]),  # two roots (an edited first question)
    ],
)
def test_imported_parents_always_make_a_tree(
    uuids: list[str | None], parents: list[str | None], linked: list[int | None]
) -> None:
    assert message_tree.parents_by_uuid(uuids, parents) == linked


def test_a_flat_history_is_one_branch() -> None:
    assert message_tree.linear_parents(0) == []
    assert message_tree.linear_parents(3) == [None, 0, 1]
