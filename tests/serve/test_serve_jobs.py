"""The indexing worker: a worker killed mid-video fails that job only and is replaced."""

from __future__ import annotations

import os
import signal
import time

from salova.synth import SynthConfig, write_corpus

KILL_WAIT_SECONDS = 120.0


def test_a_killed_worker_fails_its_job_and_is_restarted(tiny_server, bikes_path, tmp_path):
    corpus = write_corpus(tmp_path, SynthConfig(seed=12, minutes=4.0, questions_per_video=0), progress=False)
    long_video = corpus.video_path(corpus.videos[0])
    jobs = tiny_server.app.state.service.jobs
    with tiny_server.client() as client:
        uploaded = client.post("/v1/videos", params={"filename": "long.mp4"}, content=long_video.read_bytes())
        long_id = uploaded.json()["id"]
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while client.get(f"/v1/videos/{long_id}").json()["stage"] != "decoding":
            assert time.monotonic() < deadline, "indexing never started"
            time.sleep(0.05)
        os.kill(jobs._process.pid, signal.SIGKILL)
        while (video := client.get(f"/v1/videos/{long_id}").json())["status"] != "failed":
            assert time.monotonic() < deadline, f"the job did not fail: {video}"
            time.sleep(0.1)
    assert "the indexing worker exited" in video["error"]
    assert tiny_server.upload(bikes_path)["status"] == "ready"  # a new worker took over
