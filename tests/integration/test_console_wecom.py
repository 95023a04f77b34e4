"""The mobile work page's WeCom OAuth2 login (网页授权) against the fake WeCom server (a real HTTP
server speaking WeCom's protocol), real dispatch (its directory) and Kafka: a good code opens a
session as the directory's person, who acts as that person; a reused or expired code, a bad state,
an unknown or deactivated WeCom user are refused; the console's tokens are taken for nothing else."""

import re
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from services.console.app import create_app as console_app
from services.dispatch.app import create_app as dispatch_app
from shared.auth import WECOM_LOGIN_AUDIENCE, issue_wecom_token
from shared.topics import REPORTS, ensure_topics
from tests.integration.test_dispatch import report
from tests.support import bearer, eventually, publish, running, serving

HTML = {"accept": "text/html"}


async def start_login(client: httpx.AsyncClient, path: str) -> str:
    """Open a mobile page without a session: the WeCom authorize URL the browser is sent to."""
    page = await client.get(path, headers=HTML)
    assert page.status_code == 303 and page.headers["location"] == f"/m/auth/start?next={quote(path)}"
    start = await client.get(page.headers["location"], headers=HTML)
    assert start.status_code == 302, start.text
    return start.headers["location"]


async def authorize(http: httpx.AsyncClient, url: str) -> tuple[str, str]:
    """What WeCom's authorize page sends the browser back with: (code, state)."""
    answer = await http.get(url)
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    return query["code"][0], query["state"][0]


def fresh_browser(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def callback(client: httpx.AsyncClient, code: str, state: str) -> httpx.Response:
    return await client.get("/m/auth/callback", params={"code": code, "state": state}, headers=HTML)


async def test_wecom_oauth_login_to_the_mobile_page(make_settings, fake_wecom):
    dispatch_settings = make_settings("dispatch")
    await ensure_topics(dispatch_settings)
    submitted = report("manhole", case_no="20261202-000301", description="幸福路井盖松动")
    await publish(dispatch_settings, REPORTS.name, submitted.to_bytes())
    case_id = submitted.payload.case_id
    admin = bearer(dispatch_settings, "admin")
    async with (
        serving(dispatch_app(dispatch_settings)) as dispatch_url,
        httpx.AsyncClient(base_url=dispatch_url) as dispatch,
        httpx.AsyncClient() as http,
    ):
        people = {
            "demo-zhujian": (
                "李强",
                "liqiang",
                {"role": "handler", "jurisdiction_code": "330727", "department_code": "zhujian"},
            ),
            "gone-1": (
                "王已离",
                "wangyili",
                {"role": "handler", "jurisdiction_code": "330727", "department_code": "zhujian"},
            ),
        }
        for person_id, (name, userid, role) in people.items():
            saved = await dispatch.put(
                f"/api/v1/directory/people/{person_id}",
                json={"name": name, "wecom_user_id": userid, "roles": [role]},
                headers=admin,
            )
            assert saved.status_code == 200, saved.text
        assert (await dispatch.delete("/api/v1/directory/people/gone-1", headers=admin)).status_code == 200

        async def dispatched():
            answer = await dispatch.get(f"/api/v1/cases/{case_id}", headers=admin)
            return answer.json() if answer.status_code == 200 and answer.json()["status"] == "dispatched" else None

        case_no = (await eventually(dispatched))["case_no"]
        settings = make_settings(
            "console",
            console_dispatch_url=dispatch_url,
            console_wecom_oauth_url=fake_wecom,
            console_wecom_api_url=fake_wecom,
        )
        app = console_app(settings)
        async with running(app) as client:
            # WeCom's authorize URL as documented: appid, redirect_uri, code, snsapi_base, state, agentid.
            await http.post(f"{fake_wecom}/_fake/oauth/user", json={"userid": "liqiang"})
            url = await start_login(client, f"/m/cases/{case_no}")
            assert url.startswith(f"{fake_wecom}/connect/oauth2/authorize?appid=ww-gridlink-local&redirect_uri=")
            assert "&response_type=code&scope=snsapi_base&state=" in url and url.endswith(
                "&agentid=1000002#wechat_redirect"
            )
            code, state = await authorize(http, url)
            assert re.fullmatch(r"[A-Za-z0-9]{1,128}", state)

            # A bad state is refused (and forgets the login), whatever the code.
            forged = await callback(client, code, state[:-1] + ("A" if state[-1] != "A" else "B"))
            assert forged.status_code == 400 and "不是从本页面发起的" in forged.text
            assert "gl_session" not in client.cookies
            code, state = await authorize(http, await start_login(client, f"/m/cases/{case_no}"))
            async with fresh_browser(app) as stranger:  # another browser, without this login's cookie
                assert (await callback(stranger, code, state)).status_code == 400

            # A good code: a session as the directory's person, who returns to the case.
            code, state = await authorize(http, await start_login(client, f"/m/cases/{case_no}"))
            opened = await callback(client, code, state)
            assert opened.status_code == 200 and "李强，登录成功" in opened.text, opened.text
            assert f'url=/m/cases/{case_no}"' in opened.text and "gl_session" in client.cookies
            page = await client.get(f"/m/cases/{case_no}", headers=HTML)
            assert page.status_code == 200 and "李强（住房和城乡建设局处置人员）" in page.text
            assert 'id="action-acknowledge"' in page.text and 'id="action-resolve"' not in page.text
            assert 'capture="environment"' in page.text
            home = await client.get("/m/", headers=HTML)
            assert case_no in home.text and "我的待办（1）" in home.text

            # The same code again (with a fresh state, in another browser): WeCom says 40029.
            async with fresh_browser(app) as again:
                _, fresh_state = await authorize(http, await start_login(again, "/m/"))
                reused = await callback(again, code, fresh_state)
                assert reused.status_code == 401 and "已失效或已使用" in reused.text
                assert "gl_session" not in again.cookies

            # An expired code (over WeCom's 5 minutes).
            async with fresh_browser(app) as late:
                code, state = await authorize(http, await start_login(late, "/m/"))
                assert (await http.post(f"{fake_wecom}/_fake/oauth/codes/expire")).status_code == 204
                expired = await callback(late, code, state)
                assert expired.status_code == 401 and "已失效" in expired.text

            # Acting as the person: dispatch records the directory's person id, not the WeCom user.
            form = {"csrf_token": client.cookies["gl_csrf"], "idempotency_key": "m-1"}
            taken = await client.post(f"/m/cases/{case_no}/actions/acknowledge", data=form, headers=HTML)
            assert taken.status_code == 303 and taken.headers["location"] == f"/m/cases/{case_no}?done=acknowledge"
            case = (await dispatch.get(f"/api/v1/cases/{case_id}", headers=admin)).json()
            assert case["status"] == "acknowledged"
            assert case["timeline"][-1]["actor"] == "handler:demo-zhujian"
            assert "已接单" in (await client.get(taken.headers["location"], headers=HTML)).text

            # The console's tokens: the session token names a wecom: subject; the login assertion
            # is for dispatch's login route only; a token signed with another key is forged.
            session = {"authorization": f"Bearer {client.cookies['gl_session']}"}
            assert (await dispatch.get(f"/api/v1/cases/{case_id}", headers=session)).status_code == 200
            key = settings.console_wecom_signing_key
            assertion = issue_wecom_token(private_key=key, userid="liqiang", audience=WECOM_LOGIN_AUDIENCE, ttl_s=60)
            refused = await dispatch.get("/api/v1/cases", headers={"authorization": f"Bearer {assertion}"})
            assert refused.status_code == 401
            # Unknown and deactivated WeCom users: 403, saying to ask the admin for the 通讯录.
            for userid in ("nobody", "wangyili"):
                await http.post(f"{fake_wecom}/_fake/oauth/user", json={"userid": userid})
                async with fresh_browser(app) as other:
                    code, state = await authorize(http, await start_login(other, "/m/"))
                    denied = await callback(other, code, state)
                    assert denied.status_code == 403, denied.text
                    assert f"您的企业微信账号（{userid}）不在通讯录中或已停用" in denied.text
                    assert "请联系管理员在通讯录中添加" in denied.text and "gl_session" not in other.cookies
            # Not a member of the organisation (WeCom gives only an openid).
            await http.post(f"{fake_wecom}/_fake/oauth/user", json={"openid": "oAbc123"})
            async with fresh_browser(app) as outsider_browser:
                code, state = await authorize(http, await start_login(outsider_browser, "/m/"))
                outsider = await callback(outsider_browser, code, state)
                assert outsider.status_code == 403 and "仅供本单位企业微信成员" in outsider.text

            # Deactivated after logging in: dispatch checks its directory on every request.
            assert (await dispatch.delete("/api/v1/directory/people/demo-zhujian", headers=admin)).status_code == 200
            after = await client.get(f"/m/cases/{case_no}", headers=HTML)
            assert after.status_code == 403 and "不在通讯录中或已停用" in after.text
