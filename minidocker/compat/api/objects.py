"""client.networks and client.volumes: docker-py's Network and Volume models, over the Engine API."""
from __future__ import annotations

from .model import Model


class Network(Model):
    @property
    def containers(self) -> list:
        """The containers connected to it (docker-py reloads them)."""
        return [self.client.containers.get(cid) for cid in (self.attrs.get("Containers") or {})]

    def reload(self) -> "Network":
        self.attrs = self.api.json("GET", f"/networks/{self.id}")
        return self

    def connect(self, container, aliases: list[str] | None = None, ipv4_address: str | None = None, **kw) -> None:
        cid = getattr(container, "id", container)
        ep = {"Aliases": aliases or None, "IPAMConfig": {"IPv4Address": ipv4_address} if ipv4_address else None}
        self.api.call("POST", f"/networks/{self.id}/connect", body={"Container": cid, "EndpointConfig": ep})

    def disconnect(self, container, force: bool = False) -> None:
        cid = getattr(container, "id", container)
        self.api.call("POST", f"/networks/{self.id}/disconnect", body={"Container": cid, "Force": force})

    def remove(self) -> None:
        self.api.call("DELETE", f"/networks/{self.id}")


class NetworkCollection:
    def __init__(self, client):
        self.client, self.api = client, client.api

    def create(self, name: str, driver: str | None = None, ipam: dict | None = None, internal: bool = False,
               labels: dict | None = None, check_duplicate=None, **kw) -> Network:
        """`ipam={"Config": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]}` as docker-py's IPAMConfig."""
        body = {"Name": name, "Driver": driver or "bridge", "Internal": internal, "Labels": labels or {}}
        if ipam:
            body["IPAM"] = {"Driver": ipam.get("Driver", "default"),
                            "Config": [dict(c) for c in ipam.get("Config") or ipam.get("pool_configs") or []]}
        if kw.get("options"):
            body["Options"] = kw.pop("options")
        created = self.api.json("POST", "/networks/create", body=body)
        return self.get(created["Id"])

    def get(self, network_id: str) -> Network:
        return Network(self.client, self.api.json("GET", f"/networks/{network_id}"))

    def list(self, names: list[str] | None = None, ids: list[str] | None = None, filters: dict | None = None,
             greedy: bool = False) -> list[Network]:
        filters = dict(filters or {})
        if names:
            filters["name"] = list(names)
        if ids:
            filters["id"] = list(ids)
        rows = self.api.json("GET", "/networks", {"filters": filters or None})
        return [self.get(r["Id"]) if greedy else Network(self.client, r) for r in rows]

    def prune(self, filters: dict | None = None) -> dict:
        return self.api.json("POST", "/networks/prune", {"filters": filters})


class Volume(Model):
    id_key = "Name"

    def reload(self) -> "Volume":
        self.attrs = self.api.json("GET", f"/volumes/{self.id}")
        return self

    def remove(self, force: bool = False) -> None:
        self.api.call("DELETE", f"/volumes/{self.id}", {"force": force})


class VolumeCollection:
    def __init__(self, client):
        self.client, self.api = client, client.api

    def create(self, name: str | None = None, driver: str | None = None, driver_opts: dict | None = None,
               labels: dict | None = None) -> Volume:
        body = {"Name": name or "", "Driver": driver or "local", "DriverOpts": driver_opts or {},
                "Labels": labels or {}}
        return Volume(self.client, self.api.json("POST", "/volumes/create", body=body))

    def get(self, volume_id: str) -> Volume:
        return Volume(self.client, self.api.json("GET", f"/volumes/{volume_id}"))

    def list(self, filters: dict | None = None) -> list[Volume]:
        out = self.api.json("GET", "/volumes", {"filters": filters})
        return [Volume(self.client, v) for v in out.get("Volumes") or []]

    def prune(self, filters: dict | None = None) -> dict:
        return self.api.json("POST", "/volumes/prune", {"filters": filters})
