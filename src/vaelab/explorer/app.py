"""The explorer's HTTP surface: one static page and a validated JSON API (OpenAPI at /docs)."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vaelab.explorer.state import ExplorerState

MAX_BODY = 64 * 1024
MAX_SAMPLES = 64
MAX_STEPS = 32
MAX_INDICES = 256


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _finite(values: list[float]) -> list[float]:
    if not all(math.isfinite(v) for v in values):
        raise ValueError("every number must be finite (no NaN or infinity)")
    return values


class DecodeRequest(Strict):
    z: Annotated[list[float], Field(min_length=1, max_length=1024)] | None = None
    position: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    label: Annotated[int, Field(ge=0, le=10_000)] | None = None

    _check_z = field_validator("z", "position")(lambda cls, v: None if v is None else _finite(v))


class EncodeRequest(Strict):
    indices: Annotated[list[Annotated[int, Field(ge=0)]],
                       Field(min_length=1, max_length=MAX_INDICES)]


class InterpolateRequest(Strict):
    a: Annotated[int, Field(ge=0)]
    b: Annotated[int, Field(ge=0)]
    steps: Annotated[int, Field(ge=2, le=MAX_STEPS)] = 10
    method: Literal["linear", "slerp"] = "linear"
    label: Annotated[int, Field(ge=0, le=10_000)] | None = None


class SampleRequest(Strict):
    n: Annotated[int, Field(ge=1, le=MAX_SAMPLES)] = 16
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    label: Annotated[int, Field(ge=0, le=10_000)] | None = None
    sampler: Literal["prior", "gmm"] = "prior"


def _static(name: str) -> str:
    return (resources.files("vaelab.explorer") / "static" / name).read_text(encoding="utf-8")


def create_app(run_dir: str | Path) -> FastAPI:
    """The explorer for one run directory."""
    state = ExplorerState(run_dir)
    app = FastAPI(title="vaelab latent explorer",
                  description="Decode, encode, interpolate and sample the latent space of "
                              f"the run in {state.run.path}.", version="1")
    app.state.explorer = state

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The offending input is left out: it may hold NaN / inf, which JSON cannot carry.
        errors = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}"
                  for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(errors)}, status_code=422)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse({"detail": f"request body over {MAX_BODY} bytes"},
                                status_code=413)
        return await call_next(request)

    def check_label(label: int | None) -> None:
        names = state.run.data.label_names
        k = len(names) if names else (state.model.spec.num_classes or 0)
        if label is not None and label >= max(k, 1):
            raise HTTPException(422, f"label {label} is outside 0..{max(k, 1) - 1}")

    def check_index(i: int) -> None:
        if i >= len(state.mu):
            raise HTTPException(422, f"point index {i} is outside 0..{len(state.mu) - 1}")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return _static("index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        types = {"explorer.js": "text/javascript", "explorer.css": "text/css"}
        if name not in types:
            raise HTTPException(404, "no such file")
        return Response(_static(name), media_type=types[name])

    @app.get("/api/info")
    def info() -> dict:
        """The model, its latent size, how the scatter is projected, labels and data kind."""
        return state.info()

    @app.get("/api/points")
    def points() -> dict:
        """Test-set latent means projected to 2-D, with labels."""
        return state.points_payload()

    @app.post("/api/encode")
    def encode(req: EncodeRequest) -> dict:
        """Codes, scatter positions and inputs of test points by index."""
        for i in req.indices:
            check_index(i)
        codes = state.mu[req.indices]
        return {"z": codes.tolist(), "positions": [state.code_to_position(c) for c in codes],
                "inputs": state.inputs(req.indices)}

    @app.post("/api/decode")
    def decode(req: DecodeRequest) -> dict:
        """Decode a full code ``z`` or a scatter ``position`` (mapped back to a code)."""
        if (req.z is None) == (req.position is None):
            raise HTTPException(422, "give exactly one of z (a code) or position (x, y)")
        if req.z is not None and len(req.z) != state.latent_dim:
            raise HTTPException(422, f"z has {len(req.z)} numbers but the latent has "
                                     f"{state.latent_dim} dimensions")
        check_label(req.label)
        import numpy as np

        code = (np.asarray(req.z, np.float32) if req.z is not None
                else state.position_to_code(req.position))
        if np.abs(code).max() > 1e4:
            raise HTTPException(422, "codes must lie within +-10000")
        out = state.decode(code[None], req.label)[0]
        return {"z": code.tolist(), "position": state.code_to_position(code), "output": out}

    @app.post("/api/interpolate")
    def interp(req: InterpolateRequest) -> dict:
        """Decoded codes on the line (or great circle) between two test points."""
        check_index(req.a)
        check_index(req.b)
        check_label(req.label)
        codes, outs = state.interpolate(req.a, req.b, req.steps, req.method, req.label)
        return {"z": codes.tolist(), "outputs": outs}

    @app.post("/api/sample")
    def sample(req: SampleRequest) -> dict:
        """Decode ``n`` codes drawn from the model's prior, or (``sampler`` gmm) from a
        Gaussian mixture fitted to the training codes (fitted and saved on first use)."""
        check_label(req.label)
        codes, outs = state.sample(req.n, req.seed, req.label, req.sampler)
        return {"z": codes.tolist(), "positions": [state.code_to_position(c) for c in codes],
                "outputs": outs}

    return app
