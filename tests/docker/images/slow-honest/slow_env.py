"""Honest answers from the reference env, each after a delay."""

import time as _time

from honest_env import Actor as _Honest

DELAY_S = 1.5


class Actor(_Honest):
    def evaluate(self, **kwargs):
        print(f"slow-env: evaluating task {kwargs.get('task_id')}", flush=True)
        _time.sleep(DELAY_S)
        return super().evaluate(**kwargs)
