"""SQS: one attribute read per receive, one clock read per pass, and a queue's messages
changed under its lock (see the package's docstring)."""

from __future__ import annotations

import copy
from typing import Any


def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int,
                    visibility_timeout: int,
                    message_attribute_names: list[str] | None = None) -> list[Any]:
    """moto 5.2.1's SQSBackend.receive_message, reading MessageRetentionPeriod once per
    call instead of computing all the queue's attributes once per message (marked:
    "pipectl:")."""
    from moto.core.utils import unix_time
    from moto.sqs.models import _filter_message_attributes

    if message_attribute_names is None:
        message_attribute_names = []
    queue = self.get_queue(queue_name)
    result: list[Any] = []
    previous_result_count = len(result)

    polling_end = unix_time() + wait_seconds_timeout
    with queue._messages_lock:  # pipectl: another receive may change pending_messages
        currently_pending_groups = copy.deepcopy(queue.pending_message_groups)
    # pipectl: is_message_valid_based_on_retention_period read this through
    # get_queue_attributes (all attributes, three O(depth) counts) once per message.
    retention_period = queue.message_retention_period

    # queue.messages only contains visible messages
    while True:
        if result or (wait_seconds_timeout and unix_time() > polling_end):
            break

        messages_to_dlq: list[Any] = []

        # pipectl: the pass over the queue takes the queue's lock (add_message's), so two
        # receives at once cannot both take one message, nor a delete undo what it did.
        with queue._messages_lock:
            for message in queue.messages:
                if not message.visible:
                    continue

                if message in queue.pending_messages:
                    # The message is pending but is visible again, so the
                    # consumer must have timed out.
                    queue.pending_messages.remove(message)
                    currently_pending_groups = copy.deepcopy(queue.pending_message_groups)

                if message.group_id and queue.fifo_queue:
                    if message.group_id in currently_pending_groups:
                        # A previous call is still processing messages in this group, so we
                        # cannot deliver this one.
                        continue

                if (
                    queue.dead_letter_queue is not None
                    and queue.redrive_policy
                    and message.approximate_receive_count
                    >= queue.redrive_policy["maxReceiveCount"]
                ):
                    messages_to_dlq.append(message)
                    continue

                queue.pending_messages.add(message)
                message.mark_received(visibility_timeout=visibility_timeout)
                # Create deepcopy to not mutate the message state when filtering for attributes
                message_copy = copy.deepcopy(message)
                _filter_message_attributes(message_copy, message_attribute_names)
                # pipectl: is_message_valid_based_on_retention_period, inlined.
                if retention_period + message.sent_timestamp / 1000 <= unix_time():
                    break
                result.append(message_copy)
                if len(result) >= count:
                    break

            for message in messages_to_dlq:
                queue._messages.remove(message)
        # pipectl: added to the dead-letter queue (under its own lock) after this queue's
        # lock is released, so queues that redrive to each other cannot deadlock.
        for message in messages_to_dlq:
            queue.dead_letter_queue.add_message(message)

        if previous_result_count == len(result):
            if wait_seconds_timeout == 0:
                # There is no timeout and no additional results,
                # so break to avoid an infinite loop.
                break

            queue.wait_for_messages(1)
            continue

        previous_result_count = len(result)

    return result


def queue_delete_message(self: Any, receipt_handle: str) -> None:
    """moto 5.2.1's Queue.delete_message, under the queue's lock (marked: "pipectl:").

    pipectl: moto builds the list without the message and then puts it in place, while
    add_message appends under the queue's lock and receive_message moves messages to the
    dead-letter queue: a delete racing a send lost the message sent, and one racing another
    delete brought that one's message back after its visibility timeout (38 files
    processed twice, 6 minutes late, in a burst of 10,000)."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    with self._messages_lock:
        if receipt_handle in self.deleted_messages:
            # Already deleted - gracefully handle deleting it again
            return

        if not any(
            message.had_receipt_handle(receipt_handle) for message in self._messages
        ):
            raise ReceiptHandleIsInvalid()

        # Delete message from queue regardless of pending state
        new_messages = []
        for message in self._messages:
            if message.had_receipt_handle(receipt_handle):
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)
                continue
            new_messages.append(message)
        self._messages = new_messages


# Message.visible and Message.delayed read the clock through datetime on every call; these
# counts make that one read per pass (same comparisons: visible when now > visible_at,
# delayed while now < delayed_until).

def queue_messages(self: Any) -> list[Any]:
    """Queue.messages: the visible, undelayed messages."""
    from moto.core.utils import unix_time_millis

    now = unix_time_millis()
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]


def approximate_number_of_messages_delayed(self: Any) -> int:
    from moto.core.utils import unix_time_millis

    now = unix_time_millis()
    return sum(1 for m in self._messages if now < m.delayed_until)


def approximate_number_of_messages_not_visible(self: Any) -> int:
    from moto.core.utils import unix_time_millis

    now = unix_time_millis()
    return sum(1 for m in self._messages if not now > m.visible_at)
