"""nginx in front of several prediction-server replicas, run natively for tests and benchmarks
with its own configuration, prefix, logs and pid file in a working folder, in the foreground
(``daemon off``) as a child of the caller: never the system's nginx service.

The proxying itself (``deploy/nginx/proxy.conf``) is the file the compose stack includes, so
what the tests check is what the stack runs; only the upstream list and the port differ.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from driftloop.stack.processes import HttpService, StackError
from driftloop.stack.project import project_path

PROXY_CONF = "deploy/nginx/proxy.conf"  # the compose stack's file, from the project checkout


def nginx_binary() -> str:
    """The nginx executable (Debian installs it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise StackError("nginx is not installed (Debian: apt-get install nginx)")
    return found


def render_config(upstreams: list[str], port: int, workdir: Path, workers: int = 1) -> str:
    """A whole nginx.conf: ``upstreams`` (host:port of each replica) behind 127.0.0.1:``port``."""
    if not upstreams:
        raise ValueError("a load balancer needs at least one replica")
    servers = "\n".join(f"        server {address};" for address in upstreams)
    # as root, nginx would run its workers as `nobody`, who cannot reach a private temp folder
    user = "user root;\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    return f"""{user}worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    upstream driftloop_replicas {{
        least_conn;
{servers}
        keepalive 32;
        # below gunicorn's 5 s keepalive: nginx drops an idle connection before the replica
        # does, so it never sends a request on one the replica is closing
        keepalive_timeout 4s;
    }}
    server {{
        listen 127.0.0.1:{port};
        include {project_path(PROXY_CONF)};
    }}
}}
"""


class LoadBalancer(HttpService):
    """``nginx -g 'daemon off;'`` over the given replica addresses, ready once ``/health``
    answers through it."""

    name = "nginx"
    ready_path = "/health"

    def __init__(
        self,
        upstreams: list[str],
        workdir: Path,
        port: int | None = None,
        workers: int = 1,
        startup_timeout: float = 30.0,
        stop_grace: float = 10.0,
    ) -> None:
        super().__init__(workdir, "nginx.log", port, startup_timeout, stop_grace)
        self.upstreams, self.workers = list(upstreams), workers

    def command(self) -> tuple[list[str], dict[str, str]]:
        config = self.workdir / "nginx.conf"
        config.write_text(render_config(self.upstreams, self.port, self.workdir, self.workers))
        # -e: nginx opens its default error log before it reads the configuration
        command = [nginx_binary(), "-p", f"{self.workdir}/", "-c", str(config)]
        command += ["-e", str(self.workdir / "error.log"), "-g", "daemon off;"]
        return command, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
