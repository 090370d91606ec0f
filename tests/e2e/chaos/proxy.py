"""A loopback TCP proxy that can make a shared server "unreachable" for the processes
behind it, without touching the server itself.

PostgreSQL and Redis on this machine serve other test runs too, so the chaos suite
never stops them: the stack under test connects through a TcpProxy, and `cut()` does
what a stopped server would look like from the client's side (new connections refused,
open ones dropped), until `restore()`. `blackhole()` is the nastier failure: the address
still ACCEPTS connections, but nothing sent is ever answered (a hung server, a firewall
dropping packets, a half-dead load balancer): only a client's own timeouts get it out.
"""
import socket
import threading

from stripe_sandbox.process import free_port

_CHUNK = 64 * 1024


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port`, one thread per direction."""

    def __init__(self, target_host: str, target_port: int, name: str = "proxy"):
        self.target = (target_host, target_port)
        self.name = name
        self.port = free_port()
        self.cuts = 0
        self.connections_dropped = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._up = threading.Event()
        self._silent = threading.Event()  # blackholed: accept, read, never forward or answer
        self.blackholes = 0

    # ---- Lifecycle ---------------------------------------------------------------

    def start(self) -> "TcpProxy":
        self._listen()
        return self

    def stop(self) -> None:
        self._up.clear()
        self._close_listener()
        self._drop_open()

    def cut(self) -> None:
        """The server is gone: connecting is refused and every open connection drops."""
        with self._lock:
            self.cuts += 1
        self._up.clear()
        self._close_listener()
        self.connections_dropped += self._drop_open()

    def blackhole(self, *, open_connections: str = "stall") -> None:
        """Connections are accepted and what they send is swallowed; no byte comes back.

        open_connections="stall": established connections go silent too (what a client's
        read timeout must catch). "drop": they are closed, so clients reconnect into the
        blackhole; for PostgreSQL, whose client (libpq) has no read timeout: on a real
        network tcp_user_timeout notices the missing acknowledgements, on loopback the
        kernel acknowledges everything, so a stalled query would wait forever."""
        if open_connections not in ("stall", "drop"):
            raise ValueError("open_connections is 'stall' or 'drop'")
        self.blackholes += 1
        self._silent.set()
        if open_connections == "drop":
            self.connections_dropped += self._drop_open()

    def restore(self) -> None:
        """The server is back on the same address (after cut() or blackhole())."""
        if self._silent.is_set():
            self._silent.clear()
            # What was swallowed left those connections mid-protocol: close them.
            self.connections_dropped += self._drop_open()
        if not self._up.is_set():
            self._listen()

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def __enter__(self) -> "TcpProxy":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ---- Internals ---------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.2)  # the accept loop re-checks `up` this often
        self._listener = listener
        self._up.set()
        self._accepting = threading.Thread(target=self._accept_loop, args=(listener,),
                                           name=f"{self.name}-accept", daemon=True)
        self._accepting.start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._accepting is not None:
            self._accepting.join(timeout=2)
            self._accepting = None

    def _drop_open(self) -> int:
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        return len(sockets) // 2  # client and server side of each connection

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._up.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by cut() or stop()
            if self._silent.is_set():
                with self._lock:
                    self._open.add(client)
                threading.Thread(target=self._swallow, args=(client,), name=f"{self.name}-blackhole",
                                 daemon=True).start()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            client.settimeout(None)
            with self._lock:
                if not self._up.is_set():
                    client.close()
                    server.close()
                    return
                self._open.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), name=f"{self.name}-pump",
                                 daemon=True).start()

    def _swallow(self, client: socket.socket) -> None:
        """A connection made into the blackhole: read and discard until it is closed."""
        client.settimeout(None)
        try:
            while client.recv(_CHUNK):
                pass
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(client)
            client.close()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                chunk = source.recv(_CHUNK)
                if not chunk:
                    break
                if self._silent.is_set():
                    continue  # blackholed: swallowed
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            # One side closed: close both, so the peer sees it too.
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            source.close()
            sink.close()
