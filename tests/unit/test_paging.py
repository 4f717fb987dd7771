"""``shared.registry.paging.next_link``: following ``Link: <...>; rel="next"`` (RFC 8288).

Expected behaviour: registries.md §1.2 ("compliant clients should always use the Link header value";
CNCF distribution sends a *relative* link such as ``</v2/_catalog?last=b&n=2>; rel="next"`` that must be
resolved against the request URL; absence of the header means done), §1.3 (treat the cursor as
opaque: ECR's ``last=<NextToken>``, Quay's ``next_page=``; regclient resolves relative links and stops
without a Link), §3 (Harbor sends prev and next links), and the module docstring (a next link must stay
on the registry's scheme and host, else ``RefusedHost``).
"""

from __future__ import annotations

import pytest

from shared.errors import RefusedHost
from shared.registry.paging import next_link

REQUEST = "https://reg.test/v2/_catalog?n=2"
PREV = '</api/v2.0/projects?page=1&page_size=10>; rel="prev"'
NEXT = '</api/v2.0/projects?page=3&page_size=10>; rel="next"'


@pytest.mark.parametrize(("header"), [None, ""])
def test_no_header_means_done(header: str | None) -> None:
    assert next_link(header, REQUEST) is None


def test_relative_link_from_distribution() -> None:
    assert (
        next_link('</v2/_catalog?last=b&n=2>; rel="next"', REQUEST)
        == "https://reg.test/v2/_catalog?last=b&n=2"
    )


def test_query_only_relative_link() -> None:
    assert next_link('<?last=c&n=2>; rel="next"', REQUEST) == "https://reg.test/v2/_catalog?last=c&n=2"


def test_absolute_link_is_kept_verbatim() -> None:
    # ECR: an opaque NextToken in last=; never rebuilt by hand.
    link = "https://reg.test/v2/img/tags/list?last=ukD72mdD%2FmC8b5xV%3D%3D&n=1000"
    assert next_link(f'<{link}>; rel="next"', REQUEST) == link


def test_quay_next_page_token() -> None:
    link = "https://reg.test/v2/_catalog?n=100&next_page=gAAAAABk_opaque-token"
    assert next_link(f'<{link}>; rel="next"', REQUEST) == link


@pytest.mark.parametrize(
    "header",
    [
        "<https://reg.test/v2/x?last=t>; rel=next",
        "<https://reg.test/v2/x?last=t>;rel=next",
        '<https://reg.test/v2/x?last=t> ; rel = "next"',
        '<https://reg.test/v2/x?last=t>; REL="Next"',
        '<https://reg.test/v2/x?last=t>; title="page"; rel="next"',
        '<https://reg.test/v2/x?last=t>; rel="prev next"',
    ],
)
def test_rel_spellings(header: str) -> None:
    assert next_link(header, REQUEST) == "https://reg.test/v2/x?last=t"


@pytest.mark.parametrize(
    "header",
    [
        f"{PREV}, {NEXT}",
        f"{NEXT}, {PREV}",
        f"{PREV} , {NEXT}",
        f"{PREV},{NEXT}",
        f'</first>; rel="first", {NEXT}, </last>; rel="last"',
    ],
)
def test_several_links(header: str) -> None:
    assert next_link(header, "https://reg.test/api/v2.0/projects?page=2&page_size=10") == (
        "https://reg.test/api/v2.0/projects?page=3&page_size=10"
    )


@pytest.mark.parametrize(
    "header",
    [
        '<https://reg.test/v2/x?last=a>; rel="prev"',
        '<https://reg.test/v2/x>; rel="nextpage"',
        "<https://reg.test/v2/x>",
        "garbage",
    ],
)
def test_no_next_relation(header: str) -> None:
    assert next_link(header, REQUEST) is None


def test_commas_inside_the_url() -> None:
    assert (
        next_link('<https://reg.test/v2/x?last=a,b>; rel="next"', REQUEST) == "https://reg.test/v2/x?last=a,b"
    )


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.test/v2/_catalog?last=b",
        "//evil.test/v2/_catalog?last=b",
        "http://reg.test/v2/_catalog?last=b",
        "https://reg.test:8443/v2/_catalog?last=b",
        "https://reg.test.evil.test/v2/_catalog",
        "https://user:pw@reg.test/v2/_catalog",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_cross_host_link_is_refused(target: str) -> None:
    with pytest.raises(RefusedHost) as caught:
        next_link(f'<{target}>; rel="next"', REQUEST)
    assert caught.value.status == 502


def test_cross_host_next_is_refused_even_after_a_same_host_prev() -> None:
    header = (
        '<https://reg.test/v2/_catalog?last=a>; rel="prev", '
        '<https://evil.test/v2/_catalog?last=c>; rel="next"'
    )
    with pytest.raises(RefusedHost):
        next_link(header, REQUEST)


def test_cross_host_prev_does_not_matter() -> None:
    header = '<https://evil.test/v2/_catalog?last=a>; rel="prev", </v2/_catalog?last=c>; rel="next"'
    assert next_link(header, REQUEST) == "https://reg.test/v2/_catalog?last=c"


def test_relative_link_keeps_the_port_and_path_prefix() -> None:
    request = "http://127.0.0.1:5000/artifactory/api/docker/repo/v2/_catalog?n=2"
    assert next_link('<_catalog?last=b&n=2>; rel="next"', request) == (
        "http://127.0.0.1:5000/artifactory/api/docker/repo/v2/_catalog?last=b&n=2"
    )
