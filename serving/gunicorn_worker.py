"""gunicorn's threaded worker with a shutdown that a proxy keeping connections open does not see.

nginx keeps connections to each replica open and never re-sends a POST a replica may have
received (``deploy/nginx/proxy.conf``). gunicorn's ``gthread`` worker, told to stop, made two
kinds of request fail there (measured: one or two 502s per replica stop under 8 clients):

- a response written while the worker was alive promises keep-alive; if the stop comes before
  the worker files the connection away, gunicorn closes it at once, while nginx may already
  have sent the next request on it ("upstream prematurely closed connection");
- the worker stops accepting but keeps its listening socket open until it exits, so the
  connections nginx opens meanwhile wait in the kernel's backlog and are reset at exit.

Here a promised keep-alive is honoured (the next request on it is answered, with
``Connection: close``), and the listening sockets close as soon as the stop begins, after the
connections already waiting in the backlog are taken: new connections are refused, which nginx
does retry on the other replica. Idle connections still close after ``keepalive`` seconds, so
the proxy must give up idle connections sooner (nginx: ``keepalive_timeout`` in the upstream).
"""

from __future__ import annotations

import selectors
from concurrent import futures
from functools import partial

from gunicorn.workers.gthread import TConn, ThreadWorker


class DrainingThreadWorker(ThreadWorker):
    """``gthread`` that drains its connections and its backlog before it goes."""

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            self._take_backlog_and_close_listeners()

    def finish_request(self, conn: TConn, fs: futures.Future) -> None:
        if not self.alive and _promised_keepalive(fs):
            self._keep_for_one_more_request(conn)
            return
        super().finish_request(conn, fs)

    def _keep_for_one_more_request(self, conn: TConn) -> None:
        """File the connection as alive-and-idle: the graceful loop answers its next request
        (closing after it, since the worker is stopping) or closes it once idle too long."""
        conn.sock.setblocking(False)
        conn.set_timeout()
        self.keepalived_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn)
        )

    def _take_backlog_and_close_listeners(self) -> None:
        """Accept what already waits on each listening socket, then close this worker's copy
        of it (the arbiter closes its own at stop), so later connections are refused."""
        for listener in self.sockets:
            while True:
                try:
                    client, address = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break  # closed already, or never listening in this worker
                self.nr_conns += 1
                client.setblocking(True)
                self.enqueue_req(TConn(self.cfg, client, address, listener.getsockname()))
            listener.close()


def _promised_keepalive(fs: futures.Future) -> bool:
    """Whether the request's handler answered with keep-alive (``True``, not a deferral)."""
    if fs.cancelled() or fs.exception() is not None:
        return False
    return fs.result() is True
