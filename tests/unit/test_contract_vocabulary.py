"""The contract's vocabularies (shared/contract/vocabulary.py) are the domain's, name for
name. `shared/` may not import the dispute service, so the contract copies each set; a
value added to, renamed in or dropped from one side only fails here."""

from __future__ import annotations

from enum import Enum
from typing import Any, get_args

import pytest

from services.dispute.domain import rules, values
from shared import contract, permissions


def names(vocabulary: Any) -> set[str]:
    """The names of a contract `Literal`, or of a domain enum or table."""
    if isinstance(vocabulary, type) and issubclass(vocabulary, Enum):
        return {str(member.value) for member in vocabulary}
    literal = get_args(vocabulary)
    return set(literal) if literal else {str(name) for name in vocabulary}


VOCABULARIES = [
    pytest.param(contract.PartyName, values.Party, id="PartyName"),
    pytest.param(contract.PaymentMethod, values.PaymentMethod, id="PaymentMethod"),
    pytest.param(contract.EvidenceKind, values.EvidenceKind, id="EvidenceKind"),
    pytest.param(contract.RequestedResolution, values.RequestedResolution, id="Requested"),
    pytest.param(contract.OfferType, values.OfferType, id="OfferType"),
    pytest.param(contract.Decision, values.Decision, id="Decision"),
    pytest.param(contract.Decision, rules.APPEALABLE_BY, id="Decision-appealable"),
    pytest.param(contract.Outcome, values.Outcome, id="Outcome"),
    pytest.param(contract.ReasonName, values.Reason, id="ReasonName"),
    pytest.param(contract.Settlement, values.Settlement, id="Settlement"),
    pytest.param(contract.State, rules.STATES, id="State"),
    pytest.param(contract.DeadlineKindName, rules.DEADLINES, id="DeadlineKindName"),
]


@pytest.mark.parametrize(("public", "domain"), VOCABULARIES)
def test_a_public_vocabulary_names_what_the_domain_names(public: Any, domain: Any) -> None:
    assert names(public) == names(domain)


def test_the_reasons_are_the_reason_names_in_order() -> None:
    assert tuple(member.value for member in values.Reason) == contract.REASONS


def test_the_deadline_kinds_are_the_tables() -> None:
    assert tuple(rules.DEADLINES) == contract.DEADLINE_KINDS


def test_the_states_are_published_in_the_tables_order() -> None:
    assert list(get_args(contract.State)) == list(rules.STATES)


def test_the_caller_roles_are_the_permission_tables_and_the_domains_but_system() -> None:
    assert names(contract.Role) == set(permissions.CALLER_ROLES)
    assert names(contract.Role) == names(values.Role) - {permissions.SYSTEM}
    assert names(contract.PartyName) == set(permissions.PARTIES)


def test_a_recommendation_is_a_decision_that_grants_something_or_none() -> None:
    granting = names(contract.Decision) - {values.Decision.SELLER_FAVOURED.value}
    assert names(contract.RecommendedDecision) == granting | {"none"}


def test_every_action_of_the_table_has_a_body_and_no_other_has_one() -> None:
    assert set(contract.ACTION_BODIES) == {
        permissions.action_name(trigger) for trigger in rules.ACTION_TRIGGERS
    }
