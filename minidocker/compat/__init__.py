"""Docker's surface: what makes minidocker a drop-in for the commands people know, and not
needed to understand how a container runs.

    cli/          the `minidocker` command: docker's flags, tables, messages and exit codes
    gotemplate.py Go's text/template, for --format and inspect -f
    api.py        a docker-py shaped Python client (the notebooks use it)
    build/        Dockerfile parsing and the classic builder
"""
