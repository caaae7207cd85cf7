"""`minidocker build`: the Dockerfile parser, `.dockerignore` matching and (elsewhere) the image builder."""
