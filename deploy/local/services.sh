#!/usr/bin/env bash
# Start/stop the five GridLink services and the staff console (one uvicorn process each) and the local fake WeCom.
# Usage: services.sh start|stop|status
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
root="$(cd "$here/../.." && pwd)"
cd "$root"
PY="${GRIDLINK_PYTHON:-$root/.cache/venv/bin/python}"
pids="$GRIDLINK_RUN_DIR/pids"; logs="$GRIDLINK_RUN_DIR/logs"
mkdir -p "$pids" "$logs"

declare -A PORT=(
  [fake-wecom]=$GRIDLINK_FAKE_WECOM_PORT [intake]=$GRIDLINK_INTAKE_PORT [dispatch]=$GRIDLINK_DISPATCH_PORT
  [sla]=$GRIDLINK_SLA_PORT [notify]=$GRIDLINK_NOTIFY_PORT [media]=$GRIDLINK_MEDIA_PORT
  [console]=$GRIDLINK_CONSOLE_PORT
)
ORDER=(fake-wecom intake dispatch sla notify media console)

alive() { [ -f "$pids/$1.pid" ] && kill -0 "$(cat "$pids/$1.pid")" 2>/dev/null; }

start_one() {
  local name=$1 port=${PORT[$1]}
  if alive "$name"; then echo "[services] $name already running (pid $(cat "$pids/$name.pid"))"; return; fi
  echo "[services] starting $name on 127.0.0.1:$port"
  if [ "$name" = fake-wecom ]; then
    setsid "$PY" deploy/local/fake_wecom.py --host 127.0.0.1 --port "$port" >"$logs/$name.log" 2>&1 < /dev/null &
  else
    # The console's live queues are open streams: give them 3 s to close on stop.
    setsid "$PY" -m uvicorn "services.$name.app:create_app" --factory --host 127.0.0.1 --port "$port" \
      --timeout-graceful-shutdown 3 >"$logs/$name.log" 2>&1 < /dev/null &
  fi
  echo $! >"$pids/$name.pid"
}

wait_ready() {
  local name=$1 path=/readyz deadline=$((SECONDS + 90))
  [ "$name" = fake-wecom ] && path=/healthz
  until curl -sf "http://127.0.0.1:${PORT[$name]}$path" >/dev/null; do
    if ! alive "$name" || [ $SECONDS -ge $deadline ]; then
      echo "[services] $name did not become ready; last log lines:" >&2; tail -n 30 "$logs/$name.log" >&2; exit 1
    fi
    sleep 0.3
  done
  echo "[services] $name ready: http://127.0.0.1:${PORT[$name]}"
}

stop_one() {
  local name=$1
  if ! alive "$name"; then rm -f "$pids/$name.pid"; return; fi
  local pid; pid=$(cat "$pids/$name.pid")
  echo "[services] stopping $name (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$pids/$name.pid"
}

case "${1:-}" in
  start) for s in "${ORDER[@]}"; do start_one "$s"; done; for s in "${ORDER[@]}"; do wait_ready "$s"; done ;;
  stop) for s in "${ORDER[@]}"; do stop_one "$s"; done ;;
  status) for s in "${ORDER[@]}"; do
            if alive "$s"; then echo "$s: running (pid $(cat "$pids/$s.pid"), http://127.0.0.1:${PORT[$s]})"; else echo "$s: stopped"; fi
          done ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
