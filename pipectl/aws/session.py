"""Sessions and clients for a target: the AWS credential chain, or the emulator's fake keys."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from pipectl.config import Target
from pipectl.errors import AwsError, NotFound, PipectlError, UsageError

if TYPE_CHECKING:
    import boto3

# The emulator accepts any keys; fixed fake ones keep real credentials from ever
# being sent to it and skip the credential chain's lookups.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# The services handlers call (handlers/common/clients.py, and SQS for visibility changes): a
# local worker is told each one's endpoint, as pipectl itself resolved it.
HANDLER_SERVICES = ("s3", "dynamodb", "sqs", "logs", "cloudwatch")


@cache
def _retries():
    # boto3 and botocore.config are imported on first use, not at start-up: together they
    # cost about 150 ms, which `pipectl --help` and `--version` should not pay.
    from botocore.config import Config

    return Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5,
                  read_timeout=70, max_pool_connections=32)


@dataclass
class Aws:
    """Clients for one target. Built lazily so commands that need no AWS never touch it."""

    target: Target
    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    _session: boto3.Session | None = field(default=None, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _account: str | None = None

    @classmethod
    def for_target(cls, target: Target, *, endpoint_url: str | None = None,
                   profile: str | None = None, region: str | None = None) -> Aws:
        # --endpoint-url, then the target's own, then AWS_ENDPOINT_URL (botocore reads it
        # itself), then the embedded emulator's port for an emulator target.
        endpoint = endpoint_url or target.endpoint_url
        if target.emulator and endpoint is None and not os.environ.get("AWS_ENDPOINT_URL"):
            endpoint = f"http://127.0.0.1:{target.port}"
        return cls(target=target, region=region or target.region, endpoint_url=endpoint,
                   profile=profile or target.profile)

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            import boto3

            extra = EMULATOR_CREDENTIALS if self.target.emulator else {}
            try:
                self._session = boto3.Session(profile_name=None if self.target.emulator
                                              else self.profile, region_name=self.region, **extra)
            except botocore.exceptions.ProfileNotFound:
                raise UsageError(f"AWS profile '{self.profile}' is not configured "
                                 "(see `aws configure list-profiles`)") from None
        return self._session

    def client(self, service: str) -> Any:
        if service not in self._clients:
            # endpoint_url=None lets botocore apply AWS_ENDPOINT_URL[_<SERVICE>] itself.
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint_url, config=_retries())
        return self._clients[service]

    def client_with(self, service: str, *, endpoint_url: str | None, **config: Any) -> Any:
        """A client of its own (not shared, not cached) with these botocore Config settings,
        for the calls the shared clients' retries or read timeout do not suit."""
        from botocore.config import Config  # here, not at start-up: a 130 ms import

        return self.session.client(service, endpoint_url=endpoint_url, config=Config(**config))

    @property
    def account(self) -> str:
        if self._account is None:
            with translate_errors(self):
                self._account = self.client("sts").get_caller_identity()["Account"]
        return self._account

    def worker_environment(self) -> dict[str, str]:
        """Environment that points a handler process at this target, as Lambda would."""
        creds = self.session.get_credentials()
        if creds is None:
            raise no_credentials(self)
        frozen = creds.get_frozen_credentials()
        env = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
               "AWS_ACCESS_KEY_ID": frozen.access_key,
               "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
        if frozen.token:
            env["AWS_SESSION_TOKEN"] = frozen.token
        return {**env, **self.endpoint_environment()}

    def endpoint_environment(self) -> dict[str, str]:
        """AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> (the SDKs' standard variables)
        that make a handler's clients call exactly where pipectl's own do: --endpoint-url,
        the per-service variables and the config file's services section, as botocore
        resolved them here. A worker reads no config file, so each is spelled out."""
        env = {"AWS_ENDPOINT_URL": self.effective_endpoint} if self.effective_endpoint else {}
        for service in HANDLER_SERVICES:
            endpoint = self.endpoint_for(service)
            if endpoint:
                service_id = self.client(service).meta.service_model.service_id
                env[f"AWS_ENDPOINT_URL_{service_id.replace(' ', '_').upper()}"] = endpoint
        return env

    def endpoint_for(self, service: str) -> str | None:
        """The endpoint this target's `service` client calls; None for AWS's own."""
        from botocore.config import Config

        ours = self.client(service).meta.endpoint_url
        own = self.session.client(service, config=Config(
            ignore_configured_endpoint_urls=True)).meta.endpoint_url
        return None if ours == own else ours

    @property
    def effective_endpoint(self) -> str | None:
        """The endpoint calls go to; None for AWS's own."""
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None

    def describe(self) -> str:
        where = self.effective_endpoint or f"AWS {self.region}"
        return f"target '{self.target.name}' ({where})"


def no_credentials(aws: Aws) -> PipectlError:
    return PipectlError(f"no AWS credentials for {aws.describe()}: set AWS_PROFILE or "
                        "AWS_ACCESS_KEY_ID, run `aws configure`, or use --target local")


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


@contextlib.contextmanager
def gone_is_done(*codes: str) -> Iterator[None]:
    """For a delete: an error saying the resource does not exist means it is deleted.

    AWS's deletes are not idempotent (a second DeleteFunction answers
    ResourceNotFoundException), and what destroy listed may be gone by the time it gets
    there: deleted by hand, or still finishing an earlier delete.
    """
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) not in codes:
            raise


AWS_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


@contextlib.contextmanager
def translate_errors(aws: Aws | None) -> Iterator[None]:
    """Turn botocore's errors into one-line pipectl errors."""
    try:
        yield
    except AWS_ERRORS as exc:
        raise translate(exc, aws) from None


def translate(exc: Exception, aws: Aws | None) -> PipectlError:
    where = aws.describe() if aws else "AWS"
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError,
                        botocore.exceptions.ConnectTimeoutError)):
        hint = " (start it with `pipectl dev`)" if aws and aws.target.emulator else ""
        return AwsError(f"cannot reach {where}{hint}")
    if isinstance(exc, (botocore.exceptions.NoCredentialsError,
                        botocore.exceptions.PartialCredentialsError)):
        return no_credentials(aws) if aws else PipectlError("no AWS credentials found")
    if isinstance(exc, botocore.exceptions.ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
                    "UnrecognizedClientException", "SignatureDoesNotMatch"):
            return AwsError(f"AWS rejected the credentials for {where}: {message}")
        if code in ("AccessDenied", "AccessDeniedException"):
            return AwsError(f"access denied on {where} ({exc.operation_name}): {message}")
        return AwsError(f"{exc.operation_name} failed on {where}: {code}: {message}")
    return AwsError(f"AWS call failed on {where}: {exc}")


__all__ = ["Aws", "NotFound", "translate", "translate_errors", "error_code"]
