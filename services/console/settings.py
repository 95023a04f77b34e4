"""The console's settings: the shared base, the agreements it is part of, and where the services are."""

from pydantic import Field

from shared.settings import CountyMapFile, DevTokenIssuer, ResponsibilityListFile, ServiceSettings, secret

# The development key of the console's WeCom sessions (shared.settings.DEV_WECOM_PUBLIC_KEY is its
# public half): published here, so production refuses it.
DEV_WECOM_SIGNING_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrg91taiCw7VhdO2C
Kcpqu3jYR1J3okje8JmBGRx1eC+hRANCAAT1N+f5Dv+dqRTVax7XBvbenhn+42iC
vXLjikVew1Vgy1hjvA2docFbGOnvGAPIYllqp3Tr2BiLgZgDeA3AokVq
-----END PRIVATE KEY-----
"""


class ConsoleSettings(ServiceSettings, ResponsibilityListFile, CountyMapFile, DevTokenIssuer):
    # The services' public APIs, as the console's server reaches them (never the browser).
    console_intake_url: str = "http://127.0.0.1:8001"
    console_dispatch_url: str = "http://127.0.0.1:8002"
    console_media_url: str = "http://127.0.0.1:8005"
    console_sla_url: str = "http://127.0.0.1:8003"
    console_notify_url: str = "http://127.0.0.1:8004"
    console_http_timeout_s: float = 15.0
    # Send the session cookie over HTTPS only; on in production behind TLS, off for http://127.0.0.1.
    console_cookie_secure: bool = False
    console_heartbeat_s: float = 15.0  # the live queue's keep-alive, and how often its session is re-checked
    # Staff log in at the OpenID Connect provider (GRIDLINK_AUTH_OIDC_ISSUER) as this client, by the
    # authorization-code flow with PKCE; the provider knows the client by this id and secret.
    console_oidc_client_id: str = "gridlink-console"
    console_oidc_client_secret: str = secret("local-development-only")
    # The console's address as browsers reach it (the provider returns to {it}/auth/callback and,
    # after logout, to {it}/login); empty: the address the browser asked for.
    console_public_url: str = ""
    # Base map tiles under the grid outlines: a {z}/{x}/{y} Web-Mercator URL template (天地图 in
    # production, e.g. its vec_w WMTS with the county's key). Empty: grid outlines only, nothing is
    # loaded from anywhere, which suits an offline intranet.
    console_map_tiles_url: str = ""

    # WeCom OAuth2 (网页授权) for the mobile work page (/m/…): the self-built application the page
    # belongs to (usually the one notify sends through; its trusted domain must be this console's
    # host), where WeCom's authorize page and API are (settings, so the local fake can serve them).
    console_wecom_corp_id: str = "ww-gridlink-local"
    console_wecom_agent_id: int = 1000002
    console_wecom_secret: str = secret("local-development-only")
    console_wecom_oauth_url: str = "https://open.weixin.qq.com"
    console_wecom_api_url: str = "https://qyapi.weixin.qq.com"
    # The ES256 key (PEM) the console signs WeCom sessions with; the services are given its public
    # half (GRIDLINK_AUTH_WECOM_PUBLIC_KEY). Empty: no WeCom login. The default is published here.
    console_wecom_signing_key: str = secret(DEV_WECOM_SIGNING_KEY, min_bytes=0)
    # How long a WeCom session lasts; WeCom's snsapi_base login is silent, so a short one costs nothing.
    console_wecom_session_s: int = Field(default=2 * 3600, ge=60, le=12 * 3600)
