"""The live server (pytest_commons.live): FastAPI, Starlette and Flask apps under uvicorn, once
per scope, readiness, clean stop, the log in a failing test's report, the FastAPI dependency
override helper reaching the test's own Redis database; inner pytest runs with -W error."""

from __future__ import annotations

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

pytestmark = pytest.mark.usefixtures("clean_env")
SYNC_ARGS = ("-W", "error", "-p", "no:cacheprovider", "-p", "no:asyncio")

APPS = """
import logging

def fastapi_app():
    from fastapi import FastAPI
    app = FastAPI()
    @app.get("/hello/{name}")
    async def hello(name: str):
        logging.getLogger("myapp").warning("saying hello to %s", name)
        return {"hello": name}
    return app

def starlette_app():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    async def home(request):
        return PlainTextResponse("starlette")
    return Starlette(routes=[Route("/", home)])

def flask_app():
    from flask import Flask
    app = Flask("flaskapp")
    @app.get("/")
    def home():
        return "flask"
    return app
"""


def test_asgi_and_wsgi_apps_once_per_scope(pytester: pytest.Pytester) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("flask")
    pytester.makepyfile(apps=APPS)
    pytester.makepyfile(
        test_apps="""
        import httpx
        import pytest
        from pytest_commons.live import live_server
        from apps import fastapi_app, starlette_app, flask_app

        api = live_server(fastapi_app(), name="api", scope="module")
        star = live_server("apps:starlette_app", factory=True, name="star", ready_path="/")
        flask = live_server(flask_app(), name="flask", scope="function")
        SEEN = {}

        @pytest.mark.parametrize("n", range(2))
        def test_fastapi(api, n):
            SEEN.setdefault("api", set()).add(id(api))
            assert api.url.startswith("http://127.0.0.1:")
            assert api.client().get(f"/hello/{n}").json() == {"hello": str(n)}
            assert len(SEEN["api"]) == 1   # the same server for the whole module

        def test_starlette(star):
            assert httpx.get(star.url + "/").text == "starlette"

        @pytest.mark.parametrize("n", range(2))
        def test_flask(flask, n):
            SEEN.setdefault("flask", []).append(flask.port)
            assert flask.client().get("/").text == "flask"

        async def test_async_client(api):
            async with api.async_client() as client:
                assert (await client.get("/hello/x")).json() == {"hello": "x"}

        def test_zz_stopped(request):
            assert len(SEEN["flask"]) == 2
            for port in SEEN["flask"][:1]:
                with pytest.raises(httpx.ConnectError):
                    httpx.get(f"http://127.0.0.1:{port}/")
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "asyncio", "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=function", "-W", "error", "-p", "no:cacheprovider"
    )  # fmt: skip
    result.assert_outcomes(passed=7)


def test_failing_test_report_has_the_server_log(pytester: pytest.Pytester) -> None:
    pytest.importorskip("fastapi")
    pytester.makepyfile(apps=APPS)
    pytester.makepyfile(
        test_fail="""
        from pytest_commons.live import live_server
        from apps import fastapi_app

        api = live_server(fastapi_app(), name="api")

        def test_first(api):
            api.client().get("/hello/first")

        def test_fails(api):
            api.client().get("/hello/second")
            assert False, "boom"
        """
    )
    result = pytester.runpytest_subprocess(*SYNC_ARGS)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*live server log (api, http://127.0.0.1:*)*",
            "*WARNING myapp: saying hello to second",
            '*"GET /hello/second HTTP/1.1" 200*',
        ]
    )
    assert "saying hello to first" not in result.stdout.str()  # only the failing test's part


def test_app_that_fails_to_start_says_why(pytester: pytest.Pytester) -> None:
    pytest.importorskip("starlette")
    pytester.makepyfile(
        test_broken="""
        import contextlib
        import pytest
        from starlette.applications import Starlette
        from pytest_commons.live import LiveServer, LiveServerError

        @contextlib.asynccontextmanager
        async def lifespan(app):
            raise RuntimeError("no database configured")
            yield

        def test_broken():
            with pytest.raises(LiveServerError) as info:
                LiveServer(Starlette(lifespan=lifespan)).start()
            message = str(info.value)
            assert "exited during start" in message
            assert "no database configured" in message
            assert "remedy:" in message
        """
    )
    result = pytester.runpytest_subprocess(*SYNC_ARGS)
    result.assert_outcomes(passed=1)


def test_fastapi_override_reaches_the_tests_redis(pytester: pytest.Pytester) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("redis")
    pytester.makepyfile(
        test_override="""
        import pytest
        import redis.asyncio as aioredis
        from fastapi import Depends, FastAPI
        from pytest_commons.live import live_server
        from pytest_commons.live.fastapi import override

        def redis_url() -> str:
            raise RuntimeError("not configured")

        app = FastAPI()

        @app.post("/count")
        async def count(url: str = Depends(redis_url)):
            async with aioredis.from_url(url) as client:
                return {"n": await client.incr("hits")}

        app_server = live_server(app)

        @pytest.fixture
        def wired(app_server, redis_url):
            with override(app, {redis_url_dep: lambda: redis_url}):
                yield app_server

        redis_url_dep = redis_url

        @pytest.mark.parametrize("n", range(2))
        def test_count(wired, redis, n):
            assert wired.client().post("/count").json() == {"n": 1}  # emptied per test
            assert redis.get("hits") == b"1"

        def test_restored(app_server):
            assert app_server.client().post("/count").status_code == 500
        """
    )
    result = pytester.runpytest_subprocess(*SYNC_ARGS)
    result.assert_outcomes(passed=3)
