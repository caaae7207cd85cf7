"""`minidocker serve`: the Docker Engine API, so that the docker CLI, docker-py and Compose
drive minidocker.

The seed opens with Docker's architecture: a client (the `docker` command) talks to a daemon
(dockerd) over a REST API on /var/run/docker.sock; the daemon does the work. minidocker has no
daemon (each container has its own monitor), so the CLI calls the engine directly. This
package is the daemon's front door, for learners who want to see the split (notebook 11, to
come): the same engine (engine/), the same state root and the same file locks as the CLI, so
`minidocker ps` and `docker -H unix:///run/minidocker.sock ps` show the same containers.

    http.py        HTTP/1.1 as Docker's clients use it: JSON, chunked streams, hijacking
    core.py        the server: sockets (-H), API versions, routing, errors as {"message": ...}
    system.py      /_ping, /version, /info, /events, /system/df
    containers.py  /containers/...: create, start, attach, wait, logs, stop, rm, ...
    execs.py       /containers/{id}/exec, /exec/{id}/start|json
    images.py      /images/..., /build
    objects.py     /networks/..., /volumes/...
    translate.py   Docker's JSON <-> the engine's arguments (pure)
    streams.py     attach/exec streams: the 8-byte multiplexed frames, pumping
"""
