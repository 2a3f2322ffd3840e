"""``paracle-guard cache``: the cache of image facts and resolved policies."""

from __future__ import annotations

import typer

from paracle_guard.cli_kit.house import fails_cleanly, group_app
from paracle_guard.errors import InputError

app = group_app("The cache of image facts: where it is, how big, clear it.",
                  no_args_is_help=True)

@app.command("info")
@fails_cleanly
def cache_info() -> None:
    """Where the cache of image facts is, how big it is and may grow, what it holds."""
    from paracle_guard.policy.remembered import KIND, open_store
    from paracle_guard.sources.facts_store import open_cache, render_info

    with open_cache() as cache, open_store() as policies:
        remembered = policies.info().entries[KIND]
        typer.echo(render_info(cache.info()), nl=False)
    typer.echo(f"policies:  {remembered} resolved policies in {policies.root}")


@app.command("clear")
@fails_cleanly
def cache_clear() -> None:
    """Remove every cached image fact and resolved policy (the next check reads them again)."""
    from paracle_guard.policy.remembered import open_store
    from paracle_guard.sources.facts_store import open_cache
    from paracle_guard.units import format_size

    with open_cache() as cache, open_store() as policies:
        if not cache.enabled:
            raise InputError(f"the cache is off: {cache.reason}")
        removed, freed = cache.clear()
        policies.clear()
    typer.echo(f"removed {removed} entries ({format_size(freed) if freed else '0 bytes'}) "
               f"from {cache.root}, and the resolved policies")

