"""The fields of a posted form, as the web page's routes read them (the form itself, checked
and closed, is :meth:`facedb.service.web.common.Pages.form`'s)."""

from __future__ import annotations

from starlette.datastructures import FormData, UploadFile

__all__ = ["checked", "text_of", "uploads_of"]


def uploads_of(form: FormData, field: str) -> list[UploadFile]:
    """The files of a form field; a file input left empty sends one nameless, empty part."""
    return [u for u in form.getlist(field) if isinstance(u, UploadFile) and (u.filename or u.size)]


def text_of(form: FormData, field: str) -> str:
    """A text field of a form, stripped; empty when missing (or a file)."""
    value = form.get(field)
    return value.strip() if isinstance(value, str) else ""


def checked(form: FormData, field: str) -> bool:
    """Whether a checkbox of a form is ticked (a browser sends "on"; "true" and "1" count too)."""
    return form.get(field) in ("on", "true", "1")
