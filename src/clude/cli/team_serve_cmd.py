"""`clude team serve`: the team's dashboard on this machine's loopback (clude/web)."""

from __future__ import annotations

import secrets
import socket
import sys

import click

from clude.cli.team_cmd import _project, _upstream, fail, settings_of
from clude.cli.team_control_cmd import person
from clude.exits import INTERRUPTED, TEAM_VIEW_UNREACHABLE

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="The port (0: any free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The loopback address to listen on (no other: the dashboard has no TLS).")
@_upstream
@_project
def serve_command(port, host, upstream, project) -> None:
    """The team's dashboard in a browser: the board, the dependency graph, workers, the merge queue and
    live events; retry, block and unblock tasks, pause and resume workers, stop the team. Prints its
    address, with a token this run made: requests without it are refused."""
    import uvicorn

    from clude.gitcli import GitError
    from clude.harness.runner import clude_dir
    from clude.team.protocol.admin import NoTeam, upstream_of
    from clude.web.app import make_app
    from clude.web.source import Source

    if host not in LOOPBACK:
        fail(f"--host {host}: the dashboard listens on loopback only ({', '.join(LOOPBACK)}); to reach it "
             "from elsewhere, forward the port over SSH (ssh -L)")
    root, settings = project.resolve(), settings_of(project)
    try:
        url = upstream_of(root, settings, upstream)
        source = Source(root, settings, url, clude_dir(root))
    except NoTeam as error:
        fail(str(error))
    except GitError as error:
        fail(f"cannot read the team's upstream: {error}", TEAM_VIEW_UNREACHABLE)
    family = socket.AF_INET6 if host == "::1" else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("::1" if host == "::1" else "127.0.0.1", port))
    except OSError as error:
        fail(f"--port {port}: cannot listen on it ({error.strerror}); choose another, or --port 0 for any free one")
    sock.listen(64)
    bound = sock.getsockname()[1]
    token = secrets.token_urlsafe(24)
    app = make_app(source, token, bound, who=person())
    shown = "[::1]" if host == "::1" else host
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2,
                                           access_log=False))
    try:
        click.echo(f"clude team serve: http://{shown}:{bound}/?token={token}", nl=True)
        click.echo("(open that address; requests without its token are refused; Ctrl-C stops)", err=True)
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stops on Ctrl-C / SIGTERM, then raises it again; or it came first
        sys.exit(INTERRUPTED)
