"""`GET /openapi.json`: the public API, with schemas generated from the same
pydantic models that validate requests and shape responses."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge import __version__
from edge.problems import CODES
from edge.routes.devices import RegisterRequest, RegisterResponse
from edge.sales import Closure, ClosureView, InvoiceView, Return, Sale, SyncAccepted, SyncBatchRequest, SyncStatus

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details with a stable `code`",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "enum": sorted(CODES)},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": {"loc": {"type": "array", "items": {"type": "string"}},
                                                       "msg": {"type": "string"}}},
        },
        "sale_state": {"type": "string", "enum": ["not_posted", "unknown"],
                       "description": "POS calls: whether ERPNext may hold the document after all"},
        "erpnext": {"type": "object", "description": "ERPNext's exc_type and decoded _server_messages"},
    },
}


def _problems(*statuses: int) -> dict[str, Any]:
    out = {}
    for status in statuses:
        codes = sorted(c for c, (s, _) in CODES.items() if s == status)
        out[str(status)] = {
            "description": ", ".join(codes),
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _pos(model: str, view: str, summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"deviceToken": []}],
            "parameters": [
                {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 255},
                 "description": "scoped per tenant and device; defaults to client_txn_id"},
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}}},
            "responses": {"201": _json(view, "created (or replayed: header Idempotent-Replayed: true)"),
                          **_problems(401, 403, 404, 409, 413, 415, 422, 429, 502, 503, 504)},
        }
    }


@cache
def spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once)."""
    models = [(m, "validation") for m in (RegisterRequest, Sale, Return, Closure, SyncBatchRequest)]
    models += [(m, "serialization") for m in (RegisterResponse, InvoiceView, ClosureView, SyncAccepted, SyncStatus)]
    _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas = {**defs.get("$defs", {}), "Problem": PROBLEM_SCHEMA}
    proxy_op = {
        "summary": "forwarded to the tenant's ERPNext (/api/resource/... or /api/method/...)",
        "security": [{"deviceToken": []}],
        "parameters": [{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"default": {"description": "ERPNext's own answer, passed through"},
                      **_problems(400, 401, 403, 404, 413, 429, 502, 503, 504)},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "pos-edge", "version": __version__,
                 "description": "Multi-tenant POS gateway in front of ERPNext. The tenant is chosen by the Host header."},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"deviceToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "paths": {
            "/gateway/device/register": {
                "post": {
                    "summary": "enrol a till and get its device token",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RegisterRequest"}}}},
                    "responses": {"201": _json("RegisterResponse", "registered"), **_problems(401, 403, 404, 413, 415, 422, 429, 503)},
                }
            },
            "/v1/sale": _pos("Sale", "InvoiceView", "a sale becomes a submitted Sales/POS Invoice"),
            "/v1/return": _pos("Return", "InvoiceView", "a return becomes a submitted return invoice"),
            "/v1/closure": _pos("Closure", "ClosureView", "end of a till's period: per-method totals, POS Closing Entry"),
            "/sync/batch": {
                "post": {
                    "summary": "queue an offline till's transactions (1-500); 202 once they are durably stored",
                    "security": [{"deviceToken": []}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/SyncBatchRequest"}}}},
                    "responses": {"202": _json("SyncAccepted", "queued (Location: /sync/status/{batch_uuid})"),
                                  **_problems(401, 403, 404, 413, 415, 422, 429, 503)},
                }
            },
            "/sync/status/{batch_uuid}": {
                "get": {
                    "summary": "progress of a batch uploaded by this device",
                    "security": [{"deviceToken": []}],
                    "parameters": [{"name": "batch_uuid", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": _json("SyncStatus", "the batch and its jobs"), **_problems(401, 403, 404, 429)},
                }
            },
            "/erpnext/{path}": {m: proxy_op for m in ("get", "post", "put", "delete")},
            "/healthz": {"get": {"summary": "the process answers", "responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"summary": "config loaded and store reachable",
                                "responses": {"200": {"description": "ready"}, "503": {"description": "a check failed"}}}},
        },
    }


async def openapi_json(request: Request) -> Response:
    """`GET /openapi.json`."""
    return JSONResponse(spec())
