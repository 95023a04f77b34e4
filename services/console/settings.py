"""The console's settings: the shared base, the agreements it is part of, and where the services are."""

from shared.settings import CountyMapFile, DevTokenIssuer, ResponsibilityListFile, ServiceSettings, secret


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
