"""The auth service's signing keys: `<kid>.pem` files (PKCS8, Ed25519 or P-256)."""

import argparse
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: PrivateKey

    @property
    def algorithm(self) -> str:
        return "EdDSA" if isinstance(self.private_key, ed25519.Ed25519PrivateKey) else "ES256"

    def public_jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


class SigningKeys:
    """All keys of the folder verify; the active one signs."""

    def __init__(self, keys: list[SigningKey], active_kid: str) -> None:
        self._keys = {key.kid: key for key in keys}
        self.active = self._keys[active_kid]

    @classmethod
    def load(cls, directory: Path, active_kid: str | None = None) -> "SigningKeys":
        keys = []
        for path in sorted(directory.glob("*.pem")):
            private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(private_key, ec.EllipticCurvePrivateKey) and not isinstance(
                private_key.curve, ec.SECP256R1
            ):
                raise ValueError(f"{path.name}: only P-256 EC keys are supported")
            if not isinstance(private_key, PrivateKey):
                raise ValueError(f"{path.name}: only Ed25519 and P-256 keys are supported")
            keys.append(SigningKey(kid=path.stem, private_key=private_key))
        if not keys:
            raise ValueError(f"no signing keys (<kid>.pem) in {directory}")
        kid = active_kid or keys[-1].kid
        if kid not in {key.kid for key in keys}:
            raise ValueError(f"active key {kid!r} is not in {directory}")
        return cls(keys, kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self._keys.values()]}

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.active
        return jwt.encode(
            claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid}
        )


def access_token_claims(
    *, user_id: uuid.UUID, session_id: uuid.UUID, issuer: str, audience: str, ttl: int
) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": str(user_id),
        "sid": str(session_id),
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
    }


def generate_key(directory: Path) -> Path:
    """Writes a new Ed25519 key named after today's date; it becomes the active key."""
    directory.mkdir(parents=True, exist_ok=True)
    kid = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = directory / f"{kid}.pem"
    path.touch(mode=0o600)
    path.write_bytes(pem)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m auth_service.signing",
        description="Create a new signing key; with --if-empty only when the folder has none.",
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--if-empty", action="store_true")
    args = parser.parse_args()
    if args.if_empty and any(args.directory.glob("*.pem")):
        return
    print(generate_key(args.directory))


if __name__ == "__main__":
    main()
