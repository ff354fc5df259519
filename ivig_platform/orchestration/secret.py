"""Put the pseudonymisation key in the Prefect Secret block the refresh reads.

    python -m ivig_platform.orchestration.secret < /secure/place/ivig-pseudonym.key

The key is read from standard input, so it never appears on a command line, in the
shell's history or in the process list. An existing block is left alone unless
`--replace` is given: a different key gives every patient a different pseudonym, so
changing it is a decision, not a side effect of re-running the set-up.
"""

from __future__ import annotations

import argparse
import sys

from ivig_platform.landing.pseudonym import MIN_KEY_LENGTH

SECRET_BLOCK = "ivig-pseudonym-key"  # the name flows/refresh.py loads


def block_exists(name: str = SECRET_BLOCK) -> bool:
    from prefect.blocks.system import Secret

    try:
        Secret.load(name)
    except ValueError:  # Prefect's "block document not found"
        return False
    return True


def save_key(value: str, replace: bool = False, name: str = SECRET_BLOCK) -> None:
    """Store `value` as the Secret block `name` on the server of `PREFECT_API_URL`."""
    from prefect.blocks.system import Secret

    if len(value) < MIN_KEY_LENGTH:
        raise ValueError(f"the key is too short ({len(value)} characters; at least "
                         f"{MIN_KEY_LENGTH})")
    if not replace and block_exists(name):
        raise FileExistsError(
            f"the Secret block {name!r} already exists; replacing the key changes every "
            "pseudonym (use --replace only when that is intended)"
        )
    Secret(value=value).save(name, overwrite=replace)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ivig_platform.orchestration.secret",
        description="Store the pseudonymisation key (read from stdin) in the Prefect "
        f"Secret block {SECRET_BLOCK!r}.",
    )
    parser.add_argument("--replace", action="store_true",
                        help="Overwrite an existing block (changes every pseudonym).")
    args = parser.parse_args(argv)
    if sys.stdin.isatty():
        print("reading the key from stdin (end with Ctrl-D)...", file=sys.stderr)
    value = sys.stdin.read().strip()
    try:
        save_key(value, replace=args.replace)
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Secret block {SECRET_BLOCK!r} saved")
    return 0


if __name__ == "__main__":  # pragma: no cover - command-line entry
    sys.exit(main())
