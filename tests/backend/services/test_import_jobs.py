"""Import jobs after a crash: whose runner is gone, an upload cut off by it, leftover files."""

from datetime import timedelta
from pathlib import Path

import pytest
from chat_factories import create_user

from backend.core.config import settings
from backend.core.db import SessionLocal
from backend.models import ImportJob, utcnow
from backend.services import import_jobs


@pytest.fixture(autouse=True)
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(settings, "IMPORT_SPOOL_DIR", str(tmp_path))
    return tmp_path


def _job(runner: str, *, status: str = "running", silent_for: float = 0) -> str:
    user = create_user()
    with SessionLocal() as session:
        job = import_jobs.create(session=session, user_id=user.id, filename="x.zip", runner=runner)
        job.status, job.heartbeat_at = status, utcnow() - timedelta(seconds=silent_for)
        session.commit()
        return job.uuid


def _claim(uuid: str, runner: str) -> bool:
    with SessionLocal() as session:
        return import_jobs.claim(session=session, job_uuid=uuid, runner=runner) is not None


def test_a_job_is_taken_over_only_from_a_runner_that_is_gone() -> None:
    me = "host-a:4242:new"
    alive_here = _job("host-a:1:other")  # pid 1 runs on this host: alive
    assert not _claim(alive_here, me)
    dead_here = _job("host-a:999999999:old")
    assert _claim(dead_here, me)
    same_pid_earlier = _job("host-a:4242:old")  # this pid, an earlier start: a restart
    assert _claim(same_pid_earlier, me)
    elsewhere = _job("host-b:1:x")
    assert not _claim(elsewhere, me)  # another host's runner may be alive
    silent = _job("host-b:1:x", silent_for=3600)
    assert _claim(silent, me)


def test_an_upload_cut_off_by_a_crash_fails_with_a_sentence() -> None:
    uuid = _job("host-a:999999999:old", status="uploading")
    with SessionLocal() as session:
        assert import_jobs.abandon_upload(session=session, job_uuid=uuid, runner="host-a:1:x")
        job = session.query(ImportJob).filter_by(uuid=uuid).one()
        assert job.status == "failed" and "upload the file again" in (job.error or "")
    running = _job("host-a:1:x", status="uploading")  # its process is alive: left alone
    with SessionLocal() as session:
        assert not import_jobs.abandon_upload(session=session, job_uuid=running, runner="h:2:y")


def test_files_of_ended_jobs_are_removed_and_others_left(spool: Path) -> None:
    ended = _job("h:1:x", status="done")
    active = _job("h:1:x", status="running")
    for name in (ended, active, "not-a-job-of-this-database"):
        (spool / f"{name}.spool").write_bytes(b"sealed")
    with SessionLocal() as session:
        import_jobs.remove_ended_spools(session=session)
    assert sorted(p.stem for p in spool.iterdir()) == sorted([active, "not-a-job-of-this-database"])


def test_a_job_no_server_resumed_does_not_block_the_next_import() -> None:
    stuck = _job("host-b:1:x", silent_for=20 * 60)  # its server, on another host, is gone
    with SessionLocal() as session:
        user_id = session.query(ImportJob).filter_by(uuid=stuck).one().user_id
        fresh = import_jobs.create(session=session, user_id=user_id, filename="y", runner="h:1:y")
        old = session.query(ImportJob).filter_by(uuid=stuck).one()
        assert old.status == "failed" and "did not resume" in (old.error or "")
        with pytest.raises(import_jobs.Conflict):  # the new one is under way now
            import_jobs.create(session=session, user_id=user_id, filename="z", runner="h:1:y")
        assert fresh.status == "uploading"
