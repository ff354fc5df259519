"""`ivig protocol`: show the protocol, compare versions, check files, write the contract.

Only Typer is imported here; each command imports what it needs, so registering the
group keeps `ivig --help` instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    no_args_is_help=True,
    help="The study protocol (protocol/): show it, compare versions, check a file, "
         "write the contract document.",
)

ProtocolDir = Annotated[Path | None, typer.Option(
    "--protocol", help="Protocol folder (default: IVIG_PROTOCOL_DIR, else the repository's "
                       "protocol/).")]


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def _load(protocol_dir: Path | None, extra: list[Path] | None = None):  # noqa: ANN202
    """The protocol with `extra` amendment files, or exit 1 listing what is wrong."""
    from ivig_platform.protocol.errors import ProtocolError
    from ivig_platform.protocol.load import load_protocol

    try:
        return load_protocol(protocol_dir).with_amendments(extra or [])
    except ProtocolError as exc:
        _fail(f"{exc}\n{len(exc.issues)} problem(s): the protocol cannot be used")


def _print(renderables) -> None:  # noqa: ANN001
    from ivig_platform.protocol.show import console

    out = console()
    for renderable in renderables:
        out.print(renderable)


@app.command()
def show(
    plan: Annotated[list[Path] | None, typer.Option(
        "--plan", help="An amendment file to show in force (repeatable).")] = None,
    protocol_dir: ProtocolDir = None,
) -> None:
    """The contract in force and every analysis plan in force, as tables."""
    from ivig_platform.protocol.show import console, protocol_view

    protocol = _load(protocol_dir, plan)
    _print(protocol_view(protocol, plain=not console().is_terminal))


@app.command()
def diff(
    old: Annotated[str, typer.Argument(help="A version (v1, an amendment's) or a file.")],
    new: Annotated[str, typer.Argument(help="A version or an amendment file.")],
    protocol_dir: ProtocolDir = None,
) -> None:
    """What NEW changes against OLD, key by key (e.g. `ivig protocol diff v1 v2`)."""
    from ivig_platform.protocol.amend import read_amendment
    from ivig_platform.protocol.diff import diff_versions
    from ivig_platform.protocol.show import console, diff_view

    files = [Path(a) for a in (old, new) if Path(a).is_file()]
    versions = []
    for arg in (old, new):
        if Path(arg).is_file():
            issues: list = []
            amendment = read_amendment(Path(arg), arg, issues)
            if amendment is None:
                _fail("\n".join(str(i) for i in issues))
            versions.append(amendment.version)
        else:
            versions.append(arg)
    protocol = _load(protocol_dir, files)
    unknown = [v for v in versions if v not in protocol.versions]
    if unknown:
        _fail(f"unknown version(s) {', '.join(unknown)} (known: {', '.join(protocol.versions)}; "
              "or give an amendment file)")
    changes = diff_versions(protocol, versions[0], versions[1])
    _print([diff_view(versions[0], versions[1], changes, plain=not console().is_terminal)])


def _protocol_root(path: Path) -> Path | None:
    """The protocol folder `path` is, or lies in (the folder holding protocol.yaml)."""
    for folder in (path, *path.parents) if path.is_dir() else path.parents:
        if (folder / "protocol.yaml").is_file():
            return folder
    return None


@app.command()
def check(
    file: Annotated[Path, typer.Argument(
        help="An amendment file, a protocol folder, or a file inside one.")],
    protocol_dir: ProtocolDir = None,
) -> None:
    """Validate FILE; exit 0 when it can be used, 1 with every problem found."""
    import yaml

    from ivig_platform.protocol.errors import ProtocolError
    from ivig_platform.protocol.files import read_source
    from ivig_platform.protocol.load import build, load_protocol

    if not file.exists():
        _fail(f"{file}: no such file or folder")
    root = _protocol_root(file.resolve())
    try:
        if root is not None:
            protocol = build(read_source(root), [])
            typer.echo(f"{file}: valid (protocol {protocol.version} in {root}, plans "
                       f"{', '.join(p.version for p in protocol.plans)})")
            return
        try:
            is_amendment = isinstance(yaml.safe_load(file.read_text()), dict)
        except (yaml.YAMLError, UnicodeDecodeError, IsADirectoryError):
            is_amendment = True  # let the amendment reader say what is wrong with it
        if not is_amendment:
            _fail(f"{file}: neither an amendment (a mapping with version and extends) nor "
                  "part of a protocol folder")
        protocol = load_protocol(protocol_dir).with_amendments([file])
    except ProtocolError as exc:
        _fail(f"{exc}\n{len(exc.issues)} problem(s) in {file}")
    plans = ", ".join(p.version for p in protocol.plans)
    typer.echo(f"{file}: valid amendment (plans in force: {plans}; contract in force: "
               f"{protocol.contract_version})")


@app.command()
def document(
    out: Annotated[Path | None, typer.Option(
        help="Where to write it (default: the protocol folder's CONTRACT.md).")] = None,
    html: Annotated[bool, typer.Option("--html", help="Write HTML instead of Markdown.")] = False,
    protocol_dir: ProtocolDir = None,
) -> None:
    """Write the contract document sites receive, generated from the definition."""
    from ivig_platform.protocol.document import render_contract_html, render_contract_markdown

    protocol = _load(protocol_dir)
    target = out or protocol.root / ("CONTRACT.html" if html else "CONTRACT.md")
    text = render_contract_html(protocol) if html else render_contract_markdown(protocol)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    typer.echo(f"contract document written to {target}")
