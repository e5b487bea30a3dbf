"""Sending one webhook request safely: the destination is checked when the connection is made.

A URL that was harmless when it was saved can resolve to an internal address later (DNS
rebinding), so the check happens here, on every attempt: the host is resolved once, every
address it resolves to must be public (or inside ``REGISTRY_WEBHOOK_ALLOWED_NETWORKS``), and the
connection goes to the address that was checked, never through a second lookup. The request
still names the original host (``Host`` header, TLS SNI and certificate check), so virtual hosts
and HTTPS work as usual. Redirects are not followed, proxies from the environment are not used,
and the response body is read up to ``RESPONSE_LIMIT`` bytes.
"""

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError

RESPONSE_LIMIT = 4096

# Never reachable over TCP, whatever the allow-list says.
_NEVER = ("multicast", "unspecified")


class DestinationRefused(Exception):
    """The URL's host resolves to an address webhooks may not reach."""


@dataclass
class Response:
    status: int | None = None
    body: bytes = b""
    address: str = ""
    latency_ms: int | None = None
    error: str = ""
    outcome: str = "success"  # success, http_error, redirect, timeout, refused, connection_error


def allowed_networks():
    return [ipaddress.ip_network(cidr, strict=False) for cidr in settings.REGISTRY_WEBHOOK_ALLOWED_NETWORKS]


def refusal(address):
    """Why ``address`` may not be reached ("loopback", "private", ...), or "" when it may."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    kinds = [
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unique-local", isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("fc00::/7")),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved or not ip.is_global),
    ]
    kind = next((name for name, matches in kinds if matches), "")
    if kind and kind not in _NEVER and any(ip in network for network in allowed_networks()):
        return ""
    return kind


def resolve(host, port):
    """The one address to connect to: every address ``host`` resolves to must be allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectionError(f"Could not resolve {host}: {exc}") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        kind = refusal(address)
        if kind:
            raise DestinationRefused(f"{host} resolves to {address}, a {kind} address; webhooks may not reach it.")
    return addresses[0]


def validate_url(url):
    """The checks that can be made when a URL is saved: http(s), a host, and no literal address
    that would be refused (names are checked again on every delivery)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (raises on a port out of range)
    except ValueError as exc:
        raise ValidationError(f"A webhook URL needs a valid port: {exc}.") from exc
    if parts.scheme not in ("http", "https"):
        raise ValidationError("A webhook URL must start with http:// or https://.")
    if not parts.hostname:
        raise ValidationError("A webhook URL needs a host.")
    if parts.username or parts.password:
        raise ValidationError("A webhook URL may not carry a user name or password.")
    try:
        kind = refusal(parts.hostname)
    except ValueError:  # a name, not an address
        kind = ""
    if kind:
        raise ValidationError(f"{parts.hostname} is a {kind} address; webhooks may not reach it.")


def post(url, body, headers, *, timeout):
    """POST ``body`` to ``url`` once; never raises, the outcome is in the Response."""
    started = time.monotonic()
    result = Response()
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL with a host")
        result.address = resolve(parts.hostname, port)
    except DestinationRefused as exc:
        return Response(error=str(exc), outcome="refused")
    except (ConnectionError, ValueError) as exc:
        return Response(error=f"Cannot send to {url}: {exc}", outcome="connection_error")
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if ":" in parts.hostname:
        host_header = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
    options = {"timeout": urllib3.Timeout(connect=timeout, read=timeout), "retries": False, "maxsize": 1}
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            result.address,
            port,
            server_hostname=parts.hostname,
            assert_hostname=parts.hostname,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(result.address, port, **options)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        response = pool.urlopen(
            "POST",
            path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            preload_content=False,
        )
        try:
            result.status = response.status
            result.body = _read_limited(response, started + timeout)
        finally:
            response.release_conn()
    except (urllib3.exceptions.TimeoutError, TimeoutError):
        result.outcome, result.error = "timeout", f"No answer within {timeout} s."
    except urllib3.exceptions.HTTPError as exc:
        result.outcome, result.error = "connection_error", str(exc)
    finally:
        pool.close()
    result.latency_ms = round((time.monotonic() - started) * 1000)
    if result.outcome == "success" and result.status is not None and not 200 <= result.status < 300:
        if 300 <= result.status < 400:
            location = response.headers.get("Location", "")
            result.outcome, result.error = "redirect", f"Redirect to {location or '(no location)'} not followed."
        else:
            result.outcome, result.error = "http_error", f"HTTP {result.status}"
    return result


def _read_limited(response, deadline):
    """At most RESPONSE_LIMIT bytes of the body, and no reading past the attempt's deadline."""
    body = b""
    while len(body) < RESPONSE_LIMIT:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = response.read(min(1024, RESPONSE_LIMIT - len(body)))
        if not chunk:
            break
        body += chunk
    return body
