"""A real JupyterLab server for browser tests: started on 127.0.0.1, always stopped.

``running_lab(root_dir, state_dir)`` starts ``python -m jupyterlab`` (this
interpreter's, so its kernel is this environment's ``python3``) on a free port with a
random token and no browser, waits until its REST API answers, and yields a
:class:`LabServer`. On leaving the ``with`` block -- normally or on any error -- the
server is stopped: SIGTERM (on which it shuts its kernels down), then SIGKILL of it and
its kernels if it has not exited within a few seconds.

Its user settings, configuration and runtime files live in ``state_dir`` (not in
``~/.jupyter`` and friends), so a test neither depends on nor changes its user's
Jupyter set-up. The settings turn autosave off (a test
must not write outputs into notebooks) and notebook windowing off (every cell stays in
the page, so a test can find a cell by its position).

The module is named ``lab_server`` rather than ``jupyter_server``: the browser tests'
folder is on ``sys.path``, and that name would shadow the real ``jupyter_server``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 90.0  # 2 busy cores: a cold start of JupyterLab takes 5 to 20 s
STOP_TIMEOUT_S = 15.0

# plugin id -> settings; written as <settings_dir>/<package>/<plugin>.jupyterlab-settings
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    # No "check for updates" / news toasts over the page (and no network requests).
    "@jupyterlab/apputils-extension:notification": {
        "checkForUpdates": False, "fetchNews": "false"},
}


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: its base URL (ending in ``/``), token and root folder."""

    url: str
    token: str
    root_dir: Path
    process: subprocess.Popen
    log: Path

    def log_tail(self, n_chars: int = 4000) -> str:
        """The end of the server's log (its kernels' stderr goes there too)."""
        try:
            return self.log.read_text(encoding="utf8", errors="replace")[-n_chars:]
        except OSError:
            return "(no log)"

    def lab_url(self, relative_path: str) -> str:
        """The URL that opens ``relative_path`` (relative to the root) in JupyterLab.

        ``reset`` starts from an empty workspace, so the page holds only that document,
        not also the ones an earlier page of the same server left open.
        """
        return f"{self.url}lab/tree/{relative_path}?reset&token={self.token}"

    def api(self, endpoint: str, method: str = "GET", timeout: float = 5.0) -> object:
        """Call ``/api/<endpoint>`` with the token; the decoded JSON answer, or None."""
        request = urllib.request.Request(
            f"{self.url}api/{endpoint}", method=method,
            headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every kernel session (frees the CPU and memory a finished test held)."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE", timeout=30.0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_lab_settings(settings_dir: Path, settings: Mapping[str, dict] = LAB_SETTINGS) -> None:
    """Write JupyterLab user settings (``plugin id -> values``) into ``settings_dir``."""
    for plugin_id, values in settings.items():
        package, plugin = plugin_id.split(":")
        path = settings_dir / package / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2), encoding="utf8")


def _lab_command(root_dir: Path, settings_dir: Path, port: int, token: str) -> list[str]:
    return [
        sys.executable, "-m", "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # fail rather than silently take another port
        f"--IdentityProvider.token={token}",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={settings_dir}",
        f"--LabApp.workspaces_dir={settings_dir / 'workspaces'}",
        # window.jupyterapp: lets a test run JupyterLab commands (the ones its menus run)
        "--LabApp.expose_app_in_browser=True",
        "--ServerApp.terminals_enabled=False",
        "--ServerApp.allow_root=True",  # CI containers run as root
    ]


def lab_environment(base: Mapping[str, str], state_dir: Path) -> dict[str, str]:
    """``base`` with Jupyter's and IPython's per-user folders moved into ``state_dir``.

    So the server ignores its user's configuration, kernelspecs (a user's ``python3``
    kernelspec would otherwise win over this environment's) and IPython start-up
    files, and writes its runtime files (cookie secret, connection files) there.
    """
    env = dict(base)
    for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        env[name] = str(state_dir / sub)
    return env


def _wait_until_ready(server: LabServer, timeout: float) -> None:
    """Poll ``/api/status`` until it answers; fail with the server's log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {server.process.returncode}:\n"
                               f"{server.log_tail()}")
        try:
            server.api("status", timeout=2.0)
            return
        except OSError:  # URLError, refused connections and timeouts are all OSErrors
            time.sleep(0.25)
    raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n"
                       f"{server.log_tail()}")


def _child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _stop(process: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop the server: SIGTERM, on which it shuts its kernels down and exits; if it has
    not exited within ``timeout``, SIGKILL it and its children (the kernels, which
    jupyter_client starts in sessions of their own, out of the server's process group)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass
    for pid in [*_child_pids(process.pid), process.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    process.wait(timeout=timeout)


@contextmanager
def running_lab(
    root_dir: Path, state_dir: Path, env: Mapping[str, str] | None = None,
    timeout: float = START_TIMEOUT_S,
) -> Iterator[LabServer]:
    """Start JupyterLab serving ``root_dir``; yield it once it answers; always stop it.

    Args:
        root_dir: the folder the server shows; a notebook's kernel starts in its folder.
        state_dir: an empty folder for the server's settings, configuration, runtime
            files and its log, ``server.log`` (see :func:`lab_environment`).
        env: the server's (and so its kernels') environment; default this process's.
        timeout: seconds to wait for the server to answer.
    """
    settings_dir = state_dir / "settings"
    write_lab_settings(settings_dir)
    log = state_dir / "server.log"
    token = secrets.token_hex(16)
    port = free_port()
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            _lab_command(root_dir, settings_dir, port, token), cwd=root_dir,
            env=lab_environment(os.environ if env is None else env, state_dir),
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C meant for pytest does not reach it; the clean-up
            # below stops it instead.
            start_new_session=True,
        )
    server = LabServer(f"http://127.0.0.1:{port}/", token, root_dir, process, log)
    try:
        _wait_until_ready(server, timeout)
        yield server
    finally:
        _stop(process)
