"""A real Cloud Storage emulator (PyPI ``gcp-storage-emulator``) started and stopped from Python.

Beam's GCS I/O and ``google-cloud-storage`` talk to it through their real clients; only the
endpoint changes (``STORAGE_EMULATOR_HOST``). Offline, Beam must also be handed credentials, or it
retries the metadata server for ~23 s per process before going anonymous: :meth:`env` gives a
throw-away ``authorized_user`` credentials file.

    with GcsEmulator() as gcs:
        gcs.create_bucket("reviews")
        os.environ.update(gcs.env())   # or pass gcs.env() to a subprocess
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, Optional

_FAKE_CREDENTIALS = {"type": "authorized_user", "client_id": "x", "client_secret": "x",
                     "refresh_token": "x", "token": "fake", "expiry": "2099-01-01T00:00:00Z"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GcsEmulator:
    def __init__(self, port: Optional[int] = None, project: str = "local-project"):
        self.port = port or free_port()
        self.project = project
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: Optional[subprocess.Popen] = None
        self._dir = tempfile.mkdtemp(prefix="gcs-emulator-")
        self.credentials = Path(self._dir) / "credentials.json"
        self.credentials.write_text(json.dumps(_FAKE_CREDENTIALS))

    def env(self) -> Dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.url, "NO_GCE_CHECK": "true",
                "GOOGLE_APPLICATION_CREDENTIALS": str(self.credentials),
                "GOOGLE_CLOUD_PROJECT": self.project}

    def start(self, timeout: float = 30.0) -> "GcsEmulator":
        exe = shutil.which("gcp-storage-emulator") or str(Path(sys.executable).with_name("gcp-storage-emulator"))
        if not Path(exe).exists():
            raise RuntimeError("gcp-storage-emulator is not installed: pip install 'gcp-storage-emulator==2026.7.19' "
                               "(make install does it)")
        self._log = open(Path(self._dir) / "emulator.log", "wb")
        self._proc = subprocess.Popen([exe, "start", "--host=127.0.0.1", f"--port={self.port}", "--in-memory"],
                                      stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"GCS emulator exited with {self._proc.returncode}; log: "
                                   f"{(Path(self._dir) / 'emulator.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/storage/v1/b?project={self.project}", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"GCS emulator did not answer on {self.url} within {timeout:.0f} s")

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage
        return storage.Client(project=self.project, credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.url})

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(name)

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=5)
        self._proc = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "GcsEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
