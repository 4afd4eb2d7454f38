"""Search latency at 100,000 messages: `services.search.search` on a throw-away store.

Builds a store (deltadb by default) with one user owning N messages (default 100,000) in
conversations of 50 messages, plus a second user's messages that must never be returned, each
message with its search index rows (as the chat writes them),
then times a mix of queries (rare word, common word, two words, a phrase, word prefixes, a
miss) the way
`GET /api/search` runs them (one short session each), once the snapshot that building the
store started is written. Prints p50/p95 per query kind and overall.

    .venv/bin/python bench/search_bench.py
    .venv/bin/python bench/search_bench.py --store sqlite --messages 20000 --rounds 20
"""

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = (
    "the a of to and in is it you that he was for on are with as his they be at one have this"
    " from or had by word but what some we can out other were all there when up use your how"
    " said an each she which do their time if will way about many then them write would like"
    " so these her long make thing see him two has look more day could go come did number"
    " sound no most people my over know water than call first who may down side been now find"
    " garden tomato bicycle recipe kernel database encryption python migration snapshot quota"
).split()
RARE = ["zanzibar", "quokka", "xylophone", "fjord", "kumquat", "sphinx", "yodel", "gazebo"]
QUERIES = {
    "rare word": ["zanzibar", "quokka", "kumquat", "gazebo"],
    "common word": ["water", "people", "garden", "python"],
    "two words": ["garden tomato", "python migration", "water people", "kernel database"],
    "phrase": ["encryption python snapshot", "bicycle recipe garden"],
    # "wa" stands for several words (was, way, water): the slower path, scored over each.
    "prefix": ["tom", "encr", "wa"],
    "no match": ["nonexistentword", "qqqzzz"],
}


def _sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(8, 60))
    if rng.random() < 0.01:
        words.insert(rng.randrange(len(words)), rng.choice(RARE))
    return " ".join(words).capitalize() + "."


def _populate(*, messages: int, others: int, seed: int) -> int:
    from sqlalchemy import insert

    from backend.core.db import SessionLocal
    from backend.models import Conversation, Message, User, new_uuid, utcnow

    rng, now = random.Random(seed), utcnow()
    with SessionLocal() as session:
        owners = [
            User(username=n, email=f"{n}@x.org", hashed_password="x") for n in ("me", "other")
        ]
        session.add_all(owners)
        session.commit()
        owner_ids = [owner.id for owner in owners]
    for user_id, total in zip(owner_ids, (messages, others), strict=True):
        for start in range(0, total, 5000):
            with SessionLocal() as session:
                batch = range(start, min(total, start + 5000))
                conversations = {}
                for index in batch:
                    if index % 50 == 0:
                        conversation = Conversation(
                            user_id=user_id,
                            title=_sentence(rng)[:60],
                            created_at=now,
                            updated_at=now,
                        )
                        session.add(conversation)
                        session.flush()
                        conversations[index // 50] = conversation.id
                rows = [
                    {
                        "uuid": new_uuid(),
                        "conversation_id": conversations[index // 50],
                        "role": "user" if index % 2 == 0 else "assistant",
                        "content": _sentence(rng),
                        "position": index % 50,
                        "created_at": now,
                    }
                    for index in batch
                ]
                session.execute(insert(Message), rows)
                _index(session, user_id=user_id, conversation_ids=list(conversations.values()))
                session.commit()
    return owner_ids[0]


def _index(session, *, user_id: int, conversation_ids: list[int]) -> None:  # noqa: ANN001
    """What storing each message through the chat does: its words into the search index."""
    from sqlalchemy import insert, select

    from backend.models import Message, SearchTerm
    from backend.services.search_index import index_rows

    stored = session.execute(
        select(Message.id, Message.conversation_id, Message.content).where(
            Message.conversation_id.in_(conversation_ids)
        )
    )
    rows = [
        row
        for m in stored
        for row in index_rows(
            user_id=user_id, message_id=m.id, conversation_id=m.conversation_id, content=m.content
        )
    ]
    for start in range(0, len(rows), 20_000):
        session.execute(insert(SearchTerm), rows[start : start + 20_000])


def _settle() -> None:
    """Let the snapshot that building the store started finish before anything is timed:
    packing a few million entities takes a core for a minute or more, and timings taken
    meanwhile measure that instead of the queries."""
    from deltadb_dialect import registry

    began = time.perf_counter()
    for store in list(registry._registry.values()):
        store.wait_for_checkpoint(timeout=900.0)
    print(
        f"background snapshot of the new store finished after {time.perf_counter() - began:.1f} s"
    )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["deltadb", "sqlite"], default="deltadb")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--others", type=int, default=10_000, help="another user's messages")
    parser.add_argument("--rounds", type=int, default=10, help="times each query runs")
    arguments = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="search-bench-"))
    os.environ.setdefault("DELTADB_MASTER_KEY", secrets.token_hex(32))
    os.environ.update(
        ENVIRONMENT="test",
        SECRET_KEY=secrets.token_urlsafe(32),
        MOCK_OPENAI="true",
        DATABASE_URL=f"sqlite:///{workdir}/bench.db"
        if arguments.store == "sqlite"
        else f"deltadb:///{workdir}/store",
    )
    sys.path.insert(0, str(REPO))
    from alembic import command

    from backend.core.db import SessionLocal, alembic_config
    from backend.services import search

    command.upgrade(alembic_config(), "head")
    started = time.perf_counter()
    user_id = _populate(messages=arguments.messages, others=arguments.others, seed=6)
    print(
        f"store: {arguments.store}, {arguments.messages} messages of the searching user + "
        f"{arguments.others} of another user, built in {time.perf_counter() - started:.1f} s"
    )
    _settle()

    every: list[float] = []
    for kind, queries in QUERIES.items():
        timings, counts = [], []
        for _ in range(arguments.rounds):
            for q in queries:
                began = time.perf_counter()
                with SessionLocal() as session:
                    found = search.search(
                        session=session,
                        user_id=user_id,
                        q=q,
                        limit=20,
                        offset=0,
                        include_archived=True,
                    )
                timings.append((time.perf_counter() - began) * 1000)
                counts.append(found.count)
        every += timings
        print(f"{kind:12s} {_figures(timings)}   hits {int(statistics.mean(counts))}")
    print(f"{'all':12s} {_figures(every)}   ({len(every)} queries)")
    _write_cost(user_id=user_id, rounds=arguments.rounds * 5)


def _write_cost(*, user_id: int, rounds: int) -> None:
    """What the index adds to storing an answer: one transaction per message, with and
    without its index rows (a 150-word answer has about 80 distinct words)."""
    from sqlalchemy import insert, select

    from backend.core.db import SessionLocal
    from backend.models import Conversation, Message, new_uuid, utcnow
    from backend.services import search_index

    rng = random.Random(7)
    with SessionLocal() as session:
        conversation_id = session.scalar(
            select(Conversation.id).where(Conversation.user_id == user_id).limit(1)
        )
    timings: dict[bool, list[float]] = {False: [], True: []}
    rows_per_message = []
    for round_ in range(rounds):
        for indexed in (False, True):
            text = " ".join(_sentence(rng) for _ in range(10))
            began = time.perf_counter()
            with SessionLocal() as session:
                connection = session.connection()
                message_id = connection.execute(
                    insert(Message).returning(Message.id),
                    {
                        "uuid": new_uuid(),
                        "conversation_id": conversation_id,
                        "role": "assistant",
                        "content": text,
                        "position": 1000 + 2 * round_ + indexed,
                        "created_at": utcnow(),
                    },
                ).scalar_one()
                if indexed:
                    search_index.index_message(
                        connection=connection,
                        user_id=user_id,
                        conversation_id=conversation_id,
                        message_id=message_id,
                        content=text,
                    )
                    rows_per_message.append(len(set(words_of(text))))
                session.commit()
            timings[indexed].append((time.perf_counter() - began) * 1000)
    print(
        f"store an answer: {_figures(timings[False])} without its index rows, "
        f"{_figures(timings[True])} with them "
        f"(~{int(statistics.mean(rows_per_message))} rows each, {rounds} answers)"
    )


def words_of(text: str) -> list[str]:
    from backend.services.words import split

    return split(text)


def _figures(timings: list[float]) -> str:
    p50, p95 = _percentile(timings, 0.5), _percentile(timings, 0.95)
    return f"p50 {p50:7.1f} ms   p95 {p95:7.1f} ms"


if __name__ == "__main__":
    main()
