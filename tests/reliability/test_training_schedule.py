"""MUSICBUD_TRAIN_EVERY served for real (uvicorn, 2 workers, each with its scheduler): training jobs start when
the last training is that old, in their own process, one at a time however many workers want one, while the
workers keep answering."""
from __future__ import annotations

import json
import time

import httpx
import pytest

from scripts import live_stack
from tests.reliability.conftest import bearer

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]


def test_scheduled_trainings_run_one_at_a_time_across_workers_and_never_stop_serving(stack, tmp_path):
    scheduled = stack.copy(tmp_path, MUSICBUD_TRAIN_EVERY="2s")
    status_file = scheduled.model_dir / "training_status.json"
    earlier = json.loads(status_file.read_text())["job_id"] if status_file.exists() else None  # the stack's own
    server = live_stack.serve(scheduled.env, workers=2)
    jobs: dict[str, dict] = {}
    token = bearer(scheduled.token("demo"))
    answered = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if status_file.exists():
                try:
                    status = json.loads(status_file.read_text())
                except ValueError:
                    status = {}
                if status.get("job_id") and status["job_id"] != earlier:
                    jobs.setdefault(status["job_id"], {}).update(status)
            answered.append(httpx.get(f"{server.url}/v1/recommendations/movies/?n=3", headers=token,
                                      timeout=30).status_code)
            if sum(j.get("state") == "succeeded" for j in jobs.values()) >= 2:
                break
            time.sleep(0.1)
    finally:
        server.stop()
    finished = [j for j in jobs.values() if j.get("state") == "succeeded"]
    assert len(finished) >= 2, jobs
    spans = sorted((j["started_at"], j["finished_at"]) for j in finished)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, f"two trainings overlapped: {spans}"
    assert set(answered) == {200}
    logs = list((scheduled.model_dir.parent / "var" / "training").glob("*.log"))
    refused = [p for p in logs if "already running" in p.read_text()]
    assert len(logs) >= len(finished) and not refused, [p.read_text()[-500:] for p in refused]
