# A callback of the test suite's: every task result of a play, one JSON object per line, in
# the file named by $RESULTS_JSONL (tests/ansible.rs reads them).
import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "results_jsonl"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._out = open(os.environ["RESULTS_JSONL"], "a", encoding="utf-8")
        self._started = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started[task._uuid] = time.monotonic()

    def _write(self, result, status):
        task = result._task
        started = self._started.get(task._uuid, time.monotonic())
        line = {
            "host": result._host.get_name(),
            "task": task.get_name(),
            "status": status,
            "seconds_since_task_start": time.monotonic() - started,
            "result": result._result,
        }
        self._out.write(json.dumps(line, default=str) + "\n")
        self._out.flush()

    def v2_runner_on_ok(self, result):
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._write(result, "unreachable")

    def v2_runner_on_skipped(self, result):
        self._write(result, "skipped")
