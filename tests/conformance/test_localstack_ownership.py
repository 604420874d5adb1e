"""Ownership tags on LocalStack (tests/functional/test_ownership_tags.py on moto): deploy tags
what it makes through each service's own tagging API, reads them back to plan (an untagged
log group, alarm or event source mapping is re-tagged), and sweeps what carries them and
pipeline.yaml no longer holds (a topic, a renamed bucket), leaving an untagged look-alike
alone."""

from __future__ import annotations

OWNER = {"managed-by": "pipectl", "pipectl:pipeline": "pipectl-demo"}


def pairs(tags: list[dict]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags}


def log_group_tags(logs, prefix: str) -> dict[str, dict[str, str]]:
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{prefix}-")["logGroups"]
    return {g["logGroupName"]: logs.list_tags_for_resource(
        resourceArn=g["arn"].removesuffix(":*"))["tags"] for g in groups}


def alarm_tags(cw, prefix: str) -> dict[str, dict[str, str]]:
    alarms = cw.describe_alarms(AlarmNamePrefix=f"{prefix}-")["MetricAlarms"]
    return {a["AlarmName"]: pairs(cw.list_tags_for_resource(ResourceARN=a["AlarmArn"])["Tags"])
            for a in alarms}


def function_and_mapping_tags(lam, prefix: str) -> dict[str, dict[str, str]]:
    found = {}
    for function in lam.list_functions()["Functions"]:
        name = function["FunctionName"]
        if not name.startswith(f"{prefix}-"):
            continue
        found[name] = lam.list_tags(Resource=function["FunctionArn"])["Tags"]
        for mapping in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
            arn = mapping["EventSourceMappingArn"]
            found[arn] = lam.list_tags(Resource=arn)["Tags"]
    return found


def tags_of_everything(client, prefix: str) -> dict[str, dict[str, str]]:
    """Every resource named for this pipeline on LocalStack, with its tags, found by listing
    each service and read through that service's own tagging API."""
    s3, sqs, iam = client("s3"), client("sqs"), client("iam")
    events, sns = client("events"), client("sns")
    found = {}
    for bucket in s3.list_buckets()["Buckets"]:
        if bucket["Name"].startswith(f"{prefix}-"):
            found[bucket["Name"]] = pairs(s3.get_bucket_tagging(
                Bucket=bucket["Name"])["TagSet"])
    for url in sqs.list_queues(QueueNamePrefix=f"{prefix}-").get("QueueUrls", []):
        found[url.rsplit("/", 1)[-1]] = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
    for role in iam.list_roles()["Roles"]:
        if role["RoleName"].startswith(f"{prefix}-"):
            found[role["RoleName"]] = pairs(iam.list_role_tags(RoleName=role["RoleName"])["Tags"])
    for rule in events.list_rules(NamePrefix=f"{prefix}-")["Rules"]:
        found[rule["Name"]] = pairs(events.list_tags_for_resource(
            ResourceARN=rule["Arn"])["Tags"])
    for topic in sns.list_topics()["Topics"]:
        arn = topic["TopicArn"]
        if arn.rsplit(":", 1)[-1].startswith(f"{prefix}-"):
            found[arn] = pairs(sns.list_tags_for_resource(ResourceArn=arn)["Tags"])
    return (found | log_group_tags(client("logs"), prefix)
            | alarm_tags(client("cloudwatch"), prefix)
            | function_and_mapping_tags(client("lambda"), prefix))


def ownership(found: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Each resource's ownership tags, without the others (a function's code hashes)."""
    keys = {*OWNER, "pipectl:environment"}
    return {name: {k: v for k, v in tags.items() if k in keys} for name, tags in found.items()}


def changes(plan) -> dict[tuple[str, str], set[str]]:
    return {(s["kind"], s["name"]): {c["field"] for c in s["changes"]}
            for s in plan.json()["steps"] if s["action"] != "noop"}


def test_deploy_tags_what_it_makes_retags_what_lost_them_and_sweeps_what_it_no_longer_holds(
        pipectl, pipeline, client, names, environment):
    # given a pipeline with alarm email: an SNS topic, which only a sweep by tags can find
    config = pipeline / "pipeline.yaml"
    original = config.read_text()
    config.write_text(original.replace("alarm_email:", "alarm_email: ops@example.com", 1))
    assert pipectl("deploy", "--yes", timeout=300).code == 0
    prefix = f"pipectl-demo-{environment}"
    owner = {**OWNER, "pipectl:environment": environment}

    # then everything it made carries the ownership tags, as LocalStack reads them back:
    # 3 buckets, 4 queues, 3 roles, the schedule, the topic, 3 log groups, 6 alarms,
    # 3 functions and 2 event source mappings
    found = tags_of_everything(client, prefix)
    assert len(found) == 3 + 4 + 3 + 1 + 1 + 3 + 6 + 3 + 2, sorted(found)
    assert ownership(found) == {name: owner for name in found}

    # when a log group, an alarm and a mapping lose them (as an older deploy left them)
    logs, cw, lam = client("logs"), client("cloudwatch"), client("lambda")
    group = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{prefix}-archiver")[
        "logGroups"][0]
    logs.untag_resource(resourceArn=group["arn"].removesuffix(":*"), tagKeys=list(owner))
    alarm = cw.describe_alarms(AlarmNames=[f"{prefix}-oldest-message"])["MetricAlarms"][0]
    cw.untag_resource(ResourceARN=alarm["AlarmArn"], TagKeys=list(owner))
    [mapping] = lam.list_event_source_mappings(
        FunctionName=names["processor"])["EventSourceMappings"]
    lam.untag_resource(Resource=mapping["EventSourceMappingArn"], TagKeys=list(owner))
    retagged = pipectl("--output", "json", "deploy", "--yes", timeout=300)

    # then deploy re-tags exactly those three (each through TagResource: nothing else about
    # them changed), and nothing else
    assert retagged.code == 0, retagged.err
    retag = {f"tags.{key}" for key in owner}
    assert changes(retagged) == {
        ("log_group", group["logGroupName"]): retag, ("alarm", alarm["AlarmName"]): retag,
        ("mapping", f"{names['queue']} -> {names['processor']}"): retag}
    assert ownership(tags_of_everything(client, prefix)) == {name: owner for name in found}

    # when alarm_email is taken out and buckets.raw names another bucket, beside an
    # untagged topic with a pipectl-like name
    sns = client("sns")
    decoy = sns.create_topic(Name=f"{prefix}-someone-elses")["TopicArn"]
    topic = f"arn:aws:sns:us-east-1:{names['account']}:{prefix}-alarms"
    config.write_text(original.replace("  raw:   ", f"  raw: {prefix}-raw-v2", 1))
    applied = pipectl("--output", "json", "deploy", "--yes", timeout=300)

    # then the topic and the old (empty) raw bucket with its rules are swept, found by
    # their tags through SNS and S3 (ListBuckets by region), and the look-alike stays
    assert applied.code == 0, applied.err
    swept = {(s["kind"], s["name"]): s["reason"] for s in applied.json()["steps"]
             if s["action"] == "delete"}
    gone = "no longer in pipeline.yaml"
    assert swept == {("topic", f"{prefix}-alarms"): gone, ("bucket", names["raw"]): gone,
                     ("notification", names["raw"]): gone}
    topics = {t["TopicArn"] for t in sns.list_topics()["Topics"]}
    assert decoy in topics and topic not in topics
    assert sns.list_tags_for_resource(ResourceArn=decoy)["Tags"] == []
    buckets = {b["Name"] for b in client("s3").list_buckets()["Buckets"]}
    assert f"{prefix}-raw-v2" in buckets and names["raw"] not in buckets
    assert pipectl("deploy", "--dry-run", "--detailed-exitcode").code == 0
