"""Access tokens for tests: throwaway signing keys that mint JWTs the way the auth service does.

key = SigningKey.generate()                      # Ed25519, kid "test-1"
verifier_jwks = jwks(key)                        # {"keys": [<public JWK with kid>]}
token = key.mint(user_id, sid=str(session_id))   # extra claims are added ...
token = key.mint(user_id, exp=None)              # ... and a claim set to None is left out
"""

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: PrivateKey

    @classmethod
    def generate(cls, kid: str = "test-1", algorithm: str = "EdDSA") -> "SigningKey":
        """A fresh key: `EdDSA` (Ed25519) or `ES256` (P-256)."""
        if algorithm == "EdDSA":
            private_key: PrivateKey = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == "ES256":
            private_key = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        return cls(kid=kid, algorithm=algorithm, private_key=private_key)

    def jwk(self) -> dict[str, Any]:
        """The public key as the auth service publishes it in its JWKS."""
        public = self.private_key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def private_pem(self) -> bytes:
        """PKCS8 PEM, the format of the auth service's `<kid>.pem` key files."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def mint(
        self,
        sub: uuid.UUID | str | None,
        /,
        *,
        issuer: str | None = "etp-auth",
        audience: str | None = "etp",
        ttl: int = 900,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A signed access token; `claims` override the defaults and None drops a claim or header.

        `sub` is positional-only so that `mint(user_id, sub=None)` can drop it like any other claim.
        """
        now = int(time.time())
        payload = {
            "sub": None if sub is None else str(sub),
            "iss": issuer,
            "aud": audience,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),
            **claims,
        }
        header = {"kid": self.kid, **(headers or {})}
        return jwt.encode(
            {name: value for name, value in payload.items() if value is not None},
            self.private_key,
            algorithm=self.algorithm,
            headers={name: value for name, value in header.items() if value is not None},
        )


def jwks(*keys: SigningKey) -> dict[str, Any]:
    """A JWKS document publishing the public half of `keys`."""
    return {"keys": [key.jwk() for key in keys]}
