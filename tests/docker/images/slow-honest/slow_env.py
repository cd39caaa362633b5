"""Honest answers from the reference env, each after a delay."""

import os as _os
import sys as _sys
import time as _time

_sys.path.insert(0, _os.path.dirname(_os.path.abspath(__file__)))  # the server loads env.py by path

from honest_env import Actor as _Honest  # noqa: E402

DELAY_S = 1.5


class Actor(_Honest):
    def evaluate(self, **kwargs):
        print(f"slow-env: evaluating task {kwargs.get('task_id')}", flush=True)
        _time.sleep(DELAY_S)
        return super().evaluate(**kwargs)
