"""Two CPU processes joined by gloo (DDP, launched with torchrun) train the same weights as one process
with the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys

from accelerate.utils import set_seed
from train_helpers import components, max_difference, salova_config, subprocess_env, trained_weights, write_yaml

from salova.train import config_from_dict, run_stage
from salova.train.checkpoint import STATE_FILE
from salova.train.loop import build_stage_model

DDP_TOLERANCE = 1e-5
"""Largest weight difference allowed: the processes sum their gradients in another order."""


def test_two_gloo_processes_train_the_weights_of_one_process(synthetic, tmp_path):
    # Stage 2 trains every module, with token drop (0.4) and router dropout on: every micro-batch's
    # random draws must be the same whichever process runs it.
    one, two = tmp_path / "one", tmp_path / "two"
    source = components(synthetic.stage0, synthetic.llm)
    config = salova_config(2, one, synthetic.data, source=source, max_steps=4)
    assert config["global_batch_size"] == 4 and config["micro_batch_size"] == 2  # 1 process: 2 micro-batches
    config_file = write_yaml(tmp_path / "stage2.yaml", {**config, "output_dir": str(two)})
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command = [*torchrun, "-m", "salova", "train", "--stage", "2", "--config", str(config_file), "--no-progress"]
    log = (tmp_path / "ddp.log").open("w")
    ddp = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(), text=True)
    try:
        run_stage(config_from_dict(config))  # the one-process reference, meanwhile
        assert ddp.wait(timeout=300) == 0, (tmp_path / "ddp.log").read_text()[-3000:]
    finally:
        ddp.kill()
        log.close()

    assert json.loads((two / STATE_FILE).read_text())["world_size"] == 2
    assert json.loads((one / STATE_FILE).read_text())["world_size"] == 1
    reference, distributed = trained_weights(one), trained_weights(two)
    assert max_difference(reference, distributed) < DDP_TOLERANCE
    # ...while training moved them by far more than that.
    set_seed(0)
    start = build_stage_model(config_from_dict(config)).model.state_dict()
    assert max(float((reference[k] - start[k]).abs().max()) for k in reference) > 100 * DDP_TOLERANCE
