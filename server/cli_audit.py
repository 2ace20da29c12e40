"""`labelwright audit`: run the quality checks over a project and print the ranked findings.

Mount on the main CLI with ``app.command("audit")(cli_audit.audit)``; ``python -m server.cli_audit``
runs this module's own ``app``. Findings are stored (see ``tools.audit.runner``), so a later
``labelwright review`` works through them.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from server.settings import get_settings

app = typer.Typer(help="Check a project's labels for problems.", no_args_is_help=True)
console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    console.print("[red]error:[/red] " + message.replace("[", r"\["))
    return typer.Exit(1)


@app.command()
def audit(
    project: Annotated[str, typer.Option("--project", "-p", help="Project name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as a JSON array.")] = False,
    no_models: Annotated[
        bool, typer.Option("--no-models", help="Skip the detector/verifier checks (missing, wrong class).")
    ] = False,
    stack: Annotated[str | None, typer.Option(help="Model stack: lite | full (default: settings).")] = None,
    detector: Annotated[
        str | None,
        typer.Option(
            help="Detector of the missed-object checks: project:<name> (trained there) or a model id."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most findings to print.")] = 100,
) -> None:
    """Run every check, store the findings and print them, worst (severity x confidence) first."""
    from ops import findings
    from server.cli_label import resolve_detector
    from server.cli_ops import CLI, cli_env, project_id
    from tools.audit.runner import run_audit
    from tools.models.resolve import ModelMissing

    settings = get_settings()
    if no_models and detector:
        raise _fail("--detector runs a model check; it cannot go with --no-models")
    backends = None
    with cli_env() as env:
        pid = project_id(env, project)
        if not no_models:
            from tools.backends.stacks import build_backends

            try:
                backends = build_backends(
                    stack or settings.stack, settings.models_dir, detector=resolve_detector(env, detector)
                )
            except ValueError as exc:
                raise _fail(str(exc)) from None
        try:
            report = findings.run_audit(
                env,
                CLI,
                pid,
                lambda session: run_audit(
                    session, project_id=pid, home=settings.home, backends=backends, limit=limit
                ),
            )
        except ModelMissing as exc:
            raise _fail(f"{exc} (or run the checks without models: --no-models)") from None
    if as_json:
        typer.echo(json.dumps(report.findings, indent=2))
        return
    closed = ", ".join(f"{n} {why}" for why, n in report.closed.items()) or "none"
    console.print(
        f"{report.annotations} annotations on {report.images} images checked in {report.seconds:.1f} s"
        f"{'' if report.models else ' (no models)'}: {len(report.findings)} open findings, "
        f"{report.new} new, {report.reopened} reopened, closed: {closed}",
        markup=False,
    )
    table = Table("id", "kind", "rank", "image", "ann", "message")
    for f in report.findings:
        table.add_row(
            str(f["id"]),
            f["kind"],
            f"{f['severity'] * f['confidence']:.2f}",
            f["image"] or "-",
            "-" if f["annotation_id"] is None else f"#{f['annotation_id']}",
            f["message"].replace("[", r"\["),
        )
    Console().print(table)


if __name__ == "__main__":
    app()
