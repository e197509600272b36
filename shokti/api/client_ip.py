"""The client's IP address, from a configured number of trusted proxies (settings.NUM_PROXIES).

Every use of the client IP (DRF's throttles, django-axes' login lockouts) goes through here, so a
client cannot move a limit by sending its own X-Forwarded-For. With NUM_PROXIES = 0 (the default:
clients connect straight to the web server) the address is the socket's, REMOTE_ADDR, and
X-Forwarded-For is ignored. Behind N proxies that each append the address they saw (a load
balancer, nginx), the client is the N-th address from the right of X-Forwarded-For: what the
client itself wrote is further left and never read. The same rule as DRF's `NUM_PROXIES`.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_ip(request) -> str:
    """The address of the client as the nearest trusted proxy saw it (REMOTE_ADDR when none is trusted)."""
    remote_addr = request.META.get("REMOTE_ADDR", "") or ""
    proxies = int(getattr(settings, "NUM_PROXIES", 0) or 0)
    if proxies > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        addresses = [address.strip() for address in forwarded.split(",") if address.strip()]
        if addresses:
            candidate = addresses[-min(proxies, len(addresses))]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                pass  # not an address (a misconfigured proxy count, a client that bypassed the proxy)
    return remote_addr
