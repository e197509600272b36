"""Links in outgoing text: which hosts a company may link to, and every link a text holds.

    from engage.ai.config import allowed_link_hosts
    from engage.ai.links import links_judge
    hosts = allowed_link_hosts(company=company)     # ("app.sheba.xyz", "sheba.xyz", ...)
    reasons = links_judge(text=..., allowed_hosts=hosts, own_links=[link])

`engage.ai.config.allowed_link_hosts(company=...)` is the one list of a company's link hosts: the hosts of our own
links (SITE_URL, DEEP_LINK_BASE_URL, DEEP_LINK_APP_URL, SHORT_LINK_BASE_URL) plus the company's
`AIConfig.allowed_link_domains`, editable in the admin. A host passes when it is an allowed host or
a subdomain of one. Email click tracking redirects only to these hosts as well (use this function).

Extraction finds URLs (with a scheme or www.) and bare domains ("sheba-offer.com"); a bare word
counts as a domain only when its ending is a public suffix, from the suffix list bundled with
`tldextract` (no network: `suffix_list_urls=()`). Punycode is decoded; a host in look-alike letters
(Cyrillic "а" in "shеba.xyz", from `confusable-homoglyphs`' table) or a near spelling of an allowed
host ("sheeba.xyz", "sheba.com", "sheba-xyz.com") is a look-alike; URL shorteners are named as such;
a link with invisible characters in it, or written "sheba[.]xyz", is a hidden link.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from engage.ai.lexicons import lexicon_entries
from engage.ai.normalize import _homoglyph_table, is_invisible, strip_invisible
from engage.ai.reasons import SafetyReason

_LABEL = r"[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff\u200b-\u200d\u2060\ufeff-]{0,62})"
# "hxxps://" is how a link is defanged to slip past a filter; a reader's phone still shows the address.
URL = re.compile(r"(?:h(?:tt|xx)ps?://|www\.)[^\s<>\"'()\[\]{}।]+", re.IGNORECASE)
BARE_DOMAIN = re.compile(
    rf"(?<![\w@.\-/])((?:{_LABEL}\.)+[a-z\u00a1-\uffff][a-z0-9\u00a1-\uffff-]{{1,62}})(?::\d{{2,5}})?(?:/[^\s<>\"']*)?",
    re.IGNORECASE,
)
OBFUSCATED = re.compile(
    r"\b([a-z0-9-]{2,63})\s*(?:\[\.\]|\(\.\)|\[dot\]|\(dot\)|\{dot\}|\s+dot\s+)\s*([a-z]{2,12})\b", re.IGNORECASE
)
# "site . com": a dot with spaces around it, before a common ending (lower case, as a link is written).
SPACED_DOT = re.compile(r"\b([a-z0-9][a-z0-9-]{1,62})\s+\.\s+(com|net|org|info|xyz|top|bd|io|co|me|online|site|shop|"
                        r"store|click|link|live|app)\b")
# File names whose ending is also a country's or a brand's domain ending ("main.py", "README.md",
# "project.zip"): written bare, with no path, they are files a course talks about, not links.
FILE_SUFFIXES = frozenset({"py", "md", "zip", "sh", "mov", "mk"})
TRAILING = ".,;:!?।)]}'\"”’"


@functools.cache
def _extractor():
    import tldextract

    # The bundled Public Suffix List snapshot only: never fetch, never write a cache.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def _host_of(url: str) -> str:
    return (settings_host(url) or "").lower()


def settings_host(url: str) -> str:
    try:
        return urlsplit(url if "//" in url else f"//{url}").hostname or ""
    except ValueError:
        return ""


def default_link_hosts() -> tuple[str, ...]:
    """The hosts of our own links: the site, the deep links, the short links."""
    urls = [getattr(settings, name, "") for name in ("SITE_URL", "DEEP_LINK_BASE_URL", "DEEP_LINK_APP_URL",
                                                     "SHORT_LINK_BASE_URL")]
    return tuple(dict.fromkeys(host for host in (_host_of(url) for url in urls if url) if host))


def link_domain_normalize(value: str) -> str:
    """A domain as the admin stores it: lower case, no scheme, path or port, punycode decoded."""
    value = value.strip().lower()
    host = settings_host(value) if ("/" in value or ":" in value) else value
    return _decode_host(host.strip(".")) if host else ""


DOMAIN = re.compile(r"^(?:[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]{0,62})\.)+[a-z\u00a1-\uffff][a-z0-9\u00a1-\uffff-]{1,62}$")


def link_domains_clean(value) -> list[str]:
    """The allowed link domains as stored: a list of normalised domains; ValidationError naming a bad one."""
    from django.core.exceptions import ValidationError

    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError({"allowed_link_domains": 'A list of domains, e.g. ["sheba.xyz"].'})
    cleaned = []
    for item in value:
        domain = link_domain_normalize(item)
        if not DOMAIN.match(domain) and not _is_ip(domain):
            raise ValidationError({"allowed_link_domains": f"Not a domain: {item!r}."})
        if domain in shortener_hosts():
            raise ValidationError({"allowed_link_domains": f"{domain} is a URL shortener: it can point anywhere."})
        cleaned.append(domain)
    return list(dict.fromkeys(cleaned))


def host_is_allowed(host: str, allowed_hosts: tuple[str, ...] | list[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == allowed or host.endswith("." + allowed) for allowed in allowed_hosts)


def _decode_host(host: str) -> str:
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna")
            except (UnicodeError, ValueError):
                pass
        labels.append(label)
    return ".".join(labels)


@dataclass(frozen=True)
class FoundLink:
    raw: str
    host: str  # lower case, punycode decoded, invisible characters removed
    is_hidden: bool
    has_scheme: bool


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def links_extract(text: str) -> list[FoundLink]:
    """Every URL and bare domain in `text`, in order (an email's domain is not a link)."""
    found: list[FoundLink] = []
    taken: list[tuple[int, int]] = []
    for match in URL.finditer(text):
        raw = match.group(0).rstrip(TRAILING)
        taken.append((match.start(), match.start() + len(raw)))
        cleaned = strip_invisible(raw)
        url = cleaned if "://" in cleaned else f"http://{cleaned}"
        host = _decode_host(settings_host(url).lower())
        found.append(FoundLink(raw=raw, host=host, is_hidden=cleaned != raw, has_scheme=True))
    for match in BARE_DOMAIN.finditer(text):
        if any(start <= match.start() < end for start, end in taken):
            continue
        raw = match.group(0).rstrip(TRAILING)
        cleaned = strip_invisible(match.group(1)).lower().rstrip(".")
        host = _decode_host(cleaned)
        parts = _extractor()(host)
        if not parts.suffix or not parts.domain:
            continue
        if "/" not in raw and _is_prose(match.group(1), parts.suffix):
            continue
        found.append(FoundLink(raw=raw, host=host, is_hidden=any(is_invisible(c) for c in raw), has_scheme=False))
    for match in SPACED_DOT.finditer(text):
        host = f"{match.group(1)}.{match.group(2)}"
        if _extractor()(host).domain:
            found.append(FoundLink(raw=match.group(0), host=host, is_hidden=True, has_scheme=False))
    for match in OBFUSCATED.finditer(text):
        host = f"{match.group(1)}.{match.group(2)}".lower()
        if _extractor()(host).suffix == match.group(2).lower():
            found.append(FoundLink(raw=match.group(0), host=host, is_hidden=True, has_scheme=False))
    return found


def _is_prose(written: str, suffix: str) -> bool:
    """A bare "word.ending" that is prose, not an address: a missing space before a capital ("confirm.Today",
    "AC.Repair"), a technology's name ("ASP.NET", "Socket.IO"), or a file ("main.py")."""
    ending = written[len(written) - len(suffix):]
    return not ending.islower() or suffix in FILE_SUFFIXES


def _registered(host: str) -> tuple[str, str]:
    """(domain label, suffix) of a host: ("sheba", "xyz") for app.sheba.xyz."""
    parts = _extractor()(host)
    return parts.domain, parts.suffix


_SKELETON = str.maketrans({"0": "o", "1": "l", "i": "l", "5": "s", "3": "e", "_": "-"})


def _skeleton(value: str) -> str:
    folded = value.lower().translate(_homoglyph_table())
    folded = folded.replace("rn", "m").replace("vv", "w").replace("cl", "d")
    return folded.translate(_SKELETON).replace("-", "")


def _distance(left: str, right: str) -> int:
    """Levenshtein distance (short strings: host labels)."""
    if left == right:
        return 0
    previous = list(range(len(right) + 1))
    for row, left_char in enumerate(left, 1):
        current = [row]
        for column, right_char in enumerate(right, 1):
            current.append(min(previous[column] + 1, current[column - 1] + 1,
                               previous[column - 1] + (left_char != right_char)))
        previous = current
    return previous[-1]


def _imitates(host: str, allowed_hosts: tuple[str, ...] | list[str]) -> str:
    """The allowed host `host` imitates (look-alike letters, near spelling, another ending), or ""."""
    domain, suffix = _registered(host)
    for allowed in allowed_hosts:
        if _is_ip(allowed):
            continue
        allowed_domain, allowed_suffix = _registered(allowed)
        if not allowed_domain or len(allowed_domain) < 3:
            continue
        if (domain, suffix) == (allowed_domain, allowed_suffix):
            return ""  # another host of the same site: not allowed, but no imitation either
        if _skeleton(domain) == _skeleton(allowed_domain):
            return allowed
        if len(allowed_domain) >= 4 and _distance(domain, allowed_domain) <= (1 if len(allowed_domain) < 6 else 2):
            return allowed
        if allowed_domain in domain.replace("-", "") and len(allowed_domain) >= 4:
            return allowed
        # app.sheba.xyz.login-check.com: the allowed host as a subdomain of another site.
        if host.startswith(allowed + ".") or host.startswith(f"{allowed_domain}.{allowed_suffix}."):
            return allowed
    if not host.isascii():
        from confusable_homoglyphs import confusables

        if confusables.is_dangerous(host) or confusables.is_mixed_script(host):
            return host.translate(_homoglyph_table())
    return ""


@functools.cache
def shortener_hosts() -> frozenset[str]:
    return frozenset(entry.lower() for entry in lexicon_entries("shorteners"))


def _allowed_text(allowed_hosts) -> str:
    return ", ".join(allowed_hosts) if allowed_hosts else "none"


def links_judge(
    *, text: str, allowed_hosts: tuple[str, ...] | list[str], own_links: tuple[str, ...] | list[str] = ()
) -> list[SafetyReason]:
    """One reason per offending link in `text` (the message's own links left out)."""
    for link in own_links:
        if link:
            text = text.replace(link, " ")
    reasons: list[SafetyReason] = []
    seen: set[tuple[str, str]] = set()
    for link in links_extract(text):
        host = link.host
        if link.is_hidden:
            code = "link_hidden"
            message = (f"A disguised link ({link.raw.strip()!r}: invisible characters or a spelled-out dot): "
                       "links must be plain and point to the company's own site.")
        elif host and host_is_allowed(host, allowed_hosts) and host.isascii():
            continue
        elif host in shortener_hosts() or ".".join(_registered(host)) in shortener_hosts():
            code = "link_shortener"
            message = (f"A URL shortener ({host}) hides where the link goes: remove it; the booking link is "
                       "added by us.")
        elif imitated := _imitates(host, allowed_hosts):
            code = "link_lookalike"
            message = (f"A look-alike of our own site: {host!r} imitates {imitated}. Remove it; the booking "
                       "link is added by us.")
        else:
            code = "link_not_allowed"
            message = (f"A link to {host or link.raw!r}, which is not one of the company's link domains "
                       f"({_allowed_text(allowed_hosts)}). Remove it, or add the domain to the allowed link "
                       "domains in the AI configuration if it is the company's own.")
        key = (code, host)
        if key not in seen:
            seen.add(key)
            reasons.append(SafetyReason(code, message))
    return reasons
