"""Views exercising forms (CSRF token flow), uploads, cookies, redirects and streaming."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.middleware.csrf import get_token
from django.views.decorators.csrf import csrf_exempt


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("django ok", content_type="text/plain")


def form(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return JsonResponse({"csrftoken": get_token(request)})
    return JsonResponse(
        {k: request.POST.getlist(k) for k in request.POST if k != "csrfmiddlewaretoken"}
    )


@csrf_exempt
def exempt(request: HttpRequest) -> HttpResponse:
    return JsonResponse(
        {
            "method": request.method,
            "post": {k: request.POST.getlist(k) for k in request.POST},
            "get": {k: request.GET.getlist(k) for k in request.GET},
            "script_name": request.META.get("SCRIPT_NAME"),
            "path": request.path,
        }
    )


@csrf_exempt
def upload(request: HttpRequest) -> HttpResponse:
    f = request.FILES.get("file")
    assert f is not None and not isinstance(f, list)
    h = hashlib.sha256()
    size = 0
    for chunk in f.chunks():
        h.update(chunk)
        size += len(chunk)
    return JsonResponse(
        {"name": f.name, "size": size, "sha256": h.hexdigest(), "note": request.POST.get("note")}
    )


def cookie_set(request: HttpRequest) -> HttpResponse:
    resp = HttpResponse("cookie set", content_type="text/plain")
    for k in request.GET:
        resp.set_cookie(k, str(request.GET[k]))
    return resp


def cookie_get(request: HttpRequest) -> HttpResponse:
    return JsonResponse(dict(request.COOKIES))


def go(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect("/target/?from=redirect")


def target(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"target from={request.GET.get('from')}", content_type="text/plain")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    n = int(request.GET.get("n", "5"))

    def gen() -> Iterator[bytes]:
        for i in range(n):
            yield f"chunk {i}\n".encode()

    return StreamingHttpResponse(gen(), content_type="text/plain")
