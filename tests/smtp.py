"""A small real SMTP server on a free loopback port, for tests of what a mail server answers.

It accepts every message, except that RCPT TO for an address in `refused` gets
550 (mailbox unavailable: a permanent failure). It records every RCPT TO it was given.
"""
import socketserver
import threading


class _Handler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self):
        server: SMTPServer = self.server.owner
        self.reply("220 test-smtp ready")
        while line := self.rfile.readline():
            command = line.decode(errors="replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 test-smtp")
            elif verb == "RCPT":
                address = command.split(":", 1)[1].strip().strip("<>").lower()
                server.rcpt_to.append(address)
                self.reply("550 5.1.1 mailbox unavailable" if address in server.refused else "250 OK")
            elif verb == "DATA":
                self.reply("354 end with .")
                while (data := self.rfile.readline()) and data not in (b".\r\n", b".\n"):
                    pass
                server.messages += 1
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:  # MAIL, RSET, NOOP
                self.reply("250 OK")


class SMTPServer:
    def __init__(self, refused=()):
        self.refused = {address.lower() for address in refused}
        self.rcpt_to: list[str] = []
        self.messages = 0
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.owner = self
        self.port = self._server.server_address[1]

    def __enter__(self) -> "SMTPServer":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
