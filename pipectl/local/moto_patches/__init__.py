"""Version-guarded fixes for moto: two costs that grow with what it holds, two per request, a race.

None of these exists on AWS, but they decide whether the embedded emulator holds a burst:
- DynamoDB TransactWriteItems deep-copies every table the transaction names (once per
  item naming it) to undo a failed transaction, so a transaction costs O(table) and
  the copies stay on the heap until the cyclic collector finds them. Here it saves
  only the items it names, and restores those (and the table's stream) on failure.
- SQS ReceiveMessage recomputes all of the queue's attributes (three O(depth) counts,
  each reading the clock through datetime once or twice per message) for every message
  it returns, to read one number: MessageRetentionPeriod. Here the receive reads that
  number once per call, and the counts and the visible-message list read the clock once
  per pass over the queue instead of once or twice per message.
- SQS changes a queue's message list from several threads, and only a send takes the
  queue's lock: a delete racing a send or another delete loses one of them (a message
  gone, or a deleted one delivered again after its visibility timeout), and two receives
  at once can both take one message. Here a delete and a receive's pass over the queue
  take that lock too. (Not a cost: a race that a burst of 10,000 files showed.)
- The server resolves each request's backend from its host by listing moto's package
  directory (an isdir per entry) and trying every backend's URL pattern: about a seventh
  of its CPU in a burst. The answer depends on the host alone, so it is kept per host.
- DynamoDB parses an update expression twice per request and validates it with ten
  passes over its tree, three of which look at every clause under every node (quadratic
  in its length): half of moto's DynamoDB time in a burst, for the few expressions the
  processor sends with every file. Here the tree is kept per text (and the validator's
  working copy of it made from a pickle rather than by deepcopy), the three checks that
  read only the text, its names and the table's key attributes run once per combination,
  and each pass builds its list of node types once instead of at every node.

Each replacement (dynamodb.py, sqs.py, server.py; this module is the guard that applies
them) is moto's own code with only that change, so it can go upstream as is. It applies
only to the moto release it was written for and only while moto's code is the code it
was written against (a digest of each replaced function's source);
otherwise plain moto runs and the caller gets one warning line. PIPECTL_MOTO_PATCHES=0
runs plain moto on purpose (the benchmarks' baseline).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WRITTEN_FOR = "5.2.1"
SWITCH = "PIPECTL_MOTO_PATCHES"


@dataclass(frozen=True)
class Patch:
    """One attribute of a moto class replaced; `digest` is of the source it replaces."""
    owner: type
    name: str
    digest: str
    replacement: Any


def patch_moto(patch: Callable[[object, str, object], None] = setattr,
               notice: Callable[[str], None] | None = None) -> bool:
    """Apply every patch, or none (idempotent). True when moto runs patched. `patch`
    lets a test undo it (pytest's monkeypatch.setattr)."""
    if os.environ.get(SWITCH, "1").strip().lower() in ("0", "off", "false", "no"):
        return False
    import moto

    patches = _patches()
    stale = [p for p in patches if _source_digest(_original(p)) != p.digest
             and not getattr(_current(p), "moto_patch", False)]
    if moto.__version__ != WRITTEN_FOR or stale:
        if notice is not None:
            why = (f"moto {moto.__version__} is not the release pipectl's emulator patches "
                   f"were written for ({WRITTEN_FOR})" if moto.__version__ != WRITTEN_FOR
                   else f"moto's {', '.join(p.name for p in stale)} is not the code "
                   "pipectl's emulator patches were written against")
            notice(f"{why}: running plain moto, which slows down as queues and tables fill")
        return False
    for p in patches:
        if not getattr(_current(p), "moto_patch", False):
            patch(p.owner, p.name, _install(p))
    return True


def _patches() -> list[Patch]:
    # moto's expression parser is untyped (its own modules import it with type: ignore)
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]
    from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]
        UpdateExpressionParser,
    )
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator, Validator
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs.models import Queue, SQSBackend

    from pipectl.local.moto_patches import dynamodb, server, sqs

    return [
        Patch(DomainDispatcherApplication, "get_backend_for_host",
              "1f41972c1e4e660fbf4e4ddfeeed2fdff56dc105a8f8e1bf015640f710ef511a",
              server.get_backend_for_host),
        Patch(DynamoDBBackend, "transact_write_items",
              "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4",
              dynamodb.transact_write_items),
        Patch(UpdateExpressionParser, "make",
              "2c00ed96d6e191f243b449166e75bfb38f307b2e19405bc0981847061e0dbee3",
              classmethod(dynamodb.update_expression_make)),
        Patch(UpdateExpressionValidator, "get_ast_processors",
              "918400bbecd67e8321619b3141e6a276e91a5112c8e8b602fbbc748d83329af6",
              dynamodb.update_expression_processors),
        Patch(Validator, "__init__",
              "9489b532dd0fb359e273711c1a67971f1b73af47ddbaa91868e9cc42a26ddbb3",
              dynamodb.validator_init),
        Patch(DepthFirstTraverser, "nodes_to_be_processed",
              "1c2c84c8097e35172d289d2cc30029d2d1c518f7680232a3f3c9f09e56a5e9b0",
              dynamodb.nodes_to_be_processed),
        Patch(SQSBackend, "receive_message",
              "065f3e5e7d2144089ce3b5d16d9306243ccd2f3ee11b44beb851292fadb7652f",
              sqs.receive_message),
        Patch(Queue, "delete_message",
              "fa6fd5b9bd2cafb4aaacd79da7fc656e513e1513197c2939ff002f9ebfd4be46",
              sqs.queue_delete_message),
        Patch(Queue, "messages",
              "03a531dbcbcf9aee2e61c7254c08946a499f5c57f2447a8f2e534aa85b067dea",
              property(sqs.queue_messages)),
        Patch(Queue, "approximate_number_of_messages_delayed",
              "c3c1dadb0c42ed5f8f5e1fddc8384de67db2df9a4055504f10903bd0b55e8d2f",
              property(sqs.approximate_number_of_messages_delayed)),
        Patch(Queue, "approximate_number_of_messages_not_visible",
              "5dbecc4dda174358d2aefa96e4b769def47fd6bb2c315241c451e8518c3fabab",
              property(sqs.approximate_number_of_messages_not_visible)),
    ]


def _current(p: Patch) -> Any:
    return _function(p.owner.__dict__[p.name])


def _function(value: Any) -> Any:
    """The function a property or classmethod holds, or the function itself."""
    if isinstance(value, property):
        return value.fget
    return value.__func__ if isinstance(value, classmethod) else value


def _original(p: Patch) -> Any:
    """moto's function, under the DynamoDB lock emulator.atomic_dynamodb may have added."""
    function = _current(p)
    return getattr(function, "__wrapped__", function)


def _install(p: Patch) -> Any:
    """The replacement, keeping the DynamoDB lock around it if one was already there;
    `replaces` keeps what it replaced (tests compare the two)."""
    current = _current(p)
    replaces = p.owner.__dict__[p.name]
    function = _function(p.replacement)
    if getattr(current, "atomic", False):
        from pipectl.local.emulator import locked

        function = locked(function)
    function = _marked(function, replaces)
    kind = type(p.replacement)
    return kind(function) if kind in (property, classmethod) else function


def _marked(function: Callable, replaces: Any) -> Callable:
    """A fresh wrapper per install, so each remembers what it replaced."""

    @functools.wraps(function)
    def patched(*args, **kwargs):
        return function(*args, **kwargs)

    patched.moto_patch = True  # type: ignore[attr-defined]
    patched.replaces = replaces  # type: ignore[attr-defined]
    return patched


def _source_digest(function: Any) -> str:
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return ""
    return hashlib.sha256(source.encode()).hexdigest()
