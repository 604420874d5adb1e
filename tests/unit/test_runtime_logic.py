"""How the local runtime reads a partial batch response and builds Lambda's SQS event."""

from pipectl.local.runtime import failed_ids, lambda_event

BATCH = {"m1", "m2", "m3"}


def test_no_failures_reported_means_every_message_succeeded():
    assert failed_ids({"batchItemFailures": []}, BATCH) == set()
    assert failed_ids(None, BATCH) == set()
    assert failed_ids({"other": 1}, BATCH) == set()


def test_reported_failures_are_returned_to_the_queue_alone():
    response = {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert failed_ids(response, BATCH) == {"m2"}


def test_malformed_partial_response_fails_the_whole_batch_as_lambda_does():
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, BATCH) == BATCH
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, BATCH) == BATCH
    assert failed_ids({"batchItemFailures": "m1"}, BATCH) == BATCH
    assert failed_ids("ok", BATCH) == BATCH


def test_lambda_event_has_the_sqs_record_shape():
    message = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}", "MD5OfBody": "x",
               "Attributes": {"ApproximateReceiveCount": "1"},
               "MessageAttributes": {"a": {"DataType": "String", "StringValue": "v"}}}
    event = lambda_event([message], "arn:aws:sqs:us-east-1:1:q", "us-east-1")
    record = event["Records"][0]
    assert record["messageId"] == "m1" and record["receiptHandle"] == "r1"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:1:q"
    assert record["attributes"] == {"ApproximateReceiveCount": "1"}
    assert record["messageAttributes"]["a"]["stringValue"] == "v"
    assert record["messageAttributes"]["a"]["dataType"] == "String"


def _mapping(max_concurrency, batching_window=0, batch_size=10):
    from pipectl.local.deployment import DeployedFunction, Mapping

    function = DeployedFunction(name="processor", handler="processor.lambda_handler",
                                timeout=30, memory=512, environment={})
    return Mapping(function=function, queue_url="q", queue_arn="arn:aws:sqs:us-east-1:1:q",
                   batch_size=batch_size, visibility_timeout=30,
                   batching_window=batching_window, max_concurrency=max_concurrency)


def test_a_mapping_gets_as_many_pollers_as_its_maximum_concurrency():
    from pipectl.local.runtime import DEFAULT_POLLERS, pollers

    assert pollers(_mapping(5), None) == 5
    assert pollers(_mapping(None), None) == DEFAULT_POLLERS      # no ScalingConfig
    # --concurrency caps it (worker processes are memory), never raises it
    assert pollers(_mapping(5), 3) == 3
    assert pollers(_mapping(2), 8) == 2
    assert pollers(_mapping(None), 1) == 1
