#!/usr/bin/env bash
# Development helper: regenerate 0001 from the models (only while nothing has shipped on that schema).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f bot/migrations/versions/0001_*.py /tmp/autogen.db
PYTHONPATH=. "${PYTHON:-.venv/bin/python}" - <<'PY'
import asyncio
from alembic import command
from bot.migrations import alembic_config
from bot.db.engine import create_engine

async def main():
    engine = create_engine("sqlite+aiosqlite:////tmp/autogen.db")
    def _run(conn):
        cfg = alembic_config(); cfg.attributes["connection"] = conn
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()
asyncio.run(main())
PY
f=$(ls bot/migrations/versions/0001_*.py)
sed -i 's/bot\.db\.tables\.UTCDateTime([^)]*)/sa.DateTime(timezone=True)/g; s/Create Date: .*/Create Date: 2026-11-27/' "$f"
echo "regenerated $f"
