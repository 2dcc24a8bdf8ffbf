"""The real Pub/Sub emulator (shipped with google-cloud-cli) started and stopped from Python.

Beam's ``ReadFromPubSub``/``WriteToPubSub`` and ``google-cloud-pubsub`` talk to it through their
real clients; only the endpoint changes (``PUBSUB_EMULATOR_HOST``)::

    with PubSubEmulator() as ps:
        ps.create_topic("reviews"); ps.create_subscription("reviews-sub", "reviews")
        os.environ.update(ps.env())   # or pass ps.env() to a subprocess

The emulator is a shell script that starts Java. It may ignore SIGTERM, so :meth:`stop` signals
the whole process group, escalates to SIGKILL, and then checks that no process of the group
(the Java child included) is left. Where the emulator is not installed, :class:`EmulatorMissing`
says how to install it (``gcloud components install pubsub-emulator`` or the Debian/Ubuntu
package ``google-cloud-cli-pubsub-emulator``).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

EMULATOR_SCRIPT = Path("platform") / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
INSTALL_HINT = ("the Pub/Sub emulator is not installed: it ships with google-cloud-cli "
                "(`gcloud components install pubsub-emulator`, or the apt package "
                "`google-cloud-cli-pubsub-emulator`), and needs Java 11+. Set PUBSUB_EMULATOR_BIN to "
                "the cloud-pubsub-emulator script if it lives elsewhere.")


class EmulatorMissing(RuntimeError):
    """The Pub/Sub emulator (or Java, or gcloud) is not available on this machine."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_emulator() -> Path:
    """The ``cloud-pubsub-emulator`` script: $PUBSUB_EMULATOR_BIN, else under the gcloud SDK root."""
    explicit = os.environ.get("PUBSUB_EMULATOR_BIN")
    if explicit:
        if Path(explicit).is_file():
            return Path(explicit)
        raise EmulatorMissing(f"PUBSUB_EMULATOR_BIN={explicit} does not exist; " + INSTALL_HINT)
    roots: List[Path] = []
    gcloud = shutil.which("gcloud")
    if gcloud:
        try:
            out = subprocess.run([gcloud, "info", "--format=value(installation.sdk_root)"],
                                 capture_output=True, text=True, timeout=60, check=True).stdout.strip()
            if out:
                roots.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    roots += [Path("/usr/lib/google-cloud-sdk"), Path("/usr/share/google-cloud-sdk"),
              Path("/opt/google-cloud-sdk")]
    for root in roots:
        if (root / EMULATOR_SCRIPT).is_file():
            if not shutil.which("java"):
                raise EmulatorMissing("found the Pub/Sub emulator but no `java` on PATH; " + INSTALL_HINT)
            return root / EMULATOR_SCRIPT
    raise EmulatorMissing(("gcloud is not on PATH; " if not gcloud else "") + INSTALL_HINT)


def group_members(pgid: int) -> List[int]:
    """PIDs whose process group is ``pgid`` (Linux /proc), excluding zombies."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return pids


class PubSubEmulator:
    def __init__(self, port: Optional[int] = None, project: str = "local-project"):
        self.port = port or free_port()
        self.project = project
        self.host = f"127.0.0.1:{self.port}"
        self._proc: Optional[subprocess.Popen] = None
        self._dir = tempfile.mkdtemp(prefix="pubsub-emulator-")
        self.log_path = Path(self._dir) / "emulator.log"

    # -- addresses -------------------------------------------------------------------------
    def topic_path(self, name: str) -> str:
        return name if name.startswith("projects/") else f"projects/{self.project}/topics/{name}"

    def subscription_path(self, name: str) -> str:
        return name if name.startswith("projects/") else f"projects/{self.project}/subscriptions/{name}"

    def env(self) -> Dict[str, str]:
        return {"PUBSUB_EMULATOR_HOST": self.host, "PUBSUB_PROJECT_ID": self.project,
                "GOOGLE_CLOUD_PROJECT": self.project}

    # -- life cycle ------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> "PubSubEmulator":
        script = find_emulator()
        self._log = open(self.log_path, "wb")
        self._proc = subprocess.Popen(
            [str(script), "--host=127.0.0.1", f"--port={self.port}", f"--data-dir={self._dir}"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self.log_path.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"Pub/Sub emulator exited with {self._proc_rc}; log: {log}")
            try:
                with urllib.request.urlopen(f"http://{self.host}/", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Pub/Sub emulator did not answer on {self.host} within {timeout:.0f} s")

    _proc_rc: Optional[int] = None

    def stop(self, grace: float = 5.0) -> None:
        """Stops the emulator's whole process group: SIGTERM, then SIGKILL; no Java child survives."""
        proc = self._proc
        if proc is not None:
            pgid = proc.pid  # start_new_session: the script is the leader of its own group
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
                if not group_members(pgid) and proc.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, sig)
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and (group_members(pgid) or proc.poll() is None):
                    time.sleep(0.1)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            self._proc_rc = proc.returncode
            left = group_members(pgid)
            self._proc = None
            if getattr(self, "_log", None):
                self._log.close()
            if left:
                raise RuntimeError(f"Pub/Sub emulator processes {left} survived SIGKILL")
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "PubSubEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- clients ---------------------------------------------------------------------------
    def _env(self):
        from pipeline.local import patched_environ
        return patched_environ(self.env())

    def publisher(self):
        from google.cloud import pubsub_v1
        with self._env():
            return pubsub_v1.PublisherClient()

    def subscriber(self):
        """A subscriber client of this emulator, without gRPC's 4 MiB receive limit (a new one: the
        caller may close it)."""
        from pipeline.direct_runner import new_emulator_subscriber
        with self._env():
            return new_emulator_subscriber(self.host)

    def create_topic(self, name: str) -> str:
        path = self.topic_path(name)
        client = self.publisher()
        client.create_topic(name=path)
        return path

    def create_subscription(self, name: str, topic: str, ack_deadline_s: int = 60) -> str:
        path = self.subscription_path(name)
        with self.subscriber() as client:
            client.create_subscription(name=path, topic=self.topic_path(topic),
                                       ack_deadline_seconds=ack_deadline_s)
        return path
