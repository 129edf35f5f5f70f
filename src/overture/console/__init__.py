"""The console: the people's way into Overture (offer managers, approvers, deployers,
administrators), served at /console by `overture serve` (docs/console.md).

Server-rendered pages over the design services (never the HTTP API over HTTP), with
sessions, CSRF tokens and the role matrix checked on the server for every action."""

from overture.console.app import create_console

__all__ = ["create_console"]
