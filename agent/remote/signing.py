"""Ed25519 signatures of config documents: canonical bytes, key ids, trusted keys, verify and sign.

A signature covers the whole document except ``sig`` and the correlation ``id`` (so the target,
version, expiry, nonce, instances or patch, check window and force flag are all bound). A key id
(``kid``) is the first 16 hex digits of the SHA-256 of the raw 32-byte public key, like an SSH
fingerprint: rotation means trusting the old and the new key for a while, pushes name the one
they were signed with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any

UNSIGNED_KEYS = ("sig", "id")
ACCEPTED_FORMATS = (
    "base64 of the 32-byte raw key (the line `edge-agent keygen` prints), "
    "or a path to a file holding that line (KEY.pub as keygen writes it) or a PEM public key"
)


class TrustedKeyError(ValueError):
    """A trusted key that cannot be read; the message names the entry and the accepted formats."""


def canonical_bytes(doc: dict[str, Any]) -> bytes:
    """The bytes a signature covers: canonical JSON (sorted keys) of every signed field."""
    signed = {k: v for k, v in doc.items() if k not in UNSIGNED_KEYS}
    return json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def key_id(raw_public: bytes) -> str:
    """The key id: 16 hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(raw_public).hexdigest()[:16]


def _raw_from_text(text: str) -> bytes | None:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def parse_public_key(entry: str) -> tuple[str, Any]:
    """One trusted_keys entry -> (kid, Ed25519PublicKey); raise TrustedKeyError naming the formats."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

    raw = _raw_from_text(entry)
    if raw is None and os.path.exists(entry):
        data = Path(entry).read_bytes()
        if b"-----BEGIN" in data:
            try:
                key = load_pem_public_key(data)
            except ValueError as exc:
                raise TrustedKeyError(f"remote.trusted_keys: {entry}: not a readable PEM public key ({exc})") from exc
            if not isinstance(key, Ed25519PublicKey):
                raise TrustedKeyError(f"remote.trusted_keys: {entry}: not an Ed25519 public key")
            raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        else:
            raw = _raw_from_text(data.decode("utf-8", "replace"))
    if raw is None:
        raise TrustedKeyError(f"remote.trusted_keys: {entry[:60]!r} is not a key; accepted: {ACCEPTED_FORMATS}")
    return key_id(raw), Ed25519PublicKey.from_public_bytes(raw)


def load_public_keys(entries: list[str]) -> dict[str, Any]:
    """Every trusted key by its key id."""
    return dict(parse_public_key(e) for e in entries)


def _stamp(entry: str) -> tuple[int, ...] | None:
    """Identity and times of a key file entry, None for an inline key: a file replaced (renamed over)
    or rewritten in place is read again."""
    try:
        st = os.stat(entry)
    except (OSError, ValueError):
        return None
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size


class KeyRing:
    """Trusted keys by key id, parsed once and parsed again when an entry or a key file changes
    (so a rotated or revoked key file counts at the next use, with or without a reload)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[tuple[str, tuple[int, ...] | None], ...], dict[str, Any]] = {}

    def keys(self, entries: list[str]) -> dict[str, Any]:
        """The keys of ``entries``; TrustedKeyError naming an entry that is not a key."""
        stamp = tuple((e, None if _raw_from_text(e) else _stamp(e)) for e in entries)
        found = self._cache.get(stamp)
        if found is None:
            found = load_public_keys(entries)
            self._cache = {stamp: found}  # one set at a time: bounded
        return found

    def reset(self) -> None:
        """Forget the parsed keys (the next use reads every file again)."""
        self._cache = {}


def verify(doc: dict[str, Any], keys: dict[str, Any]) -> str | None:
    """None when ``doc["sig"]`` is valid by the key ``doc["kid"]`` (or any trusted key when no
    kid is given); else the reason, ready for the answer."""
    from cryptography.exceptions import InvalidSignature

    sig = doc.get("sig")
    if sig is None:
        return "sig: a signature is required (remote.require_signature = true)"
    try:
        raw = sig if isinstance(sig, bytes) else base64.b64decode(str(sig), validate=True)
    except (binascii.Error, ValueError):
        return "sig: not base64"
    kid = doc.get("kid")
    if kid is not None and kid not in keys:
        return f"kid: key {kid!r} is not trusted by this agent (trusted: {', '.join(sorted(keys)) or 'none'})"
    data = canonical_bytes(doc)
    for candidate in [keys[kid]] if kid is not None else list(keys.values()):
        try:
            candidate.verify(raw, data)
            return None
        except InvalidSignature:
            continue
    return "sig: signature does not match any trusted key (wrong key or tampered document)"


def load_private_key(path: str) -> Any:
    """An Ed25519 private key from a PEM file; SystemExit with a one-line reason otherwise."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SystemExit(f"{path}: cannot read the signing key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{path}: not an Ed25519 private key (make one with `edge-agent keygen`)")
    return key


def sign(doc: dict[str, Any], key: Any) -> dict[str, Any]:
    """``doc`` with ``kid`` and ``sig`` added (the kid is signed too)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    out = {**doc, "kid": key_id(raw)}
    out["sig"] = base64.b64encode(key.sign(canonical_bytes(out))).decode()
    return out
