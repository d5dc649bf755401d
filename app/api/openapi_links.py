"""OpenAPI links between the stored-resource operations.

A link says how the answer of one operation feeds the parameters of the next: the ``id`` of
a user created by ``create_user`` is the ``user_id`` of ``get_user``, ``log_session`` and so
on. Clients can follow them, and stateful fuzzers (schemathesis) build call sequences from
them: create a user, open an episode, log a session, ask for a recommendation, replay it.

The links are part of the published contract, so they are added to the generated document
rather than inferred by each client. ``add_links`` knows operations only by ``operationId``
and touches nothing but the ``links`` of their success responses.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["LINKS", "add_links"]

# Runtime expressions (OpenAPI 3.1, "Runtime Expressions").
_NEW_ID: Final = "$response.body#/id"
_OWNER: Final = "$response.body#/user_id"
_EPISODE: Final = "$response.body#/condition_id"

_FOR_NEW_USER: Final = {"user_id": _NEW_ID}

# operationId of the producer → (status, {link name: (target operationId, parameters, text)}).
LINKS: Final[dict[str, tuple[str, dict[str, tuple[str, dict[str, str], str]]]]] = {
    "create_user": (
        "201",
        {
            "GetUser": ("get_user", _FOR_NEW_USER, "Read the user just registered."),
            "UpdateUser": ("update_user", _FOR_NEW_USER, "Change the user just registered."),
            "DeleteUser": ("delete_user", _FOR_NEW_USER, "Erase the user just registered."),
            "CreateCondition": (
                "create_condition",
                _FOR_NEW_USER,
                "Open the user's first condition episode.",
            ),
            "ListConditions": (
                "list_user_conditions",
                _FOR_NEW_USER,
                "The user's condition episodes.",
            ),
            "LogSession": ("log_session", _FOR_NEW_USER, "Log a session for the user."),
            "ListSessions": ("list_sessions", _FOR_NEW_USER, "The user's sessions."),
            "CreateRecommendation": (
                "create_user_recommendation",
                _FOR_NEW_USER,
                "Decide the user's next session.",
            ),
            "ListRecommendations": (
                "list_user_recommendations",
                _FOR_NEW_USER,
                "Recommendations issued to the user.",
            ),
            "ExportFhir": ("export_user_fhir", _FOR_NEW_USER, "The user's record as FHIR R4."),
        },
    ),
    "create_condition": (
        "201",
        {
            "GetCondition": (
                "get_user_condition",
                {"user_id": _OWNER, "condition_id": _NEW_ID},
                "Read the episode just opened.",
            ),
            "UpdateCondition": (
                "update_user_condition",
                {"user_id": _OWNER, "condition_id": _NEW_ID},
                "Add a red flag or a tested preference to the episode, or resolve it.",
            ),
            "LogSession": (
                "log_session",
                {"user_id": _OWNER},
                "Log a session; it joins this active episode.",
            ),
            "ListSessions": (
                "list_sessions",
                {"user_id": _OWNER, "condition_id": _NEW_ID},
                "The sessions of this episode.",
            ),
            "CreateRecommendation": (
                "create_user_recommendation",
                {"user_id": _OWNER},
                "Decide the next session within this episode.",
            ),
            "ExportFhir": (
                "export_user_fhir",
                {"user_id": _OWNER},
                "The user's record as FHIR R4, with this episode as a Condition.",
            ),
        },
    ),
    "log_session": (
        "201",
        {
            "GetSession": (
                "get_session",
                {"user_id": _OWNER, "session_id": _NEW_ID},
                "Read the session just logged.",
            ),
            "UpdateSession": (
                "update_session",
                {"user_id": _OWNER, "session_id": _NEW_ID},
                "Add what was reported later, such as next-morning pain.",
            ),
            "ListSessions": (
                "list_sessions",
                {"user_id": _OWNER, "condition_id": _EPISODE},
                "The sessions of the episode this session joined.",
            ),
            "CreateRecommendation": (
                "create_user_recommendation",
                {"user_id": _OWNER},
                "Decide the next session, now that this one is logged.",
            ),
            "ExportFhir": (
                "export_user_fhir",
                {"user_id": _OWNER},
                "The user's record as FHIR R4, with this session as a Procedure.",
            ),
        },
    ),
    "create_user_recommendation": (
        "201",
        {
            "GetRecommendation": (
                "get_user_recommendation",
                {"user_id": _OWNER, "recommendation_id": _NEW_ID},
                "Read the recommendation just issued, with its inputs.",
            ),
            "ReplayRecommendation": (
                "replay_user_recommendation",
                {"user_id": _OWNER, "recommendation_id": _NEW_ID},
                "Re-run the recommendation's stored inputs on today's ruleset.",
            ),
            "LogSession": (
                "log_session",
                {"user_id": _OWNER},
                "Log the session that was recommended.",
            ),
            "ListRecommendations": (
                "list_user_recommendations",
                {"user_id": _OWNER},
                "Recommendations issued to the user.",
            ),
            "ExportFhir": (
                "export_user_fhir",
                {"user_id": _OWNER},
                "The user's record as FHIR R4, with this recommendation as the CarePlan.",
            ),
        },
    ),
}


def _operations_by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                found[operation["operationId"]] = operation
    return found


def add_links(document: dict[str, Any]) -> None:
    """Add the ``links`` of ``LINKS`` to an OpenAPI document, in place.

    Each producer's success response (by ``operationId`` and status) gets one Link Object
    per follow-up operation. A producer or target missing from the document is an error: a
    renamed operation must not silently drop a link from the contract. Existing links on a
    response are kept; a link of the same name is replaced. Calling it twice is harmless.
    """
    operations = _operations_by_id(document)
    for producer, (status, links) in LINKS.items():
        if producer not in operations:
            raise KeyError(f"OpenAPI links: no operation {producer!r}")
        responses = operations[producer].get("responses", {})
        if status not in responses:
            raise KeyError(f"OpenAPI links: {producer!r} has no {status} response")
        response_links: dict[str, Any] = responses[status].setdefault("links", {})
        for name, (target, parameters, description) in links.items():
            if target not in operations:
                raise KeyError(f"OpenAPI links: {producer!r} links to unknown {target!r}")
            response_links[name] = {
                "operationId": target,
                "parameters": dict(parameters),
                "description": description,
            }
