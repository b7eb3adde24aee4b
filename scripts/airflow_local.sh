#!/usr/bin/env bash
# Start Airflow locally (`airflow standalone`: SQLite metadata, LocalExecutor) with one
# DAG per definition in $KILN_DEFS. State lives in ./airflow_home (git-ignored).
# Usage: scripts/airflow_local.sh        (Ctrl-C stops every component)
# Env: KILN_DEFS, KILN_WAREHOUSE, ... as for the CLI; AIRFLOW_PORT (default 8080); PYTHON.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
BIN="$(dirname "$PYTHON")"
PORT="${AIRFLOW_PORT:-8080}"

export AIRFLOW_HOME="$ROOT/airflow_home"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"  # the "Data quality" tab and index (docs/quality.md)
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$BIN:$PATH"
export KILN_DEFS="${KILN_DEFS:-$ROOT/feature_defs}"
export KILN_WAREHOUSE="${KILN_WAREHOUSE:-$ROOT/warehouse}"
mkdir -p "$AIRFLOW_HOME"

# A password chosen once and kept, so that it can be printed before Airflow starts.
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
if [ ! -s "$PASSWORDS" ]; then
  "$PYTHON" -c 'import json, secrets, sys; json.dump({"admin": secrets.token_urlsafe(12)}, open(sys.argv[1], "w"))' "$PASSWORDS"
fi
PASSWORD="$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin"])' "$PASSWORDS")"

echo "featurekiln: Airflow at http://localhost:$PORT  (login: admin / $PASSWORD)"
echo "featurekiln: definitions $KILN_DEFS, warehouse $KILN_WAREHOUSE, state $AIRFLOW_HOME"
exec airflow standalone
