"""The console's settings: the shared base, the agreements it is part of, and where the services are."""

from shared.settings import CountyMapFile, DevTokenIssuer, ResponsibilityListFile, ServiceSettings


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
    # Base map tiles under the grid outlines: a {z}/{x}/{y} Web-Mercator URL template (天地图 in
    # production, e.g. its vec_w WMTS with the county's key). Empty: grid outlines only, nothing is
    # loaded from anywhere, which suits an offline intranet.
    console_map_tiles_url: str = ""
