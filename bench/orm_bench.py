"""Chat-shaped ORM benchmark: SQLite file vs SQLCipher vs a DeltaDB store, in one process.

One workload written with SQLAlchemy 2.x typed models (users, conversations, messages,
responses) runs against three engines:

* ``sqlite:///FILE``                       WAL, synchronous=FULL, foreign_keys=ON
* ``sqlite+pysqlcipher://:pw@//FILE``      the same pragmas, SQLCipher 4 defaults
* ``deltadb:////STORE?key_file=KEY``       the encrypted store (fresh random key)

Phases (each backend receives exactly the same operations, generated from a fixed seed):

* ``bulk_insert``   users, conversations, then N messages (every second one an assistant
                    answer with its ``responses`` row) added with ``Session.add_all`` and
                    committed in batches
* ``single_commit`` ``session.add(message); session.commit()`` one row at a time (durable)
* ``point_read``    ``session.get(Message, id)``, one short-lived Session per read (a request)
* ``point_read_tx`` ``session.get(Message, id)``, many reads in one Session and transaction
* ``last_50``       a conversation's last 50 messages with their responses (ORDER BY + LIMIT)
* ``paged_list``    a user's conversations by recency, 10 a page, with OFFSET
* ``aggregate``     a user's usage: GROUP BY model with COUNT/SUM/AVG over a 3-table join

Each backend is warmed up first (one untimed pass of every read phase). Read phases are
repeated (``--reps``) round-robin across backends and the median repetition is reported;
single-row commits run in rounds the same way (median round x rounds); the bulk insert
runs ``--bulk-rounds`` times (default 5) per backend, round-robin, each time into a fresh
database, and its median round is reported (the first round's databases serve the rest).
The workload total is the sum of the phases.

A separate ``open`` phase builds DeltaDB stores of ``--open-rows`` rows (default 100,000)
in several shapes and, in fresh subprocesses, times dispose/create-engine/first-query and
measures the resident-memory growth (VmRSS) against the rows' plaintext size (the sum of
the rows' JSON documents).

    .venv/bin/python bench/orm_bench.py                 # default sizes, 2-3 minutes
    .venv/bin/python bench/orm_bench.py --quick         # small sizes, a smoke run
    .venv/bin/python bench/orm_bench.py --rows 50000 --json bench/out/orm.json

Every temporary file lives under one temporary directory, removed at exit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
)

import deltadb_dialect  # registers the deltadb:// dialect

SEED = 20240611
SQLCIPHER_PASSPHRASE = "orm-bench-passphrase"
BASE_TIME = dt.datetime(2025, 1, 1, 8, 0, 0)
MODELS = ["gpt-4o-mini", "gpt-4o", "llama-3.1-70b", "mistral-large"]
WORDS = (
    "the a model answer question context token stream chat private encrypted store user "
    "assistant reply python database commit replay latency memory index query page cache "
    "server request response message conversation history summary draft idea plan test "
    "because however therefore example detail result value error retry limit offset order"
).split()


# --- the models (shaped like backend/models.py, kept here so the bench stands alone) ------

class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)

    conversations: Mapped[list[Conversation]] = relationship(back_populates="user")


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_user_updated", "user_id", "updated_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str | None] = mapped_column(String(200))
    default_model: Mapped[str | None] = mapped_column(String(128))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)

    user: Mapped[User] = relationship(back_populates="conversations")
    messages: Mapped[list[Message]] = relationship(back_populates="conversation")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("conversation_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    response: Mapped[Response | None] = relationship(back_populates="message")


class Response(Base):
    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    model_used: Mapped[str] = mapped_column(String(128))
    tokens_prompt: Mapped[int | None] = mapped_column(Integer)
    tokens_completion: Mapped[int | None] = mapped_column(Integer)
    tokens_total: Mapped[int | None] = mapped_column(Integer)
    completion_time_ms: Mapped[int | None] = mapped_column(Integer)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)

    message: Mapped[Message] = relationship(back_populates="response")


TABLES = [User, Conversation, Message, Response]


# --- sizes and data -------------------------------------------------------------------------

@dataclass(frozen=True)
class Sizes:
    rows: int  # messages in the workload (half of them with a response)
    batch: int  # messages per bulk-insert commit
    bulk_rounds: int  # timed bulk inserts per backend, each into a fresh database
    commits: int  # single-row commits in total
    commit_rounds: int
    reps: int  # timed repetitions of each read phase
    point_reads: int  # per repetition
    last_50: int
    pages: int
    aggregates: int
    open_rows: int  # rows in each store of the open phase
    open_runs: int  # fresh subprocesses per store shape
    single_row_shape: bool  # build the store of one-row commits too


def sizes_from(args: argparse.Namespace) -> Sizes:
    if args.quick:
        base = Sizes(rows=2000, batch=500, bulk_rounds=1, commits=60, commit_rounds=3, reps=3,
                     point_reads=200,
                     last_50=30, pages=60, aggregates=10, open_rows=10_000, open_runs=1,
                     single_row_shape=True)
    else:
        base = Sizes(rows=20_000, batch=1000, bulk_rounds=5, commits=500, commit_rounds=10, reps=15,
                     point_reads=600, last_50=60, pages=150, aggregates=25,
                     open_rows=100_000, open_runs=3, single_row_shape=True)
    changes: dict[str, Any] = {}
    if args.rows:
        changes["rows"] = args.rows
    if args.open_rows is not None:
        changes["open_rows"] = args.open_rows
    if args.reps:
        changes["reps"] = args.reps
    if args.bulk_rounds:
        changes["bulk_rounds"] = args.bulk_rounds
    if args.no_single_row_store:
        changes["single_row_shape"] = False
    return Sizes(**{**base.__dict__, **changes})


def words(rng: random.Random, low: int, high: int) -> str:
    """Random text of about ``low``..``high`` characters."""
    target = rng.randint(low, high)
    out: list[str] = []
    length = 0
    while length < target:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)


@dataclass
class Dataset:
    users: list[dict[str, Any]]
    conversations: list[dict[str, Any]]
    messages: list[dict[str, Any]]  # each may carry a "response" dict
    next_position: dict[int, int]
    long_conversations: list[int]
    conversations_per_user: int


def make_dataset(n_messages: int, seed: int = SEED) -> Dataset:
    """Users own conversations; 25% of conversations are long and hold ~70% of the messages."""
    rng = random.Random(seed)
    n_users = max(4, n_messages // 1000)
    per_user = max(4, n_messages // 25 // n_users)
    n_conv = n_users * per_user
    users = [{"username": f"user{u:05d}", "email": f"user{u:05d}@example.org",
              "hashed_password": "$argon2id$v=19$m=65536,t=3,p=4$" + "x" * 60,
              "full_name": f"User Number {u}", "is_active": True,
              "created_at": BASE_TIME} for u in range(1, n_users + 1)]
    conversations = [{"uuid": f"{rng.getrandbits(128):032x}", "user_id": 1 + c % n_users,
                      "title": words(rng, 10, 60), "default_model": rng.choice(MODELS),
                      "pinned": c % 17 == 0, "archived": False, "created_at": BASE_TIME,
                      "updated_at": BASE_TIME} for c in range(n_conv)]
    weights = [7 if c % 4 == 0 else 1 for c in range(n_conv)]
    owners = rng.choices(range(1, n_conv + 1), weights=weights, k=n_messages)
    next_position: dict[int, int] = {}
    messages: list[dict[str, Any]] = []
    for i, conv_id in enumerate(owners):
        position = next_position.get(conv_id, 0)
        next_position[conv_id] = position + 1
        created = BASE_TIME + dt.timedelta(seconds=30 * i)
        conversations[conv_id - 1]["updated_at"] = created
        model = conversations[conv_id - 1]["default_model"]
        assistant = position % 2 == 1
        message: dict[str, Any] = {
            "conversation_id": conv_id, "role": "assistant" if assistant else "user",
            "content": words(rng, 100, 1200) if assistant else words(rng, 20, 400),
            "model": model, "position": position, "created_at": created,
        }
        if assistant:
            prompt, completion = rng.randint(20, 4000), rng.randint(20, 900)
            message["response"] = {
                "model_used": model, "tokens_prompt": prompt, "tokens_completion": completion,
                "tokens_total": prompt + completion, "completion_time_ms": rng.randint(200, 9000),
                "finish_reason": "stop" if rng.random() < 0.95 else "length",
                "created_at": created,
            }
        messages.append(message)
    long_conversations = [c for c, n in next_position.items() if n >= 50]
    return Dataset(users, conversations, messages, next_position, long_conversations, per_user)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- backends -------------------------------------------------------------------------------

def _sqlite_pragmas(engine: Engine) -> Engine:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def make_key_file(directory: Path) -> Path:
    path = directory / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(os.urandom(32).hex() + "\n")
    return path


def deltadb_url(store: Path, key_file: Path) -> str:
    return f"deltadb:///{store}?key_file={key_file}"


@dataclass
class Backend:
    name: str
    url: str
    path: Path  # file or directory whose size is reported
    engine: Engine | None = None

    def connect(self) -> Engine:
        engine = create_engine(self.url)
        if not self.url.startswith("deltadb"):
            _sqlite_pragmas(engine)
        self.engine = engine
        return engine


def make_backends(work: Path, key_file: Path, only: list[str], stem: str = "bench"
                  ) -> list[Backend]:
    sqlite, cipher, store = (work / f"{stem}.{kind}" for kind in ("sqlite", "sqlcipher",
                                                                   "deltadb"))
    backends = [
        Backend("sqlite", f"sqlite:///{sqlite}", sqlite),
        Backend("sqlcipher", f"sqlite+pysqlcipher://:{SQLCIPHER_PASSPHRASE}@/{cipher}", cipher),
        Backend("deltadb", deltadb_url(store, key_file), store),
    ]
    return [b for b in backends if b.name in only]


def remove_database(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def disk_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    total = 0
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(str(path) + suffix)
        if candidate.exists():
            total += candidate.stat().st_size
    return total


# --- workload phases ------------------------------------------------------------------------

def bulk_insert(engine: Engine, data: Dataset, batch: int) -> None:
    with Session(engine) as session:
        session.add_all([User(**u) for u in data.users])
        session.commit()
        for part in chunks(data.conversations, batch):
            session.add_all([Conversation(**c) for c in part])
            session.commit()
        for part in chunks(data.messages, batch):
            objects = []
            for row in part:
                fields = {k: v for k, v in row.items() if k != "response"}
                message = Message(**fields)
                if "response" in row:
                    message.response = Response(**row["response"])
                objects.append(message)
            session.add_all(objects)
            session.commit()


def single_commits(engine: Engine, rows: Sequence[dict[str, Any]]) -> list[float]:
    latencies = []
    with Session(engine, expire_on_commit=False) as session:
        for row in rows:
            start = time.perf_counter()
            session.add(Message(**row))
            session.commit()
            latencies.append(time.perf_counter() - start)
    return latencies


def point_read(engine: Engine, ids: Sequence[int]) -> None:
    for message_id in ids:
        with Session(engine) as session:
            message = session.get(Message, message_id)
            assert message is not None


def point_read_tx(engine: Engine, ids: Sequence[int]) -> None:
    with Session(engine) as session:
        for message_id in ids:
            assert session.get(Message, message_id) is not None


def last_50(engine: Engine, conversation_ids: Sequence[int]) -> None:
    for conversation_id in conversation_ids:
        with Session(engine) as session:
            rows = session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.position.desc())
                .limit(50)
                .options(joinedload(Message.response))
            ).unique().all()
            assert len(rows) == 50


def paged_list(engine: Engine, pages: Sequence[tuple[int, int]]) -> None:
    for user_id, page in pages:
        with Session(engine) as session:
            rows = session.scalars(
                select(Conversation)
                .where(Conversation.user_id == user_id)
                .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
                .limit(10)
                .offset(page * 10)
            ).all()
            assert rows


def aggregate(engine: Engine, user_ids: Sequence[int]) -> None:
    for user_id in user_ids:
        with Session(engine) as session:
            rows = session.execute(
                select(Response.model_used, func.count(Response.id),
                       func.sum(Response.tokens_total), func.avg(Response.completion_time_ms))
                .join(Response.message)
                .join(Message.conversation)
                .where(Conversation.user_id == user_id)
                .group_by(Response.model_used)
                .order_by(func.count(Response.id).desc())
            ).all()
            assert rows


@dataclass
class ReadPhase:
    name: str
    run: Callable[[Engine, Sequence[Any]], None]
    ops: list[Any]
    what: str


def read_phases(data: Dataset, sizes: Sizes) -> list[ReadPhase]:
    rng = random.Random(SEED + 1)
    n = len(data.messages)
    n_users = len(data.users)
    pages_per_user = max(1, data.conversations_per_user // 10)
    return [
        ReadPhase("point_read", point_read,
                  [rng.randint(1, n) for _ in range(sizes.point_reads)],
                  "session.get by primary key, one Session per read"),
        ReadPhase("point_read_tx", point_read_tx,
                  rng.sample(range(1, n + 1), min(n, sizes.point_reads)),
                  "session.get by primary key, all in one Session"),
        ReadPhase("last_50", last_50,
                  [rng.choice(data.long_conversations) for _ in range(sizes.last_50)],
                  "last 50 messages of a conversation + responses (ORDER BY, LIMIT)"),
        ReadPhase("paged_list", paged_list,
                  [(rng.randint(1, n_users), rng.randrange(pages_per_user))
                   for _ in range(sizes.pages)],
                  "a user's conversations by recency, 10 per page, OFFSET"),
        ReadPhase("aggregate", aggregate,
                  [rng.randint(1, n_users) for _ in range(sizes.aggregates)],
                  "per-model COUNT/SUM/AVG of a user's responses (GROUP BY, 3-table join)"),
    ]


def commit_rows(data: Dataset, count: int) -> list[dict[str, Any]]:
    rng = random.Random(SEED + 2)
    positions = dict(data.next_position)
    start = BASE_TIME + dt.timedelta(days=365)
    rows = []
    for i in range(count):
        conv_id = rng.choice(data.long_conversations)
        position = positions[conv_id]
        positions[conv_id] = position + 1
        rows.append({"conversation_id": conv_id, "role": "user",
                     "content": words(rng, 20, 400), "model": MODELS[0],
                     "position": position, "created_at": start + dt.timedelta(seconds=i)})
    return rows


@dataclass
class PhaseResult:
    seconds: float
    ops: int
    extra: dict[str, float] = field(default_factory=dict)


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    gc.collect()
    cpu = time.process_time()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def rotated(items: list[Any], turn: int) -> list[Any]:
    """The backends in a different order each round, so none always runs first."""
    k = turn % len(items)
    return items[k:] + items[:k]


def run_workload(backends: list[Backend], sizes: Sizes, log: Callable[[str], None],
                 work: Path, key_file: Path
                 ) -> tuple[dict[str, dict[str, PhaseResult]], dict[str, str]]:
    data = make_dataset(sizes.rows)
    phases = read_phases(data, sizes)
    to_commit = commit_rows(data, sizes.commits)
    results: dict[str, dict[str, PhaseResult]] = {b.name: {} for b in backends}
    descriptions = {
        "bulk_insert": f"{len(data.users)} users, {len(data.conversations)} conversations, "
                       f"{len(data.messages)} messages + "
                       f"{sum('response' in m for m in data.messages)} responses, "
                       f"{sizes.batch} messages per commit; median of {sizes.bulk_rounds} "
                       "rounds, each into a fresh database",
        "single_commit": f"{sizes.commits} x session.add(message) + commit",
    }
    n_rows = (len(data.users) + len(data.conversations) + len(data.messages)
              + sum("response" in m for m in data.messages))

    # bulk inserts: rounds, round-robin across backends, each into a fresh database; the
    # first round's databases are kept for the phases that follow
    bulk: dict[str, list[tuple[float, float]]] = {b.name: [] for b in backends}
    for turn in range(sizes.bulk_rounds):
        for backend in rotated(backends, turn):
            target = backend if turn == 0 else make_backends(
                work, key_file, [backend.name], stem=f"round{turn}")[0]
            engine = target.connect()
            with engine.connect() as connection:  # open the pool's connection (SQLCipher's KDF)
                connection.exec_driver_sql("SELECT 1").all()
            Base.metadata.create_all(engine)
            seconds, cpu = timed(lambda engine=engine: bulk_insert(engine, data, sizes.batch))
            bulk[backend.name].append((seconds, cpu))
            log(f"  bulk_insert    {backend.name:10s} {seconds:8.3f} s")
            if target is not backend:
                engine.dispose()
                remove_database(target.path)
    for backend in backends:
        times = sorted(bulk[backend.name])
        seconds, cpu = times[len(times) // 2]  # the median round (an odd number of rounds)
        results[backend.name]["bulk_insert"] = PhaseResult(
            seconds, n_rows, {"cpu": cpu, "min": times[0][0],
                              "spread_pct": 100 * (times[-1][0] - times[0][0]) / seconds})

    # single-row commits: rounds, round-robin across backends
    per_round = list(chunks(to_commit, max(1, len(to_commit) // sizes.commit_rounds)))
    round_times: dict[str, list[float]] = {b.name: [] for b in backends}
    latencies: dict[str, list[float]] = {b.name: [] for b in backends}
    cpu_times: dict[str, float] = {b.name: 0.0 for b in backends}
    for turn, rows in enumerate(per_round):
        for backend in rotated(backends, turn):
            gc.collect()
            cpu = time.process_time()
            start = time.perf_counter()
            lat = single_commits(backend.engine, rows)  # type: ignore[arg-type]
            round_times[backend.name].append((time.perf_counter() - start) / len(rows))
            cpu_times[backend.name] += time.process_time() - cpu
            latencies[backend.name].extend(lat)
    for backend in backends:
        lat = sorted(latencies[backend.name])
        per_commit = statistics.median(round_times[backend.name])
        results[backend.name]["single_commit"] = PhaseResult(
            per_commit * len(to_commit), len(to_commit),
            {"p50_ms": 1000 * statistics.median(lat),
             "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
             "cpu": cpu_times[backend.name]})
        log(f"  single_commit  {backend.name:10s} {per_commit * 1e6:8.0f} us/commit")

    # reads: one untimed warm-up pass per backend, then round-robin repetitions
    for backend in backends:
        for phase in phases:
            phase.run(backend.engine, phase.ops)  # type: ignore[arg-type]
    for phase in phases:
        descriptions[phase.name] = f"{len(phase.ops)} x {phase.what}"
        samples: dict[str, list[float]] = {b.name: [] for b in backends}
        cpu_samples: dict[str, list[float]] = {b.name: [] for b in backends}
        for turn in range(sizes.reps):
            for backend in rotated(backends, turn):
                wall, cpu = timed(lambda b=backend, p=phase: p.run(b.engine, p.ops))
                samples[backend.name].append(wall)
                cpu_samples[backend.name].append(cpu)
        for backend in backends:
            values = samples[backend.name]
            results[backend.name][phase.name] = PhaseResult(
                statistics.median(values), len(phase.ops),
                {"spread_pct": 100 * (max(values) - min(values)) / statistics.median(values),
                 "cpu": statistics.median(cpu_samples[backend.name]), "min": min(values)})
            log(f"  {phase.name:14s} {backend.name:10s} "
                f"{statistics.median(values) / len(phase.ops) * 1e6:8.1f} us/op")

    for backend in backends:
        assert backend.engine is not None
        backend.engine.dispose()
        results[backend.name]["_disk"] = PhaseResult(0.0, 0, {"bytes": disk_bytes(backend.path)})
    return results, descriptions


# --- the open phase -------------------------------------------------------------------------

def open_dataset(total_rows: int) -> Dataset:
    """A chat dataset with exactly ``total_rows`` rows over the four tables."""
    n_messages = max(8, round(total_rows / 1.5))
    data = make_dataset(n_messages, seed=SEED + 3)
    fixed = len(data.users) + len(data.conversations)
    # trim messages so users + conversations + messages + responses == total_rows
    count = fixed
    kept = []
    for message in data.messages:
        weight = 2 if "response" in message else 1
        if count + weight > total_rows:
            if count + 1 <= total_rows and weight == 2:
                message = {k: v for k, v in message.items() if k != "response"}
                weight = 1
            else:
                break
        kept.append(message)
        count += weight
    data.messages = kept
    return data


def _flat_rows(data: Dataset) -> Iterator[tuple[type[Base], dict[str, Any]]]:
    for user in data.users:
        yield User, user
    for conversation in data.conversations:
        yield Conversation, conversation
    for message_id, message in enumerate(data.messages, start=1):
        yield Message, {"id": message_id,
                        **{k: v for k, v in message.items() if k != "response"}}
    for message_id, message in enumerate(data.messages, start=1):
        if "response" in message:
            yield Response, {"message_id": message_id, **message["response"]}


def _as_stored(value: Any) -> Any:
    """What SQLAlchemy's SQLite types bind, for the rows written through the raw driver."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def child_build(store: Path, key_file: Path, total_rows: int, shape: str) -> dict[str, Any]:
    """Build one store of the open phase (runs in its own process)."""
    if shape == "single":
        # Building 100,000 one-row commits durably would take minutes of fsync; the files
        # are the same without it, and only opening them is measured.
        os.fsync = lambda fd: None  # type: ignore[assignment]
        os.fdatasync = lambda fd: None  # type: ignore[assignment]
    data = open_dataset(total_rows)
    engine = create_engine(deltadb_url(store, key_file))
    Base.metadata.create_all(engine)
    start = time.perf_counter()
    if shape == "single":
        raw = engine.raw_connection()
        try:
            compiled: dict[type[Base], tuple[str, list[str]]] = {}
            for model, row in _flat_rows(data):
                if model not in compiled:
                    columns = list(row)
                    marks = ", ".join("?" for _ in columns)
                    compiled[model] = (f"INSERT INTO {model.__tablename__} "
                                       f"({', '.join(columns)}) VALUES ({marks})", columns)
                sql, columns = compiled[model]
                raw.cursor().execute(sql, [_as_stored(row[c]) for c in columns])
                raw.commit()
        finally:
            raw.close()
    else:
        groups: dict[type[Base], list[dict[str, Any]]] = {}
        for model, row in _flat_rows(data):
            groups.setdefault(model, []).append(row)
        with engine.connect() as connection:
            for model, rows in groups.items():
                for part in chunks(rows, 1000):
                    connection.execute(insert(model), list(part))
                    connection.commit()
    build_seconds = time.perf_counter() - start
    plaintext, rows = 0, 0
    with engine.connect() as connection:
        for model in TABLES:
            result = connection.exec_driver_sql(f"SELECT * FROM {model.__tablename__}")
            names = list(result.keys())
            for row in result:
                document = dict(zip(names, row, strict=True))
                plaintext += len(json.dumps(document, separators=(",", ":"),
                                            ensure_ascii=False, default=str).encode())
                rows += 1
    engine.dispose()
    if shape == "snapshot":
        from deltadb_dialect.keys import MasterKeySource, read_key_file
        from deltadb_dialect.tools import checkpoint

        checkpoint(store, MasterKeySource(raw_key=read_key_file(key_file)))
    files = {p.name.split("-")[0].split(".")[0]: p.stat().st_size
             for p in store.iterdir() if p.is_file() and p.stat().st_size}
    return {"rows": rows, "plaintext_bytes": plaintext, "build_seconds": build_seconds,
            "store_bytes": disk_bytes(store), "files": files}


def vm_status() -> dict[str, int]:
    values = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, amount = line.split(":")
                values[key] = int(amount.split()[0]) * 1024
    return values


def child_open(store: Path, key_file: Path) -> dict[str, Any]:
    """Time the first open of a store in a fresh interpreter, and the RSS it costs."""
    import deltadb_dialect.dbapi  # noqa: F401  (libraries load before the baseline)

    url = deltadb_url(store, key_file)
    warm = create_engine("sqlite://")  # let SQLAlchemy's lazy imports happen before the baseline
    with Session(warm) as session:
        session.execute(select(1)).all()
    warm.dispose()
    gc.collect()
    before = vm_status()
    start = time.perf_counter()
    engine = create_engine(url)
    with Session(engine) as session:
        first = session.get(Message, 1)
        assert first is not None
    open_seconds = time.perf_counter() - start
    gc.collect()
    after = vm_status()
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(Message))
    # the same again inside this process: dispose (closes the store), new engine, first query
    engine.dispose()
    start = time.perf_counter()
    engine = create_engine(url)
    with Session(engine) as session:
        assert session.get(Message, 1) is not None
    reopen_seconds = time.perf_counter() - start
    engine.dispose()
    return {"open_seconds": open_seconds, "reopen_seconds": reopen_seconds,
            "rss_before": before["VmRSS"], "rss_after": after["VmRSS"],
            "rss_delta": after["VmRSS"] - before["VmRSS"],
            "peak_delta": after["VmHWM"] - before["VmRSS"], "messages": count}


def run_child(args: list[str], timeout: float = 1800) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:1])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_open_phase(work: Path, key_file: Path, sizes: Sizes, log: Callable[[str], None]
                   ) -> dict[str, dict[str, Any]]:
    shapes = ["batched", "snapshot"] + (["single"] if sizes.single_row_shape else [])
    results: dict[str, dict[str, Any]] = {}
    for shape in shapes:
        store = work / f"open-{shape}.deltadb"
        log(f"  building a {sizes.open_rows:,}-row store ({shape}) ...")
        built = run_child(["--child-build", str(store), str(key_file),
                           str(sizes.open_rows), shape])
        runs = [run_child(["--child-open", str(store), str(key_file)])
                for _ in range(sizes.open_runs)]
        summary: dict[str, Any] = dict(built)
        for key in ("open_seconds", "reopen_seconds", "rss_delta", "peak_delta"):
            summary[key] = statistics.median(r[key] for r in runs)
        summary["rss_ratio"] = summary["rss_delta"] / built["plaintext_bytes"]
        summary["peak_ratio"] = summary["peak_delta"] / built["plaintext_bytes"]
        summary["runs"] = runs
        results[shape] = summary
        log(f"    open {summary['open_seconds']:.3f} s, reopen {summary['reopen_seconds']:.3f} s,"
            f" RSS +{summary['rss_delta'] / 2**20:.1f} MiB = {summary['rss_ratio']:.2f}x"
            f" plaintext ({built['plaintext_bytes'] / 2**20:.1f} MiB)")
        shutil.rmtree(store, ignore_errors=True)
    return results


# --- report ---------------------------------------------------------------------------------

READ_PHASES = ["point_read", "point_read_tx", "last_50", "paged_list", "aggregate"]
ALL_PHASES = ["bulk_insert", "single_commit", *READ_PHASES]


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def dialect_revision() -> str:
    """Where deltadb_dialect was imported from, and its git revision when in a checkout."""
    package = Path(deltadb_dialect.__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(package), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        # server/ (the REST entity server) is not on the dialect's code path
        dirty = subprocess.run(["git", "-C", str(package), "status", "--porcelain", "--", ".",
                                ":(exclude)server"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(package)
    return f"{package} at {rev}" + (" + uncommitted changes" if dirty else "")


def environment() -> dict[str, str]:
    import apsw

    try:
        import sqlcipher3

        cipher = sqlcipher3.dbapi2.sqlite_version
    except ImportError:  # pragma: no cover
        cipher = "missing"
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    import sqlite3

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "deltadb_dialect": dialect_revision(),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite (stdlib)": sqlite3.sqlite_version,
        "sqlcipher3 (SQLite)": cipher,
        "apsw (SQLite)": f"{apsw.apsw_version()} ({apsw.sqlite_lib_version()})",
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "platform": platform.platform(),
    }


def format_report(results: dict[str, dict[str, PhaseResult]], descriptions: dict[str, str],
                  open_results: dict[str, dict[str, Any]], sizes: Sizes) -> str:
    names = list(results)
    lines = ["", "Workload (seconds per phase; x = ratio to sqlite, lower is better)", ""]
    head = f"{'phase':15s}" + "".join(f"{n:>12s}" for n in names)
    head += "".join(f"{n + ' x':>14s}" for n in names if n != "sqlite")
    cpu_ratio = "sqlite" in names and "deltadb" in names
    head += f"{'deltadb x cpu':>15s}" if cpu_ratio else ""
    head += f"{'us/op ' + names[-1]:>18s}"
    lines += [head, "-" * len(head)]

    def row(label: str, values: dict[str, float], cpu: dict[str, float],
            per_op: float | None) -> str:
        text = f"{label:15s}" + "".join(f"{values[n]:12.3f}" for n in names)
        if "sqlite" in values:
            text += "".join(f"{values[n] / values['sqlite']:13.2f}x" for n in names
                            if n != "sqlite")
        if cpu_ratio:
            text += f"{cpu['deltadb'] / cpu['sqlite']:14.2f}x"
        text += f"{per_op:18.1f}" if per_op is not None else ""
        return text

    totals = dict.fromkeys(names, 0.0)
    reads = dict.fromkeys(names, 0.0)
    cpu_totals = dict.fromkeys(names, 0.0)
    cpu_reads = dict.fromkeys(names, 0.0)
    for phase in ALL_PHASES:
        values = {n: results[n][phase].seconds for n in names}
        cpu = {n: results[n][phase].extra["cpu"] for n in names}
        for n in names:
            totals[n] += values[n]
            cpu_totals[n] += cpu[n]
            if phase in READ_PHASES:
                reads[n] += values[n]
                cpu_reads[n] += cpu[n]
        last = results[names[-1]][phase]
        lines.append(row(phase, values, cpu, last.seconds / last.ops * 1e6))
    lines.append("-" * len(head))
    lines.append(row("reads (sum)", reads, cpu_reads, None))
    lines.append(row("WORKLOAD", totals, cpu_totals, None))
    lines.append("")
    lines.append("(x = wall-time ratio to sqlite; 'deltadb x cpu' = the same ratio in CPU time of "
                 "this process, which other load on the machine disturbs less)")
    for n in names:
        extra = results[n]["single_commit"].extra
        lines.append(f"single_commit {n:10s} p50 {extra['p50_ms']:.3f} ms, "
                     f"p99 {extra['p99_ms']:.3f} ms; on disk after the workload "
                     f"{results[n]['_disk'].extra['bytes'] / 2**20:.1f} MiB")
    spreads = {p: max(results[n][p].extra['spread_pct'] for n in names) for p in READ_PHASES}
    worst = ", ".join(f"{p} {s:.0f}%" for p, s in spreads.items())
    lines.append(f"read phases: median of {sizes.reps} repetitions; "
                 f"worst spread (max-min)/median: {worst}")
    lines.append("")
    for phase in ALL_PHASES:
        lines.append(f"  {phase:14s} {descriptions[phase]}")

    if open_results:
        lines += ["", f"Open phase (deltadb store of {sizes.open_rows:,} rows; fresh process; "
                  f"median of {sizes.open_runs}; warm file cache)", ""]
        head = (f"{'store shape':34s}{'plain MiB':>10s}{'disk MiB':>10s}{'open s':>9s}"
                f"{'reopen s':>10s}{'RSS MiB':>9s}{'RSS/plain':>11s}{'peak/plain':>12s}")
        lines += [head, "-" * len(head)]
        labels = {"batched": "log, 1,000-row commits", "single": "log/snapshot, 1-row commits",
                  "snapshot": "checkpointed snapshot"}
        for shape, r in open_results.items():
            lines.append(
                f"{labels.get(shape, shape):34s}{r['plaintext_bytes'] / 2**20:10.1f}"
                f"{r['store_bytes'] / 2**20:10.1f}{r['open_seconds']:9.3f}"
                f"{r['reopen_seconds']:10.3f}{r['rss_delta'] / 2**20:9.1f}"
                f"{r['rss_ratio']:10.2f}x{r['peak_ratio']:11.2f}x")
    lines += ["", "Targets"]
    lines += [f"  {line}" for line in check_targets(results, open_results)]
    return "\n".join(lines)


def check_targets(results: dict[str, dict[str, PhaseResult]],
                  open_results: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    if "deltadb" not in results:
        return out

    def ratio(phase: str, other: str = "sqlite") -> float:
        return results["deltadb"][phase].seconds / results[other][phase].seconds

    def verdict(ok: bool) -> str:
        return "MET   " if ok else "MISSED"

    if "sqlite" in results:
        for phase in READ_PHASES:
            r = ratio(phase)
            out.append(f"{verdict(r <= 1.0)} reads no slower than SQLite file: {phase} {r:.2f}x")
        r = ratio("single_commit")
        out.append(f"{verdict(r <= 1.5)} single-row commits within 1.5x SQLite: {r:.2f}x")
    if "sqlcipher" in results:
        d = sum(results["deltadb"][p].seconds for p in ALL_PHASES)
        c = sum(results["sqlcipher"][p].seconds for p in ALL_PHASES)
        out.append(f"{verdict(d < c)} whole workload faster than SQLCipher: {d / c:.2f}x")
    for shape, r in open_results.items():
        out.append(f"{verdict(r['open_seconds'] < 2.0)} open {r['rows']:,} rows ({shape}) "
                   f"< 2 s: {r['open_seconds']:.3f} s")
        out.append(f"{verdict(r['rss_ratio'] < 3.0)} RSS < 3x plaintext ({shape}): "
                   f"{r['rss_ratio']:.2f}x (peak {r['peak_ratio']:.2f}x)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--rows", type=int, help="messages in the workload (default 20,000)")
    parser.add_argument("--open-rows", type=int,
                        help="rows in the open-phase stores (default 100,000; 0 skips it)")
    parser.add_argument("--reps", type=int, help="timed repetitions of each read phase")
    parser.add_argument("--bulk-rounds", type=int,
                        help="timed bulk inserts per backend, each into a fresh database")
    parser.add_argument("--backends", default="sqlite,sqlcipher,deltadb",
                        help="comma-separated subset of sqlite,sqlcipher,deltadb")
    parser.add_argument("--no-single-row-store", action="store_true",
                        help="skip the open-phase store built from one-row commits")
    parser.add_argument("--dir", help="where to create the temporary directory")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    parser.add_argument("--child-build", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--child-open", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child_build:
        store, key_file, total, shape = args.child_build
        print(json.dumps(child_build(Path(store), Path(key_file), int(total), shape)))
        return 0
    if args.child_open:
        print(json.dumps(child_open(Path(args.child_open[0]), Path(args.child_open[1]))))
        return 0

    sizes = sizes_from(args)
    only = [b.strip() for b in args.backends.split(",") if b.strip()]

    def log(message: str) -> None:
        print(message, flush=True)

    env = environment()
    env["load average at start"] = load_average()
    log("orm_bench: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    work = Path(tempfile.mkdtemp(prefix="orm_bench-", dir=args.dir))
    backends: list[Backend] = []
    try:
        key_file = make_key_file(work)
        backends = make_backends(work, key_file, only)
        log(f"workload: {sizes.rows:,} messages, in {work}")
        results, descriptions = run_workload(backends, sizes, log, work, key_file)
        open_results: dict[str, dict[str, Any]] = {}
        if sizes.open_rows > 0 and "deltadb" in only:
            log("open phase:")
            open_results = run_open_phase(work, key_file, sizes, log)
        env["load average at end"] = load_average()
        report = format_report(results, descriptions, open_results, sizes)
        print(report)
        print(f"\nload average (1, 5, 15 min) at start {env['load average at start']}, "
              f"at end {env['load average at end']} ({os.cpu_count()} cores)")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            payload = {
                "environment": env, "sizes": sizes.__dict__, "command": sys.argv,
                "workload": {b: {p: r.__dict__ for p, r in phases.items()}
                             for b, phases in results.items()},
                "descriptions": descriptions, "open": open_results,
                "targets": check_targets(results, open_results),
            }
            Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n")
    finally:
        for backend in backends:
            if backend.engine is not None:
                backend.engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
