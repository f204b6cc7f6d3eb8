"""`litestar --app app.main:app domain new NAME --owner parent|tenant [--child-linked]
[--soft-delete]`: a new CRUD domain in the house style (app/scaffold/writer.py says what
is written). The command is registered by `ScaffoldPlugin`, a Litestar CLI plugin; click
and the writer are imported only when the CLI starts, never in a server process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.plugins import CLIPluginProtocol

if TYPE_CHECKING:
    from click import Group

__all__ = ["ScaffoldPlugin"]


class ScaffoldPlugin(CLIPluginProtocol):
    def on_cli_init(self, cli: Group) -> None:
        import click

        from app.domains import Ownership
        from app.scaffold.writer import DomainSpec, ScaffoldError, write_domain

        @cli.group(name="domain")
        def domain() -> None:
            """Scaffold domains (app/<name>/ on app/db's CRUD kit)."""

        @domain.command(name="new")
        @click.argument("name")
        @click.option("--owner", type=click.Choice(["parent", "tenant"]), required=True)
        @click.option(
            "--child-linked", is_flag=True, help="Each row names one of the parent's children."
        )
        @click.option("--soft-delete", is_flag=True, help="Deletes are soft; the cron purges.")
        def new(name: str, owner: str, child_linked: bool, soft_delete: bool) -> None:
            """Write the domain NAME (singular, e.g. reading-log): model, migration,
            schemas, repository, service, dependency, controller, tests, TypeScript
            client and README rows; it registers itself (app/domains.py)."""
            try:
                spec = DomainSpec(name, Ownership(owner), child_linked, soft_delete)
                written = write_domain(spec)
            except ScaffoldError as error:
                raise click.ClickException(str(error)) from None
            for path in written:
                click.echo(f"wrote {path}")
            click.echo("next: alembic upgrade head, then scripts/test")
