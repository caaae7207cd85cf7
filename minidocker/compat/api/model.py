"""What docker-py's models share (its resource.Model): the object's JSON as the Engine API
gave it (`attrs`), its id, and equality by id. Each model says where its id is."""
from __future__ import annotations


class Model:
    id_key = "Id"

    def __init__(self, client, attrs: dict):
        self.client, self.api = client, client.api
        self.attrs = attrs

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.short_id}>"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def id(self) -> str:
        return self.attrs[self.id_key]

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def name(self) -> str:
        return self.attrs["Name"]
