"""Real camera servers for the tests and the benchmark (each started once, stopped by its PID).

- ``ApacheCamera``: Debian's Apache httpd with ``mod_auth_digest`` (MD5, ``qop=auth``) on Hikvision's
  and Dahua's snapshot paths and ``mod_auth_basic`` on Axis's, over plain HTTP and over HTTPS with a
  self-signed certificate that names no host (as cameras ship); its access log records every
  ``Authorization`` header the client sent.
- ``LighttpdCamera``: lighttpd's ``mod_auth`` with Digest **SHA-256** (Apache's Digest knows only MD5),
  on Reolink's snapshot path.
- ``GstRtspCamera``: GStreamer's RTSP server (``benchmarks/gst_rtsp_server.py`` under the system
  Python) streaming a photo as H.264 and H.265, openly and behind RTSP Digest.

``scripts/ensure_camera_servers.sh`` installs the Debian packages; a missing one fails with its name.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from benchmarks.frames import SCENES, shared_dir

APACHE_MODULES = Path("/usr/lib/apache2/modules")
GST_SCRIPT = Path(__file__).with_name("gst_rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
CAMERA_USER, CAMERA_PASSWORD = "admin", "Cam-p@ss:1"  # an "@" and a ":" in it, as real passwords have
REALM = "IP Camera"
PHOTO = "obama_small.jpg"
ENSURE = "scripts/ensure_camera_servers.sh"

# Vendor snapshot paths (docs/cameras.md lists them with their RTSP URLs).
HIKVISION = "/ISAPI/Streaming/channels/101/picture"
DAHUA = "/cgi-bin/snapshot.cgi"
AXIS = "/axis-cgi/jpg/image.cgi"
REOLINK = "/cgi-bin/api.cgi"
OPEN = "/snapshot.jpg"  # no authentication: the baseline a password costs against


def photo_path() -> Path:
    path = shared_dir() / SCENES / PHOTO
    if not path.is_file():
        raise FileNotFoundError(f"shared photo {path} is missing")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _require(binary: str) -> str:
    found = shutil.which(binary) or (binary if Path(binary).is_file() else None)
    if found is None:
        raise RuntimeError(f"{binary} is missing: run {ENSURE} (make test does)")
    return found


def _world_readable_dir(prefix: str) -> Path:
    """A folder the servers' unprivileged users can read (Apache drops root for www-data)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout_s:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class SelfSignedCertificate:
    """A camera's certificate: self-signed, common name "IP Camera", no host name or address in it."""

    def __init__(self, folder: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "IP Camera")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(key, hashes.SHA256())
        )
        self.der = certificate.public_bytes(serialization.Encoding.DER)
        self.fingerprint_sha256 = hashlib.sha256(self.der).hexdigest()
        self.cert_file = folder / "camera.crt"
        self.key_file = folder / "camera.key"
        self.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.key_file.chmod(0o644)  # read by Apache's unprivileged user; a throwaway test key


class ApacheCamera:
    """Apache httpd as a Hikvision/Dahua/Axis camera: Digest MD5 and Basic, HTTP and HTTPS."""

    def __init__(self) -> None:
        self.folder = _world_readable_dir("rollcall-apache-")
        self.port, self.tls_port = free_port(), free_port()
        self.certificate = SelfSignedCertificate(self.folder)
        self.access_log = self.folder / "access.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ApacheCamera:
        apache = _require("/usr/sbin/apache2")
        shutil.copy(photo_path(), self.folder / "photo.jpg")
        digest = hashlib.md5(f"{CAMERA_USER}:{REALM}:{CAMERA_PASSWORD}".encode()).hexdigest()
        (self.folder / "digest.users").write_text(f"{CAMERA_USER}:{REALM}:{digest}\n")
        (self.folder / "basic.users").write_text(self._basic_line())
        config = self.folder / "httpd.conf"
        config.write_text(self._config())
        self._process = subprocess.Popen(
            [apache, "-f", str(config), "-DFOREGROUND"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "stderr.log", "wb"),  # noqa: SIM115 - the child keeps it open
        )
        _wait_for_port(self.port, self._process, "apache2")
        _wait_for_port(self.tls_port, self._process, "apache2 (TLS)")
        return self

    def stop(self) -> None:
        if self._process is not None:
            _stop(self._process)
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(
        self, path: str, *, tls: bool = False, credentials: tuple[str, str] | None = None, tag: str = ""
    ) -> str:
        """The camera's URL for ``path``; ``tag`` goes in its query so that :meth:`requests` can pick out
        the requests one test made from everything the camera logged."""
        scheme, port = ("https", self.tls_port) if tls else ("http", self.port)
        userinfo = ""
        if credentials is not None:
            userinfo = f"{quote(credentials[0], safe='')}:{quote(credentials[1], safe='')}@"
        query = f"?test={quote(tag, safe='')}" if tag else ""
        return f"{scheme}://{userinfo}127.0.0.1:{port}{path}{query}"

    def requests(self, tag: str, *, at_least: int = 0, timeout_s: float = 5.0) -> list[tuple[str, str]]:
        """``(path, Authorization header)`` of every request so far whose URL carried ``tag`` (``-``: no
        header was sent).

        Apache writes a request's log line after it has sent the answer, so a client holding its answer
        may read the log before the line is there: ``at_least`` waits up to ``timeout_s`` for that many.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            found = self._logged(tag)
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def _logged(self, tag: str) -> list[tuple[str, str]]:
        if not self.access_log.exists():
            return []
        wanted = f"test={quote(tag, safe='')}"
        logged = []
        for line in self.access_log.read_text().splitlines():
            target, _, auth = line.partition(" AUTH=")
            path, _, query = target.partition("?")
            if query == wanted:
                logged.append((path, auth))
        return logged

    def _basic_line(self) -> str:
        import base64

        salt_free = hashlib.sha1(CAMERA_PASSWORD.encode()).digest()  # htpasswd -s: {SHA}base64(sha1)
        return f"{CAMERA_USER}:{{SHA}}{base64.b64encode(salt_free).decode()}\n"

    def _config(self) -> str:
        folder = self.folder
        modules = [
            "mpm_event",
            "authn_core",
            "authn_file",
            "authz_core",
            "authz_user",
            "auth_basic",
            "auth_digest",
            "alias",
            "mime",
            "ssl",
            "socache_shmcb",
        ]
        loads = "\n".join(f"LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so" for name in modules)
        digest_location = f"""
    AuthType Digest
    AuthName "{REALM}"
    AuthDigestProvider file
    AuthUserFile {folder}/digest.users
    Require valid-user"""
        locations = f"""
Alias {OPEN} {folder}/photo.jpg
Alias {HIKVISION} {folder}/photo.jpg
Alias {DAHUA} {folder}/photo.jpg
Alias {AXIS} {folder}/photo.jpg
<Location "{HIKVISION}">{digest_location}
</Location>
<Location "{DAHUA}">{digest_location}
</Location>
<Location "{AXIS}">
    AuthType Basic
    AuthName "{REALM}"
    AuthBasicProvider file
    AuthUserFile {folder}/basic.users
    Require valid-user
</Location>
"""
        user = "User www-data\nGroup www-data" if os.geteuid() == 0 else ""
        return f"""{loads}
ServerRoot {folder}
ServerName 127.0.0.1
PidFile {folder}/httpd.pid
DefaultRuntimeDir {folder}
ErrorLog {folder}/error.log
LogLevel warn
{user}
TypesConfig /etc/mime.types
LogFormat "%U%q AUTH=%{{Authorization}}i" camera
CustomLog {folder}/access.log camera
Listen 127.0.0.1:{self.port}
Listen 127.0.0.1:{self.tls_port}
SSLSessionCache shmcb:{folder}/ssl_cache(512000)
<Directory {folder}>
    Require all granted
</Directory>
<VirtualHost 127.0.0.1:{self.port}>
{locations}
</VirtualHost>
<VirtualHost 127.0.0.1:{self.tls_port}>
    SSLEngine on
    SSLCertificateFile {self.certificate.cert_file}
    SSLCertificateKeyFile {self.certificate.key_file}
{locations}
</VirtualHost>
"""


class LighttpdCamera:
    """lighttpd as a camera answering Digest with SHA-256 (RFC 7616), on Reolink's snapshot path."""

    def __init__(self) -> None:
        self.folder = _world_readable_dir("rollcall-lighttpd-")
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> LighttpdCamera:
        lighttpd = _require("/usr/sbin/lighttpd")
        shutil.copy(photo_path(), self.folder / "photo.jpg")
        (self.folder / "users").write_text(f"{CAMERA_USER}:{CAMERA_PASSWORD}\n")
        config = self.folder / "lighttpd.conf"
        config.write_text(
            f"""server.document-root = "{self.folder}"
server.port = {self.port}
server.bind = "127.0.0.1"
server.modules = ("mod_auth", "mod_authn_file", "mod_alias")
server.errorlog = "{self.folder}/error.log"
mimetype.assign = (".jpg" => "image/jpeg")
alias.url = ("{REOLINK}" => "{self.folder}/photo.jpg")
auth.backend = "plain"
auth.backend.plain.userfile = "{self.folder}/users"
auth.require = ("{REOLINK}" => ("method" => "digest", "algorithm" => "SHA-256", "realm" => "{REALM}",
                                 "require" => "valid-user"))
"""
        )
        self._process = subprocess.Popen(
            [lighttpd, "-D", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for_port(self.port, self._process, "lighttpd")
        return self

    def stop(self) -> None:
        if self._process is not None:
            _stop(self._process)
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, path: str = REOLINK) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class GstRtspCamera:
    """GStreamer's RTSP server: ``/h264`` and ``/h265`` on ``port`` (open), ``secure_port`` (RTSP
    Digest) and ``basic_port`` (RTSP Basic), the photo at 10 frames/s with a keyframe every
    ``KEYFRAME_INTERVAL_S``."""

    KEYFRAME_INTERVAL_S = 1.0

    def __init__(self, photo: Path | None = None) -> None:
        self.port, self.secure_port, self.basic_port = free_port(), free_port(), free_port()
        self.photo = photo  # None: the shared photo (320×240)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> GstRtspCamera:
        python = _require(SYSTEM_PYTHON)
        check = subprocess.run(
            [
                python,
                "-c",
                "import gi; gi.require_version('GstRtspServer', '1.0')",
            ],
            capture_output=True,
        )
        if check.returncode != 0:
            raise RuntimeError(f"GStreamer's RTSP server is missing from {python}: run {ENSURE}")
        self._process = subprocess.Popen(
            [
                python,
                str(GST_SCRIPT),
                f"--port={self.port}",
                f"--secure-port={self.secure_port}",
                f"--basic-port={self.basic_port}",
                f"--photo={self.photo or photo_path()}",
                f"--keyframe-interval={int(10 * self.KEYFRAME_INTERVAL_S)}",
                f"--user={CAMERA_USER}",
                f"--password={CAMERA_PASSWORD}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self._process, "the GStreamer RTSP server")
        _wait_for_port(self.secure_port, self._process, "the GStreamer RTSP server (Digest)")
        _wait_for_port(self.basic_port, self._process, "the GStreamer RTSP server (Basic)")
        return self

    def stop(self) -> None:
        if self._process is not None:
            _stop(self._process)

    def url(
        self,
        path: str,
        *,
        secure: bool = False,
        credentials: tuple[str, str] | None = None,
        basic: bool = False,
    ) -> str:
        """``secure``: the Digest camera; ``basic``: the Basic one; neither: the open one."""
        userinfo = (
            f"{quote(credentials[0], safe='')}:{quote(credentials[1], safe='')}@" if credentials else ""
        )
        port = self.basic_port if basic else self.secure_port if secure else self.port
        return f"rtsp://{userinfo}127.0.0.1:{port}{path}"


class TlsFront:
    """A TLS listener in front of a plain TCP server: RTSPS before GStreamer's RTSP server, with a
    camera's self-signed certificate (Python's ``ssl`` on a real socket, relaying bytes both ways)."""

    def __init__(self, backend_port: int, certificate: SelfSignedCertificate) -> None:
        import ssl
        import threading

        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(certificate.cert_file, certificate.key_file)
        self.certificate = certificate
        self._backend_port = backend_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # accept() wakes to see stop(): closing does not interrupt it
        self._stopping = threading.Event()
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name=f"tls-front-{self.port}", daemon=True)

    def start(self) -> TlsFront:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _accept(self) -> None:
        import threading

        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        import ssl

        try:
            secure = self._context.wrap_socket(client, server_side=True)
            backend = socket.create_connection(("127.0.0.1", self._backend_port))
        except (ssl.SSLError, OSError):  # the client under test refused our certificate: expected
            client.close()
            return
        with self._lock:
            self._sockets += [secure, backend]
        _relay(secure, backend)


def _relay(secure: socket.socket, backend: socket.socket) -> None:
    """Both directions on this one thread: an SSL socket must not be read and written by two threads at
    once (OpenSSL's objects are not thread-safe; TLS 1.3 reads can write), which once stalled a test's
    RTSP OPTIONS under load."""
    import select

    peer = {secure: backend, backend: secure}
    try:
        while True:
            # Bytes OpenSSL already decrypted wait in the SSL object, where select does not see them.
            pending = secure.pending() if hasattr(secure, "pending") else 0
            ready = [secure] if pending else select.select([secure, backend], [], [])[0]
            for source in ready:
                chunk = source.recv(65536)
                if not chunk:
                    return
                peer[source].sendall(chunk)
    except (OSError, ValueError):
        return  # either side closed (ValueError: stop() closed a socket select was given)
    finally:
        for sock in (secure, backend):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
