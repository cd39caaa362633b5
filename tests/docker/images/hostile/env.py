"""A hostile Actor for the Docker isolation tests: each method tries one thing a bad miner might.

Every method reports what happened instead of raising, so the test asserts on facts observed
inside the container. It only ever targets addresses the test hands it.
"""

import os
import socket
import time


def _status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return ""


class Actor:
    def evaluate(self, task_id=0, **_):
        return {"task_id": task_id, "ok": True}

    def environ(self):
        return dict(os.environ)

    def identity(self):
        try:
            ipv6_off = open("/proc/sys/net/ipv6/conf/all/disable_ipv6").read().strip()
        except OSError as exc:
            ipv6_off = f"unreadable: {exc}"
        return {"uid": os.getuid(), "gid": os.getgid(), "cap_eff": _status("CapEff"),
                "no_new_privs": _status("NoNewPrivs"), "ipv6_disabled": ipv6_off}

    def write_fs(self, paths):
        out = {}
        for path in paths:
            try:
                with open(path, "w") as fh:
                    fh.write("owned")
                out[path] = "written"
            except OSError as exc:
                out[path] = f"errno {exc.errno}"
        return out

    def exec_tmp(self):
        import subprocess

        path = "/tmp/payload.sh"
        with open(path, "w") as fh:
            fh.write("#!/bin/sh\necho ran\n")
        os.chmod(path, 0o755)
        try:
            return f"exit {subprocess.run([path], capture_output=True, timeout=5).returncode}"
        except OSError as exc:
            return f"errno {exc.errno}"

    def connect(self, targets, timeout=2.0):
        out = {}
        for host, port in targets:
            sock = socket.socket()
            sock.settimeout(timeout)
            try:
                sock.connect((host, int(port)))
                out[f"{host}:{port}"] = "connected"
            except OSError as exc:
                out[f"{host}:{port}"] = f"failed: {exc}"
            finally:
                sock.close()
        return out

    def fork_bomb(self, limit=5000):
        children, error = [], None
        for _ in range(limit):
            try:
                pid = os.fork()
            except OSError as exc:
                error = f"errno {exc.errno}"
                break
            if pid == 0:
                time.sleep(120)
                os._exit(0)
            children.append(pid)
        for pid in children:  # leave the server usable, so the test can call it again
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        return {"forked": len(children), "error": error}

    def hog_memory(self, mib=4096):
        hoard = []
        for _ in range(mib // 16):
            hoard.append(bytearray(16 << 20))  # zero-filled: every page is touched
        return {"held_mib": len(hoard) * 16}

    def hang(self):
        time.sleep(3600)

    def huge(self, nbytes):
        return "x" * int(nbytes)

    def ping(self):
        return "pong"
