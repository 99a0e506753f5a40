"""``facedb events``: subscriptions to webhooks and MQTT brokers, what they are owed, and the
dispatcher that delivers it (``facedb events run``). Every subcommand is one call of
``db.events`` (facedb.jobs.events)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from facedb import serialize
from facedb.cli.common import Commands, _gallery_options, _local, _open_db, _print_table
from facedb.errors import ConfigError

commands = Commands()


def _types(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--types",
        help="event types, comma-separated (default: all but person.identified; 'all': every type)",
    )


def _events_arguments(p: argparse.ArgumentParser) -> None:
    # The gallery options after an action too (`facedb events list --db X`), as after any command.
    common = argparse.ArgumentParser(add_help=False)
    _gallery_options(common, argparse.SUPPRESS)
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(parent: Any, name: str, help_text: str) -> argparse.ArgumentParser:
        made: argparse.ArgumentParser = parent.add_parser(name, help=help_text, parents=[common])
        return made

    add = sub.add_parser("add", help="subscribe a webhook or an MQTT broker")
    kinds = add.add_subparsers(dest="kind", required=True, metavar="KIND")
    webhook = action(kinds, "webhook", "POST each event to a URL (Standard Webhooks signature)")
    webhook.add_argument("url", help="http:// or https:// URL (loopback and private addresses allowed)")
    webhook.add_argument(
        "--secret", help="signing secret, whsec_ and base64 (default: a new one, printed once)"
    )
    _types(webhook)
    webhook.add_argument("--json", action="store_true", help="print JSON (the secret included)")
    mqtt = action(kinds, "mqtt", "publish each event to an MQTT broker (QoS 1)")
    mqtt.add_argument("url", help="mqtt://[user[:password]@]host[:port]/topic-prefix (mqtts:// for TLS)")
    _types(mqtt)
    mqtt.add_argument(
        "--home-assistant",
        action="store_true",
        help="publish Home Assistant MQTT discovery: each person seen becomes a 'last seen' sensor",
    )
    mqtt.add_argument("--json", action="store_true", help="print JSON")
    listing = action(sub, "list", "the subscriptions, or the events owed (--pending, --failed)")
    shown = listing.add_mutually_exclusive_group()
    shown.add_argument("--failed", action="store_true", help="the dead letters: events given up on")
    shown.add_argument("--pending", action="store_true", help="events queued and not yet delivered")
    listing.add_argument("--json", action="store_true", help="print JSON")
    remove = action(sub, "remove", "remove a subscription (its secret is erased)")
    remove.add_argument("id", type=int, help="the subscription's id")
    test = action(sub, "test", "deliver one test event at once and show the receiver's answer")
    test.add_argument("id", type=int, help="the subscription's id")
    test.add_argument("--json", action="store_true", help="print JSON")
    retry = action(sub, "retry", "queue failed events again (one, or --all)")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("event", nargs="?", help="a failed event's id (evt_...)")
    which.add_argument("--all", action="store_true", help="every failed event")
    run = action(sub, "run", "deliver queued events until stopped (serve and watch do it too)")
    run.add_argument("--once", action="store_true", help="deliver what is queued now, then exit")
    run.add_argument(
        "--give-up-after",
        type=float,
        metavar="SECONDS",
        help="give a failing event up this long after it was queued (default 86400: 24 h)",
    )
    run.add_argument(
        "--max-retry", type=float, metavar="SECONDS", help="longest wait between two attempts (default 300)"
    )
    run.add_argument("--instance", help="this process's name in MQTT status topics (default: HOST-events)")


@commands.add(
    "events",
    "webhooks and MQTT: subscribe, list, remove, test, retry, run the delivery",
    _events_arguments,
)
def cmd_events(args: argparse.Namespace) -> int:
    """``facedb events add|list|remove|test|retry|run``."""
    action = args.action
    if action == "run":
        return _run(args)
    # A subscription is set up before anybody is enrolled, like an API key.
    with _open_db(args, create=action == "add") as db:
        if action == "add":
            if args.kind == "webhook":
                made = db.events.add_webhook(args.url, secret=args.secret, types=args.types)
            else:
                made = db.events.add_mqtt(args.url, types=args.types, home_assistant=args.home_assistant)
            if args.json:
                print(json.dumps(serialize.new_subscription_json(made), indent=2))
                return 0
            s = made.subscription
            print(f"subscription {s.id}: {s.kind} {s.target} ({', '.join(s.types)})", file=sys.stderr)
            if made.secret is not None:
                print(made.secret)
                print("the signing secret is shown only now: give it to the receiver", file=sys.stderr)
            return 0
        if action == "list":
            return _list(db, args)
        if action == "remove":
            db.events.remove(args.id)
            print(f"removed subscription {args.id} (its secret is erased)")
            return 0
        if action == "test":
            result = db.events.test(args.id)
            if args.json:
                print(json.dumps(serialize.delivery_json(result), indent=2))
            else:
                verdict = "delivered" if result.ok else "FAILED"
                print(f"{verdict}: {result.detail} ({result.seconds * 1000:.0f} ms)")
            return 0 if result.ok else 1
        if action == "retry":
            if args.event is None and not args.all:
                raise ConfigError("events retry needs an event id or --all")
            count = db.events.retry(None if args.all else args.event)
            print(f"{count} delivery(ies) queued again")
            return 0
    raise ConfigError(f"unknown events action {action!r}")  # argparse refuses it first


def _list(db: Any, args: argparse.Namespace) -> int:
    if args.failed or args.pending:
        owed = db.events.failed() if args.failed else db.events.pending()
        if args.json:
            print(json.dumps([serialize.queued_event_json(e) for e in owed], indent=2))
            return 0
        rows = [["EVENT", "TYPE", "SUBSCRIPTION", "QUEUED", "ATTEMPTS", "LAST ERROR"]]
        rows += [
            [
                e.id,
                e.type,
                str(e.subscription_id),
                _local(e.queued_at),
                str(e.attempts),
                (e.last_error or "")[:60],
            ]
            for e in owed
        ]
        _print_table(rows, sys.stdout)
        return 0
    subscriptions = db.events.subscriptions()
    if args.json:
        print(json.dumps([serialize.subscription_json(s) for s in subscriptions], indent=2))
        return 0
    rows = [["ID", "KIND", "TARGET", "TYPES", "PENDING", "FAILED", "CREATED"]]
    rows += [
        [str(s.id), s.kind, s.target, ",".join(s.types), str(s.pending), str(s.failed), _local(s.created_at)]
        for s in subscriptions
    ]
    _print_table(rows, sys.stdout)
    return 0


def _run(args: argparse.Namespace) -> int:
    import logging

    from facedb.events import DeliverySettings, default_instance

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = DeliverySettings.from_environment(give_up_after=args.give_up_after, max_retry=args.max_retry)
    stop = threading.Event()
    # SIGTERM (a service manager) stops it like Ctrl-C: leases released, MQTT status offline.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with _open_db(args) as db:
        instance = args.instance or default_instance("events")
        if args.once:
            delivered = db.events.run(once=True, settings=settings, instance=instance)
            left = db.events.pending()
            print(f"{delivered} event(s) delivered; {len(left)} still queued", file=sys.stderr)
            return 0
        print(f"facedb: delivering the events of {db.location} (Ctrl-C stops)", file=sys.stderr)
        delivered = db.events.run(settings=settings, instance=instance, stop=stop)
        print(f"{delivered} event(s) delivered", file=sys.stderr)
    return 0
