import pytest

from tests.factories import login, make_mentor, make_user

pytestmark = pytest.mark.django_db


def test_list_paginates(client):
    for i in range(25):
        make_mentor(name=f"Mentor {i:02d}")
    first = client.get("/api/mentors?page_size=10").json()
    third = client.get("/api/mentors?page_size=10&page=3").json()
    assert first["count"] == 25
    assert [m["name"] for m in first["items"]] == [f"Mentor {i:02d}" for i in range(10)]
    assert [m["name"] for m in third["items"]] == [f"Mentor {i:02d}" for i in range(20, 25)]


def test_list_filters_by_expertise_and_searches_name_and_headline(client):
    make_mentor(name="Ada", expertise=["python"], headline="Clean code")
    make_mentor(name="Grace", expertise=["go"], headline="Compilers and Python tooling")
    make_mentor(name="Linus", expertise=["django", "python"])

    by_topic = client.get("/api/mentors?expertise=python").json()
    assert sorted(m["name"] for m in by_topic["items"]) == ["Ada", "Linus"]

    by_text = client.get("/api/mentors?q=python").json()
    assert [m["name"] for m in by_text["items"]] == ["Grace"]
    assert client.get("/api/mentors?q=ada").json()["count"] == 1


def test_inactive_mentors_are_hidden(client):
    make_mentor(name="Gone", is_active=False)
    hidden = make_mentor(name="Gone too", is_active=False)
    assert client.get("/api/mentors").json()["count"] == 0
    assert client.get(f"/api/mentors/{hidden.id}").status_code == 404


def test_detail_shows_rate_currency_and_stats(client):
    mentor = make_mentor(name="Ada", hourly_rate=15000, currency="eur", total_sessions=3, total_minutes=180, total_earnings=45000)
    body = client.get(f"/api/mentors/{mentor.id}").json()
    assert body["hourly_rate"] == 15000
    assert body["currency"] == "eur"
    assert body["stats"]["total_sessions"] == 3
    assert body["stats"]["total_minutes"] == 180


def test_earnings_are_not_published_in_the_catalogue(client):
    mentor = make_mentor(name="Ada", total_sessions=3, total_minutes=180, total_earnings=45000)
    detail = client.get(f"/api/mentors/{mentor.id}").json()
    listed = client.get("/api/mentors").json()["items"][0]
    for body in (detail, listed):
        assert set(body["stats"]) == {"total_sessions", "total_minutes", "updated_at"}
        assert "45000" not in str(body)


def test_a_mentor_sees_their_own_earnings_in_me(client):
    mentor = make_mentor(name="Ada", currency="eur", total_sessions=3, total_minutes=180, total_earnings=45000)
    stats = client.get("/api/auth/me", **login(client, mentor.user)).json()["mentor_stats"]
    assert set(stats) == {"total_sessions", "total_minutes", "total_earnings", "currency", "updated_at"}
    assert (stats["total_sessions"], stats["total_minutes"], stats["total_earnings"], stats["currency"]) == (
        3, 180, 45000, "eur")


def test_nobody_else_sees_a_mentors_earnings_in_me(client):
    make_mentor(name="Ada", total_earnings=45000)
    assert client.get("/api/auth/me", **login(client, make_user())).json()["mentor_stats"] is None


def test_unknown_mentor_is_404_json(client):
    response = client.get("/api/mentors/999999")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_non_numeric_mentor_id_is_422_not_500(client):
    response = client.get("/api/mentors/abc")
    assert response.status_code == 422
    assert response.json()["field"] == "mentor_id"


def test_next_cursor_walks_every_mentor_once_in_page_order(client):
    for i in range(25):
        make_mentor(name=f"Mentor {i % 5}")  # equal names: the id breaks ties
    by_page = [m["id"] for page in (1, 2, 3) for m in client.get(f"/api/mentors?page_size=10&page={page}").json()["items"]]

    walked, cursor = [], ""
    for _ in range(3):
        body = client.get(f"/api/mentors?page_size=10{cursor}").json()
        assert body["count"] == (25 if not cursor else None)  # the total comes with the first page
        walked += [m["id"] for m in body["items"]]
        cursor = f"&cursor={body['next_cursor']}" if body["next_cursor"] else None
    assert cursor is None
    assert walked == by_page and len(set(walked)) == 25


def _cursor(values) -> str:
    import base64
    import json
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


@pytest.mark.parametrize("cursor", ["nonsense", "WzFd", "W251bGwsMV0", "x" * 600, _cursor(["a", 10 ** 30]),
                                    _cursor(["a\u0000", 1]), _cursor(["\ud800", 1]), _cursor(["a", "one"])])
def test_a_cursor_the_list_never_gave_out_is_422_naming_cursor(client, cursor):
    make_mentor()
    response = client.get(f"/api/mentors?cursor={cursor}")
    assert response.status_code == 422, response.content
    assert response.json()["field"] == "cursor"
