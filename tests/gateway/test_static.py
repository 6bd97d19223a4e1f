"""The SPA's files from `static_dir`, index.html for any other page path, never a file outside."""

import pytest

from tests.gateway.conftest import EXPERIMENT
from tests.gateway.gateway_api import access_token, raw_url
from tests.problems import assert_problem

INDEX = "<!doctype html><html><body>ETP</body></html>"
APP_JS = "console.log('etp');"
SECRET = "not for the browser"


@pytest.fixture
def static_dir(tmp_path):
    folder = tmp_path / "spa"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(INDEX)
    (folder / "app.js").write_text(APP_JS)
    (folder / "assets" / "logo.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text(SECRET)
    return folder


@pytest.fixture
async def client(start_gateway, static_dir):
    return await start_gateway(static_dir=static_dir)


async def test_spa_file_is_served(client):
    response = await client.get("/app.js")

    assert response.status == 200
    assert response.content_type in ("application/javascript", "text/javascript")
    assert await response.text() == APP_JS
    assert "Content-Security-Policy" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_spa_file_in_subfolder_is_served(client):
    response = await client.get("/assets/logo.svg")

    assert response.status == 200
    assert await response.text() == "<svg/>"


async def test_spa_hashed_asset_is_cached_as_immutable(client):
    response = await client.get("/assets/logo.svg")

    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize("path", ["/app.js", "/", "/index.html"])
async def test_spa_file_outside_assets_is_revalidated(client, path):
    response = await client.get(path)

    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("path", ["/", "/index.html"])
async def test_spa_index_is_served_with_csp(client, path):
    response = await client.get(path)

    assert response.status == 200
    assert response.content_type == "text/html"
    assert await response.text() == INDEX
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp


@pytest.mark.parametrize("path", ["/experiments", "/runs/42/telemetry", "/assets/missing.js"])
async def test_spa_unknown_path_falls_back_to_index_with_csp(client, path):
    response = await client.get(path)

    assert response.status == 200
    assert await response.text() == INDEX
    assert "Content-Security-Policy" in response.headers
    assert response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2F..%2F..%2Fsecret.txt",
        "/assets%2F..%2F..%2Fsecret.txt",
        "//etc/passwd",
        "/%2Fetc%2Fpasswd",
    ],
)
async def test_spa_path_traversal_never_leaves_folder(client, path):
    response = await client.session.get(raw_url(client, path))

    body = await response.text()
    assert SECRET not in body
    assert "root:" not in body
    assert response.status in (200, 400, 404)
    if response.status == 200:
        assert body == INDEX


async def test_spa_symlink_out_of_folder_is_not_followed(client, static_dir):
    (static_dir / "link.txt").symlink_to(static_dir.parent / "secret.txt")

    response = await client.get("/link.txt")

    assert SECRET not in await response.text()


async def test_spa_folder_does_not_shadow_api(client, mockserver):
    @mockserver.json_handler(f"{EXPERIMENT}/api/v1/experiments")
    def experiments(request):
        return {"items": []}

    response = await client.get(
        "/api/v1/experiments", headers={"Authorization": f"Bearer {access_token()}"}
    )

    assert await response.json() == {"items": []}
    assert experiments.times_called == 1


async def test_spa_page_other_method_is_405(client):
    response = await client.post("/experiments", json={})

    await assert_problem(response, 405, "method_not_allowed")


async def test_spa_folder_without_index_unknown_path_is_404(start_gateway, tmp_path):
    (tmp_path / "app.js").write_text(APP_JS)
    client = await start_gateway(static_dir=tmp_path)

    assert (await client.get("/app.js")).status == 200
    await assert_problem(await client.get("/experiments"), 404, "not_found")


@pytest.mark.parametrize("path", ["/", "/index.html", "/experiments"])
async def test_no_static_dir_unknown_path_is_404_problem(gateway, path):
    response = await gateway.get(path)

    await assert_problem(response, 404, "not_found")
    assert "Content-Security-Policy" not in response.headers


@pytest.mark.parametrize(
    "path",
    [
        "/%00",
        "/app.js%00.html",
        "/assets/%00/logo.svg",
        "/" + "a" * 5000,
        "/assets/" + "b/" * 2500,
        "/assets/" + "c" * 300 + "/logo.svg",
    ],
)
async def test_spa_path_that_no_file_can_have_is_400_problem(client, path):
    response = await client.session.get(raw_url(client, path))

    body = await assert_problem(response, 400, "invalid_path")
    assert "Traceback" not in str(body)


@pytest.mark.parametrize(
    "path",
    [
        "/..%2f..%2fsecret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/.%2e/secret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/%ff/../secret.txt",
        "/" + "%2e%2e%2f" * 300 + "secret.txt",
    ],
)
async def test_spa_encoded_traversal_is_404_or_index_never_the_file(client, path):
    response = await client.session.get(raw_url(client, path))

    body = await response.text()
    assert SECRET not in body
    assert response.status in (200, 400, 404)
    if response.status == 200:
        assert body == INDEX
