from aiohttp import web

from auth_service.api.callers import principal
from auth_service.appkeys import PROJECTS
from auth_service.models import (
    MemberAdd,
    MemberOut,
    MembershipOut,
    MemberUpdate,
    ProjectCreate,
    ProjectListQuery,
    ProjectOut,
    ProjectUpdate,
)
from backend_common.http import json_response, parse_body, parse_path_uuid, parse_query
from backend_common.idempotency import idempotent
from backend_common.pagination import PageQuery

routes = web.RouteTableDef()


@routes.post("/api/v1/projects", name="create_project")
@idempotent
async def create_project(request: web.Request) -> web.Response:
    body = await parse_body(request, ProjectCreate)
    project = await request.app[PROJECTS].create(caller=principal(request), data=body)
    return json_response(
        ProjectOut.from_domain(project),
        status=201,
        headers={"Location": f"/api/v1/projects/{project.id}"},
    )


@routes.get("/api/v1/projects", name="list_projects")
async def list_projects(request: web.Request) -> web.Response:
    query = parse_query(request, ProjectListQuery)
    page = await request.app[PROJECTS].list_mine(
        caller=principal(request), q=query.q, page=query.page
    )
    return json_response(page.map(ProjectOut.from_domain).as_json())


@routes.get("/api/v1/projects/{project_id}", name="get_project")
async def get_project(request: web.Request) -> web.Response:
    project = await request.app[PROJECTS].get(
        caller=principal(request), project_id=parse_path_uuid(request, "project_id")
    )
    return json_response(ProjectOut.from_domain(project))


@routes.patch("/api/v1/projects/{project_id}", name="update_project")
async def update_project(request: web.Request) -> web.Response:
    project_id = parse_path_uuid(request, "project_id")
    body = await parse_body(request, ProjectUpdate)
    project = await request.app[PROJECTS].update(
        caller=principal(request), project_id=project_id, changes=body
    )
    return json_response(ProjectOut.from_domain(project))


@routes.delete("/api/v1/projects/{project_id}", name="delete_project")
async def delete_project(request: web.Request) -> web.Response:
    await request.app[PROJECTS].delete(
        caller=principal(request), project_id=parse_path_uuid(request, "project_id")
    )
    return web.Response(status=204)


@routes.get("/api/v1/projects/{project_id}/membership", name="get_membership")
async def get_membership(request: web.Request) -> web.Response:
    caller = principal(request)
    project_id = parse_path_uuid(request, "project_id")
    membership = await request.app[PROJECTS].membership(caller=caller, project_id=project_id)
    return json_response(
        MembershipOut(
            project_id=project_id,
            user_id=caller.user_id,
            role=membership.role,
            physical_only=membership.physical_only,
        )
    )


@routes.get("/api/v1/projects/{project_id}/members", name="list_members")
async def list_members(request: web.Request) -> web.Response:
    project_id = parse_path_uuid(request, "project_id")
    query = parse_query(request, PageQuery)
    page = await request.app[PROJECTS].list_members(
        caller=principal(request), project_id=project_id, page=query.page
    )
    return json_response(page.map(MemberOut.from_domain).as_json())


@routes.post("/api/v1/projects/{project_id}/members", name="add_member")
@idempotent
async def add_member(request: web.Request) -> web.Response:
    project_id = parse_path_uuid(request, "project_id")
    body = await parse_body(request, MemberAdd)
    member = await request.app[PROJECTS].add_member(
        caller=principal(request), project_id=project_id, data=body
    )
    return json_response(
        MemberOut.from_domain(member),
        status=201,
        headers={"Location": f"/api/v1/projects/{project_id}/members/{member.user_id}"},
    )


@routes.patch("/api/v1/projects/{project_id}/members/{user_id}", name="update_member")
async def update_member(request: web.Request) -> web.Response:
    project_id = parse_path_uuid(request, "project_id")
    user_id = parse_path_uuid(request, "user_id")
    body = await parse_body(request, MemberUpdate)
    member = await request.app[PROJECTS].change_role(
        caller=principal(request), project_id=project_id, user_id=user_id, role=body.role
    )
    return json_response(MemberOut.from_domain(member))


@routes.delete("/api/v1/projects/{project_id}/members/{user_id}", name="remove_member")
async def remove_member(request: web.Request) -> web.Response:
    await request.app[PROJECTS].remove_member(
        caller=principal(request),
        project_id=parse_path_uuid(request, "project_id"),
        user_id=parse_path_uuid(request, "user_id"),
    )
    return web.Response(status=204)
