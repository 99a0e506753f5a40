"""The gallery's services, one job each, behind the :class:`facedb.FaceDB` facade.

Each receives the open gallery's :class:`facedb.context.GalleryContext` (and the services
it builds on), never ``FaceDB``; each write goes through ``ctx.writes`` (facedb.writes):

- ``people``: who is in the gallery; renaming and removing people and faces.
- ``recognition``: search, identify and verify, at the threshold in force.
- ``enrollment``: the enrollment gate and every enrollment (photos, bulk templates).
- ``feedback``: "not this person", "yes, it's them", and the audit.
- ``groups``: faces nobody has named yet (discover, name or dismiss a group).
- ``maintenance``: calibration, the consistency check, the index, stats.
"""
