from .compat.cli.main import entry

entry()
