"""The Slack app's HTTP routes: the Events API, the `/trainwreck` slash command and the reply's buttons, all
signed."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.api.schemas import ErrorOut
from app.errors import InvalidRequestError, LogTooLargeError, TrainwreckError
from app.slack.service import SlackService
from app.slack.verify import MAX_SLACK_BODY_BYTES, check_slack_headers, verify_slack_request

router = APIRouter(tags=["slack"])

ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorOut} for status in (400, 401, 413, 503)}


async def verified_body(request: Request) -> bytes:
    """The raw body, once its Slack signature checks out (401 otherwise, 503 without a signing secret).

    The headers are checked before the body is read, and the body is read up to MAX_SLACK_BODY_BYTES (413
    past that), so no unsigned or oversized request costs more memory than a real Slack delivery.
    """
    secret = request.app.state.settings.slack_signing_secret
    check_slack_headers(request.headers, signing_secret=secret)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_SLACK_BODY_BYTES:
            raise LogTooLargeError(f"a Slack request body is at most {MAX_SLACK_BODY_BYTES} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    verify_slack_request(body, request.headers, signing_secret=secret)
    return body


def slack_service(request: Request) -> SlackService:
    """The SlackService the lifespan built."""
    service: SlackService = request.app.state.slack
    return service


VerifiedBody = Annotated[bytes, Depends(verified_body)]
SlackServiceDep = Annotated[SlackService, Depends(slack_service)]


@router.post("/slack/events", responses=ERRORS)
async def slack_events(body: VerifiedBody, slack: SlackServiceDep) -> Response:
    """Answer Slack's URL check; queue anything else and acknowledge at once."""
    envelope = _json_object(body)
    if envelope.get("type") == "url_verification":
        return JSONResponse({"challenge": str(envelope.get("challenge", ""))})
    slack.accept_event(envelope)
    return Response(status_code=200)


@router.post("/slack/commands", responses=ERRORS)
async def slack_commands(body: VerifiedBody, slack: SlackServiceDep) -> Response:
    """`/trainwreck ...`: answered right away, visible only to whoever typed it."""
    form = _form(body)
    if form.get("ssl_check") == "1":
        return Response(status_code=200)
    message = await run_in_threadpool(
        slack.answer_command,
        form.get("text", ""),
        command=form.get("command") or "/trainwreck",
        channel=form.get("channel_id", ""),
        workspace=form.get("team_id"),
    )
    return JSONResponse({"response_type": "ephemeral", **message.to_dict()})


@router.post("/slack/interactions", responses=ERRORS)
async def slack_interactions(body: VerifiedBody, slack: SlackServiceDep) -> Response:
    """The buttons of a reply ("Right", "Wrong: it was ..."): stored as feedback by who pressed them."""
    payload = _json_object(_form(body).get("payload", "").encode())
    if payload.get("type") == "block_actions":
        try:
            await run_in_threadpool(slack.record_feedback, payload)
        except TrainwreckError as error:  # another team's diagnosis, a bad value: nothing stored
            return JSONResponse({"response_type": "ephemeral", "replace_original": False, "text": error.message})
    return Response(status_code=200)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise InvalidRequestError("the Slack event is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("the Slack event is not a JSON object")
    return data


def _form(body: bytes) -> dict[str, str]:
    fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)  # the signature check decoded it already
    return {name: values[0] for name, values in fields.items()}
