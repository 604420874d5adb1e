"""The server: a request's backend, found once per host (see the package's docstring)."""

from __future__ import annotations

from typing import Any


def get_backend_for_host(self: Any, host: str | None) -> Any:
    """moto 5.2.1's DomainDispatcherApplication.get_backend_for_host, kept per host.

    pipectl: the answer depends only on the host (moto's module list and the backends'
    URL patterns do not change while it runs), so it is computed once per host. The one
    visible difference: the "Unable to find appropriate backend" line is printed once per
    unknown host, not once per request. get_application calls it under self.lock.
    """
    known = self.__dict__.setdefault("pipectl_backend_for_host", {})
    if host not in known:
        known[host] = _backend_for_host(self, host)
    return known[host]


def _backend_for_host(self: Any, host: str | None) -> Any:
    from moto import backends

    if host is None:
        return None

    if host == "moto_api":
        return host

    if host in backends.list_of_moto_modules():
        return host

    for backend, pattern in self.backend_url_patterns:
        if pattern.match(f"http://{host}"):
            return backend

    if "amazonaws.com" in host:
        print(  # noqa
            f"Unable to find appropriate backend for {host}."
            "Remember to add the URL to urls.py, and run scripts/update_backend_index.py "
            "to index it."
        )
    return None
