"""``gcr``: Google Container Registry, ``gcr.io`` and its regional hosts (registries.md §6).

Authentication and tag metadata are Google's (``_google.py``). Repositories come from
``/v2/_catalog``, which lists what the credentials can see across projects; a project in
``registryBase`` (``gcr.io/<project>``) narrows it to that project. gcr.io answers 401 without a
challenge on real requests; the authenticator reuses the one from ``/v2/`` (registries.md §1.1).
"""

from __future__ import annotations

from shared.registry.vendors._google import GoogleVendor
from shared.registry.vendors.base import register


@register("gcr")
class Gcr(GoogleVendor):
    def list_repositories(self) -> list[str]:
        names = super().list_repositories()
        project = self.project if self.namespace else None
        return [n for n in names if n.startswith(f"{project}/")] if project else names
