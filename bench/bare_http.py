"""The HTTP limit of ``bench.http``: the same framework (FastAPI on uvicorn with uvloop, one
process, as ``shared.runtime.service.run`` serves a service) answering an Open311 POST without
doing anything: the form is parsed (python-multipart, as intake's route does) and a fixed
service request id returned. ``python -m bench.bare_http PORT``."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/open311/v2/requests.json")
async def post_request(request: Request) -> list[dict[str, Any]]:
    form = await request.form()
    if "service_code" not in form:
        return []
    return [{"service_request_id": uuid.uuid4().hex, "service_notice": "", "account_id": None}]


@app.get("/readyz")
async def readyz() -> dict[str, bool]:
    """What ``bench.procs.ServiceProcess.ready`` waits for, as for a service."""
    return {"ready": True}


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        lifespan="on",
        log_config=None,
        access_log=False,
        loop="uvloop",
    )
