import aiohttp

from gateway_service.app import create_app


async def test_login_then_api_call_with_csrf(aiohttp_client, make_settings, mockserver):
    @mockserver.json_handler("/auth/api/v1/auth/login")
    def _login(request):
        return {
            "access_token": "a.eyJleHAiOjQxMDI0NDQ4MDB9.s",
            "refresh_token": "r",
            "token_type": "Bearer",
            "expires_in": 900,
        }

    @mockserver.json_handler("/auth/api/v1/auth/me")
    def _me(request):
        return {"id": "u", "username": "ada"}

    @mockserver.json_handler("/experiment/api/v1/experiments")
    def _experiments(request):
        assert request.headers["Authorization"] == "Bearer a.eyJleHAiOjQxMDI0NDQ4MDB9.s"
        return mockserver.make_response(json={"id": "e"}, status=201)

    client = await aiohttp_client(
        create_app(make_settings("gateway", cookie_secure=False)),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    )
    login = await client.post("/auth/login", json={"username": "ada", "password": "pw"})
    assert login.status == 200, await login.text()
    csrf = login.cookies["csrf_token"].value

    refused = await client.post("/api/v1/experiments", json={}, headers={"Origin": "http://evil"})
    assert refused.status == 403
    own = f"http://{client.host}:{client.port}"
    created = await client.post(
        "/api/v1/experiments", json={}, headers={"Origin": own, "X-CSRF-Token": csrf}
    )
    assert created.status == 201, await created.text()
    assert created.headers["Server"] == "etp-gateway"
