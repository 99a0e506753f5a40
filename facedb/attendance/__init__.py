"""Attendance: watching a video source, logging visits, and reporting who was seen when.

A watch samples frames at a fixed rate and identifies every face. A person is logged only
when recognised in ``votes`` of the last ``window`` samples (one lucky frame checks nobody
in), and a visit stays open while they keep being seen with gaps shorter than
``cooldown``: one attendance event per visit. Faces that match nobody are grouped into
strangers (by similarity to the strangers seen before), logged with the same vote, so that
"the same stranger, 5 times today" is visible.

Times are stored in UTC. For a file, a sighting's time is the watch's start time plus the
frame's position in the file, so results do not depend on how fast frames are processed.

The package's modules, by job: ``settings`` (WatchSettings), ``tracks`` (tracks, their
association by IoU, strangers), ``watcher`` (Watcher: tracking, the vote, visits),
``video`` (opening a source, sampling its frames), ``watching`` (the watch loop) and
``reports`` (sightings, attendance, forgetting strangers), ``spreadsheet`` (attendance as
CSV, for every door).
"""

from __future__ import annotations

from facedb.attendance.reports import AttendanceRow, Sighting, attendance, forget_strangers, sightings
from facedb.attendance.settings import WatchSettings
from facedb.attendance.tracks import iou as iou
from facedb.attendance.video import LatestFrame
from facedb.attendance.video import _frames as _frames
from facedb.attendance.video import _live_frames as _live_frames
from facedb.attendance.video import _open as _open
from facedb.attendance.watcher import Watcher
from facedb.attendance.watching import watch

__all__ = [
    "AttendanceRow",
    "LatestFrame",
    "Sighting",
    "WatchSettings",
    "Watcher",
    "attendance",
    "forget_strangers",
    "sightings",
    "watch",
]
