"""Asymmetric Supabase tokens (ES256/RS256) verified through the project's JWKS URL."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from api.main import create_app
from tests.support import make_client, make_user


@pytest.fixture(scope="module")
def keys():
    return {
        "es": ("es-kid", ec.generate_private_key(ec.SECP256R1()), "ES256"),
        "rs": ("rs-kid", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
    }


@pytest.fixture(scope="module")
def jwks_url(keys):
    jwks = {"keys": []}
    for kid, key, alg in keys.values():
        algo = jwt.algorithms.ECAlgorithm if alg == "ES256" else jwt.algorithms.RSAAlgorithm
        jwk = json.loads(algo.to_jwk(key.public_key()))
        jwk.update({"kid": kid, "alg": alg, "use": "sig"})
        jwks["keys"].append(jwk)
    body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/auth/v1/.well-known/jwks.json"
    server.shutdown()


@pytest.fixture(scope="module")
def jwks_api(settings, jwks_url):
    app = create_app(settings.model_copy(update={"jwks_url": jwks_url}))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _token(user_id, kid, key, alg, **extra):
    claims = {
        "sub": str(user_id),
        "role": "authenticated",
        "aud": "authenticated",
        "exp": int(time.time()) + 300,
        **extra,
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


@pytest.mark.parametrize("which", ["es", "rs"])
def test_asymmetric_token_from_jwks_is_accepted(jwks_api, db, keys, which):
    client = make_client(db)
    user = make_user(db, client)
    kid, key, alg = keys[which]
    resp = jwks_api.get(
        "/api/me", headers={"Authorization": f"Bearer {_token(user, kid, key, alg)}"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["client_id"] == str(client)


def test_token_signed_by_unknown_key_is_refused(jwks_api, db):
    user = make_user(db, make_client(db))
    rogue = ec.generate_private_key(ec.SECP256R1())
    resp = jwks_api.get(
        "/api/me", headers={"Authorization": f"Bearer {_token(user, 'es-kid', rogue, 'ES256')}"}
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "UNAUTHORIZED"


def test_wrong_audience_is_refused(jwks_api, db, keys):
    user = make_user(db, make_client(db))
    kid, key, alg = keys["es"]
    token = _token(user, kid, key, alg, aud="someone-else")
    assert jwks_api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_asymmetric_token_without_jwks_configured_is_refused(api, db, keys):
    user = make_user(db, make_client(db))
    kid, key, alg = keys["es"]
    resp = api.get("/api/me", headers={"Authorization": f"Bearer {_token(user, kid, key, alg)}"})
    assert resp.status_code == 401


def test_service_role_token_without_sub_is_not_a_member(api, settings):
    token = jwt.encode(
        {"role": "service_role", "aud": "authenticated", "exp": int(time.time()) + 60},
        settings.jwt_secret,
        algorithm="HS256",
    )
    resp = api.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 403


def test_unknown_user_is_403(api, token_for):
    resp = api.get("/api/me", headers=token_for(uuid.uuid4()))
    assert resp.status_code == 403
