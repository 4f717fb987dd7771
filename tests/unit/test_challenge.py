"""``shared.registry.challenge``: parsing ``WWW-Authenticate`` as registries send it.

Expected behaviour: registries.md §1.1 — step 1 (Bearer challenge example from distribution's
token.md, ``scope="repository:samalba/my-app:pull,push"``; Basic ``realm="GitHub Package Registry"``),
step 5 (scope grammar, names may contain ``host:port``), step 6 (``error="insufficient_scope"`` with a
new scope; several scopes space-separated, RFC 6749 §3.3); broker-protocol.md §10 "Auth" step 2
(realm/service/scope values may contain commas). Header grammar: RFC 9110 §11.6.1 (several challenges
in one header, auth-params as token or quoted-string, quoted-pair escapes).
"""

from __future__ import annotations

import pytest

from shared.registry.challenge import Challenge, parse_challenges, preferred_challenge

DOCKER_HUB = (
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
    'scope="repository:samalba/my-app:pull,push"'
)


def test_bearer_with_comma_inside_scope() -> None:
    [challenge] = parse_challenges(DOCKER_HUB)

    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.docker.io/token"
    assert challenge.service == "registry.docker.io"
    assert challenge.params["scope"] == "repository:samalba/my-app:pull,push"
    assert challenge.scopes == ("repository:samalba/my-app:pull,push",)
    assert challenge.error is None


def test_commas_inside_realm_and_service() -> None:
    [challenge] = parse_challenges('Bearer realm="https://a.test/token?x=1,2",service="svc,with,commas"')
    assert challenge.realm == "https://a.test/token?x=1,2"
    assert challenge.service == "svc,with,commas"


def test_scope_with_host_and_port_in_the_name() -> None:
    [challenge] = parse_challenges('Bearer realm="r",scope="repository:reg.test:5000/team/app:pull"')
    assert challenge.scopes == ("repository:reg.test:5000/team/app:pull",)


def test_basic_realm_with_spaces() -> None:
    [challenge] = parse_challenges('Basic realm="GitHub Package Registry"')
    assert challenge == Challenge("basic", {"realm": "GitHub Package Registry"})
    assert challenge.service is None
    assert challenge.scopes == ()


@pytest.mark.parametrize(
    "header",
    [
        'Basic realm="basic-realm", Bearer realm="https://auth.test/token",service="reg.test"',
        'Basic realm="basic-realm",Bearer realm="https://auth.test/token",service="reg.test"',
        'Basic realm="basic-realm"  ,  Bearer realm="https://auth.test/token", service="reg.test"',
    ],
)
def test_several_challenges_in_one_header(header: str) -> None:
    challenges = parse_challenges(header)

    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].params == {"realm": "basic-realm"}
    assert challenges[1].params == {"realm": "https://auth.test/token", "service": "reg.test"}


def test_basic_with_several_params_then_bearer() -> None:
    challenges = parse_challenges('Basic realm="r", charset="UTF-8", Bearer realm="b"')
    assert challenges == [
        Challenge("basic", {"realm": "r", "charset": "UTF-8"}),
        Challenge("bearer", {"realm": "b"}),
    ]


def test_challenge_without_params_followed_by_another() -> None:
    # RFC 9110 allows a scheme with no parameters; the challenges after it must still be seen.
    challenges = parse_challenges('Negotiate, Basic realm="corp"')
    assert [c.scheme for c in challenges] == ["negotiate", "basic"]
    assert challenges[1].realm == "corp"
    assert preferred_challenge('Basic, Bearer realm="https://auth.test/token"') == Challenge(
        "bearer", {"realm": "https://auth.test/token"}
    )


def test_bare_scheme() -> None:
    assert parse_challenges("Basic") == [Challenge("basic", {})]


def test_unquoted_token_params() -> None:
    [challenge] = parse_challenges(
        'Bearer realm="https://auth.test/token", service=registry.test, error=invalid_token'
    )
    assert challenge.service == "registry.test"
    assert challenge.error == "invalid_token"


def test_unquoted_url_is_not_cut_at_the_colon() -> None:
    [challenge] = parse_challenges("Bearer realm=https://auth.test/token,service=registry.test")
    assert challenge.realm == "https://auth.test/token"
    assert challenge.service == "registry.test"


def test_escaped_quotes_and_backslashes() -> None:
    [challenge] = parse_challenges(r'Bearer realm="say \"hi\"",service="back\\slash",scope="a\,b"')
    assert challenge.realm == 'say "hi"'
    assert challenge.service == "back\\slash"
    assert challenge.params["scope"] == "a,b"


def test_scheme_and_param_names_are_case_insensitive() -> None:
    [challenge] = parse_challenges('BEARER Realm="https://auth.test/token" ,  SERVICE="reg.test"')
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.test/token"
    assert challenge.service == "reg.test"


def test_param_values_keep_their_case() -> None:
    [challenge] = parse_challenges('Bearer realm="https://Auth.Test/Token",service="Reg"')
    assert challenge.realm == "https://Auth.Test/Token"
    assert challenge.service == "Reg"


def test_insufficient_scope_with_space_separated_scopes() -> None:
    header = (
        'Bearer realm="https://auth.test/token",service="reg.test",'
        'scope="repository:team/app:pull repository:team/base:pull,push registry:catalog:*",'
        'error="insufficient_scope"'
    )
    [challenge] = parse_challenges(header)

    assert challenge.error == "insufficient_scope"
    assert challenge.scopes == (
        "repository:team/app:pull",
        "repository:team/base:pull,push",
        "registry:catalog:*",
    )


def test_scopes_tolerate_extra_whitespace() -> None:
    [challenge] = parse_challenges('Bearer realm="r",scope="  repository:a:pull   repository:b:pull "')
    assert challenge.scopes == ("repository:a:pull", "repository:b:pull")


@pytest.mark.parametrize("header", ["", "   ", ",", '="x"'])
def test_nothing_to_parse(header: str) -> None:
    assert parse_challenges(header) == []
    assert preferred_challenge(header) is None


def test_unparseable_tail_is_ignored() -> None:
    challenges = parse_challenges('Bearer realm="https://auth.test/token", "garbage')
    assert challenges[0] == Challenge("bearer", {"realm": "https://auth.test/token"})


def test_preferred_is_bearer_even_when_basic_comes_first() -> None:
    header = 'Basic realm="b", Bearer realm="https://auth.test/token",service="reg.test"'
    chosen = preferred_challenge(header)
    assert chosen is not None
    assert chosen.scheme == "bearer"
    assert chosen.service == "reg.test"


def test_preferred_falls_back_to_basic() -> None:
    chosen = preferred_challenge('Negotiate, Basic realm="r"')
    assert chosen == Challenge("basic", {"realm": "r"})


def test_preferred_ignores_unknown_schemes() -> None:
    assert preferred_challenge('Digest realm="d", nonce="n"') is None


def test_preferred_takes_the_first_bearer() -> None:
    chosen = preferred_challenge('Bearer realm="first", Bearer realm="second"')
    assert chosen is not None and chosen.realm == "first"


def test_challenge_is_immutable() -> None:
    [challenge] = parse_challenges(DOCKER_HUB)
    with pytest.raises(AttributeError):
        challenge.scheme = "basic"  # type: ignore[misc]
