"""FastAPI dependency aliases shared by every domain's router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from zhijin.chain.errors import ZhijinError
from zhijin.platform.data_dir import check_operator_token
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.host import Host

__all__ = ["GatewayDep", "OperatorDep", "PlatformDep"]


class Unauthorized(ZhijinError):
    code = "unauthorized"
    http_status = 401


def get_platform(request: Request) -> Host:
    platform: Host = request.app.state.platform
    return platform


def get_gateway(request: Request) -> MemberGateway:
    gateway: MemberGateway = request.app.state.gateway
    return gateway


PlatformDep = Annotated[Host, Depends(get_platform)]
GatewayDep = Annotated[MemberGateway, Depends(get_gateway)]


def require_operator(
    platform: PlatformDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """The node operator's bearer token (DATA/operator-token) for member-signed actions."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not check_operator_token(platform.settings, token.strip()):
        raise Unauthorized(message="this action needs the operator's bearer token")


OperatorDep = Annotated[None, Depends(require_operator)]
