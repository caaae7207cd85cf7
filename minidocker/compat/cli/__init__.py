"""The `minidocker` command line (main.py parses; containers/images/system.py run commands)."""
