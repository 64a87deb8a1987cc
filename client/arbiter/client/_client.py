"""The typed, synchronous client: one snake_case method per RPC."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

import grpc
from google.protobuf import field_mask_pb2, json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from arbiter.v1 import (
    api_keys_pb2,
    api_keys_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    contact_policies_pb2,
    contact_policies_pb2_grpc,
    decisions_pb2,
    decisions_pb2_grpc,
    offers_pb2,
    offers_pb2_grpc,
    tenants_pb2,
    tenants_pb2_grpc,
)

from ._errors import error_from_rpc
from ._seed import category_from_dict, offer_from_dict, policy_from_dict

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT = 5.0

Response = TypeVar("Response", bound=Message)
OfferLike = offers_pb2.Offer | Mapping[str, Any]
CategoryLike = catalog_pb2.Category | Mapping[str, Any]
SubCategoryLike = catalog_pb2.SubCategory | Mapping[str, Any]
PolicyLike = contact_policies_pb2.ContactPolicy | Mapping[str, Any]


def _as_offer(offer: OfferLike) -> offers_pb2.Offer:
    return offer if isinstance(offer, offers_pb2.Offer) else offer_from_dict(offer)


class Client:
    """A connection to one Arbiter server, acting for one tenant.

    Every call has a deadline (`timeout` seconds unless the call overrides
    it) and raises an `ArbiterError` subclass when it fails. Use it as a
    context manager, or call `close()`.

        with Client("127.0.0.1:50051", api_key="arb_…") as arbiter:
            offer = arbiter.create_offer({"name": "Gold card", "priority": "high"})

    `api_key` authenticates every call (its tenant is the call's tenant);
    `tenant` names the tenant instead, for servers run with
    --insecure-no-auth. TLS: pass `root_certificates` (PEM bytes of the CA
    that signed the server's certificate; None uses the system's roots when
    `tls` is true), and for mutual TLS `private_key` and `certificate_chain`;
    or pass ready-made `credentials`.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        tenant: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tls: bool = False,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._metadata = tuple(metadata) + ((("x-tenant-id", tenant),) if tenant else ())
        if api_key:
            self._metadata += (("authorization", f"Bearer {api_key}"),)
        if credentials is None and (tls or root_certificates or private_key or certificate_chain):
            credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=list(options))
        else:
            self._channel = grpc.secure_channel(target, credentials, options=list(options))
        self.offers = offers_pb2_grpc.OfferServiceStub(self._channel)
        self.decisions = decisions_pb2_grpc.DecisionServiceStub(self._channel)
        self.tenants = tenants_pb2_grpc.TenantServiceStub(self._channel)
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(self._channel)
        self.policies = contact_policies_pb2_grpc.ContactPolicyServiceStub(self._channel)
        self.keys = api_keys_pb2_grpc.ApiKeyServiceStub(self._channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    @property
    def channel(self) -> grpc.Channel:
        """The underlying channel, for stubs of services this class does not wrap."""
        return self._channel

    def _call(self, method: Callable[..., Response], request: Message, timeout: float | None = None) -> Response:
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc

    # -- OfferService -----------------------------------------------------

    def create_offer(self, offer: OfferLike, *, timeout: float | None = None) -> offers_pb2.Offer:
        """Create an offer from a message or the seed's JSON body; returns it with id and timestamps."""
        request = offers_pb2.CreateOfferRequest(offer=_as_offer(offer))
        return self._call(self.offers.CreateOffer, request, timeout).offer

    def get_offer(self, offer_id: str, *, timeout: float | None = None) -> offers_pb2.Offer:
        return self._call(self.offers.GetOffer, offers_pb2.GetOfferRequest(id=offer_id), timeout).offer

    def list_offers(
        self,
        *,
        status: str | int | None = None,
        category_ids: Iterable[str] = (),
        tags: Iterable[str] = (),
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> offers_pb2.ListOffersResponse:
        """One page of offers; `status` may be a word ("active") or an OfferStatus value."""
        request = offers_pb2.ListOffersRequest(
            status=_offer_status(status),
            category_ids=list(category_ids),
            tags=list(tags),
            page_size=page_size,
            page_token=page_token,
        )
        return self._call(self.offers.ListOffers, request, timeout)

    def iter_offers(
        self,
        *,
        status: str | int | None = None,
        category_ids: Iterable[str] = (),
        tags: Iterable[str] = (),
        page_size: int = 0,
    ) -> Iterator[offers_pb2.Offer]:
        """Every matching offer, following page tokens."""
        category_ids, tags = list(category_ids), list(tags)
        token = ""
        while True:
            page = self.list_offers(
                status=status, category_ids=category_ids, tags=tags, page_size=page_size, page_token=token
            )
            yield from page.offers
            token = page.next_page_token
            if not token:
                return

    def update_offer(
        self,
        offer: OfferLike,
        update_mask: Sequence[str] | None = None,
        *,
        timeout: float | None = None,
    ) -> offers_pb2.Offer:
        """Change the offer named by `offer.id`.

        Without `update_mask`, every field set in `offer` changes and nothing
        is cleared; with it, exactly the named paths change ("*" for all).
        """
        request = offers_pb2.UpdateOfferRequest(offer=_as_offer(offer))
        if update_mask is not None:
            request.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=list(update_mask)))
        return self._call(self.offers.UpdateOffer, request, timeout).offer

    def set_offer_status(self, offer_id: str, status: str | int, *, timeout: float | None = None) -> offers_pb2.Offer:
        """A lifecycle move: an update of `status` alone."""
        offer = offers_pb2.Offer(id=offer_id, status=_offer_status(status))
        return self.update_offer(offer, ["status"], timeout=timeout)

    def delete_offer(self, offer_id: str, *, force: bool = False, timeout: float | None = None) -> None:
        self._call(self.offers.DeleteOffer, offers_pb2.DeleteOfferRequest(id=offer_id, force=force), timeout)

    # -- DecisionService --------------------------------------------------

    def decide(
        self,
        customer_id: str,
        *,
        segments: Iterable[str] = (),
        attributes: Mapping[str, Any] | None = None,
        offer_propensities: Mapping[str, float] | None = None,
        model_propensities: Mapping[str, float] | None = None,
        channel: str = "",
        limit: int = 0,
        category_ids: Iterable[str] = (),
        sub_category_ids: Iterable[str] = (),
        tags: Iterable[str] = (),
        decision_time: datetime | None = None,
        explain: bool = False,
        dry_run: bool = False,
        record_impressions: bool = False,
        timeout: float | None = None,
    ) -> decisions_pb2.DecideResponse:
        """The best offers for a customer right now (or at `decision_time`, an aware datetime)."""
        request = decide_request(
            customer_id,
            segments=segments,
            attributes=attributes,
            offer_propensities=offer_propensities,
            model_propensities=model_propensities,
            channel=channel,
            limit=limit,
            category_ids=category_ids,
            sub_category_ids=sub_category_ids,
            tags=tags,
            decision_time=decision_time,
            explain=explain,
            dry_run=dry_run,
            record_impressions=record_impressions,
        )
        return self._call(self.decisions.Decide, request, timeout)

    def batch_decide(
        self, requests: Iterable[decisions_pb2.DecideRequest], *, timeout: float | None = None
    ) -> list[decisions_pb2.DecideResponse]:
        """Up to 1,000 decisions in one call (build each with `decide_request`); the answers in the same order."""
        request = decisions_pb2.BatchDecideRequest(requests=list(requests))
        return list(self._call(self.decisions.BatchDecide, request, timeout).responses)

    def stream_decide(
        self, requests: Iterable[decisions_pb2.DecideRequest], *, timeout: float | None = None
    ) -> Iterator[decisions_pb2.DecideResponse]:
        """Up to 100,000 decisions in one call, each answer yielded as soon as the server has made it."""
        request = decisions_pb2.StreamDecideRequest(requests=list(requests))
        stream = self.decisions.StreamDecide(
            request, timeout=self.timeout if timeout is None else timeout, metadata=self._metadata
        )
        try:
            yield from stream
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc

    def record_outcome(
        self,
        customer_id: str,
        offer_id: str,
        type: str | int,
        idempotency_key: str,
        *,
        decision_id: str = "",
        channel: str = "",
        occurred_at: datetime | None = None,
        timeout: float | None = None,
    ) -> decisions_pb2.OutcomeResult:
        """Record one outcome ("impression", "click", "conversion", "dismiss", "not_interested", "complaint")."""
        message = outcome(
            customer_id,
            offer_id,
            type,
            idempotency_key,
            decision_id=decision_id,
            channel=channel,
            occurred_at=occurred_at,
        )
        request = decisions_pb2.RecordOutcomeRequest(outcome=message)
        return self._call(self.decisions.RecordOutcome, request, timeout).result

    def record_outcomes(
        self, outcomes: Iterable[decisions_pb2.Outcome], *, timeout: float | None = None
    ) -> list[decisions_pb2.OutcomeResult]:
        """Record up to 1,000 outcomes (build them with `arbiter.client.outcome`) in one transaction."""
        request = decisions_pb2.RecordOutcomesRequest(outcomes=list(outcomes))
        return list(self._call(self.decisions.RecordOutcomes, request, timeout).results)

    def get_offer_stats(self, offer_id: str, *, timeout: float | None = None) -> decisions_pb2.OfferStats:
        request = decisions_pb2.GetOfferStatsRequest(offer_id=offer_id)
        return self._call(self.decisions.GetOfferStats, request, timeout).stats

    def get_decision(self, decision_id: str, *, timeout: float | None = None) -> decisions_pb2.LoggedDecision:
        """A decision the decision log kept (request, answer, every candidate's fate); NotFoundError otherwise."""
        request = decisions_pb2.GetDecisionRequest(decision_id=decision_id)
        return self._call(self.decisions.GetDecision, request, timeout).decision

    def why_not(
        self,
        customer_id: str,
        offer_id: str,
        *,
        segments: Iterable[str] = (),
        attributes: Mapping[str, Any] | None = None,
        offer_propensities: Mapping[str, float] | None = None,
        model_propensities: Mapping[str, float] | None = None,
        channel: str = "",
        limit: int = 0,
        decision_time: datetime | None = None,
        timeout: float | None = None,
    ) -> decisions_pb2.WhyNotResponse:
        """Where `offer_id` would leave the funnel for this customer (a dry run), or its rank if returned."""
        request = decisions_pb2.WhyNotRequest(
            customer_id=customer_id,
            offer_id=offer_id,
            segments=list(segments),
            offer_propensities=dict(offer_propensities or {}),
            model_propensities=dict(model_propensities or {}),
            channel=channel,
            limit=limit,
        )
        if attributes:
            request.attributes.CopyFrom(_struct(attributes))
        if decision_time is not None:
            request.decision_time.CopyFrom(_timestamp(decision_time))
        return self._call(self.decisions.WhyNot, request, timeout)

    # -- TenantService ----------------------------------------------------

    def get_tenant_settings(self, *, timeout: float | None = None) -> tenants_pb2.TenantSettings:
        return self._call(self.tenants.GetTenantSettings, tenants_pb2.GetTenantSettingsRequest(), timeout).settings

    def update_tenant_settings(self, *, timezone: str, timeout: float | None = None) -> tenants_pb2.TenantSettings:
        """Set the tenant's IANA time zone ("" restores the default, UTC)."""
        request = tenants_pb2.UpdateTenantSettingsRequest(
            settings=tenants_pb2.TenantSettings(timezone=timezone),
            update_mask=field_mask_pb2.FieldMask(paths=["timezone"]),
        )
        return self._call(self.tenants.UpdateTenantSettings, request, timeout).settings

    # -- CatalogService ---------------------------------------------------

    def create_category(
        self, category: CategoryLike, *, category_id: str = "", timeout: float | None = None
    ) -> catalog_pb2.Category:
        """Create a category (message or JSON dict with lowercase enum words); `category_id` picks its id."""
        message = category if isinstance(category, catalog_pb2.Category) else category_from_dict(category)
        request = catalog_pb2.CreateCategoryRequest(category=message, category_id=category_id)
        return self._call(self.catalog.CreateCategory, request, timeout).category

    def get_category(self, category_id: str, *, timeout: float | None = None) -> catalog_pb2.Category:
        return self._call(self.catalog.GetCategory, catalog_pb2.GetCategoryRequest(id=category_id), timeout).category

    def list_categories(
        self, *, status: str | int | None = None, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> catalog_pb2.ListCategoriesResponse:
        if isinstance(status, str):
            status = catalog_pb2.CategoryStatus.Value(
                "CATEGORY_STATUS_" + status.upper().removeprefix("CATEGORY_STATUS_")
            )
        request = catalog_pb2.ListCategoriesRequest(
            status=cast(catalog_pb2.CategoryStatus, status or 0), page_size=page_size, page_token=page_token
        )
        return self._call(self.catalog.ListCategories, request, timeout)

    def update_category(
        self, category: CategoryLike, update_mask: Sequence[str] | None = None, *, timeout: float | None = None
    ) -> catalog_pb2.UpdateCategoryResponse:
        """Change a category; the response also says how many offers no longer fit its schema."""
        message = category if isinstance(category, catalog_pb2.Category) else category_from_dict(category)
        request = catalog_pb2.UpdateCategoryRequest(category=message)
        if update_mask is not None:
            request.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=list(update_mask)))
        return self._call(self.catalog.UpdateCategory, request, timeout)

    def delete_category(self, category_id: str, *, timeout: float | None = None) -> None:
        self._call(self.catalog.DeleteCategory, catalog_pb2.DeleteCategoryRequest(id=category_id), timeout)

    def create_sub_category(
        self, sub_category: SubCategoryLike, *, sub_category_id: str = "", timeout: float | None = None
    ) -> catalog_pb2.SubCategory:
        message = _sub_category(sub_category)
        request = catalog_pb2.CreateSubCategoryRequest(sub_category=message, sub_category_id=sub_category_id)
        return self._call(self.catalog.CreateSubCategory, request, timeout).sub_category

    def get_sub_category(self, sub_category_id: str, *, timeout: float | None = None) -> catalog_pb2.SubCategory:
        request = catalog_pb2.GetSubCategoryRequest(id=sub_category_id)
        return self._call(self.catalog.GetSubCategory, request, timeout).sub_category

    def list_sub_categories(
        self, *, category_id: str = "", page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> catalog_pb2.ListSubCategoriesResponse:
        request = catalog_pb2.ListSubCategoriesRequest(
            category_id=category_id, page_size=page_size, page_token=page_token
        )
        return self._call(self.catalog.ListSubCategories, request, timeout)

    def update_sub_category(
        self, sub_category: SubCategoryLike, update_mask: Sequence[str] | None = None, *, timeout: float | None = None
    ) -> catalog_pb2.SubCategory:
        request = catalog_pb2.UpdateSubCategoryRequest(sub_category=_sub_category(sub_category))
        if update_mask is not None:
            request.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=list(update_mask)))
        return self._call(self.catalog.UpdateSubCategory, request, timeout).sub_category

    def delete_sub_category(self, sub_category_id: str, *, timeout: float | None = None) -> None:
        self._call(self.catalog.DeleteSubCategory, catalog_pb2.DeleteSubCategoryRequest(id=sub_category_id), timeout)

    # -- ContactPolicyService ---------------------------------------------

    def create_contact_policy(
        self, policy: PolicyLike, *, timeout: float | None = None
    ) -> contact_policies_pb2.ContactPolicy:
        """Create a contact policy (message, or JSON dict with lowercase enum words)."""
        request = contact_policies_pb2.CreateContactPolicyRequest(contact_policy=_policy(policy))
        return self._call(self.policies.CreateContactPolicy, request, timeout).contact_policy

    def get_contact_policy(self, policy_id: str, *, timeout: float | None = None) -> contact_policies_pb2.ContactPolicy:
        request = contact_policies_pb2.GetContactPolicyRequest(id=policy_id)
        return self._call(self.policies.GetContactPolicy, request, timeout).contact_policy

    def list_contact_policies(
        self, *, status: str | int | None = None, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> contact_policies_pb2.ListContactPoliciesResponse:
        if isinstance(status, str):
            status = contact_policies_pb2.PolicyStatus.Value(
                "POLICY_STATUS_" + status.upper().removeprefix("POLICY_STATUS_")
            )
        request = contact_policies_pb2.ListContactPoliciesRequest(
            status=cast(contact_policies_pb2.PolicyStatus, status or 0), page_size=page_size, page_token=page_token
        )
        return self._call(self.policies.ListContactPolicies, request, timeout)

    def update_contact_policy(
        self, policy: PolicyLike, update_mask: Sequence[str] | None = None, *, timeout: float | None = None
    ) -> contact_policies_pb2.ContactPolicy:
        request = contact_policies_pb2.UpdateContactPolicyRequest(contact_policy=_policy(policy))
        if update_mask is not None:
            request.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=list(update_mask)))
        return self._call(self.policies.UpdateContactPolicy, request, timeout).contact_policy

    def delete_contact_policy(self, policy_id: str, *, timeout: float | None = None) -> None:
        request = contact_policies_pb2.DeleteContactPolicyRequest(id=policy_id)
        self._call(self.policies.DeleteContactPolicy, request, timeout)

    # -- ApiKeyService ----------------------------------------------------

    def create_api_key(
        self,
        role: str | int,
        *,
        name: str = "",
        expires_at: datetime | None = None,
        timeout: float | None = None,
    ) -> api_keys_pb2.CreateApiKeyResponse:
        """Create a key for this client's tenant ("admin", "editor" or "decide"); the response holds its secret."""
        if isinstance(role, str):
            role = api_keys_pb2.Role.Value("ROLE_" + role.upper().removeprefix("ROLE_"))
        key = api_keys_pb2.ApiKey(name=name, role=cast(api_keys_pb2.Role, role))
        if expires_at is not None:
            key.expires_at.CopyFrom(_timestamp(expires_at))
        return self._call(self.keys.CreateApiKey, api_keys_pb2.CreateApiKeyRequest(api_key=key), timeout)

    def get_api_key(self, key_id: str, *, timeout: float | None = None) -> api_keys_pb2.ApiKey:
        return self._call(self.keys.GetApiKey, api_keys_pb2.GetApiKeyRequest(id=key_id), timeout).api_key

    def list_api_keys(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> api_keys_pb2.ListApiKeysResponse:
        request = api_keys_pb2.ListApiKeysRequest(page_size=page_size, page_token=page_token)
        return self._call(self.keys.ListApiKeys, request, timeout)

    def revoke_api_key(self, key_id: str, *, timeout: float | None = None) -> api_keys_pb2.ApiKey:
        return self._call(self.keys.RevokeApiKey, api_keys_pb2.RevokeApiKeyRequest(id=key_id), timeout).api_key


def _policy(value: PolicyLike) -> contact_policies_pb2.ContactPolicy:
    return value if isinstance(value, contact_policies_pb2.ContactPolicy) else policy_from_dict(value)


def _sub_category(value: SubCategoryLike) -> catalog_pb2.SubCategory:
    if isinstance(value, catalog_pb2.SubCategory):
        return value
    return json_format.ParseDict(dict(value), catalog_pb2.SubCategory())


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(dict(values))
    return struct


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    if moment.tzinfo is None:
        raise ValueError("use an aware datetime (with tzinfo) so the instant is unambiguous")
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment)
    return ts


def _outcome_type(value: str | int) -> decisions_pb2.OutcomeType:
    if isinstance(value, int):
        return cast(decisions_pb2.OutcomeType, value)
    name = value.upper()
    number = decisions_pb2.OutcomeType.Value(name if name.startswith("OUTCOME_TYPE_") else "OUTCOME_TYPE_" + name)
    return cast(decisions_pb2.OutcomeType, number)


def decide_request(
    customer_id: str,
    *,
    segments: Iterable[str] = (),
    attributes: Mapping[str, Any] | None = None,
    offer_propensities: Mapping[str, float] | None = None,
    model_propensities: Mapping[str, float] | None = None,
    channel: str = "",
    limit: int = 0,
    category_ids: Iterable[str] = (),
    sub_category_ids: Iterable[str] = (),
    tags: Iterable[str] = (),
    decision_time: datetime | None = None,
    explain: bool = False,
    dry_run: bool = False,
    record_impressions: bool = False,
) -> decisions_pb2.DecideRequest:
    """A DecideRequest message, for `Client.decide`, `batch_decide` and `stream_decide`."""
    request = decisions_pb2.DecideRequest(
        customer_id=customer_id,
        segments=list(segments),
        offer_propensities=dict(offer_propensities or {}),
        model_propensities=dict(model_propensities or {}),
        channel=channel,
        limit=limit,
        category_ids=list(category_ids),
        sub_category_ids=list(sub_category_ids),
        tags=list(tags),
        explain=explain,
        dry_run=dry_run,
        record_impressions=record_impressions,
    )
    if attributes:
        request.attributes.CopyFrom(_struct(attributes))
    if decision_time is not None:
        request.decision_time.CopyFrom(_timestamp(decision_time))
    return request


def outcome(
    customer_id: str,
    offer_id: str,
    type: str | int,
    idempotency_key: str,
    *,
    decision_id: str = "",
    channel: str = "",
    occurred_at: datetime | None = None,
) -> decisions_pb2.Outcome:
    """An Outcome message; `type` may be a word ("click") or an OutcomeType value."""
    message = decisions_pb2.Outcome(
        customer_id=customer_id,
        offer_id=offer_id,
        type=_outcome_type(type),
        idempotency_key=idempotency_key,
        decision_id=decision_id,
        channel=channel,
    )
    if occurred_at is not None:
        message.occurred_at.CopyFrom(_timestamp(occurred_at))
    return message


def _offer_status(status: str | int | None) -> offers_pb2.OfferStatus:
    if status is None:
        return offers_pb2.OFFER_STATUS_UNSPECIFIED
    if isinstance(status, int):
        return cast(offers_pb2.OfferStatus, status)
    name = status.upper()
    value = offers_pb2.OfferStatus.Value(name if name.startswith("OFFER_STATUS_") else "OFFER_STATUS_" + name)
    return cast(offers_pb2.OfferStatus, value)
