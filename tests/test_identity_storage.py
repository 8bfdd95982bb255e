"""Identity-based storage for real: Azurite in OAuth mode over HTTPS, tokens from azure-identity.

Azurite 3.35.0 ``--oauth basic`` (dist/src/blob/authentication/BlobTokenAuthenticator.js) accepts a
bearer token only over HTTPS, and checks its lifetime (nbf, exp), its issuer (prefixes such as
``https://sts.windows.net/``) and its audience (``https://storage.azure.com`` and friends); it does
not check the signature. The token comes from azure-identity's ``ManagedIdentityCredential``, the
class the app uses when ``AzureWebJobsStorage__credential=managedidentity``, through the managed
identity endpoint that App Service and Functions give an app (``IDENTITY_ENDPOINT`` and
``IDENTITY_HEADER``; Microsoft docs "How to use managed identities for App Service and Azure
Functions", REST endpoint reference), served here on loopback. The certificate is made at test time
(trustme) and trusted through ``REQUESTS_CA_BUNDLE``, which azure-core's requests transport honours.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme

from devhost import samples
from devhost.services import Azurite, free_port
from shared.activities import extract_metadata
from shared.blob_access import BlobReader, check_storage, ensure_container, list_blob_refs, upload_bytes
from shared.errors import ConfigurationError
from shared.settings import INPUT_CONTAINER, StorageIdentity, storage_connection_string

STORAGE_AUDIENCE = "https://storage.azure.com"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def jwt(audience: str = STORAGE_AUDIENCE, issuer: str = "https://sts.windows.net/tenant-id/",
        lifetime: int = 3600) -> str:
    """An unsigned token shaped like Entra ID's (Azurite's basic mode reads, never verifies, it)."""
    now = int(time.time())
    claims = {"aud": audience, "iss": issuer, "nbf": now - 60, "iat": now - 60, "exp": now + lifetime,
              "oid": str(uuid.uuid4()), "tid": "tenant-id"}
    return f"{_b64({'typ': 'JWT', 'alg': 'RS256'})}.{_b64(claims)}.c2lnbmF0dXJl"


class IdentityEndpoint(BaseHTTPRequestHandler):
    """The app's managed-identity endpoint: returns ``token()`` for the requested resource."""

    requests: list[dict[str, list[str]]]
    token: Any

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        query = parse_qs(urlsplit(self.path).query)
        type(self).requests.append({**query, "header": [self.headers.get("X-IDENTITY-HEADER", "")]})
        body = json.dumps({"access_token": type(self).token(), "token_type": "Bearer",
                           "expires_on": str(int(time.time()) + 3600),
                           "resource": query.get("resource", [""])[0]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return paths


@pytest.fixture(scope="module")
def oauth_azurite(tls: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    service = Azurite.start(port=free_port(), location=tmp_path_factory.mktemp("azurite-oauth"),
                            cert=tls["cert"], key=tls["key"], oauth=True)
    yield service
    service.stop()


@pytest.fixture
def identity(monkeypatch: pytest.MonkeyPatch, tls: dict[str, Path]) -> Iterator[type[IdentityEndpoint]]:
    handler = type("Endpoint", (IdentityEndpoint,), {"requests": [], "token": staticmethod(jwt)})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{server.server_port}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "secret-less-test-header")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls["ca"]))
    yield handler
    server.shutdown()


@pytest.fixture
def identity_env(oauth_azurite: Azurite, identity: type[IdentityEndpoint],
                 monkeypatch: pytest.MonkeyPatch) -> str:
    """App settings as azd sets them on Flex: no AzureWebJobsStorage value, only __ settings."""
    client_id = str(uuid.uuid4())  # a new identity per test: no client or token cached across tests
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setenv("AzureWebJobsStorage__blobServiceUri", oauth_azurite.blob_service_uri)
    monkeypatch.setenv("AzureWebJobsStorage__credential", "managedidentity")
    monkeypatch.setenv("AzureWebJobsStorage__clientId", client_id)
    return client_id


def test_blob_calls_use_a_managed_identity_token(identity_env, identity, oauth_azurite):
    target = storage_connection_string()
    assert target == StorageIdentity(oauth_azurite.blob_service_uri, "managedidentity", identity_env)
    ensure_container(target, INPUT_CONTAINER)
    data = samples.encode(samples.picture((300, 200)), "JPEG")
    ref = upload_bytes(target, INPUT_CONTAINER, "identity/photo.jpg", data, "image/jpeg")
    reader = BlobReader(target, ref)
    head = reader.head(1024)
    assert head.data == data[:1024] and head.size == len(data) and head.etag == ref.etag
    assert reader.fetch(1024, 10) == data[1024:1034]
    listed = {r.name: r for r in list_blob_refs(target, INPUT_CONTAINER)}
    assert listed["identity/photo.jpg"].etag == ref.etag and listed["identity/photo.jpg"].size == len(data)
    assert check_storage(target) is None
    # Every request carried a token asked for the storage audience with the user-assigned identity.
    assert identity.requests
    for request in identity.requests:
        assert request["resource"] == [STORAGE_AUDIENCE]
        assert request["client_id"] == [identity_env]
        assert request["header"] == ["secret-less-test-header"]


def test_extract_metadata_activity_reads_through_the_identity(identity_env, oauth_azurite):
    target = storage_connection_string()
    ensure_container(target, INPUT_CONTAINER)
    data = samples.encode(samples.picture((64, 48)), "PNG")
    ref = upload_bytes(target, INPUT_CONTAINER, "identity/small.png", data, "image/png")
    outcome = extract_metadata({"blob": ref.to_dict()})
    assert outcome["outcome"] == "ok", outcome
    assert (outcome["metadata"]["width"], outcome["metadata"]["height"]) == (64, 48)


@pytest.mark.parametrize("token", [
    pytest.param(lambda: jwt(audience="https://vault.azure.net"), id="wrong audience"),
    pytest.param(lambda: jwt(issuer="https://evil.example/tenant/"), id="wrong issuer"),
    pytest.param(lambda: jwt(lifetime=-120), id="expired"),
])
def test_azurite_refuses_bad_tokens_and_the_app_says_what_to_grant(identity_env, identity, token):
    """Negative control: Azurite really checks the token, so the passes above prove something."""
    identity.token = staticmethod(token)
    problem = check_storage(storage_connection_string()) or ""
    assert "AuthenticationFailed" in problem, problem
    assert "Grant it 'Storage Blob Data Owner'" in problem or "grant it 'Storage Blob Data Owner'" in problem


def test_tokens_are_not_sent_over_plain_http(identity, monkeypatch):
    """The SDK refuses a bearer token on http://, and the settings refuse such a URI first."""
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setenv("AzureWebJobsStorage__blobServiceUri", "http://127.0.0.1:1/devstoreaccount1")
    with pytest.raises(ConfigurationError, match="https://"):
        storage_connection_string()


def test_connection_string_over_https_still_works(oauth_azurite, identity):
    """Shared key keeps working beside OAuth (local development and the manual path)."""
    assert check_storage(oauth_azurite.connection_string) is None


def test_without_credential_setting_the_default_chain_is_used(oauth_azurite, identity, monkeypatch):
    """No __credential: the host uses the ambient identity; DefaultAzureCredential finds the managed
    identity endpoint here (on a developer's machine it finds `az login` / `azd auth login`)."""
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setenv("AzureWebJobsStorage__blobServiceUri", oauth_azurite.blob_service_uri + "/")
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    target = storage_connection_string()
    assert isinstance(target, StorageIdentity) and not target.managed_identity
    assert check_storage(target) is None
    assert identity.requests and all("client_id" not in r for r in identity.requests)
