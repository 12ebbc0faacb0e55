"""HTTP openers for the tools: proxies named in the environment apply to AWS, never to the local stack on loopback."""

from __future__ import annotations

import ipaddress
import urllib.parse
import urllib.request


def is_loopback(url: str) -> bool:
    """Whether url's host is this machine (localhost or a loopback address)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def opener_for(url: str) -> urllib.request.OpenerDirector:
    """An opener for url: the environment's proxies, except on loopback, which a proxy could not reach."""
    if is_loopback(url):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()
