"""What every ``xdsi-gateway`` command shares: exit codes, the line that says which configuration
and data folder a command used, and the check that a reading command finds the gateway's data.

Exit codes (README "Command line"): 0 done; 1 the operation failed (a peer refused or could not
be reached, something is missing); 2 usage or configuration error (a bad option or file, an
unknown key or ``XDSI_*`` variable, no gateway data where the configuration points); 130
interrupted (Ctrl-C). Results go to stdout, everything else (errors, progress, this line) to
stderr.

A command run on another machine's, or no, configuration used to create an empty ``var/`` in
the current folder and answer "unknown": :func:`require_gateway_data` refuses that (exit 2),
and :func:`announce` names the configuration and the folder or URL a command works on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from gateway.config import ENV_PREFIX, Settings, environment_names
from gateway.errors import ConfigError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def configuration_source(
    config_path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> str:
    """Where the settings came from: the file (or built-in defaults) and the ``XDSI_*``
    variables that override it."""
    environ = os.environ if environ is None else environ
    names = environment_names()
    overrides = sorted(name for name in environ if name.startswith(ENV_PREFIX) and name in names)
    source = str(Path(config_path).resolve()) if config_path else "built-in defaults, no --config"
    return source + (f" + {', '.join(overrides)}" if overrides else "")


def announce(
    command: str,
    config_path: str | os.PathLike[str] | None,
    *,
    data_dir: Path | None = None,
    url: str | None = None,
    what: str = "registry",
    err: TextIO | None = None,
) -> None:
    """Print (stderr) the one line naming what ``command`` works on (its data folder, or the
    URL of ``what`` it asks) and the configuration that chose it."""
    parts = [f"data folder {data_dir}"] if data_dir is not None else []
    parts += [f"{what} {url}"] if url else []
    line = f"xdsi-gateway {command}: {', '.join(parts)} (configuration: "
    print(line + configuration_source(config_path) + ")", file=err or sys.stderr)


def _sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or an in-memory one)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def require_gateway_data(
    command: str, settings: Settings, config_path: str | os.PathLike[str] | None
) -> None:
    """Refuse a command that reads the gateway's data when there is none where the settings
    point: it would create a new, empty database instead of reading the gateway's.

    Raises: ConfigError (exit 2) naming the folder, the configuration and what to do.
    """
    data_dir = settings.data_dir
    database = _sqlite_file(settings.gateway_database_url)
    if not data_dir.is_dir():
        missing = f"no gateway data folder {data_dir}"
    elif database is not None and not database.is_file():
        missing = f"no gateway database {database}"
    else:
        return
    raise ConfigError(
        f"{missing} (configuration: {configuration_source(config_path)}): pass --config with "
        "the gateway's configuration file or set XDSI_GATEWAY_DATA_DIR; "
        f"`{command}` reads the gateway's data and never creates a new database "
        "(`xdsi-gateway serve` or `xdsi-gateway db upgrade` do)"
    )
